import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import type { KiteSettingsInput } from "../../lib/brokers/kite-settings";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import type { BrokerError } from "../../lib/protocol";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import { fakeKiteSettings } from "../fakes/kite-harness";
import { waitFor } from "../support/wait";

const PLACE = "POST /orders/regular";
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};
const TOKEN = {
  status: "error",
  message: "Incorrect `api_key` or `access_token`.",
  data: null,
  error_type: "TokenException",
};

const limitBuy = (clientId: string) => ({
  symbol: "INFY",
  side: "BUY" as const,
  quantity: 1,
  order_type: "LIMIT" as const,
  price: 1400,
  client_order_id: clientId,
});

interface Run {
  broker: KiteBroker;
  log: EventLog;
  errors: BrokerError[];
}

/**
 * Issue kite11, items 2 and 4: a placement whose answer never came because the broker closed
 * (a redeploy) or the session ended during its lookup is resolved from Kite's order book by its
 * tag later (after the next start, after the login): placed → reported once; still absent after
 * the window → NETWORK reported once. Never sent again.
 */
describe("KiteBroker: placements cut off by close() or a session expiry (issue kite11, items 2 and 4)", function () {
  let fake: FakeKite;
  let dir: string;
  const running: Run[] = [];

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-cut-placements-"));
    // No OPEN postback: only the order book can tell the order exists.
    fake = await FakeKite.start({ heartbeatMs: 200, skipPostbackStatuses: ["OPEN"] });
    fake.setPrice("INFY", 1500);
  });

  afterEach(async function () {
    for (const run of running.splice(0)) {
      run.log.detach();
      await run.broker.close();
    }
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(extra: Partial<KiteSettingsInput> = {}): Promise<Run> {
    const broker = new KiteBroker(
      KiteSettings.parse({
        ...fakeKiteSettings(fake),
        cache_dir: dir,
        instance_id: "cfg",
        resolve_window_ms: 600,
        ...extra,
      }),
      { ledgerWaitMs: 200 },
    );
    const errors: BrokerError[] = [];
    broker.on("error", (error) => errors.push(error));
    const log = new EventLog(broker);
    const run = { broker, log, errors };
    running.push(run);
    await broker.connect();
    return run;
  }

  async function stop(run: Run): Promise<void> {
    running.splice(running.indexOf(run), 1);
    run.log.detach();
    await run.broker.close();
  }

  const posts = (): number =>
    fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;
  const networkFor = (run: Run, clientId: string): BrokerError[] =>
    run.errors.filter((e) => e.code === "NETWORK" && e.message.includes(clientId));

  /** Places `clientId` and closes the broker while the placement's answer is on its way. */
  async function cutOff(run: Run, clientId: string): Promise<void> {
    const before = posts();
    const placing = run.broker.placeOrder(limitBuy(clientId));
    const closed = rejectsWithCode(placing, "CLOSED");
    await waitFor(() => posts() > before, "the placement reached Kite");
    await stop(run);
    await closed;
  }

  it("placed by Kite, listed only after the next start: reported once, over three more restarts", async function () {
    this.timeout(20_000);
    let run = await start();
    fake.delayNext(PLACE, 5000);
    fake.listNextPlacementLate(1000);
    await cutOff(run, "cut1");
    assert.equal(await fake.orderCount(), 1, "Kite placed it");
    run = await start();
    assert.equal(run.log.orders.length, 0, "not listed yet: nothing to report");
    fake.listLateOrdersNow();
    await run.log.until(() => run.log.orders.length > 0, "the order reported after the restart", 10_000);
    const orderId = run.log.orders[0]!.order.order_id;
    assert.equal(run.log.orders[0]!.order.client_order_id, "cut1");
    assert.deepEqual(run.log.typesFor(orderId), ["ORDER_PLACED"]);
    assert.deepEqual(networkFor(run, "cut1"), []);
    const again = await run.broker.placeOrder(limitBuy("cut1"));
    assert.equal(again.order_id, orderId);
    for (let restart = 0; restart < 3; restart++) {
      await stop(run);
      run = await start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(run.log.orders.length, 0, `restart ${restart}: told again`);
      assert.deepEqual(networkFor(run, "cut1"), []);
    }
    assert.equal(posts(), 1);
    assert.equal(await fake.orderCount(), 1);
  });

  it("never placed by Kite: NETWORK reported once after the next start's window, not at the two starts after", async function () {
    this.timeout(20_000);
    let run = await start();
    fake.hangNext(PLACE);
    await cutOff(run, "cut2");
    run = await start();
    await waitFor(() => networkFor(run, "cut2").length > 0, "NETWORK for cut2 after the restart", 10_000);
    assert.match(networkFor(run, "cut2")[0]!.message, /not sent again/);
    await rejectsWithCode(run.broker.placeOrder(limitBuy("cut2")), "IDEMPOTENCY_UNKNOWN");
    // A few more book reads of the watch: told once.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(networkFor(run, "cut2").length, 1);
    for (let restart = 0; restart < 2; restart++) {
      await stop(run);
      run = await start();
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.deepEqual(networkFor(run, "cut2"), [], `restart ${restart}: NETWORK told again`);
      await rejectsWithCode(run.broker.placeOrder(limitBuy("cut2")), "IDEMPOTENCY_UNKNOWN");
    }
    assert.equal(posts(), 1);
    assert.equal(await fake.orderCount(), 0);
    assert.equal(run.log.orders.length, 0);
  });

  it("closed while waiting for its turn under the rate limit (never sent): no NETWORK, and a retry places it", async function () {
    this.timeout(20_000);
    let run = await start({ rate_limit: { orders_per_second: 1, orders_per_minute: 60 } });
    await run.broker.placeOrder(limitBuy("first3"));
    const waiting = rejectsWithCode(run.broker.placeOrder(limitBuy("queued3")), "CLOSED");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await stop(run);
    await waiting;
    assert.equal(posts(), 1, "the queued placement was never sent");
    run = await start();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.deepEqual(networkFor(run, "queued3"), []);
    const order = await run.broker.placeOrder(limitBuy("queued3"));
    assert.equal(order.client_order_id, "queued3");
    assert.equal(posts(), 2);
    assert.equal(await fake.orderCount(), 2);
  });

  it("the session ends during the lookup: AUTH saying log in, at once; after the login the order is reported once", async function () {
    this.timeout(30_000);
    const run = await start({ resolve_window_ms: 8000 });
    fake.failAfter(PLACE, 500, GENERAL);
    fake.failNext("GET /orders", 403, TOKEN);
    await rejectsWithCode(
      run.broker.placeOrder(limitBuy("exp1")),
      "AUTH",
      /log in again.*exp1.*not sent again/s,
    );
    assert.equal(run.broker.sessionExpired, true);
    assert.equal(run.log.orders.length, 0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(run.log.orders.length, 0, "nothing read while logged out");
    run.broker.setAccessToken(fake.accessToken);
    await run.log.until(() => run.log.orders.length > 0, "the order reported after the login", 10_000);
    const orderId = run.log.orders[0]!.order.order_id;
    assert.equal(run.log.orders[0]!.order.client_order_id, "exp1");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(run.log.typesFor(orderId), ["ORDER_PLACED"]);
    assert.deepEqual(networkFor(run, "exp1"), []);
    assert.equal((await run.broker.placeOrder(limitBuy("exp1"))).order_id, orderId);
    assert.equal(posts(), 1);
    assert.equal(await fake.orderCount(), 1);
  });

  it("the session ends during the lookup and Kite made no order: after the login and the window, NETWORK once", async function () {
    this.timeout(30_000);
    const run = await start({ resolve_window_ms: 1000 });
    fake.dropNextRequest(PLACE);
    fake.failNext("GET /orders", 403, TOKEN);
    await rejectsWithCode(run.broker.placeOrder(limitBuy("exp2")), "AUTH", /log in again/);
    // Logged out longer than the window: the window counts from the login.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.deepEqual(networkFor(run, "exp2"), [], "told unknown while the book could not be read");
    run.broker.setAccessToken(fake.accessToken);
    await waitFor(() => networkFor(run, "exp2").length > 0, "NETWORK for exp2 after the login", 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(networkFor(run, "exp2").length, 1);
    await rejectsWithCode(run.broker.placeOrder(limitBuy("exp2")), "IDEMPOTENCY_UNKNOWN");
    assert.equal(posts(), 1);
    assert.equal(await fake.orderCount(), 0);
  });
});
