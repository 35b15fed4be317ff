import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import { ManualClock } from "../../lib/paper/clock";
import type { Quote } from "../../lib/protocol";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";

/** A paper broker on a hand-moved clock with no spread, slippage or drift unless a test asks. */
async function paper(settings: PaperSettingsInput = {}, journalFile?: string) {
  const clock = new ManualClock();
  const broker = new PaperBroker(
    { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, ...settings },
    journalFile === undefined ? { clock } : { clock, journalFile },
  );
  await broker.connect();
  const log = new EventLog(broker);
  return { broker, clock, log };
}

describe("PaperBroker: fill rules", function () {
  let opened: PaperBroker[] = [];
  async function open(settings: PaperSettingsInput = {}) {
    const made = await paper(settings);
    opened.push(made.broker);
    return made;
  }
  afterEach(async function () {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
  });

  it("fills MARKET BUY at the ask and SELL at the bid when the quote has a book", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100, { bid: 99.9, ask: 100.1 });
    assert.equal(
      (await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 2 })).average_price,
      100.1,
    );
    assert.equal(
      (await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 2 })).average_price,
      99.9,
    );
  });

  it("fills MARKET at the last price ± slippage when there is no book", async function () {
    const { broker } = await open({ slippage_bps: 10 });
    broker.setPrice("INFY", 200);
    assert.equal(
      (await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 })).average_price,
      200.2,
    );
    assert.equal(
      (await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 })).average_price,
      199.8,
    );
  });

  it("fills a marketable LIMIT at once at the better price", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100, { bid: 99.5, ask: 100.5 });
    const buy = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 101,
    });
    assert.equal(buy.status, "FILLED");
    assert.equal(buy.average_price, 100.5);
    const sell = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 1,
      order_type: "LIMIT",
      price: 99,
    });
    assert.equal(sell.average_price, 99.5);
  });

  it("triggers an SL BUY into a resting limit, then fills it when marketable", async function () {
    const { broker, log } = await open();
    broker.setPrice("INFY", 100);
    const sl = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "SL",
      trigger_price: 105,
      // An SL BUY's limit is at or above its trigger (a lower one is refused, see "Rules").
      price: 107,
    });
    assert.equal(sl.status, "TRIGGER_PENDING");
    broker.setPrice("INFY", 108);
    assert.equal((await broker.getOrder(sl.order_id)).status, "OPEN");
    broker.setPrice("INFY", 106.5);
    const filled = await broker.getOrder(sl.order_id);
    assert.equal(filled.status, "FILLED");
    assert.equal(filled.average_price, 106.5);
    assert.deepEqual(log.typesFor(sl.order_id), ["ORDER_PLACED", "ORDER_TRIGGERED", "ORDER_FILLED"]);
  });

  it("rejects a stop whose trigger the market has already passed", async function () {
    const { broker, log } = await open();
    broker.setPrice("INFY", 100);
    const buy = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "SL-M",
      trigger_price: 99,
    });
    assert.equal(buy.status, "REJECTED");
    assert.match(buy.status_message ?? "", /trigger_price 99 must be above the last price 100/);
    const sell = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 1,
      order_type: "SL-M",
      trigger_price: 101,
    });
    assert.match(sell.status_message ?? "", /must be below the last price/);
    assert.deepEqual(log.typesFor(buy.order_id), ["ORDER_REJECTED"]);
  });

  it("rejects a BUY the cash cannot pay for, leaving cash untouched", async function () {
    const { broker, log } = await open({ starting_cash: 1000 });
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 11 });
    assert.equal(order.status, "REJECTED");
    assert.match(order.status_message ?? "", /insufficient funds: needs 1100, available 1000/);
    assert.equal((await broker.getAccount()).cash, 1000);
    assert.deepEqual(log.typesFor(order.order_id), ["ORDER_REJECTED"]);
  });

  it("holds cash back for open BUY limits", async function () {
    const { broker } = await open({ starting_cash: 1000 });
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 6, order_type: "LIMIT", price: 90 });
    const second = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 6,
      order_type: "LIMIT",
      price: 90,
    });
    assert.match(second.status_message ?? "", /available 460/);
  });

  it("refuses a CNC sell of shares not held, but lets MIS go short", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    const cnc = await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1, product: "CNC" });
    assert.match(cnc.status_message ?? "", /insufficient holdings/);
    const mis = await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1, product: "MIS" });
    assert.equal(mis.status, "FILLED");
    assert.equal((await broker.getPositions())[0]?.quantity, -1);
  });

  it("rejects MARKET orders for a symbol with no price yet (CSV replay without it)", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-csv-"));
    const file = path.join(dir, "q.csv");
    fs.writeFileSync(file, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3500\n");
    const { broker } = await open({
      quote_source: "csv",
      csv_file: file,
      replay_speed: 0,
      replay_loop: false,
    });
    const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.match(order.status_message ?? "", /no price for NSE:INFY yet/);
    fs.rmSync(dir, { recursive: true });
  });

  it("cancels the unfilled rest of an IOC order", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 90,
      validity: "IOC",
    });
    assert.equal(order.status, "CANCELLED");
    assert.match(order.status_message ?? "", /IOC/);
  });

  it("fills in parts when a quote can fill only part of an order", async function () {
    const { broker, log } = await open({ max_fill_per_quote: 4 });
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    assert.equal(order.status, "PARTIALLY_FILLED");
    assert.equal(order.filled_quantity, 4);
    broker.setPrice("INFY", 102);
    broker.setPrice("INFY", 104);
    const done = await broker.getOrder(order.order_id);
    assert.equal(done.status, "FILLED");
    assert.equal(done.average_price, (4 * 100 + 4 * 102 + 2 * 104) / 10);
    assert.deepEqual(log.typesFor(order.order_id), [
      "ORDER_PLACED",
      "ORDER_PARTIALLY_FILLED",
      "ORDER_PARTIALLY_FILLED",
      "ORDER_FILLED",
    ]);
  });

  it("cancels the rest of a stop that triggered and partly filled, keeping what filled", async function () {
    const { broker } = await open({ max_fill_per_quote: 3 });
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 9 });
    broker.setPrice("INFY", 101);
    broker.setPrice("INFY", 102);
    const stop = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 9,
      order_type: "SL-M",
      trigger_price: 95,
    });
    broker.setPrice("INFY", 94);
    const partial = await broker.getOrder(stop.order_id);
    assert.equal(partial.status, "PARTIALLY_FILLED");
    assert.equal(partial.filled_quantity, 3);
    const cancelled = await broker.cancelOrder(stop.order_id);
    assert.equal(cancelled.status, "CANCELLED");
    assert.equal(cancelled.filled_quantity, 3);
    assert.equal((await broker.getPositions())[0]?.quantity, 6);
  });

  it("refuses to shrink a partly filled order below what filled", async function () {
    const { broker } = await open({ max_fill_per_quote: 4 });
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 10,
      order_type: "LIMIT",
      price: 100,
    });
    await rejectsWithCode(
      broker.modifyOrder(order.order_id, { quantity: 4 }),
      "VALIDATION",
      /quantity: must be more than the 4 already filled/,
    );
    assert.equal((await broker.getOrder(order.order_id)).status, "PARTIALLY_FILLED");
  });

  it("turns a LIMIT into an SL by modify, and back", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 90,
    });
    const stop = await broker.modifyOrder(order.order_id, {
      order_type: "SL",
      trigger_price: 110,
      price: 111,
    });
    assert.equal(stop.status, "TRIGGER_PENDING");
    const limit = await broker.modifyOrder(order.order_id, { order_type: "LIMIT", price: 95 });
    assert.equal(limit.status, "OPEN");
    assert.equal(limit.trigger_price, undefined);
  });

  it("leaves an order open when a modify is invalid", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 90,
    });
    await rejectsWithCode(
      broker.modifyOrder(order.order_id, { order_type: "SL" }),
      "VALIDATION",
      /trigger_price: is required for SL/,
    );
    await rejectsWithCode(
      broker.modifyOrder(order.order_id, { price: -1 }),
      "VALIDATION",
      /price: must be greater than 0/,
    );
    const after = await broker.getOrder(order.order_id);
    assert.equal(after.status, "OPEN");
    assert.equal(after.price, 90);
  });

  it("keeps positions, cash and realized/unrealized P&L", async function () {
    const { broker } = await open({ starting_cash: 10_000 });
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    broker.setPrice("INFY", 110);
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 4 });
    broker.setPrice("INFY", 105);
    const [position] = await broker.getPositions();
    assert.deepEqual(position, {
      symbol: "INFY",
      exchange: "NSE",
      product: "MIS",
      quantity: 6,
      average_price: 100,
      last_price: 105,
      realized_pnl: 40,
      unrealized_pnl: 30,
    });
    assert.deepEqual(await broker.getAccount(), {
      cash: 9440,
      realized_pnl: 40,
      unrealized_pnl: 30,
      equity: 10_070,
      available: 9440,
    });
  });

  it("realizes P&L on a short and flips through zero at the fill price", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 5 });
    broker.setPrice("INFY", 90);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 8 });
    const [position] = await broker.getPositions();
    assert.equal(position?.realized_pnl, 50);
    assert.equal(position?.quantity, 3);
    assert.equal(position?.average_price, 90);
  });

  it("fires the stop-loss leg of an OCO and voids the target", async function () {
    const { broker, log } = await open();
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 2 });
    const gtt = await broker.placeGtt({
      type: "two-leg",
      symbol: "INFY",
      trigger_values: [95, 110],
      orders: [
        { side: "SELL", quantity: 2, price: 94, product: "MIS" },
        { side: "SELL", quantity: 2, price: 110, product: "MIS" },
      ],
    });
    broker.setPrice("INFY", 94.5);
    broker.setPrice("INFY", 111);
    const [after] = await broker.getGtts();
    assert.equal(after?.status, "triggered");
    assert.equal(after?.triggered_leg, 0);
    const fromGtt = (await broker.getOrderbook()).filter((o) => o.gtt_id === gtt.gtt_id);
    assert.equal(fromGtt.length, 1);
    assert.equal(fromGtt[0]?.price, 94);
    assert.equal(fromGtt[0]?.status, "FILLED");
    assert.deepEqual(
      log.gtts.map((e) => e.type),
      ["GTT_PLACED", "GTT_TRIGGERED"],
    );
    assert.equal((await broker.getPositions())[0]?.quantity, 0);
  });

  it("fires a single GTT in the direction it was placed from", async function () {
    const { broker } = await open();
    broker.setPrice("INFY", 100);
    await broker.placeGtt({
      type: "single",
      symbol: "INFY",
      trigger_values: [90],
      orders: [{ side: "BUY", quantity: 1, price: 91, product: "MIS" }],
    });
    broker.setPrice("INFY", 120);
    assert.equal((await broker.getGtts())[0]?.status, "active");
    broker.setPrice("INFY", 89);
    assert.equal((await broker.getGtts())[0]?.status, "triggered");
  });

  it("refuses a single GTT with no price to tell its direction", async function () {
    const { broker } = await open({ quote_source: "random-walk" });
    // A random walk always has a price; drop to a CSV feed with no rows for the symbol instead.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-csv-"));
    const file = path.join(dir, "q.csv");
    fs.writeFileSync(file, "2026-01-05T03:45:00Z,TCS,3500\n");
    const csv = await open({ quote_source: "csv", csv_file: file, replay_speed: 0 });
    await rejectsWithCode(
      csv.broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [90],
        orders: [{ side: "BUY", quantity: 1, price: 91 }],
      }),
      "NO_QUOTE",
      /give last_price/,
    );
    assert.ok(broker.state === "connected");
    fs.rmSync(dir, { recursive: true });
  });

  it("keeps at most `retention` ended orders", async function () {
    const { broker } = await open({ retention: 10 });
    broker.setPrice("INFY", 100);
    for (let i = 0; i < 50; i += 1)
      await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 50 });
    const book = await broker.getOrderbook();
    assert.equal(book.length, 11);
    assert.equal(book.filter((o) => o.status === "OPEN").length, 1);
  });

  it("answers NOT_CONNECTED before connect and after close", async function () {
    const broker = new PaperBroker({}, { clock: new ManualClock() });
    await rejectsWithCode(broker.getOrderbook(), "NOT_CONNECTED");
    await broker.connect();
    await broker.close();
    await rejectsWithCode(broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }), "NOT_CONNECTED");
  });

  it("waits for a connect in progress instead of failing", async function () {
    const broker = new PaperBroker({ volatility: 0 }, { clock: new ManualClock() });
    const connecting = broker.connect();
    const book = broker.getOrderbook();
    await connecting;
    assert.deepEqual(await book, []);
    await broker.close();
  });

  it("reports state changes and leaves no timer behind on close", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker({ interval_ms: 100 }, { clock });
    const states: string[] = [];
    broker.on("state", (s) => states.push(s));
    await broker.connect();
    await broker.subscribeQuotes(["INFY"]);
    assert.equal(clock.pendingTimers, 1);
    await broker.close();
    assert.equal(clock.pendingTimers, 0);
    assert.deepEqual(states, ["connecting", "connected", "disconnected"]);
  });
});

