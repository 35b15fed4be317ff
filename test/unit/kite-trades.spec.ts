import assert from "node:assert/strict";
import type { OrderEvent, OrderSnapshot, Trade } from "../../lib/protocol";
import { OrderEvent as OrderEventSchema } from "../../lib/protocol";
import { TradeReporter } from "../../lib/kite/trade-reporter";
import { silentLogger } from "../../lib/brokers/logger";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const FILL_TYPES = new Set(["ORDER_PARTIALLY_FILLED", "ORDER_FILLED"]);

function fillsOf(events: OrderEvent[], orderId: string): OrderEvent[] {
  return events.filter((e) => e.order.order_id === orderId && FILL_TYPES.has(e.type));
}

/** The fake exchange's own trade book for one Kite order, as Trades. */
function bookTrades(h: KiteHarness, orderId: string): Trade[] {
  return h.fake
    .allTrades()
    .filter((t) => t.order_id === orderId)
    .map((t) => ({
      trade_id: String(t.trade_id),
      quantity: Number(t.quantity),
      price: Number(t.average_price),
      timestamp: "",
    }));
}

/**
 * Every trade in the events exactly once, each event's trades adding up to what it filled, and
 * together the exchange's trade book for the order (ids, quantities, prices).
 */
function assertTradesExactlyOnce(h: KiteHarness, order: OrderSnapshot, lagging = false): void {
  const events = fillsOf(h.log.orders, order.order_id);
  const ids = new Set<string>();
  let reported = 0;
  const all: Trade[] = [];
  for (const event of events) {
    assert.ok(OrderEventSchema.safeParse(event).success, "the event fits the schema");
    for (const trade of event.trades ?? []) {
      assert.ok(!ids.has(trade.trade_id), `trade ${trade.trade_id} reported twice`);
      ids.add(trade.trade_id);
      reported += trade.quantity;
      all.push(trade);
    }
    // A lagging trade book may leave an event short; the order's last event makes up for it.
    if (lagging && event.type !== "ORDER_FILLED") assert.ok(reported <= event.order.filled_quantity);
    else assert.equal(reported, event.order.filled_quantity, `${event.type}: trades add up`);
  }
  assert.deepEqual(
    all.map(({ trade_id, quantity, price }) => ({ trade_id, quantity, price })),
    bookTrades(h, order.order_id).map(({ trade_id, quantity, price }) => ({ trade_id, quantity, price })),
  );
}

