import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import type { KiteSettingsInput } from "../../lib/brokers/kite-settings";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import type { KiteHarness } from "../fakes/kite-harness";
import { fakeKiteSettings, startKite } from "../fakes/kite-harness";

const PLACE = "POST /orders/regular";
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};

const limitBuy = (clientId: string) => ({
  symbol: "INFY",
  side: "BUY" as const,
  quantity: 1,
  order_type: "LIMIT" as const,
  price: 1400,
  client_order_id: clientId,
});

/**
 * Issue kite10, items 1 and 2: a placement whose outcome is unknown is never placed again by the
 * pack, however late Kite lists it, and a client_order_id used today never makes a second order,
 * whatever retention let go or a restart forgot.
 */
describe("KiteBroker: lost placements are never placed again (issue kite10, items 1-2)", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  const posts = (k: KiteHarness): number =>
    k.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;
  const mine = async (k: KiteHarness, clientId: string): Promise<number> =>
    (await k.fake.paper.getOrderbook()).filter((o) => o.tag === clientId).length;

  // Reads are 300 ms apart: 20 reads late is ~6 s, inside the default 15 s window.
  const cases: [number, string][] = [
    [5, "500"],
    [5, "no answer"],
    [8, "500"],
    [8, "no answer"],
    [20, "500"],
  ];
  for (const [late, fault] of cases) {
    it(`placed, answered ${fault}, listed ${late} reads late: one order, reported once, sent once`, async function () {
      this.timeout(30_000);
      // No OPEN postback: only the order book can tell the order exists.
      const k = await startKite({}, { skipPostbackStatuses: ["OPEN"] });
      h = k;
      k.fake.setPrice("INFY", 1500);
      // Two rounds on one broker, the second after the first's order is known (one at 20: ~6 s).
      for (const round of late >= 20 ? [0] : [0, 1]) {
        if (fault === "500") k.fake.failAfter(PLACE, 500, GENERAL);
        else k.fake.dropNextResponse(PLACE);
        k.fake.listNextPlacementLate(late);
        const clientId = `late${late}${fault === "500" ? "e" : "d"}${round}`;
        const before = posts(k);
        const order = await k.broker.placeOrder(limitBuy(clientId));
        assert.equal(order.client_order_id, clientId);
        assert.equal(posts(k), before + 1, `${fault}, listed ${late} reads late: sent again`);
        assert.equal(await mine(k, clientId), 1);
        await k.log.until(() => k.log.typesFor(order.order_id).length > 0, "ORDER_PLACED");
        // A retry answers the same order, sends nothing.
        const again = await k.broker.placeOrder(limitBuy(clientId));
        assert.equal(again.order_id, order.order_id);
        assert.equal(posts(k), before + 1);
        assert.deepEqual(k.log.typesFor(order.order_id), ["ORDER_PLACED"]);
      }
      assert.equal(await k.fake.orderCount(), late >= 20 ? 1 : 2);
    });
  }

  it("listed only after the window: NETWORK (unknown), retries refused unsent, then the late sighting reported once", async function () {
    this.timeout(30_000);
    const k = await startKite({ resolve_window_ms: 600 }, { skipPostbackStatuses: ["OPEN"] });
    h = k;
    k.fake.setPrice("INFY", 1500);
    k.fake.failAfter(PLACE, 500, GENERAL);
    // Listed only after 8 order book reads: the window (2-3 reads) is long over by then.
    k.fake.listNextPlacementLate(8);
    await rejectsWithCode(k.broker.placeOrder(limitBuy("slow1")), "NETWORK", /outcome still unknown/);
    assert.equal(posts(k), 1);
    // Retries while Kite still does not list it: refused, nothing sent (each retry reads the book).
    for (let i = 0; i < 3; i++) {
      await rejectsWithCode(
        k.broker.placeOrder(limitBuy("slow1")),
        "IDEMPOTENCY_UNKNOWN",
        /not placed again/,
      );
    }
    assert.equal(posts(k), 1);
    assert.equal(k.log.orders.length, 0, "nothing reported while nothing is known");
    // The watch keeps reading the book: once Kite lists it, it is reported, with no postback.
    await k.log.until(() => k.log.orders.length > 0, "the late order reported", 15_000);
    const orderId = k.log.orders[0]!.order.order_id;
    assert.equal(k.log.orders[0]!.order.client_order_id, "slow1");
    const again = await k.broker.placeOrder(limitBuy("slow1"));
    assert.equal(again.order_id, orderId);
    await k.broker.getOrderbook();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(k.log.typesFor(orderId), ["ORDER_PLACED"]);
    assert.equal(k.log.orders.length, 1);
    assert.equal(posts(k), 1);
    assert.equal(await k.fake.orderCount(), 1);
  });

  it("ten placements answered 500 and never listed: ten NETWORK, ten refused retries, nothing sent twice", async function () {
    this.timeout(30_000);
    const k = await startKite({ resolve_window_ms: 300 });
    h = k;
    k.fake.setPrice("INFY", 1500);
    for (let i = 0; i < 10; i++) {
      k.fake.failNext(PLACE, 500, GENERAL);
      await rejectsWithCode(k.broker.placeOrder(limitBuy(`never${i}`)), "NETWORK", /not sent again/);
      await rejectsWithCode(k.broker.placeOrder(limitBuy(`never${i}`)), "IDEMPOTENCY_UNKNOWN");
    }
    assert.equal(posts(k), 10);
    assert.equal(await k.fake.orderCount(), 0);
    // A fresh id is placed as usual.
    const fresh = await k.broker.placeOrder(limitBuy("fresh1"));
    assert.equal(fresh.status, "OPEN");
    assert.equal(posts(k), 11);
  });

  it("a refusal Kite spelled out makes no order: the same client_order_id may be sent again", async function () {
    const k = await startKite();
    h = k;
    k.fake.setPrice("INFY", 1500);
    k.fake.failNext(PLACE, 400, {
      status: "error",
      message: "Insufficient funds",
      data: null,
      error_type: "MarginException",
    });
    await rejectsWithCode(k.broker.placeOrder(limitBuy("refused1")), "INSUFFICIENT_FUNDS");
    const order = await k.broker.placeOrder(limitBuy("refused1"));
    assert.equal(order.status, "OPEN");
    assert.equal(posts(k), 2);
    assert.equal(await k.fake.orderCount(), 1);
  });

  it("ended orders past retention: a retry of each answers DUPLICATE_ORDER naming its order, none placed again", async function () {
    this.timeout(20_000);
    const k = await startKite({ retention: 10 });
    h = k;
    k.fake.setPrice("INFY", 1500);
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const order = await k.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: `ret${i}`,
      });
      ids.push(order.order_id);
      await k.log.until(() => k.log.typesFor(order.order_id).includes("ORDER_FILLED"), `fill ${i}`);
    }
    assert.equal(posts(k), 25);
    // The oldest 15 left retention; each retry is refused, naming the order it made.
    for (let i = 0; i < 15; i++) {
      await rejectsWithCode(
        k.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `ret${i}` }),
        "DUPLICATE_ORDER",
        new RegExp(`ret${i} was already used today by order ${ids[i]}`),
      );
    }
    // The retained ones answer their order.
    for (let i = 15; i < 25; i++) {
      const again = await k.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: `ret${i}`,
      });
      assert.equal(again.order_id, ids[i]);
    }
    assert.equal(posts(k), 25);
    assert.equal(await k.fake.orderCount(), 25);
  });
});