describe("PaperBroker: quotes", function () {
  it("walks the same path for the same seed", async function () {
    const walk = async () => {
      const clock = new ManualClock();
      const broker = new PaperBroker({ seed: 42, volatility: 0.01, interval_ms: 100 }, { clock });
      await broker.connect();
      const quotes: number[] = [];
      broker.on("quote", (q: Quote) => quotes.push(q.last_price));
      await broker.subscribeQuotes(["INFY", "BSE:TCS"]);
      clock.advance(1000);
      await broker.close();
      return quotes;
    };
    const first = await walk();
    assert.equal(first.length, 20);
    assert.deepEqual(await walk(), first);
    assert.ok(new Set(first).size > 5, "the walk moves");
  });

  it("emits bid and ask around the last price by spread_bps", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker({ seed: 3, spread_bps: 20, start_price: 100, interval_ms: 10 }, { clock });
    await broker.connect();
    let quote: Quote | undefined;
    broker.on("quote", (q: Quote) => (quote = q));
    await broker.subscribeQuotes(["INFY"]);
    clock.advance(10);
    await broker.close();
    assert.ok(quote?.bid !== undefined && quote.ask !== undefined);
    assert.ok(quote.bid < quote.last_price && quote.last_price < quote.ask);
  });

  describe("CSV replay", function () {
    let dir: string;
    beforeEach(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-csv-"));
    });
    afterEach(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    function csv(text: string): string {
      const file = path.join(dir, "quotes.csv");
      fs.writeFileSync(file, text);
      return file;
    }

    it("replays at the file's pace times replay_speed", async function () {
      const file = csv(
        "timestamp,symbol,price,volume\n2026-01-05T03:45:00Z,INFY,100,10\n2026-01-05T03:45:10Z,INFY,101\n2026-01-05T03:45:20Z,BSE:INFY,102,5\n",
      );
      const clock = new ManualClock();
      const broker = new PaperBroker(
        { quote_source: "csv", csv_file: file, replay_speed: 2, replay_loop: false },
        { clock },
      );
      const seen: Quote[] = [];
      broker.on("quote", (q: Quote) => seen.push(q));
      await broker.connect();
      await broker.subscribeQuotes(["INFY", "BSE:INFY"]);
      clock.advance(0);
      assert.deepEqual(
        seen.map((q) => q.last_price),
        [100],
      );
      assert.equal(seen[0]?.volume, 10);
      clock.advance(4999);
      assert.equal(seen.length, 1);
      clock.advance(1);
      assert.deepEqual(
        seen.map((q) => q.last_price),
        [100, 101],
      );
      clock.advance(5000);
      assert.deepEqual(
        seen.map((q) => `${q.exchange}:${q.last_price}`),
        ["NSE:100", "NSE:101", "BSE:102"],
      );
      await broker.close();
    });

    it("replays as fast as possible at speed 0 and loops when asked", async function () {
      const rows = Array.from(
        { length: 1200 },
        (_, i) => `${1_767_000_000_000 + i * 1000},INFY,${100 + (i % 7)}`,
      );
      const file = csv(rows.join("\n"));
      const broker = new PaperBroker({
        quote_source: "csv",
        csv_file: file,
        replay_speed: 0,
        replay_loop: true,
      });
      let count = 0;
      broker.on("quote", () => (count += 1));
      await broker.connect();
      await broker.subscribeQuotes(["INFY"]);
      const deadline = Date.now() + 5000;
      while (count < 2500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await broker.close();
      assert.ok(count >= 2500, `looped past the end (${count} quotes)`);
    });

    it("fails to connect on a bad row, naming the file and line", async function () {
      const file = csv("2026-01-05T03:45:00Z,INFY,100\n2026-01-05T03:45:01Z,INFY,abc\n");
      const broker = new PaperBroker({ quote_source: "csv", csv_file: file });
      await rejectsWithCode(
        broker.connect(),
        "CONFIG",
        /quotes\.csv line 2: price "abc" must be a number greater than 0/,
      );
      assert.equal(broker.state, "disconnected");
    });

    it("fails to connect on a missing file", async function () {
      const broker = new PaperBroker({ quote_source: "csv", csv_file: path.join(dir, "none.csv") });
      await rejectsWithCode(broker.connect(), "CONFIG", /cannot read quote file/);
    });

    it("needs csv_file when quote_source is csv", function () {
      assert.throws(
        () => new PaperBroker({ quote_source: "csv" }),
        /csv_file: is required when quote_source is csv/,
      );
    });
  });
});

