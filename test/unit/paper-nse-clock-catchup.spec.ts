// Defects the NSE oracle fuzzer (test/property/paper-nse-oracle.property.spec.ts) found in the
// market clock, each reduced to its smallest case: a broker closed over a square-off or an open
// must catch up as its never-restarted twin would have, and a square-off closes the whole position.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent } from "../../lib/protocol";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// ManualClock starts at Monday 2026-01-05 09:15 IST.

describe("paper broker under NSE's rules: the clock after a restart, and the square-off", function () {
  let dir: string;
  let settings: PaperSettingsInput;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nse-catchup-"));
    const csv = path.join(dir, "quotes.csv");
    // One row of an instrument the tests never trade: no feed moves their prices.
    fs.writeFileSync(csv, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
    settings = {
      starting_cash: 10_000_000,
      quote_source: "csv",
      csv_file: csv,
      replay_loop: false,
      slippage_bps: 0,
      market: "nse",
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function journaled(clock: ManualClock): PaperBroker {
    return new PaperBroker(settings, { clock, journalFile: path.join(dir, "account.jsonl") });
  }

  // Closed from Monday's session over its 15:20 square-off, reopened inside a later session's
  // open..15:20: the MIS position of Monday must not ride into that session.
  for (const closedFor of [DAY, DAY + HOUR, 3 * DAY + 2 * HOUR]) {
    it(`squares off an MIS position from an earlier session when reopened ${closedFor / HOUR} h later, inside the next session`, async function () {
      const clock = new ManualClock();
      let broker = journaled(clock);
      await broker.connect();
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const buy = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 90,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(buy.status, "FILLED");
      await broker.close();
      clock.advance(closedFor);
      broker = journaled(clock);
      const events: OrderEvent[] = [];
      broker.on("order", (e) => events.push(e));
      await broker.connect();
      await broker.flush();
      try {
        const mis = (await broker.getPositions()).find((p) => p.product === "MIS");
        assert.equal(mis?.quantity, 0, "MIS position squared off on reconnect");
        const squareOff = events.find((e) => e.order.tag === "SQUAREOFF" && e.type === "ORDER_FILLED");
        assert.ok(squareOff, `a SQUAREOFF fill was announced: ${events.map((e) => e.type).join(",")}`);
      } finally {
        await broker.close();
      }
    });
  }

  // The catch-up must replay the boundaries in their order: Monday's 15:20 square-off cancels the
  // live MIS order and closes the position before its 15:30 expiry would end it EXPIRED; and the
  // expiry itself (an order event of this tick) must not hide that the square-off was missed.
  it("catches up a missed square-off before the close it preceded, as its never-restarted twin did", async function () {
    const clock = new ManualClock();
    const twin = new PaperBroker(settings, { clock });
    let broker = journaled(clock);
    await twin.connect();
    await broker.connect();
    for (const b of [twin, broker]) {
      b.setPrice("INFY", 1500, { bid: 1499.95, ask: 1500.05 });
      // The quote's ask side holds 600 with its depth: one is left resting.
      const order = await b.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 601,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(order.status, "PARTIALLY_FILLED");
    }
    await broker.close();
    clock.advance(DAY);
    await twin.flush();
    broker = journaled(clock);
    await broker.connect();
    await broker.flush();
    try {
      const shape = async (b: PaperBroker) => ({
        orders: (await b.getOrderbook()).map((o) => [
          o.order_id,
          o.status,
          o.filled_quantity,
          o.average_price,
          o.tag,
        ]),
        positions: await b.getPositions(),
        account: await b.getAccount(),
      });
      const [got, want] = [await shape(broker), await shape(twin)];
      assert.deepEqual(got, want);
      assert.equal(got.orders[0]![1], "CANCELLED");
    } finally {
      await broker.close();
      await twin.close();
    }
  });

  it("cancels a resting MIS order of an earlier session on reconnect as the missed square-off did, not EXPIRED", async function () {
    const clock = new ManualClock();
    let broker = journaled(clock);
    await broker.connect();
    broker.setPrice("INFY", 1500, { bid: 1499.95, ask: 1500.05 });
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 90,
      order_type: "LIMIT",
      price: 1500,
      product: "MIS",
    });
    assert.equal(order.status, "OPEN");
    await broker.close();
    clock.advance(DAY);
    broker = journaled(clock);
    await broker.connect();
    await broker.flush();
    try {
      const after = await broker.getOrder(order.order_id);
      assert.equal(after.status, "CANCELLED", after.status_message);
    } finally {
      await broker.close();
    }
  });

  it("does not square off again an MIS position opened in the session it reopens in", async function () {
    const clock = new ManualClock();
    let broker = journaled(clock);
    await broker.connect();
    broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
    await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 10,
      order_type: "MARKET",
      product: "MIS",
    });
    clock.advance(HOUR);
    // A later order in the same session: the square-off must still wait for 15:20.
    await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 5,
      order_type: "MARKET",
      product: "MIS",
    });
    await broker.close();
    clock.advance(HOUR);
    broker = journaled(clock);
    await broker.connect();
    await broker.flush();
    try {
      const mis = (await broker.getPositions()).find((p) => p.product === "MIS");
      assert.equal(mis?.quantity, 15, "still open before 15:20");
      clock.advance(5 * HOUR);
      await broker.flush();
      const after = (await broker.getPositions()).find((p) => p.product === "MIS");
      assert.equal(after?.quantity, 0, "squared off at 15:20");
    } finally {
      await broker.close();
    }
  });

  // An IOC AMO acts once, at its open. A broker closed over that open and its close comes back
  // after the session: the AMO had its chance while the market was open, and no fill may be
  // printed outside market hours for it.
  it("cancels an IOC AMO whose session ended while the broker was closed, without a fill outside the session", async function () {
    const clock = new ManualClock();
    let broker = journaled(clock);
    await broker.connect();
    broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
    clock.advance(11 * HOUR); // Monday 20:15 IST: the AMO window
    const amo = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 90,
      order_type: "MARKET",
      product: "CNC",
      validity: "IOC",
      variety: "amo",
    });
    assert.equal(amo.status, "OPEN");
    await broker.close();
    clock.advance(DAY); // Tuesday 20:15 IST: its session opened and closed meanwhile
    broker = journaled(clock);
    await broker.connect();
    await broker.flush();
    try {
      const order = await broker.getOrder(amo.order_id);
      assert.equal(
        order.filled_quantity,
        0,
        `filled ${order.filled_quantity} at ${order.timestamp}, after its session`,
      );
      assert.ok(["CANCELLED", "EXPIRED"].includes(order.status), order.status);
      assert.deepEqual(await broker.getPositions(), []);
    } finally {
      await broker.close();
    }
  });

  // KITE.md §6: a GTT lives a year, to the same IST wall clock; 29 February → 28 February. A broker
  // closed over that instant expires it on connect, and not a minute early.
  for (const [reopenAt, status] of [
    [Date.UTC(2029, 1, 28, 4, 29), "active"],
    [Date.UTC(2029, 1, 28, 4, 31), "expired"],
    [Date.UTC(2029, 2, 5, 4, 0), "expired"],
  ] as const) {
    it(`a GTT made on 29 February 2028 is ${status} when the broker reopens at ${new Date(reopenAt).toISOString()}`, async function () {
      const clock = new ManualClock(Date.UTC(2028, 1, 29, 4, 30)); // Tuesday 10:00 IST
      let broker = journaled(clock);
      await broker.connect();
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      const gtt = await broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [1200],
        orders: [{ side: "BUY", quantity: 1, order_type: "LIMIT", price: 1200, product: "CNC" }],
      });
      await broker.close();
      clock.advance(reopenAt - clock.now());
      broker = journaled(clock);
      await broker.connect();
      await broker.flush();
      try {
        const after = (await broker.getGtts()).find((g) => g.gtt_id === gtt.gtt_id);
        assert.equal(after?.status, status);
      } finally {
        await broker.close();
      }
    });
  }

  // A CNC BUY takes 561 of the 600 the quote offers on the ask side; at 15:20 the square-off BUY of
  // an MIS short of 40 finds 39 there. The position must still be flat from 15:20.
  it("a square-off closes the whole MIS position even when the quote's depth is short of it", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker(settings, { clock });
    await broker.connect();
    try {
      broker.setPrice("SBIN", 800, { bid: 800, ask: 800 });
      await broker.placeOrder({
        symbol: "SBIN",
        side: "BUY",
        quantity: 561,
        order_type: "MARKET",
        product: "CNC",
      });
      await broker.placeOrder({
        symbol: "SBIN",
        side: "SELL",
        quantity: 40,
        order_type: "MARKET",
        product: "MIS",
      });
      clock.advance(6 * HOUR + 5 * 60_000); // 15:20 IST
      await broker.flush();
      const mis = (await broker.getPositions()).find((p) => p.product === "MIS");
      assert.equal(mis?.quantity, 0, "MIS flat at 15:20");
      const live = (await broker.getOrderbook()).filter(
        (o) => o.status === "OPEN" || o.status === "PARTIALLY_FILLED",
      );
      assert.deepEqual(live, [], "no square-off order left resting");
    } finally {
      await broker.close();
    }
  });
});