describe("KiteBroker: client_order_ids used today, across restarts (issue kite10, items 1-2)", function () {
  let fake: FakeKite;
  let dir: string;
  const running: { broker: KiteBroker; log: EventLog }[] = [];

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-lost-placements-"));
    fake = await FakeKite.start({ heartbeatMs: 200, skipPostbackStatuses: ["OPEN"] });
    fake.setPrice("INFY", 1500);
  });

  afterEach(async function () {
    for (const { broker, log } of running.splice(0)) {
      log.detach();
      await broker.close();
    }
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(
    extra: Partial<KiteSettingsInput> = {},
  ): Promise<{ broker: KiteBroker; log: EventLog }> {
    const broker = new KiteBroker(
      KiteSettings.parse({ ...fakeKiteSettings(fake), cache_dir: dir, instance_id: "cfg", ...extra }),
      { ledgerWaitMs: 200 },
    );
    const log = new EventLog(broker);
    const run = { broker, log };
    running.push(run);
    await broker.connect();
    return run;
  }

  async function stop(run: { broker: KiteBroker; log: EventLog }): Promise<void> {
    running.splice(running.indexOf(run), 1);
    run.log.detach();
    await run.broker.close();
  }

  const posts = (): number =>
    fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;

  it("a placement left unknown, then a restart: the retry is not sent; once listed, reported once", async function () {
    this.timeout(30_000);
    let run = await start({ resolve_window_ms: 300 });
    fake.failAfter(PLACE, 500, GENERAL);
    fake.listNextPlacementLate(1000);
    await rejectsWithCode(run.broker.placeOrder(limitBuy("boot1")), "NETWORK", /outcome still unknown/);
    await stop(run);
    // Five restarts while Kite still does not list it: the retry is refused each time, unsent.
    for (let restart = 0; restart < 5; restart++) {
      run = await start({ resolve_window_ms: 300 });
      await rejectsWithCode(run.broker.placeOrder(limitBuy("boot1")), "IDEMPOTENCY_UNKNOWN");
      assert.deepEqual(run.log.orders, []);
      await stop(run);
    }
    assert.equal(posts(), 1);
    // Kite lists it at last; the next start reports it, once.
    fake.listLateOrdersNow();
    run = await start({ resolve_window_ms: 300 });
    await run.log.until(() => run.log.orders.length > 0, "the order reported at start");
    const orderId = run.log.orders[0]!.order.order_id;
    assert.deepEqual(run.log.typesFor(orderId), ["ORDER_PLACED"]);
    const again = await run.broker.placeOrder(limitBuy("boot1"));
    assert.equal(again.order_id, orderId);
    await stop(run);
    // And once only: the next start is silent about it.
    run = await start({ resolve_window_ms: 300 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(run.log.orders, []);
    assert.equal(posts(), 1);
    assert.equal(await fake.orderCount(), 1);
  });

  it("ended orders past retention after a restart: retries answer DUPLICATE_ORDER, none placed again", async function () {
    this.timeout(20_000);
    let run = await start({ retention: 10 });
    for (let i = 0; i < 15; i++) {
      await run.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `old${i}` });
    }
    await run.log.until(
      () => run.log.orders.filter((e) => e.type === "ORDER_FILLED").length === 15,
      "15 fills",
    );
    await stop(run);
    run = await start({ retention: 10 });
    for (let i = 0; i < 15; i++) {
      try {
        const again = await run.broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          client_order_id: `old${i}`,
        });
        assert.equal(again.client_order_id, `old${i}`);
      } catch (error) {
        assert.equal((error as { code?: string }).code, "DUPLICATE_ORDER", String(error));
      }
    }
    assert.equal(posts(), 15);
    assert.equal(await fake.orderCount(), 15);
  });
});
