import assert from "node:assert/strict";
import type { BrokerInterface } from "../../lib/brokers/interface";
import type { BrokerError, GttEvent, OrderSnapshot, Quote } from "../../lib/protocol";
import { OrderEvent } from "../../lib/protocol";

/**
 * What each broker implementation supplies to run the shared contract: a connected broker and a
 * way to move the venue's price (paper: setPrice; WebSocket: the gateway's paper broker; Kite:
 * the fake exchange). Prices are set without a book, so fills happen at the last price.
 */
export interface ContractHarness {
  broker: BrokerInterface;
  setPrice(symbol: string, price: number): Promise<void>;
  close(): Promise<void>;
}

export type HarnessFactory = () => Promise<ContractHarness>;

/** Collects a broker's order and GTT events for assertions. */
export class EventLog {
  readonly orders: OrderEvent[] = [];
  readonly gtts: GttEvent[] = [];
  readonly quotes: Quote[] = [];
  readonly #broker: BrokerInterface;
  readonly #onOrder = (event: OrderEvent) => this.orders.push(event);
  readonly #onGtt = (event: GttEvent) => this.gtts.push(event);
  readonly #onQuote = (quote: Quote) => this.quotes.push(quote);

  constructor(broker: BrokerInterface) {
    this.#broker = broker;
    broker.on("order", this.#onOrder);
    broker.on("gtt", this.#onGtt);
    broker.on("quote", this.#onQuote);
  }

  detach(): void {
    this.#broker.off("order", this.#onOrder);
    this.#broker.off("gtt", this.#onGtt);
    this.#broker.off("quote", this.#onQuote);
  }

  typesFor(orderId: string): string[] {
    return this.orders.filter((e) => e.order.order_id === orderId).map((e) => e.type);
  }

  /** Waits until `predicate` holds for the log, polling; remote brokers deliver events later. */
  async until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

export async function rejectsWithCode(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    const err = error as BrokerError;
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected a ${code} rejection, but it resolved`);
}

/** The behaviour every BrokerInterface implementation must share. */
export function brokerContract(name: string, create: HarnessFactory): void {
  describe(`BrokerInterface contract: ${name}`, function () {
    let h: ContractHarness;
    let log: EventLog;

    beforeEach(async function () {
      h = await create();
      log = new EventLog(h.broker);
      await h.setPrice("INFY", 1500);
      await h.setPrice("TCS", 3500);
    });

    afterEach(async function () {
      log.detach();
      await h.close();
    });

    it("is connected once created", function () {
      assert.equal(h.broker.state, "connected");
    });

    it("fills a MARKET order and reports PLACED then FILLED with rising seq", async function () {
      const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
      await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
      assert.deepEqual(log.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
      const filled = log.orders.find((e) => e.type === "ORDER_FILLED")!.order;
      assert.equal(filled.filled_quantity, 10);
      assert.ok(filled.average_price > 0);
      const seqs = log.orders.map((e) => e.seq);
      seqs.forEach((seq, i) => i > 0 && assert.ok(seq > seqs[i - 1]!, `seq ${seq} after ${seqs[i - 1]}`));
      const book = await h.broker.getOrderbook();
      assert.equal(book.find((o) => o.order_id === order.order_id)?.status, "FILLED");
      const positions = await h.broker.getPositions();
      assert.equal(positions.find((p) => p.symbol === "INFY")?.quantity, 10);
    });

    it("rests a LIMIT order until the price reaches it, then fills at the limit or better", async function () {
      const order = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        order_type: "LIMIT",
        price: 1490,
      });
      assert.equal(order.status, "OPEN");
      await h.setPrice("INFY", 1495);
      assert.equal((await h.broker.getOrder(order.order_id)).status, "OPEN");
      await h.setPrice("INFY", 1489);
      await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "limit fill");
      const filled = await h.broker.getOrder(order.order_id);
      assert.equal(filled.status, "FILLED");
      assert.ok(filled.average_price <= 1490);
    });

    it("modifies an open order, and the modified order then fills", async function () {
      const order = await h.broker.placeOrder({
        symbol: "TCS",
        side: "SELL",
        quantity: 2,
        order_type: "LIMIT",
        price: 3600,
      });
      const modified = await h.broker.modifyOrder(order.order_id, { price: 3550, quantity: 3 });
      assert.equal(modified.price, 3550);
      assert.equal(modified.quantity, 3);
      assert.equal(modified.status, "OPEN");
      await h.setPrice("TCS", 3551);
      await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "fill after modify");
      assert.deepEqual(log.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_MODIFIED", "ORDER_FILLED"]);
    });

    it("cancels an open order and refuses to modify or cancel it afterwards", async function () {
      const order = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1000,
      });
      const cancelled = await h.broker.cancelOrder(order.order_id);
      assert.equal(cancelled.status, "CANCELLED");
      await rejectsWithCode(h.broker.cancelOrder(order.order_id), "ORDER_TERMINAL", /CANCELLED/);
      await rejectsWithCode(h.broker.modifyOrder(order.order_id, { price: 1001 }), "ORDER_TERMINAL");
      assert.equal((await h.broker.getOrder(order.order_id)).status, "CANCELLED");
    });

    it("answers NOT_FOUND for an unknown order id", async function () {
      await rejectsWithCode(h.broker.cancelOrder("nope-1"), "NOT_FOUND");
      await rejectsWithCode(h.broker.modifyOrder("nope-1", { price: 1 }), "NOT_FOUND");
      await rejectsWithCode(h.broker.getOrder("nope-1"), "NOT_FOUND");
    });

    it("rejects invalid orders with field and rule, and places nothing", async function () {
      const before = (await h.broker.getOrderbook()).length;
      const cases: [unknown, RegExp][] = [
        [{ side: "BUY", quantity: 1 }, /symbol: is required/],
        [{ symbol: "INFY", side: "BUY", quantity: 0 }, /quantity: must be greater than 0/],
        [{ symbol: "INFY", side: "BUY", quantity: 1.5 }, /quantity: must be a whole number/],
        [{ symbol: "INFY", side: "HOLD", quantity: 1 }, /side: must be BUY or SELL/],
        [{ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT" }, /price: is required for LIMIT/],
        [
          { symbol: "INFY", side: "BUY", quantity: 1, order_type: "SL", price: 1 },
          /trigger_price: is required for SL/,
        ],
        [
          { symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: -3 },
          /price: must be greater than 0/,
        ],
        [{ symbol: "INFY", side: "BUY", quantity: 1, colour: "red" }, /colour: unknown field/],
      ];
      for (const [input, pattern] of cases) {
        await rejectsWithCode(h.broker.placeOrder(input as never), "VALIDATION", pattern);
      }
      assert.equal((await h.broker.getOrderbook()).length, before);
    });

    it("treats a repeated client_order_id as the same order", async function () {
      const first = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: "retry42",
      });
      const second = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: "retry42",
      });
      assert.equal(second.order_id, first.order_id);
      const book = await h.broker.getOrderbook();
      assert.equal(book.filter((o) => o.client_order_id === "retry42").length, 1);
    });

    it("triggers an SL-M sell when the last price falls to the trigger", async function () {
      await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 4 });
      const stop = await h.broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 4,
        order_type: "SL-M",
        trigger_price: 1450,
      });
      assert.equal(stop.status, "TRIGGER_PENDING");
      await h.setPrice("INFY", 1460);
      assert.equal((await h.broker.getOrder(stop.order_id)).status, "TRIGGER_PENDING");
      await h.setPrice("INFY", 1449);
      await log.until(() => log.typesFor(stop.order_id).includes("ORDER_FILLED"), "stop fill");
    });

    it("places, modifies and deletes a single GTT", async function () {
      const gtt = await h.broker.placeGtt({
        type: "single",
        symbol: "TCS",
        trigger_values: [3700],
        last_price: 3500,
        orders: [{ side: "SELL", quantity: 1, price: 3690, product: "MIS" }],
      });
      assert.equal(gtt.status, "active");
      const modified = await h.broker.modifyGtt(gtt.gtt_id, {
        type: "single",
        symbol: "TCS",
        trigger_values: [3800],
        last_price: 3500,
        orders: [{ side: "SELL", quantity: 1, price: 3790, product: "MIS" }],
      });
      assert.deepEqual(modified.trigger_values, [3800]);
      const deleted = await h.broker.deleteGtt(gtt.gtt_id);
      assert.equal(deleted.status, "deleted");
      await rejectsWithCode(h.broker.deleteGtt(gtt.gtt_id), "ORDER_TERMINAL");
      await log.until(() => log.gtts.length >= 3, "three GTT events");
      assert.deepEqual(
        log.gtts.map((e) => e.type),
        ["GTT_PLACED", "GTT_MODIFIED", "GTT_DELETED"],
      );
    });

    it("fires one leg of a two-leg GTT and never the other", async function () {
      await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
      const gtt = await h.broker.placeGtt({
        type: "two-leg",
        symbol: "INFY",
        last_price: 1500,
        trigger_values: [1400, 1600],
        orders: [
          { side: "SELL", quantity: 3, price: 1395, product: "MIS" },
          { side: "SELL", quantity: 3, price: 1605, product: "MIS" },
        ],
      });
      await h.setPrice("INFY", 1610);
      await log.until(() => log.gtts.some((e) => e.type === "GTT_TRIGGERED"), "GTT_TRIGGERED");
      const triggered = log.gtts.find((e) => e.type === "GTT_TRIGGERED")!.gtt;
      assert.equal(triggered.triggered_leg, 1);
      assert.equal(triggered.order_ids.length, 1);
      await h.setPrice("INFY", 1390);
      const fromGtt = (await h.broker.getOrderbook()).filter((o: OrderSnapshot) => o.gtt_id === gtt.gtt_id);
      assert.equal(fromGtt.length, 1, "only the target leg placed an order");
      assert.equal(fromGtt[0]!.status, "FILLED");
      assert.equal((await h.broker.getGtts()).find((g) => g.gtt_id === gtt.gtt_id)?.status, "triggered");
    });

    it("emits quotes for subscribed symbols only", async function () {
      await h.broker.subscribeQuotes(["INFY"]);
      await h.setPrice("INFY", 1501);
      await h.setPrice("TCS", 3501);
      await log.until(
        () => log.quotes.some((q) => q.symbol === "INFY" && q.last_price === 1501),
        "INFY quote",
      );
      assert.ok(!log.quotes.some((q) => q.symbol === "TCS"));
      await h.broker.unsubscribeQuotes(["INFY"]);
      const count = log.quotes.length;
      await h.setPrice("INFY", 1502);
      assert.equal(log.quotes.filter((q) => q.last_price === 1502).length, 0);
      assert.ok(log.quotes.length === count);
    });

    it("reports each fill's trades once: ids unique, quantities adding up to the filled quantity", async function () {
      const market = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 7 });
      const limit = await h.broker.placeOrder({
        symbol: "TCS",
        side: "BUY",
        quantity: 4,
        order_type: "LIMIT",
        price: 3400,
      });
      await h.setPrice("TCS", 3390);
      for (const order of [market, limit]) {
        await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
      }
      const seen = new Set<string>();
      for (const order of [market, limit]) {
        let reported = 0;
        for (const event of log.orders.filter((e) => e.order.order_id === order.order_id)) {
          assert.ok(OrderEvent.safeParse(event).success, `${event.type} fits the OrderEvent schema`);
          const fill = event.type === "ORDER_FILLED" || event.type === "ORDER_PARTIALLY_FILLED";
          if (!fill) {
            assert.equal(event.trades, undefined, `${event.type} carries no trades`);
            continue;
          }
          assert.ok(
            event.trades !== undefined && event.trades.length > 0,
            `${event.type} carries its trades`,
          );
          for (const trade of event.trades) {
            assert.ok(!seen.has(trade.trade_id), `trade ${trade.trade_id} reported once`);
            seen.add(trade.trade_id);
            reported += trade.quantity;
          }
          assert.equal(reported, event.order.filled_quantity, "trades so far add up to the filled quantity");
        }
        const filled = log.orders.find(
          (e) => e.order.order_id === order.order_id && e.type === "ORDER_FILLED",
        )!;
        const value = filled.trades!.reduce((sum, t) => sum + t.quantity * t.price, 0);
        assert.ok(Math.abs(value / filled.order.filled_quantity - filled.order.average_price) < 0.01);
      }
    });
  });
}
