// Issue 12's "rules broken", one test each: every one failed on the broker before its fix.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { Account, Position } from "../../lib/protocol";
import { seededRandom } from "../../lib/paper/random";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";

/** starting cash = cash + Σ quantity × average − Σ realized, in paise (the average is unrounded). */
function identityGapPaise(start: number, account: Account, positions: Position[]): number {
  let held = 0;
  let realized = 0;
  for (const p of positions) {
    held += p.quantity * p.average_price;
    realized += p.realized_pnl;
  }
  return Math.abs(Math.round((start - (account.cash + held - realized)) * 100));
}

describe("PaperBroker: the rules it writes down (issue 12)", function () {
  let opened: PaperBroker[] = [];
  async function open(settings: PaperSettingsInput = {}) {
    const broker = new PaperBroker(
      { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, interval_ms: 60_000, ...settings },
      { clock: new ManualClock() },
    );
    await broker.connect();
    opened.push(broker);
    return { broker, log: new EventLog(broker) };
  }
  afterEach(async function () {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
  });

  it("1. an order modified to IOC does not rest: what does not fill at once is cancelled", async function () {
    const { broker, log } = await open({ max_fill_per_quote: 5 });
    broker.setPrice("INFY", 100);
    const resting = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 10,
      order_type: "LIMIT",
      price: 90,
    });
    const modified = await broker.modifyOrder(resting.order_id, { validity: "IOC" });
    assert.equal(modified.status, "CANCELLED");
    assert.match(modified.status_message ?? "", /IOC/);

    const partly = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 20,
      order_type: "LIMIT",
      price: 100,
    });
    assert.equal(partly.status, "PARTIALLY_FILLED");
    const after = await broker.modifyOrder(partly.order_id, { validity: "IOC" });
    assert.equal(after.filled_quantity, 10, "the modify's own match filled what this quote allows");
    assert.equal(after.status, "CANCELLED", "and the rest was cancelled, not left resting");
    assert.deepEqual(log.typesFor(partly.order_id).slice(-3), [
      "ORDER_MODIFIED",
      "ORDER_PARTIALLY_FILLED",
      "ORDER_CANCELLED",
    ]);
    const live = (await broker.getOrderbook()).filter(
      (o) => o.validity === "IOC" && o.status !== "TRIGGER_PENDING",
    );
    assert.ok(live.every((o) => ["FILLED", "CANCELLED", "REJECTED"].includes(o.status)));
  });

  it("2. a triggered IOC stop acts as its MARKET/LIMIT IOC order at the trigger, instead of being cancelled unfilled", async function () {
    const { broker, log } = await open();
    broker.setPrice("INFY", 100);
    const slm = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 4,
      order_type: "SL-M",
      trigger_price: 95,
      validity: "IOC",
    });
    const sl = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 3,
      order_type: "SL",
      trigger_price: 95,
      price: 94,
      validity: "IOC",
      product: "MIS",
    });
    const marketable = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 2,
      order_type: "SL",
      trigger_price: 95,
      price: 92,
      validity: "IOC",
    });
    broker.setPrice("INFY", 94.5, { bid: 92, ask: 95 });
    assert.deepEqual(log.typesFor(slm.order_id), ["ORDER_PLACED", "ORDER_TRIGGERED", "ORDER_FILLED"]);
    assert.equal((await broker.getOrder(slm.order_id)).average_price, 92);
    // Its limit 94 is above the bid 92: an IOC that cannot fill at once is cancelled at once.
    assert.deepEqual(log.typesFor(sl.order_id), ["ORDER_PLACED", "ORDER_TRIGGERED", "ORDER_CANCELLED"]);
    assert.deepEqual(log.typesFor(marketable.order_id), ["ORDER_PLACED", "ORDER_TRIGGERED", "ORDER_FILLED"]);
  });

  it("3. modify runs the placement's admission: funds for a bigger BUY, holdings for a bigger CNC SELL; a refused modify changes nothing", async function () {
    const { broker, log } = await open({ starting_cash: 10_000 });
    broker.setPrice("INFY", 100);
    const buy = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 10,
      order_type: "LIMIT",
      price: 90,
    });
    const events = log.orders.length;
    await rejectsWithCode(
      broker.modifyOrder(buy.order_id, { quantity: 200 }),
      "INSUFFICIENT_FUNDS",
      /not modified/,
    );
    await rejectsWithCode(broker.modifyOrder(buy.order_id, { price: 2000 }), "INSUFFICIENT_FUNDS");
    assert.equal(log.orders.length, events, "no event for a refused modify");
    const kept = await broker.getOrder(buy.order_id);
    assert.equal(kept.quantity, 10);
    assert.equal(kept.price, 90);
    // The order's own reservation counts for it: 10 @ 90 → 100 @ 99 needs 9,900 of 10,000.
    assert.equal((await broker.modifyOrder(buy.order_id, { quantity: 100, price: 99 })).quantity, 100);
    await broker.cancelOrder(buy.order_id);

    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, product: "CNC" });
    const sell = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 10,
      order_type: "LIMIT",
      price: 200,
      product: "CNC",
    });
    await rejectsWithCode(
      broker.modifyOrder(sell.order_id, { quantity: 20 }),
      "ORDER_REJECTED",
      /insufficient holdings/,
    );
    assert.equal((await broker.getOrder(sell.order_id)).quantity, 10);
    broker.setPrice("INFY", 300);
    const cnc = (await broker.getPositions()).find((p) => p.product === "CNC");
    assert.equal(cnc?.quantity, 0, "never sold more than held");
    assert.ok((await broker.getAccount()).cash >= 0);
  });

  it("4. a partly filled MARKET BUY holds cash for its remainder", async function () {
    const { broker } = await open({ starting_cash: 10_000, max_fill_per_quote: 10 });
    broker.setPrice("INFY", 100, { bid: 100, ask: 100 });
    const market = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 50 });
    assert.equal(market.status, "PARTIALLY_FILLED");
    // 1,000 spent, 4,000 promised to the remaining 40: 5,000 is all that is free.
    const next = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 60,
      order_type: "LIMIT",
      price: 99,
    });
    assert.equal(next.status, "REJECTED");
    assert.match(next.status_message ?? "", /insufficient funds: needs 5940, available 5000/);
    const fits = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 50,
      order_type: "LIMIT",
      price: 99,
    });
    assert.equal(fits.status, "OPEN");
  });

  it("5. money is exact: the cash identity holds to the paisa after every one of 3,000 trades, and a flat position realizes exactly proceeds − cost", async function () {
    const start = 1_000_000;
    const { broker } = await open({ starting_cash: start });
    const random = seededRandom(5);
    let flow = 0; // Σ sells − Σ buys, in paise
    for (let i = 0; i < 3000; i++) {
      const price = Math.round((100 + random() * 10) * 100) / 100;
      broker.setPrice("INFY", price, { bid: price, ask: price });
      const quantity = 1 + Math.floor(random() * 7);
      const side = random() < 0.5 ? "BUY" : "SELL";
      const order = await broker.placeOrder({ symbol: "INFY", side, quantity });
      assert.equal(order.status, "FILLED");
      flow += (side === "SELL" ? 1 : -1) * quantity * Math.round(price * 100);
      if (i % 100 === 0) {
        const gap = identityGapPaise(start, await broker.getAccount(), await broker.getPositions());
        assert.equal(gap, 0, `identity off by ${gap} paise after ${i + 1} trades`);
      }
    }
    const [position] = await broker.getPositions();
    assert.ok(position !== undefined);
    const closing = position.quantity;
    if (closing !== 0) {
      broker.setPrice("INFY", 100, { bid: 100, ask: 100 });
      await broker.placeOrder({
        symbol: "INFY",
        side: closing > 0 ? "SELL" : "BUY",
        quantity: Math.abs(closing),
      });
      flow += closing * 100 * 100;
    }
    const account = await broker.getAccount();
    assert.equal(Math.round(account.realized_pnl * 100), flow, "flat: realized is exactly the cash flow");
    assert.equal(Math.round(account.cash * 100), start * 100 + flow);
    assert.equal(identityGapPaise(start, account, await broker.getPositions()), 0);
  });

  it("10. a client_order_id whose order left retention never places a second order", async function () {
    const { broker } = await open({ retention: 10 });
    broker.setPrice("INFY", 100);
    const first = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      client_order_id: "once1",
    });
    for (let i = 0; i < 30; i++) await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.ok(!(await broker.getOrderbook()).some((o) => o.order_id === first.order_id), "left retention");
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "once1" }),
      "DUPLICATE_ORDER",
      new RegExp(first.order_id),
    );
    assert.equal((await broker.getPositions())[0]?.quantity, 31, "no second order filled");
  });

  it("10. with settings.symbols, an unknown symbol (ZZZZ) is refused instead of getting an invented price walk", async function () {
    const { broker, log } = await open({ symbols: ["INFY", "BSE:TCS"] });
    broker.setPrice("INFY", 100);
    await rejectsWithCode(
      broker.placeOrder({ symbol: "ZZZZ", side: "BUY", quantity: 1 }),
      "VALIDATION",
      /symbol: NSE:ZZZZ is not one of this paper account's symbols/,
    );
    await rejectsWithCode(broker.subscribeQuotes(["ZZZZ"]), "VALIDATION", /NSE:ZZZZ/);
    await rejectsWithCode(
      broker.placeGtt({
        type: "single",
        symbol: "TCS",
        last_price: 10,
        trigger_values: [9],
        orders: [{ side: "SELL", quantity: 1, price: 9 }],
      }),
      "VALIDATION",
      /NSE:TCS/,
    );
    assert.equal(log.orders.length, 0, "no order was made up for it");
    assert.equal((await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 })).status, "FILLED");
    assert.equal(
      (await broker.placeOrder({ symbol: "TCS", exchange: "BSE", side: "BUY", quantity: 1 })).status,
      "FILLED",
    );
  });

  it("10. the quote feed forgets symbols nobody subscribes to, rests orders on or holds", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker(
      { seed: 3, volatility: 0.05, spread_bps: 0, slippage_bps: 0, interval_ms: 1000 },
      { clock },
    );
    opened.push(broker);
    await broker.connect();
    const log = new EventLog(broker);
    await broker.subscribeQuotes(["INFY"]);
    // A round trip in TCS: traded, then flat, nothing resting.
    await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "TCS", side: "SELL", quantity: 1 });
    const lastOf = async (symbol: string) =>
      (await broker.getPositions()).find((p) => p.symbol === symbol)?.last_price;
    const tcs = await lastOf("TCS");
    clock.advance(50_000);
    assert.equal(await lastOf("TCS"), tcs, "TCS stopped walking once nobody traded it");
    const infyTicks = log.quotes.length;
    assert.ok(infyTicks >= 40, `INFY, subscribed, kept walking (${infyTicks} quotes)`);
    await broker.unsubscribeQuotes(["INFY"]);
    clock.advance(50_000);
    assert.equal(log.quotes.length, infyTicks);
    // Trading it again starts from its last price, not from start_price.
    const again = await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 });
    assert.equal(again.average_price, tcs);
  });

  it("14. a failed modifyGtt changes nothing: the GTT still fires from the side it was placed on", async function () {
    // A replay that never prices TCS: the GTT's direction comes from the last_price given.
    const csv = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "paper-rules-")), "quotes.csv");
    fs.writeFileSync(csv, "timestamp,symbol,price\n2026-01-01T03:45:00Z,INFY,100\n");
    const { broker, log } = await open({ quote_source: "csv", csv_file: csv, replay_loop: false });
    const gtt = await broker.placeGtt({
      type: "single",
      symbol: "TCS",
      last_price: 100,
      trigger_values: [90],
      orders: [{ side: "SELL", quantity: 1, price: 89, product: "MIS" }],
    });
    await rejectsWithCode(
      broker.modifyGtt(gtt.gtt_id, {
        type: "single",
        symbol: "TCS",
        trigger_values: [80],
        orders: [{ side: "SELL", quantity: 1, price: 79, product: "MIS" }],
      }),
      "NO_QUOTE",
    );
    broker.setPrice("TCS", 110);
    assert.equal((await broker.getGtts())[0]?.status, "active", "did not fire upwards");
    assert.deepEqual((await broker.getGtts())[0]?.trigger_values, [90]);
    broker.setPrice("TCS", 89);
    assert.equal((await broker.getGtts())[0]?.status, "triggered");
    assert.deepEqual(
      log.gtts.map((e) => e.type),
      ["GTT_PLACED", "GTT_TRIGGERED"],
    );
  });

  it("15. crossed quotes, unbounded intervals, SL BUY limits below the trigger and stops moved through the market are refused", async function () {
    const { broker } = await open();
    assert.throws(
      () => broker.setPrice("INFY", 100, { bid: 101, ask: 99 }),
      (e: Error & { code?: string }) =>
        e.code === "VALIDATION" && /bid: must not be above ask/.test(e.message),
    );
    assert.throws(
      () => new PaperBroker({ interval_ms: 3e9 }),
      (e: Error) => /interval_ms: must be at most 86400000/.test(e.message),
    );
    broker.setPrice("INFY", 100);
    await rejectsWithCode(
      broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "SL",
        trigger_price: 105,
        price: 104,
      }),
      "VALIDATION",
      /price: must be at least trigger_price for an SL BUY/,
    );
    await rejectsWithCode(
      broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 1,
        order_type: "SL",
        trigger_price: 95,
        price: 96,
      }),
      "VALIDATION",
      /price: must be at most trigger_price for an SL SELL/,
    );
    const stop = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 1,
      order_type: "SL-M",
      trigger_price: 95,
    });
    await rejectsWithCode(
      broker.modifyOrder(stop.order_id, { trigger_price: 105 }),
      "VALIDATION",
      /trigger_price 105 must be below the last price 100/,
    );
    const kept = await broker.getOrder(stop.order_id);
    assert.equal(kept.status, "TRIGGER_PENDING");
    assert.equal(kept.trigger_price, 95);
    assert.equal(
      (await broker.getPositions()).length,
      0,
      "nothing sold by a trigger moved through the market",
    );
  });
});