describe("PaperBroker: the account survives restarts", function () {
  let dir: string;
  let file: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-journal-"));
    file = path.join(dir, "trading-broker", "paper-default.jsonl");
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("restores cash, positions, orders, GTTs and seq after close and reopen", async function () {
    const first = await paper({}, file);
    first.broker.setPrice("INFY", 100);
    await first.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, client_order_id: "keep1" });
    const resting = await first.broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 5,
      order_type: "LIMIT",
      price: 120,
    });
    await first.broker.placeGtt({
      type: "single",
      symbol: "INFY",
      trigger_values: [90],
      orders: [{ side: "SELL", quantity: 5, price: 89, product: "MIS" }],
    });
    const account = await first.broker.getAccount();
    const lastSeq = Math.max(...first.log.orders.map((e) => e.seq), ...first.log.gtts.map((e) => e.seq));
    await first.broker.close();

    const second = await paper({}, file);
    assert.deepEqual(await second.broker.getAccount(), account);
    assert.equal((await second.broker.getOrderbook()).length, 2);
    assert.equal((await second.broker.getGtts()).length, 1);
    assert.equal((await second.broker.getPositions())[0]?.quantity, 10);
    const again = await second.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 10,
      client_order_id: "keep1",
    });
    assert.equal((await second.broker.getOrderbook()).length, 2, "the client_order_id is still known");
    assert.equal(again.status, "FILLED");
    second.broker.setPrice("INFY", 121);
    assert.equal(
      (await second.broker.getOrder(resting.order_id)).status,
      "FILLED",
      "a restored open order still matches",
    );
    assert.ok(second.log.orders[0]!.seq > lastSeq, "seq carries on");
    await second.broker.close();
  });

  it("skips a torn last line with a warning and starts", async function () {
    const first = await paper({}, file);
    first.broker.setPrice("INFY", 100);
    await first.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
    await first.broker.close();
    fs.appendFileSync(file, '{"r":{"seq":99,"cash":1,"orders":[{"order_id":"P0');
    const warnings: string[] = [];
    const broker = new PaperBroker(
      { volatility: 0 },
      { journalFile: file, log: { info() {}, warn: (m) => warnings.push(m), error() {} } },
    );
    await broker.connect();
    assert.equal(broker.state, "connected");
    assert.equal((await broker.getPositions())[0]?.quantity, 3);
    assert.ok(
      warnings.some((w) => /torn|partial|incomplete/i.test(w)),
      warnings.join("\n"),
    );
    await broker.close();
  });

  it("resets the account and keeps it reset across a restart", async function () {
    const first = await paper({ starting_cash: 5000 }, file);
    first.broker.setPrice("INFY", 100);
    await first.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    await first.broker.resetAccount();
    assert.deepEqual(await first.broker.getOrderbook(), []);
    assert.equal((await first.broker.getAccount()).cash, 5000);
    await first.broker.close();
    const second = await paper({ starting_cash: 5000 }, file);
    assert.deepEqual(await second.broker.getOrderbook(), []);
    assert.deepEqual(await second.broker.getPositions(), []);
    await second.broker.close();
  });

  it("compacts the journal and still restores everything", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker(
      { volatility: 0, slippage_bps: 0, spread_bps: 0, retention: 10 },
      { clock, journalFile: file, compactEvery: 50 },
    );
    await broker.connect();
    broker.setPrice("INFY", 100);
    for (let i = 0; i < 400; i += 1)
      await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
    const account = await broker.getAccount();
    await broker.close();
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    assert.ok(lines.length < 120, `compacted to ${lines.length} lines`);
    assert.ok(lines[0]!.startsWith('{"s":'));
    const reopened = new PaperBroker({ retention: 10 }, { journalFile: file });
    await reopened.connect();
    assert.deepEqual(await reopened.getAccount(), account);
    assert.equal((await reopened.getOrderbook()).length, 10);
    await reopened.close();
  });

  it("refuses a second broker on the same account file", async function () {
    const first = await paper({}, file);
    const second = new PaperBroker({}, { journalFile: file });
    await rejectsWithCode(second.connect(), "CONFIG", /already open by another broker config/);
    // A refused broker must not release the first one's claim: trying again is still refused.
    await rejectsWithCode(second.connect(), "CONFIG", /already open by another broker config/);
    await first.broker.close();
    await second.connect();
    await second.close();
  });
});
