import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { RiskEvent } from "../../lib/protocol/events";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import { RiskSettings } from "../../lib/risk/settings";
import { istDay, outsideWindow } from "../../lib/risk/trading-day";
import { rejectsWithCode } from "../contract/broker-contract";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);

interface Rig {
  broker: Guarded<PaperBroker>;
  inner: PaperBroker;
  clock: ManualClock;
  events: RiskEvent[];
  /** How many placeOrder / modifyOrder calls reached the paper broker. */
  reached: { place: number; modify: number };
}

const opened: PaperBroker[] = [];

async function rig(settings: RiskSettingsInput, stateFile?: string, start = MONDAY_10_IST): Promise<Rig> {
  const clock = new ManualClock(start);
  const inner = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  opened.push(inner);
  const reached = { place: 0, modify: 0 };
  const place = inner.placeOrder.bind(inner);
  const modify = inner.modifyOrder.bind(inner);
  inner.placeOrder = (request) => {
    reached.place++;
    return place(request);
  };
  inner.modifyOrder = (id, changes) => {
    reached.modify++;
    return modify(id, changes);
  };
  const broker = guardBroker(
    inner,
    stateFile === undefined
      ? { settings, clock, elapsed: clock }
      : { settings, clock, elapsed: clock, stateFile },
  );
  const events: RiskEvent[] = [];
  broker.risk.on("event", (event) => events.push(event));
  await broker.connect();
  await broker.subscribeQuotes(["INFY", "TCS"]);
  inner.setPrice("INFY", 1500);
  inner.setPrice("TCS", 3500);
  return { broker, inner, clock, events, reached };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "risk-guard-"));
}

