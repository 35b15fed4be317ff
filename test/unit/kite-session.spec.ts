import assert from "node:assert/strict";
import { SESSION_EXPIRED } from "../../lib/kite/errors";
import type { SessionEvent } from "../../lib/protocol/events";
import { SessionEvent as SessionEventSchema } from "../../lib/protocol/events";
import { rejectsWithCode } from "../contract/broker-contract";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Issue 10, defect 5: a ticker 403 is confirmed with one REST call before expiry is declared. */
describe("KiteBroker: the daily session", function () {
  let h: KiteHarness;
  let sessions: SessionEvent[];
  afterEach(async function () {
    await h.close();
  });

  async function start(): Promise<void> {
    h = await startKite({ reconnect: { initial_ms: 10, max_ms: 100 } });
    sessions = [];
    h.broker.on("session", (event) => sessions.push(SessionEventSchema.parse(event)));
  }

  const profileReads = (): number => h.fake.requests.filter((r) => r.path === "/user/profile").length;

  it("a ticker 403 while REST accepts the token is not expiry: the ticker comes back, orders keep working", async function () {
    await start();
    h.fake.setPrice("INFY", 1500);
    for (let round = 0; round < 3; round++) {
      const before = profileReads();
      const connects = h.fake.tickerConnects;
      h.fake.refuseTicker(1, 403);
      h.fake.closeTicker();
      await h.log.until(() => h.fake.tickerConnects > connects, "ticker back", 5000);
      await h.log.until(() => h.broker.state === "connected", "connected", 5000);
      assert.equal(profileReads(), before + 1, "one REST call confirms the session");
    }
    assert.equal(h.errors.filter((e) => e.code === "AUTH").length, 0);
    assert.deepEqual(sessions, []);
    assert.ok(!h.states.some(([, detail]) => detail === SESSION_EXPIRED));
    const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "fill");
  });

  it("a ticker 403 that REST confirms: expired once, with the one message and a SESSION_EXPIRED event", async function () {
    await start();
    const before = profileReads();
    h.fake.expireSession();
    await h.log.until(() => h.broker.state === "disconnected", "disconnected", 5000);
    await sleep(300);
    assert.equal(profileReads(), before + 1);
    const auth = h.errors.filter((e) => e.code === "AUTH");
    assert.equal(auth.length, 1);
    assert.equal(auth[0]!.message, SESSION_EXPIRED);
    assert.deepEqual(
      sessions.map((s) => [s.type, s.message]),
      [["SESSION_EXPIRED", SESSION_EXPIRED]],
    );
    assert.equal(h.states.at(-1)![1], SESSION_EXPIRED);
    // Every call now fails with exactly the same text, whatever it was.
    const calls: (() => Promise<unknown>)[] = [
      () => h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      () => h.broker.getOrderbook(),
      () => h.broker.getPositions(),
      () => h.broker.cancelOrder("123"),
      () => h.broker.subscribeQuotes(["INFY"]),
    ];
    for (const call of calls) {
      const error = await rejectsWithCode(Promise.resolve().then(call), "AUTH");
      assert.equal(error.message, SESSION_EXPIRED);
    }
  });

  it("a REST TokenException mid-session: the same message and one SESSION_EXPIRED event", async function () {
    await start();
    h.fake.failNext("GET /portfolio/positions", 403, {
      status: "error",
      message: "Token is invalid or has expired.",
      data: null,
      error_type: "TokenException",
    });
    const error = await rejectsWithCode(h.broker.getPositions(), "AUTH");
    assert.equal(error.message, SESSION_EXPIRED);
    await rejectsWithCode(h.broker.getPositions(), "AUTH");
    assert.equal(sessions.filter((s) => s.type === "SESSION_EXPIRED").length, 1);
  });
});
