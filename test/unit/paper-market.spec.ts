// Issue 12 "Trades like NSE": the paper broker with settings.market = "nse" (lib/market wired in),
// and the relaxed default that keeps the demo trading round the clock. Time is a ManualClock.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { Account, Position } from "../../lib/protocol";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";

/** An IST wall-clock time as epoch ms (IST is UTC+05:30 all year). */
function ist(day: string, time: string): number {
  return Date.parse(`${day}T${time}:00+05:30`);
}

const MINUTE = 60_000;
const QUIET: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
};

/** starting cash = cash + Σ qty × avg − Σ realized + Σ charges, in paise. */
function identityGapPaise(start: number, account: Account, positions: Position[]): number {
  let held = 0;
  let realized = 0;
  let charges = 0;
  for (const p of positions) {
    held += p.quantity * p.average_price;
    realized += p.realized_pnl;
    charges += p.charges ?? 0;
  }
  return Math.abs(Math.round((start - (account.cash + held - realized + charges)) * 100));
}

describe("PaperBroker: trades like NSE (settings.market)", function () {
  let opened: PaperBroker[] = [];
  let dir: string;
  async function open(
    settings: PaperSettingsInput = {},
    at = ist("2026-01-05", "10:00"),
    journalFile?: string,
  ) {
    const clock = new ManualClock(at);
    const broker = new PaperBroker({ ...QUIET, market: "nse", ...settings }, { clock, journalFile });
    await broker.connect();
    opened.push(broker);
    return { broker, clock, log: new EventLog(broker) };
  }
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-market-"));
  });
  afterEach(async function () {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("settings", function () {
    it("defaults to relaxed: any symbol, any price, any hour (the demo trades on a Sunday night)", async function () {
      const clock = new ManualClock(ist("2026-01-04", "02:00"));
      const broker = new PaperBroker(QUIET, { clock });
      opened.push(broker);
      assert.equal(broker.settings.market, "relaxed");
      await broker.connect();
      broker.setPrice("ZZZZ", 100.03);
      const order = await broker.placeOrder({
        symbol: "ZZZZ",
        side: "BUY",
        quantity: 7,
        order_type: "LIMIT",
        price: 100.03,
      });
      assert.equal(order.status, "FILLED");
      const account = await broker.getAccount();
      assert.equal(account.charges, undefined, "relaxed mode shows no charges");
      clock.advance(86_400_000);
      assert.equal((await broker.getOrderbook()).length, 1, "nothing expires in relaxed mode");
    });

    it("refuses a bad market setting at construction, naming the field and the rule", function () {
      assert.throws(
        () => new PaperBroker({ market: "nyse" as "nse" }),
        (e: Error & { code?: string }) => e.code === "VALIDATION" && /market: must be/.test(e.message),
      );
      assert.throws(
        () => new PaperBroker({ market: { preset: "nse", calendar: { open: "9am" } } }),
        (e: Error) => /market\.calendar\.open: must be a time written HH:MM/.test(e.message),
      );
      assert.throws(
        () => new PaperBroker({ market: { preset: "nse", calender: {} } }),
        (e: Error) => /market\.calender: is not a setting/.test(e.message),
      );
      const ok = new PaperBroker({ market: { preset: "nse", margin: { mis_leverage: 4 } } });
      assert.deepEqual(JSON.parse(JSON.stringify(ok.settings)).market, {
        preset: "nse",
        margin: { mis_leverage: 4 },
      });
    });
  });

  describe("admission: one function for place and modify", function () {
    it("refuses an unknown symbol unless the user adds it", async function () {
      const { broker } = await open();
      broker.setPrice("ZZZZ", 100);
      const refused = await broker.placeOrder({ symbol: "ZZZZ", side: "BUY", quantity: 1 });
      assert.equal(refused.status, "REJECTED");
      assert.match(refused.status_message ?? "", /symbol: NSE:ZZZZ is not a known instrument/);

      const { broker: added } = await open({
        market: {
          preset: "nse",
          instruments: { extra: [{ exchange: "NSE", symbol: "ZZZZ", segment: "EQ", tick_size: 0.05 }] },
        },
      });
      added.setPrice("ZZZZ", 100);
      const order = await added.placeOrder({ symbol: "ZZZZ", side: "BUY", quantity: 1 });
      assert.equal(order.status, "FILLED");
    });

    it("refuses prices off the 0.05 tick, quantities off the lot, LIMITs outside the band — on place and on modify", async function () {
      const { broker, log } = await open({ starting_cash: 10_000_000 });
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500.05 });
      const offTick = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1500.03,
      });
      assert.equal(offTick.status, "REJECTED");
      assert.match(offTick.status_message ?? "", /price: 1500.03 is not a multiple of the tick size 0.05/);
      const outside = await broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 1,
        order_type: "LIMIT",
        price: 1650.05,
        product: "MIS",
      });
      assert.equal(outside.status, "REJECTED");
      assert.match(outside.status_message ?? "", /price: 1650.05 is outside the price band 1350 to 1650/);
      broker.setPrice("NFO:NIFTY26DECFUT", 26000);
      const lot = await broker.placeOrder({
        symbol: "NIFTY26DECFUT",
        exchange: "NFO",
        side: "BUY",
        quantity: 10,
        product: "NRML",
      });
      assert.match(lot.status_message ?? "", /quantity: 10 is not a multiple of the lot size 65/);

      const resting = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1400,
      });
      assert.equal(resting.status, "OPEN");
      const before = log.orders.length;
      await rejectsWithCode(
        broker.modifyOrder(resting.order_id, { price: 1400.02 }),
        "VALIDATION",
        /not modified: price: 1400.02 is not a multiple of the tick size/,
      );
      await rejectsWithCode(
        broker.modifyOrder(resting.order_id, { price: 1300 }),
        "ORDER_REJECTED",
        /outside the price band/,
      );
      assert.equal(log.orders.length, before, "a refused modify announces nothing");
      assert.equal((await broker.getOrder(resting.order_id)).price, 1400, "and changes nothing");
      const moved = await broker.modifyOrder(resting.order_id, { price: 1450.05 });
      assert.equal(moved.price, 1450.05);
    });

    it("refuses a GTT on an unknown symbol or off the tick when it is placed or modified, not when it fires", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 1500);
      broker.setPrice("ZZZZ", 100);
      const leg = { side: "BUY", quantity: 1, order_type: "LIMIT", product: "CNC" } as const;
      await rejectsWithCode(
        broker.placeGtt({
          type: "single",
          symbol: "ZZZZ",
          trigger_values: [90],
          orders: [{ ...leg, price: 90 }],
        }),
        "VALIDATION",
        /GTT refused: symbol: NSE:ZZZZ is not a known instrument/,
      );
      await rejectsWithCode(
        broker.placeGtt({
          type: "single",
          symbol: "INFY",
          trigger_values: [1400.02],
          orders: [{ ...leg, price: 1400 }],
        }),
        "VALIDATION",
        /trigger_price: 1400.02 is not a multiple of the tick size/,
      );
      const gtt = await broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [1400],
        orders: [{ ...leg, price: 1400 }],
      });
      await rejectsWithCode(
        broker.modifyGtt(gtt.gtt_id, {
          type: "single",
          symbol: "INFY",
          trigger_values: [1400],
          orders: [{ ...leg, price: 1399.99 }],
        }),
        "VALIDATION",
        /price: 1399.99 is not a multiple of the tick size/,
      );
      assert.equal((await broker.getGtts())[0]!.orders[0]!.price, 1400, "a refused modify changes nothing");
    });

    it("refuses orders outside 09:15–15:30 IST and on holidays, saying when the market opens", async function () {
      for (const at of [
        ist("2026-01-05", "09:14"),
        ist("2026-01-05", "15:30"),
        ist("2026-01-10", "11:00"), // Saturday
        ist("2026-01-26", "11:00"), // Republic Day
      ]) {
        const { broker } = await open({}, at);
        broker.setPrice("INFY", 1500);
        const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, product: "CNC" });
        assert.equal(order.status, "REJECTED", new Date(at).toISOString());
        assert.match(order.status_message ?? "", /market hours: NSE is closed at .*; it opens .* 09:15 IST/);
      }
      const { broker } = await open({}, ist("2026-01-05", "15:29"));
      broker.setPrice("INFY", 1500);
      const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, product: "CNC" });
      assert.equal(order.status, "FILLED", "a minute before the close is open");
    });

    it("queues an AMO until the next open, where it acts as a regular order; outside the AMO window it is refused", async function () {
      const { broker, clock, log } = await open({}, ist("2026-01-05", "17:00"));
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const amo = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 10,
        order_type: "LIMIT",
        price: 1490,
        product: "CNC",
        variety: "amo",
      });
      assert.equal(amo.status, "OPEN");
      assert.equal(amo.variety, "amo");
      broker.setPrice("INFY", 1480, { bid: 1480, ask: 1480 });
      await broker.flush();
      assert.equal((await broker.getOrder(amo.order_id)).filled_quantity, 0, "no fill at night");
      const market = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        product: "CNC",
        variety: "amo",
      });
      assert.equal(market.status, "OPEN");
      // To the open: 09:15 on Tuesday; the waiting orders meet the last price there.
      clock.advance(ist("2026-01-06", "09:15") - clock.now());
      await broker.flush();
      const filled = await broker.getOrder(amo.order_id);
      assert.equal(filled.status, "FILLED");
      assert.equal(filled.average_price, 1480);
      assert.equal((await broker.getOrder(market.order_id)).status, "FILLED");
      assert.deepEqual(log.typesFor(amo.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);

      const { broker: early } = await open({}, ist("2026-01-05", "15:45"));
      early.setPrice("INFY", 1500);
      const refused = await early.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, variety: "amo" });
      assert.equal(refused.status, "REJECTED");
      assert.match(refused.status_message ?? "", /outside the equity AMO window/);
    });

    it("an AMO IOC that does not fill at the open is cancelled then, not when placed", async function () {
      const { broker, clock } = await open({}, ist("2026-01-05", "20:00"));
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const ioc = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 3,
        order_type: "LIMIT",
        price: 1400,
        validity: "IOC",
        product: "CNC",
        variety: "amo",
      });
      assert.equal(ioc.status, "OPEN");
      clock.advance(ist("2026-01-06", "09:15") - clock.now());
      await broker.flush();
      const after = await broker.getOrder(ioc.order_id);
      assert.equal(after.status, "CANCELLED");
      assert.match(after.status_message ?? "", /IOC/);
    });
  });

  describe("charges", function () {
    it("records Zerodha's charges per fill; the account shows gross and net P&L; cash identity to the paisa", async function () {
      const start = 1_000_000;
      const { broker } = await open({ starting_cash: start });
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 100, product: "MIS" });
      broker.setPrice("INFY", 1510, { bid: 1510, ask: 1510 });
      const sell = await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 100, product: "MIS" });
      assert.equal(sell.status, "FILLED");
      const account = await broker.getAccount();
      const [position] = await broker.getPositions();
      // The worked example of docs/MARKET-RULES.md §4: ₹33.54 + ₹67.06.
      assert.equal(position!.charges, 100.6);
      assert.equal(position!.realized_pnl, 1000, "gross");
      assert.equal(position!.net_pnl, 899.4, "net");
      assert.equal(account.charges, 100.6);
      assert.equal(account.net_pnl, 899.4);
      assert.equal(Math.round(account.cash * 100), (start + 1000 - 100.6) * 100);
      assert.equal(identityGapPaise(start, account, await broker.getPositions()), 0);
    });

    it("an order filled in parts pays brokerage once, capped per order (₹20), whatever the number of fills", async function () {
      const { broker } = await open({ starting_cash: 100_000_000 });
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const order = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 250,
        order_type: "LIMIT",
        price: 1500,
        product: "MIS",
      });
      assert.equal(order.filled_quantity, 100, "the touch holds 100");
      for (let i = 0; i < 3; i++) broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      await broker.flush();
      assert.equal((await broker.getOrder(order.order_id)).status, "FILLED");
      const [position] = await broker.getPositions();
      // 250 × 1500 = ₹3,75,000: brokerage min(₹112.50, ₹20) = ₹20, exchange ₹11.14, SEBI ₹0.38,
      // stamp ₹11.25, GST 18% of ₹31.52 = ₹5.67; no STT on an intraday buy.
      assert.equal(position!.charges, 20 + 11.14 + 0.38 + 11.25 + 5.67);
    });
  });

  describe("the market's clock", function () {
    it("squares off MIS positions at 15:20 IST and refuses new MIS orders after it", async function () {
      const { broker, clock, log } = await open();
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, product: "MIS" });
      const pending = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 10,
        order_type: "LIMIT",
        price: 1450,
        product: "MIS",
      });
      clock.advance(ist("2026-01-05", "15:19") - clock.now());
      await broker.flush();
      assert.equal((await broker.getPositions())[0]!.quantity, 10, "still open at 15:19");
      clock.advance(MINUTE);
      await broker.flush();
      const [position] = await broker.getPositions();
      assert.equal(position!.quantity, 0, "squared off at 15:20");
      assert.equal((await broker.getOrder(pending.order_id)).status, "CANCELLED");
      const squareOff = log.orders.find((e) => e.order.tag === "SQUAREOFF" && e.type === "ORDER_FILLED");
      assert.ok(squareOff !== undefined, "a SQUAREOFF order filled");
      assert.equal(squareOff.order.side, "SELL");
      assert.equal(squareOff.timestamp, new Date(ist("2026-01-05", "15:20")).toISOString());
      const late = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, product: "MIS" });
      assert.equal(late.status, "REJECTED");
      assert.match(late.status_message ?? "", /MIS orders are not accepted after the intraday square-off/);
    });

    it("expires DAY orders at the close (ORDER_EXPIRED) and keeps nothing resting overnight", async function () {
      const { broker, clock, log } = await open();
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const buy = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        order_type: "LIMIT",
        price: 1400,
        product: "CNC",
      });
      clock.advance(ist("2026-01-05", "15:29") - clock.now());
      await broker.flush();
      assert.equal((await broker.getOrder(buy.order_id)).status, "OPEN");
      clock.advance(MINUTE);
      await broker.flush();
      const expired = await broker.getOrder(buy.order_id);
      assert.equal(expired.status, "EXPIRED");
      assert.deepEqual(log.typesFor(buy.order_id), ["ORDER_PLACED", "ORDER_EXPIRED"]);
      assert.equal((await broker.getAccount()).cash, 1_000_000, "its cash is free again");
    });

    it("a broker that was closed over the close expires the order when it opens again (journal, reopen)", async function () {
      const file = path.join(dir, "acct.jsonl");
      const first = await open({}, ist("2026-01-05", "11:00"), file);
      first.broker.setPrice("INFY", 1500);
      const order = await first.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        order_type: "LIMIT",
        price: 1400,
        product: "CNC",
      });
      await first.broker.close();
      const second = await open({}, ist("2026-01-06", "10:00"), file);
      await second.broker.flush();
      assert.equal((await second.broker.getOrder(order.order_id)).status, "EXPIRED");
    });

    it("expires a GTT a year after its creation", async function () {
      const { broker, clock, log } = await open();
      broker.setPrice("INFY", 1500);
      const gtt = await broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [1200],
        orders: [{ side: "BUY", quantity: 1, order_type: "LIMIT", price: 1200, product: "CNC" }],
      });
      clock.advance(ist("2027-01-05", "09:59") - clock.now());
      await broker.flush();
      assert.equal((await broker.getGtts())[0]!.status, "active");
      clock.advance(2 * MINUTE);
      await broker.flush();
      const [after] = await broker.getGtts();
      assert.equal(after!.status, "expired");
      assert.equal(log.gtts.at(-1)!.gtt.gtt_id, gtt.gtt_id);
    });
  });

  describe("liquidity", function () {
    it("a quote fills at most its touch size; one quote does not fill every resting order at once", async function () {
      const { broker } = await open({ starting_cash: 100_000_000 });
      broker.setPrice("INFY", 1500, { bid: 1499.95, ask: 1500.05 });
      const orders = [];
      for (let i = 0; i < 3; i++) {
        orders.push(
          await broker.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 80,
            order_type: "LIMIT",
            price: 1450,
            product: "CNC",
          }),
        );
      }
      broker.setPrice("INFY", 1440, { bid: 1440, ask: 1440 });
      await broker.flush();
      const filled = await Promise.all(orders.map((o) => broker.getOrder(o.order_id)));
      assert.deepEqual(
        filled.map((o) => o.filled_quantity),
        [80, 20, 0],
        "time priority shares the touch's 100",
      );
      broker.setPrice("INFY", 1440, { bid: 1440, ask: 1440 });
      await broker.flush();
      const next = await Promise.all(orders.map((o) => broker.getOrder(o.order_id)));
      assert.deepEqual(
        next.map((o) => o.filled_quantity),
        [80, 80, 40],
      );
    });

    it("a MARKET order walks the configured depth, a tick per level", async function () {
      const { broker } = await open({
        starting_cash: 100_000_000,
        market: { preset: "nse", liquidity: { market_depth_levels: 2 } },
      });
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 350, product: "CNC" });
      assert.equal(order.status, "PARTIALLY_FILLED");
      assert.equal(order.filled_quantity, 300);
      assert.equal(order.average_price, (100 * 1500 + 100 * 1500.05 + 100 * 1500.1) / 300);
    });
  });

  describe("margin as Kite applies it", function () {
    it("a short needs margin and its proceeds are not spendable", async function () {
      const { broker } = await open({ starting_cash: 50_000 });
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const short = await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 100, product: "MIS" });
      assert.equal(short.status, "FILLED", "₹30,000 margin (20%) fits in ₹50,000");
      const spend = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 20, product: "CNC" });
      assert.equal(spend.status, "REJECTED", "the ₹1,50,000 proceeds are not cash to spend");
      assert.equal(spend.status_message?.startsWith("insufficient funds"), true, spend.status_message);
      const fits = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 13, product: "CNC" });
      assert.equal(fits.status, "FILLED");
      const cnc = await broker.placeOrder({ symbol: "TCS", side: "SELL", quantity: 1, product: "CNC" });
      assert.equal(cnc.status, "REJECTED", "no CNC short");
    });

    it("MIS leverage is configurable", async function () {
      for (const [leverage, status] of [
        [5, "FILLED"],
        [2, "REJECTED"],
      ] as const) {
        const { broker } = await open({
          starting_cash: 50_000,
          market: { preset: "nse", margin: { mis_leverage: leverage } },
        });
        broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
        const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 100, product: "MIS" });
        assert.equal(order.status, status, `leverage ${leverage}`);
      }
    });
  });

  describe("restart", function () {
    for (const fixture of ["paper-v1-records.jsonl", "paper-v1-snapshot.jsonl"]) {
      it(`opens an account written by the relaxed broker (${fixture}) under NSE's rules, which then apply`, async function () {
        const file = path.join(dir, fixture);
        fs.copyFileSync(path.join(__dirname, "..", "..", "..", "test", "fixtures", fixture), file);
        const { broker, clock, log } = await open({ retention: 10 }, ist("2026-12-07", "10:00"), file);
        assert.equal((await broker.getAccount()).cash, 997691.49);
        const [position] = await broker.getPositions();
        assert.equal(position?.quantity, 23);
        assert.equal(position.average_price, 100.37);
        assert.equal(position.charges, 0, "fills from before carry no charges");
        const resting = (await broker.getOrderbook()).filter((o) => o.status === "OPEN");
        assert.equal(resting.length, 1);
        broker.setPrice("INFY", 100, { bid: 100, ask: 100 });
        clock.advance(ist("2026-12-07", "15:30") - clock.now());
        await broker.flush();
        assert.equal((await broker.getPositions())[0]!.quantity, 0, "its MIS position squared off at 15:20");
        const cancelled = await broker.getOrder(resting[0]!.order_id);
        assert.equal(cancelled.status, "CANCELLED", "an open MIS order is cancelled at the square-off");
        assert.match(cancelled.status_message ?? "", /MIS square-off/);
        assert.ok(log.orders.some((e) => e.order.tag === "SQUAREOFF" && e.type === "ORDER_FILLED"));
      });
    }

    for (const market of ["relaxed", "nse"] as const) {
      it(`a CSV replay restarted over a restored account resumes after the last replayed row (${market})`, async function () {
        const file = path.join(dir, "quotes.csv");
        const rows = Array.from(
          { length: 10 },
          (_, i) => `2026-01-05T04:30:${String(i * 5).padStart(2, "0")}Z,INFY,${1500 + i}`,
        );
        fs.writeFileSync(file, `timestamp,symbol,price\n${rows.join("\n")}\n`);
        const settings: PaperSettingsInput = {
          market,
          quote_source: "csv",
          csv_file: file,
          replay_speed: 1,
          replay_loop: false,
        };
        const journal = path.join(dir, `csv-${market}.jsonl`);
        const first = await open(settings, ist("2026-01-05", "10:00"), journal);
        await first.broker.subscribeQuotes(["INFY"]);
        first.clock.advance(22_000);
        assert.deepEqual(
          first.log.quotes.map((q) => q.last_price),
          [1500, 1501, 1502, 1503, 1504],
        );
        await first.broker.close();

        const second = await open(settings, ist("2026-01-05", "10:05"), journal);
        await second.broker.subscribeQuotes(["INFY"]);
        second.clock.advance(0);
        second.clock.advance(30_000);
        assert.deepEqual(
          second.log.quotes.map((q) => q.last_price),
          [1505, 1506, 1507, 1508, 1509],
          "after row 5, at the file's pace, never the old prices again",
        );
        await second.broker.close();
        const third = await open(settings, ist("2026-01-05", "10:10"), journal);
        await third.broker.subscribeQuotes(["INFY"]);
        third.clock.advance(60_000);
        assert.deepEqual(third.log.quotes, [], "a finished replay stays finished");
      });
    }

    it("a reopened account offers what is left of the current quote, not all of it again", async function () {
      const file = path.join(dir, "liquidity.jsonl");
      const buy = {
        symbol: "INFY",
        side: "BUY",
        quantity: 80,
        order_type: "LIMIT",
        price: 1500,
        product: "CNC",
      } as const;
      const first = await open({}, ist("2026-01-05", "11:00"), file);
      first.broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      assert.equal((await first.broker.placeOrder(buy)).filled_quantity, 80);
      await first.broker.close();
      const second = await open({}, ist("2026-01-05", "11:00"), file);
      const after = await second.broker.placeOrder(buy);
      assert.equal(after.filled_quantity, 20, "the touch held 100 and 80 were taken before the restart");
      const twin = await open({}, ist("2026-01-05", "11:00"));
      twin.broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      await twin.broker.placeOrder(buy);
      assert.equal((await twin.broker.placeOrder(buy)).filled_quantity, 20, "as its never-restarted twin");
    });

    it("a reopened account keeps its charges and its waiting AMO, which still goes to the book at the open", async function () {
      const file = path.join(dir, "amo.jsonl");
      const first = await open({}, ist("2026-01-05", "11:00"), file);
      first.broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      await first.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, product: "CNC" });
      first.clock.advance(ist("2026-01-05", "18:00") - first.clock.now());
      const amo = await first.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 4,
        product: "CNC",
        variety: "amo",
      });
      const before = {
        account: await first.broker.getAccount(),
        positions: await first.broker.getPositions(),
      };
      await first.broker.close();
      const second = await open({}, ist("2026-01-05", "18:30"), file);
      assert.deepEqual(
        { account: await second.broker.getAccount(), positions: await second.broker.getPositions() },
        before,
      );
      assert.equal((await second.broker.getOrder(amo.order_id)).status, "OPEN");
      second.clock.advance(ist("2026-01-06", "09:15") - second.clock.now());
      await second.broker.flush();
      assert.equal((await second.broker.getOrder(amo.order_id)).status, "FILLED");
    });
  });
});