describe("RiskGuard: limits", function () {
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("refuses an order over max quantity, names limit and figures, and sends nothing", async function () {
    const { broker, reached, events } = await rig({ max_order_quantity: 100 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 101 }),
      "RISK",
      /max order quantity 100: order is for 101 INFY \(max_order_quantity\)/,
    );
    assert.equal(reached.place, 0);
    assert.deepEqual((await broker.getOrderbook()).length, 0);
    const denied = events.filter((e) => e.type === "ORDER_DENIED");
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.type === "ORDER_DENIED" && denied[0]!.limit, "max_order_quantity");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 100 });
    assert.equal(reached.place, 1);
  });

  it("values MARKET orders at the last price and LIMIT orders at their price (fat finger 15000 for 1500)", async function () {
    const { broker, reached } = await rig({ max_order_value: 200_000, price_band_pct: 5 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 200 }),
      "RISK",
      /max order value 200,000: 200 × 1,500 = 300,000/,
    );
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 15000 }),
      "RISK",
      /price band 5 %: price 15,000 is 900 % from the last price 1,500 of NSE:INFY \(price_band_pct\)/,
    );
    assert.equal(reached.place, 0);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 1460 });
    assert.equal(reached.place, 1);
  });

  it("refuses to value an order with no known price rather than guessing", async function () {
    const { broker, reached } = await rig({ max_order_value: 1_000_000 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "WIPRO", side: "BUY", quantity: 1 }),
      "RISK",
      /no last price known for NSE:WIPRO/,
    );
    assert.equal(reached.place, 0);
  });

  it("counts the real position and open orders for max position: current 5, order would make 6", async function () {
    const { broker, reached } = await rig({ max_position_quantity: 5 });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 5 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /max position NSE:INFY 5: current 5, order would make 6 \(max_position_quantity\)/,
    );
    // Selling down is fine, and a resting sell counts toward the short side.
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 8, order_type: "LIMIT", price: 1550 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 3 }),
      "RISK",
      /current 5, with open orders -3, order would make -6/,
    );
    assert.equal(reached.place, 2);
  });

  it("sees a position the account already had when the guard started (no strategy memory)", async function () {
    const clock = new ManualClock(MONDAY_10_IST);
    const dir = tmpDir();
    const journalFile = path.join(dir, "paper.jsonl");
    const first = new PaperBroker(
      { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 },
      { clock, journalFile },
    );
    await first.connect();
    first.setPrice("INFY", 1500);
    await first.placeOrder({ symbol: "INFY", side: "BUY", quantity: 4 });
    await first.close();
    const inner = new PaperBroker(
      { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 },
      { clock, journalFile },
    );
    opened.push(inner);
    const broker = guardBroker(inner, { settings: { max_position_quantity: 5 }, clock });
    await broker.connect();
    inner.setPrice("INFY", 1500);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /current 5/,
    );
  });

  it("counts orders still in flight, so a burst cannot slip past the position limit", async function () {
    const { broker, reached } = await rig({ max_position_quantity: 5 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 })),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 5);
    assert.equal(reached.place, 5);
    const positions = await broker.getPositions();
    assert.equal(positions.find((p) => p.symbol === "TCS")?.quantity, 5);
  });

  it("limits open orders and the order rate per second and per minute", async function () {
    const { broker, clock, reached } = await rig({
      max_open_orders: 3,
      max_orders_per_second: 2,
      max_orders_per_minute: 5,
    });
    const limit = (price: number) =>
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price });
    await limit(1400);
    await limit(1401);
    await rejectsWithCode(limit(1402), "RISK", /max orders per second 2: 2 sent in the last second/);
    clock.advance(1000);
    await limit(1402);
    await rejectsWithCode(limit(1403), "RISK", /max open orders 3: 3 open or in flight/);
    const book = await broker.getOrderbook();
    await broker.cancelOrder(book[0]!.order_id);
    await broker.cancelOrder(book[1]!.order_id);
    clock.advance(1000);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    clock.advance(1000);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    clock.advance(1000);
    await rejectsWithCode(limit(1404), "RISK", /max orders per minute 5: 5 sent in the last minute/);
    clock.advance(60_000);
    await limit(1404);
    assert.equal(reached.place, 6);
  });

  it("allows only listed symbols", async function () {
    const { broker, reached } = await rig({ allowed_symbols: ["INFY", "NSE:TCS"] });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "TCS", exchange: "BSE", side: "BUY", quantity: 1 }),
      "RISK",
      /allowed symbols: BSE:TCS is not one of INFY, NSE:TCS/,
    );
    assert.equal(reached.place, 2);
  });

  it("keeps to the trading window in IST and closes on weekends", async function () {
    const { broker, clock, reached } = await rig(
      { trading_window: {} },
      undefined,
      Date.UTC(2026, 0, 5, 3, 44),
    );
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /trading window 09:15-15:30 IST: it is 09:14 IST \(trading_window\)/,
    );
    clock.advance(60_000);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.equal(reached.place, 1);
    const window = RiskSettings.parse({ trading_window: {} }).trading_window!;
    assert.match(outsideWindow(window, Date.UTC(2026, 0, 5, 10, 0))!, /it is 15:30 IST/);
    assert.match(outsideWindow(window, Date.UTC(2026, 0, 10, 5, 0))!, /closed on Saturday/);
    assert.equal(istDay(Date.UTC(2026, 0, 5, 18, 29)), "2026-01-05");
    assert.equal(istDay(Date.UTC(2026, 0, 5, 18, 30)), "2026-01-06");
  });

  it("checks a modify that adds quantity against the limits, and lets cancels through", async function () {
    const { broker, reached } = await rig({ max_position_quantity: 5, max_order_quantity: 5 });
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 4,
      order_type: "LIMIT",
      price: 1400,
    });
    await rejectsWithCode(
      broker.modifyOrder(order.order_id, { quantity: 6 }),
      "RISK",
      /max order quantity 5/,
    );
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await rejectsWithCode(
      broker.modifyOrder(order.order_id, { quantity: 5 }),
      "RISK",
      /max position NSE:INFY 5: current 1, with open orders 5, order would make 6/,
    );
    assert.equal(reached.modify, 0);
    await broker.modifyOrder(order.order_id, { quantity: 3 });
    assert.equal((await broker.cancelOrder(order.order_id)).status, "CANCELLED");
  });
});