describe("KiteBroker: fills carry their trades (issue 10, trades)", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  it("a MARKET order's ORDER_FILLED carries Kite's trade for it", async function () {
    h = await startKite();
    h.fake.setPrice("INFY", 1500);
    const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
    const filled = fillsOf(h.log.orders, order.order_id);
    assert.equal(filled.length, 1);
    assert.equal(filled[0]!.trades?.length, 1);
    assert.equal(filled[0]!.trades[0]!.price, 1500);
    assertTradesExactlyOnce(h, order);
    assert.deepEqual(
      (await h.broker.getOrderTrades(order.order_id)).map((t) => t.trade_id),
      filled[0]!.trades.map((t) => t.trade_id),
    );
  });

  it("partial fills: each event carries exactly its new trades, 20 orders, many price moves", async function () {
    h = await startKite({}, { maxFillPerQuote: 2 });
    h.fake.setPrice("INFY", 1500);
    const orders: OrderSnapshot[] = [];
    for (let i = 0; i < 20; i++) {
      orders.push(
        await h.broker.placeOrder({
          symbol: "INFY",
          side: i % 2 === 0 ? "BUY" : "SELL",
          quantity: 5 + (i % 4),
          order_type: "LIMIT",
          price: i % 2 === 0 ? 1600 : 1400,
        }),
      );
    }
    for (let move = 0; move < 6; move++) {
      h.fake.setPrice("INFY", 1500 + (move % 2));
      // The ticker and a history read both see the fills: neither may report one twice.
      await h.broker.getOrder(orders[move]!.order_id);
    }
    for (const order of orders) {
      await h.log.until(
        () => h.log.typesFor(order.order_id).includes("ORDER_FILLED"),
        `ORDER_FILLED ${order.order_id}`,
        10_000,
      );
    }
    for (const order of orders) assertTradesExactlyOnce(h, order);
    assert.ok(
      h.log.orders.filter((e) => e.type === "ORDER_PARTIALLY_FILLED").length >= 20,
      "partial fills were reported",
    );
    assert.equal(h.fake.rateLimited, 0);
  });

  it("fills seen again after a ticker reconnect (reconcile) bring no trade twice; missed ones come synthesized with their trades", async function () {
    h = await startKite({}, { maxFillPerQuote: 1 });
    h.fake.setPrice("TCS", 3500);
    const order = await h.broker.placeOrder({
      symbol: "TCS",
      side: "BUY",
      quantity: 6,
      order_type: "LIMIT",
      price: 3600,
    });
    await h.log.until(() => fillsOf(h.log.orders, order.order_id).length >= 1, "first fill");
    for (let round = 0; round < 3; round++) {
      const connects = h.fake.tickerConnects;
      h.fake.stallTicker();
      h.fake.setPrice("TCS", 3501 + round);
      h.fake.closeTicker();
      await h.log.until(() => h.fake.tickerConnects > connects, "ticker back");
    }
    h.fake.setPrice("TCS", 3510);
    h.fake.setPrice("TCS", 3511);
    h.fake.setPrice("TCS", 3512);
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED", 10_000);
    assertTradesExactlyOnce(h, order);
    const synthesized = fillsOf(h.log.orders, order.order_id).filter((e) => e.synthesized === true);
    assert.ok(synthesized.length > 0, "a fill missed by the stalled ticker came from the reconcile");
    for (const event of synthesized) assert.ok((event.trades?.length ?? 0) > 0, "with its true trades");
  });

  it("Kite's trade book lagging: the event waits a moment; still missing, the next fill event carries it", async function () {
    h = await startKite({}, { maxFillPerQuote: 2 });
    h.fake.setPrice("INFY", 1500);
    const order = await h.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 8,
      order_type: "LIMIT",
      price: 1600,
    });
    await h.log.until(() => fillsOf(h.log.orders, order.order_id).length === 1, "first fill");
    // A short lag: the event is held until the trade shows.
    h.fake.holdTrades();
    h.fake.setPrice("INFY", 1501);
    setTimeout(() => h.fake.releaseTrades(), 100);
    await h.log.until(() => fillsOf(h.log.orders, order.order_id).length === 2, "second fill");
    assert.equal(fillsOf(h.log.orders, order.order_id)[1]!.trades?.length, 1);
    // A long one: the event goes without the trade, and the next fill's event brings it.
    h.fake.holdTrades();
    h.fake.setPrice("INFY", 1502);
    await h.log.until(() => fillsOf(h.log.orders, order.order_id).length === 3, "third fill", 5000);
    assert.equal(fillsOf(h.log.orders, order.order_id)[2]!.trades, undefined);
    h.fake.releaseTrades();
    h.fake.setPrice("INFY", 1503);
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
    const last = fillsOf(h.log.orders, order.order_id)[3]!;
    assert.equal(last.trades?.length, 2);
    assert.deepEqual(
      last.trades.map((t) => t.price),
      [1502, 1503],
    );
    assertTradesExactlyOnce(h, order, true);
  });

  it("fills made before connect are not reported again: the next event brings only the new trade", async function () {
    h = await startKite({}, { maxFillPerQuote: 2 }, false);
    h.fake.setPrice("INFY", 1500);
    // Placed on the exchange directly, before this broker connects: two fills of 2 happen first.
    const paper = await h.fake.paper.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 6,
      order_type: "LIMIT",
      price: 1600,
    });
    h.fake.setPrice("INFY", 1501);
    const kiteId = String(h.fake.allTrades()[0]!.order_id);
    assert.equal((await h.fake.paper.getOrder(paper.order_id)).filled_quantity, 4);
    await h.broker.connect();
    h.fake.setPrice("INFY", 1502);
    await h.log.until(() => h.log.typesFor(kiteId).includes("ORDER_FILLED"), "ORDER_FILLED");
    const events = fillsOf(h.log.orders, kiteId);
    assert.equal(events.length, 1);
    assert.deepEqual(
      events[0]!.trades!.map((t) => [t.quantity, t.price]),
      [[2, 1502]],
    );
  });

  it("30 orders filling at once: trades read in few requests, never over Kite's limits", async function () {
    h = await startKite(
      { rate_limit: { max_wait_ms: 10_000 } },
      { rateLimits: { order: 10, other: 10, quote: 1 } },
    );
    h.fake.setPrice("RELIANCE", 2900);
    const orders = await Promise.all(
      Array.from({ length: 30 }, () =>
        h.broker.placeOrder({
          symbol: "RELIANCE",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 2800,
        }),
      ),
    );
    const readsBefore = h.fake.requests.filter((r) => r.path.endsWith("/trades")).length;
    h.fake.setPrice("RELIANCE", 2790);
    for (const order of orders) {
      await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "fill", 10_000);
    }
    for (const order of orders) assertTradesExactlyOnce(h, order);
    const reads = h.fake.requests.filter((r) => r.path.endsWith("/trades")).length - readsBefore;
    assert.ok(reads < 30, `${reads} trade reads for 30 fills`);
    assert.equal(h.fake.rateLimited, 0);
  });

  it("a listener that throws costs no other event waiting behind a fill", async function () {
    h = await startKite();
    h.fake.setPrice("TCS", 3500);
    const orders = await Promise.all(
      [1, 2, 3, 4].map((quantity) =>
        h.broker.placeOrder({ symbol: "TCS", side: "BUY", quantity, order_type: "LIMIT", price: 3400 }),
      ),
    );
    h.broker.on("order", (event) => {
      if (event.type === "ORDER_FILLED") throw new Error("a flow's bug");
    });
    h.fake.setPrice("TCS", 3390);
    for (const order of orders) {
      await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
      assertTradesExactlyOnce(h, order);
    }
    await h.log.until(() => h.errors.length >= 4, "each throw reported");
    assert.ok(h.errors.every((e) => /a flow's bug/.test(e.message)));
  });

  it("close() with a fill's trades being read: the event still goes out once, then nothing", async function () {
    h = await startKite();
    h.fake.setPrice("INFY", 1500);
    h.fake.holdTrades();
    const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await h.broker.close();
    assert.deepEqual(h.log.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
    const count = h.log.orders.length;
    h.fake.releaseTrades();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(h.log.orders.length, count);
  });
});

describe("TradeReporter", function () {
  const order = (id: string, filled: number): OrderSnapshot => ({
    order_id: id,
    client_order_id: "c1",
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 100,
    order_type: "MARKET",
    product: "MIS",
    validity: "DAY",
    status: filled === 100 ? "FILLED" : "PARTIALLY_FILLED",
    filled_quantity: filled,
    average_price: 10,
    placed_at: "2026-12-04T03:45:00.000Z",
    timestamp: "2026-12-04T03:45:00.000Z",
  });
  const kiteTrade = (id: number, orderId: string, quantity: number): Record<string, unknown> => ({
    trade_id: String(id),
    order_id: orderId,
    quantity,
    average_price: 10 + id / 100,
    fill_timestamp: `2026-12-04 09:15:${String(id % 60).padStart(2, "0")}`,
  });

  it("keeps memory only for orders not yet forgotten (1,000 orders, retention by the tracker)", async function () {
    const book: Record<string, unknown>[] = [];
    const reporter = new TradeReporter(
      {
        orderTrades: (id) => Promise.resolve(book.filter((t) => t.order_id === id)),
        dayTrades: () => Promise.resolve(book),
      },
      new AbortController().signal,
      silentLogger,
    );
    for (let i = 0; i < 1000; i++) {
      book.push(kiteTrade(i, `O${i}`, 100));
      const [trades] = await reporter.collect([{ order: order(`O${i}`, 100), previousFilled: 0 }]);
      assert.equal(trades?.length, 1);
      if (i >= 10) reporter.forget(`O${i - 10}`);
    }
    assert.equal(reporter.size, 10);
    // Seen again (a duplicate update): nothing new to report.
    const again = await reporter.collect([{ order: order("O999", 100), previousFilled: 0 }]);
    assert.deepEqual(again, [undefined]);
  });

  it("two fills of one order in one batch split the trades between them, in order", async function () {
    const book = [kiteTrade(1, "A", 30), kiteTrade(2, "A", 20), kiteTrade(3, "A", 50), kiteTrade(4, "B", 5)];
    let reads = 0;
    const reporter = new TradeReporter(
      {
        orderTrades: () => Promise.reject(new Error("one read for the batch")),
        dayTrades: () => {
          reads += 1;
          return Promise.resolve(book);
        },
      },
      new AbortController().signal,
      silentLogger,
    );
    const [first, second, third] = await reporter.collect([
      { order: order("A", 50), previousFilled: 0 },
      { order: order("A", 100), previousFilled: 50 },
      { order: { ...order("B", 5), quantity: 5, status: "FILLED" }, previousFilled: 0 },
    ]);
    assert.equal(reads, 1);
    assert.deepEqual(
      first?.map((t) => t.trade_id),
      ["1", "2"],
    );
    assert.deepEqual(
      second?.map((t) => t.trade_id),
      ["3"],
    );
    assert.deepEqual(
      third?.map((t) => t.trade_id),
      ["4"],
    );
  });
});
