import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { OrderEvent as OrderEventSchema } from "../../lib/protocol";

const SETTINGS: PaperSettingsInput = {
  seed: 7,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 60_000,
  max_fill_per_quote: 3,
};

const FILLS = new Set(["ORDER_PARTIALLY_FILLED", "ORDER_FILLED"]);

/** Every fill event carries exactly one trade, named after its order and the filled quantity after it. */
function checkTrades(events: OrderEvent[]): Map<string, number> {
  const filled = new Map<string, number>();
  for (const event of events) {
    assert.ok(OrderEventSchema.safeParse(event).success, "fits the schema");
    if (!FILLS.has(event.type)) {
      assert.equal(event.trades, undefined, `${event.type} has no trades`);
      continue;
    }
    assert.equal(event.trades?.length, 1, "one trade per fill");
    const trade = event.trades[0]!;
    const before = filled.get(event.order.order_id) ?? 0;
    assert.equal(trade.quantity, event.order.filled_quantity - before);
    assert.equal(trade.trade_id, `${event.order.order_id}-${event.order.filled_quantity}`);
    assert.equal(trade.timestamp, event.timestamp);
    filled.set(event.order.order_id, event.order.filled_quantity);
  }
  return filled;
}

describe("PaperBroker: each fill is a trade (issue 10)", function () {
  let dir: string;
  let file: string;
  const opened: PaperBroker[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-trades-"));
    file = path.join(dir, "account.jsonl");
  });
  afterEach(async function () {
    for (const broker of opened.splice(0)) await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function open(clock = new ManualClock()): Promise<{ broker: PaperBroker; events: OrderEvent[] }> {
    const broker = new PaperBroker(SETTINGS, { clock, journalFile: file });
    opened.push(broker);
    const events: OrderEvent[] = [];
    broker.on("order", (event) => events.push(event));
    await broker.connect();
    return { broker, events };
  }

  it("200 orders over many quotes: one trade per fill, its price the fill's, ids never repeated", async function () {
    const { broker, events } = await open();
    broker.setPrice("INFY", 1500);
    const orders: OrderSnapshot[] = [];
    for (let i = 0; i < 200; i++) {
      orders.push(
        await broker.placeOrder({
          symbol: "INFY",
          side: i % 2 === 0 ? "BUY" : "SELL",
          quantity: 1 + (i % 11),
          order_type: i % 3 === 0 ? "MARKET" : "LIMIT",
          ...(i % 3 === 0 ? {} : { price: i % 2 === 0 ? 1510 : 1490 }),
        }),
      );
    }
    for (let move = 0; move < 5; move++) broker.setPrice("INFY", 1500 + move / 20);
    await broker.getOrderbook();
    const filled = checkTrades(events);
    const ids = events.flatMap((e) => e.trades ?? []).map((t) => t.trade_id);
    assert.equal(new Set(ids).size, ids.length, "no trade id twice");
    for (const order of await broker.getOrderbook()) {
      assert.equal(filled.get(order.order_id) ?? 0, order.filled_quantity);
    }
    for (const event of events.filter((e) => FILLS.has(e.type))) {
      // Zero slippage and spread: every fill is at the last price of its quote.
      assert.ok(event.trades![0]!.price >= 1500 && event.trades![0]!.price <= 1500.2);
    }
    assert.ok(orders.length === 200 && events.some((e) => e.type === "ORDER_PARTIALLY_FILLED"));
  });

  it("reopened from its journal, an order's next trade continues its ids, never repeating one", async function () {
    const first = await open();
    first.broker.setPrice("TCS", 3500);
    const order = await first.broker.placeOrder({
      symbol: "TCS",
      side: "BUY",
      quantity: 10,
      order_type: "LIMIT",
      price: 3600,
    });
    first.broker.setPrice("TCS", 3501);
    await first.broker.getOrderbook();
    const before = first.events.flatMap((e) => e.trades ?? []).map((t) => t.trade_id);
    assert.deepEqual(before, [`${order.order_id}-3`, `${order.order_id}-6`]);
    await first.broker.close();

    const second = await open();
    second.broker.setPrice("TCS", 3502);
    second.broker.setPrice("TCS", 3503);
    await second.broker.getOrderbook();
    const after = second.events.flatMap((e) => e.trades ?? []).map((t) => t.trade_id);
    assert.deepEqual(after, [`${order.order_id}-9`, `${order.order_id}-10`]);
    assert.equal(new Set([...before, ...after]).size, 4);
    assert.equal((await second.broker.getOrder(order.order_id)).filled_quantity, 10);
  });
});