describe("RiskGuard: trading state", function () {
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("HALTED refuses new orders and quantity increases, allows cancels; resume trades again", async function () {
    const { broker, reached, events } = await rig({});
    const resting = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 2,
      order_type: "LIMIT",
      price: 1400,
    });
    await broker.risk.setState("HALTED", "test", "flow bug");
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /trading is HALTED \(flow bug\): no new orders \(trading_state\)/,
    );
    await rejectsWithCode(broker.modifyOrder(resting.order_id, { quantity: 3 }), "RISK", /HALTED/);
    await rejectsWithCode(broker.modifyOrder(resting.order_id, { price: 1450 }), "RISK", /HALTED/);
    await rejectsWithCode(
      broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [1600],
        orders: [{ side: "SELL", quantity: 1, price: 1600 }],
      }),
      "RISK",
      /no new GTTs/,
    );
    await broker.modifyOrder(resting.order_id, { quantity: 1 });
    assert.equal((await broker.cancelOrder(resting.order_id)).status, "CANCELLED");
    assert.equal(reached.place, 1);
    await broker.risk.setState("ACTIVE", "test", "fixed");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    const changes = events.filter((e) => e.type === "RISK_STATE_CHANGED");
    assert.deepEqual(
      changes.map((e) => e.type === "RISK_STATE_CHANGED" && [e.previous, e.state, e.by, e.reason]),
      [
        ["ACTIVE", "HALTED", "test", "flow bug"],
        ["HALTED", "ACTIVE", "test", "fixed"],
      ],
    );
  });

  it("REDUCING lets through only orders that bring a position toward zero", async function () {
    const { broker, reached } = await rig({});
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 5 });
    await broker.risk.setState("REDUCING", "test", "wind down");
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /REDUCING: a BUY of 1 would not reduce/,
    );
    await rejectsWithCode(broker.placeOrder({ symbol: "TCS", side: "SELL", quantity: 1 }), "RISK", /net 0/);
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 6 }),
      "RISK",
      /would not reduce/,
    );
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 3, order_type: "LIMIT", price: 1600 });
    await rejectsWithCode(
      broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 3 }),
      "RISK",
      /net 5, 3 already on the way/,
    );
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 2 });
    assert.equal(reached.place, 3);
  });

  it("keeps HALTED across a restart in the state file, atomically written", async function () {
    const dir = tmpDir();
    const stateFile = path.join(dir, "risk-paper-demo.json");
    const first = await rig({}, stateFile);
    await first.broker.risk.setState("HALTED", "kill switch k1", "manual");
    await first.broker.close();
    // The state and its witness (risk-state-witness.spec), and no temporary file.
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      ["risk-paper-demo.json", "risk-paper-demo.json.halted"],
      "no temporary file left behind",
    );
    const second = await rig({}, stateFile);
    assert.equal(second.broker.risk.tradingState, "HALTED");
    assert.equal(second.broker.risk.stateRecord.by, "kill switch k1");
    await rejectsWithCode(
      second.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "RISK",
      /HALTED \(manual\)/,
    );
    await second.broker.risk.setState("ACTIVE", "admin", "checked");
    await second.broker.close();
    const third = await rig({}, stateFile);
    assert.equal(third.broker.risk.tradingState, "ACTIVE");
    await third.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
  });

  for (const [what, content] of [
    ["not JSON", "{ half a record"],
    [
      "an unknown state",
      JSON.stringify({ version: 1, state: "PAUSED", by: "x", reason: "y", at: "2026-01-05T04:30:00.000Z" }),
    ],
    ["empty", ""],
  ] as const) {
    it(`starts HALTED and says why when the state file is ${what}`, async function () {
      const stateFile = path.join(tmpDir(), "risk.json");
      fs.writeFileSync(stateFile, content);
      const { broker, reached } = await rig({}, stateFile);
      assert.equal(broker.risk.tradingState, "HALTED");
      assert.match(
        broker.risk.stateRecord.reason,
        /state file unreadable, halted until a person resumes: .*risk\.json/,
      );
      await rejectsWithCode(
        broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
        "RISK",
        /state file unreadable/,
      );
      assert.equal(reached.place, 0);
      // The corrupt file is replaced by a readable HALTED record.
      assert.equal(JSON.parse(fs.readFileSync(stateFile, "utf8")).state, "HALTED");
    });
  }

  it("halts on reaching max daily loss and, when asked, flattens everything", async function () {
    const { broker, inner, clock, events } = await rig({
      max_daily_loss: 1000,
      flatten_on_daily_loss: true,
      pnl_check_ms: 100,
    });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1, order_type: "LIMIT", price: 3000 });
    clock.advance(200);
    inner.setPrice("INFY", 1450); // 10 × -50 = -500: not yet
    await waitFor(() => false, 50).catch(() => undefined);
    assert.equal(broker.risk.tradingState, "ACTIVE");
    clock.advance(200);
    inner.setPrice("INFY", 1390); // -1100
    await waitFor(() => broker.risk.tradingState === "HALTED", 2000);
    const change = events.find((e) => e.type === "RISK_STATE_CHANGED");
    assert.ok(change?.type === "RISK_STATE_CHANGED");
    assert.equal(change.by, "risk guard");
    assert.match(change.reason, /daily loss 1,000 reached \(lost 1,100 since the start of 2026-01-05\)/);
    await waitFor(async () => (await broker.getPositions()).every((p) => p.quantity === 0), 2000);
    const open = (await broker.getOrderbook()).filter((o) => o.status === "OPEN");
    assert.deepEqual(open, []);
  });

  it("checks a loss that came within pnl_check_ms of the last check once the interval ends, though no fill or quote follows", async function () {
    for (let trial = 0; trial < 3; trial++) {
      const { broker, inner, clock } = await rig({ max_daily_loss: 1000, pnl_check_ms: 100 });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
      // Past the interval by the guard's clock and by the wall clock: the next quote is checked.
      await pause(150);
      clock.advance(1000);
      inner.setPrice("INFY", 1490); // -100: not yet
      await pause(30); // that check has read the account
      assert.equal(broker.risk.tradingState, "ACTIVE");
      // Within the interval of that check; nothing moves after it.
      clock.advance(20 + trial * 20);
      inner.setPrice("INFY", 1380); // -1,200
      await waitFor(() => broker.risk.tradingState === "HALTED", 2000);
      assert.match(
        broker.risk.stateRecord.reason,
        /daily loss 1,000 reached \(lost 1,200 since the start of 2026-01-05\)/,
      );
      await Promise.all(opened.splice(0).map((b) => b.close()));
    }
  });
});

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("RiskSettings: bad limits name the field", function () {
  const cases: [RiskSettingsInput | Record<string, unknown>, RegExp][] = [
    [{ max_order_quantity: -1 }, /max_order_quantity: must be greater than 0/],
    [{ max_order_quantity: "ten" }, /max_order_quantity: must be a number/],
    [
      { max_orders_per_second: 20, max_orders_per_minute: 10 },
      /max_orders_per_second: must not be more than max_orders_per_minute/,
    ],
    [{ max_open_orders: 0 }, /max_open_orders: must be greater than 0/],
    [{ flatten_on_daily_loss: true }, /flatten_on_daily_loss: needs max_daily_loss/],
    [{ trading_window: { start: "15:30", end: "09:15" } }, /trading_window.end: must be later than start/],
    [{ trading_window: { start: "9am" } }, /trading_window.start: must be a time HH:MM/],
    [{ price_band_pct: 0 }, /price_band_pct: must be greater than 0/],
    [{ allowed_symbols: [] }, /allowed_symbols: must name at least one symbol/],
  ];
  for (const [input, pattern] of cases) {
    it(`refuses ${JSON.stringify(input)}`, function () {
      const result = RiskSettings.safeParse(input);
      assert.equal(result.success, false);
      const text = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      assert.match(text, pattern);
    });
  }
});
