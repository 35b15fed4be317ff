// Kite's margin as MARKET-RULES §5 and README's "Margin as Kite applies it" write it, checked with
// figures worked by hand: an MIS short blocks a fifth of its value and its proceeds are not
// spendable; an MIS long is leveraged 5×, so cash may go below zero while what may be spent does not.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";

describe("paper broker under NSE's rules: Kite's margin", function () {
  async function open(startingCash: number): Promise<PaperBroker> {
    const broker = new PaperBroker(
      {
        starting_cash: startingCash,
        volatility: 0,
        spread_bps: 0,
        slippage_bps: 0,
        interval_ms: 86_400_000,
        // Liquidity aside: these are about the cash an order blocks.
        market: { preset: "nse", liquidity: { infinite: true } },
      },
      { clock: new ManualClock() },
    );
    await broker.connect();
    broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
    return broker;
  }

  it("a short's proceeds are not spendable: after an MIS SELL of ₹1,50,000 from ₹1,00,000, ₹70,000 less charges may be spent", async function () {
    const broker = await open(100_000);
    try {
      // 100 × 1500 = ₹1,50,000 short; margin a fifth: ₹30,000.
      const short = await broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 100,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(short.status, "FILLED", short.status_message);
      const account = await broker.getAccount();
      // Cash holds the proceeds (less charges), but they are set aside.
      assert.ok(account.cash > 240_000, String(account.cash));
      // ₹75,000 of CNC INFY would need the proceeds: refused.
      const tooMuch = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 50,
        order_type: "LIMIT",
        price: 1500,
        product: "CNC",
      });
      assert.equal(tooMuch.status, "REJECTED");
      // ₹67,500 fits in ₹70,000 less the short's charges (₹67.06 at most here).
      const fits = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 45,
        order_type: "LIMIT",
        price: 1500,
        product: "CNC",
      });
      assert.equal(fits.status, "FILLED", fits.status_message);
    } finally {
      await broker.close();
    }
  });

  it("an MIS long is leveraged 5×: ₹4,50,000 of INFY on ₹1,00,000, cash below zero, and no more", async function () {
    const broker = await open(100_000);
    try {
      const long = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 300,
        order_type: "LIMIT",
        price: 1500,
        product: "MIS",
      });
      assert.equal(long.status, "FILLED", long.status_message);
      assert.ok((await broker.getAccount()).cash < 0, "cash itself goes below zero for a leveraged long");
      // ₹90,000 blocked of ₹1,00,000: another ₹60,000 of MIS needs ₹12,000 — refused.
      const more = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 40,
        order_type: "LIMIT",
        price: 1500,
        product: "MIS",
      });
      assert.equal(more.status, "REJECTED");
      // Closing part of the position blocks nothing, so it is always admitted.
      const close = await broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 300,
        order_type: "LIMIT",
        price: 1500,
        product: "MIS",
      });
      assert.equal(close.status, "FILLED", close.status_message);
    } finally {
      await broker.close();
    }
  });
  // Found by paper-nse-oracle-wide.property.spec (seed 5130, run 9656): a resting MARKET BUY filled
  // after a price jump took what may be spent below zero, and the 15:20 square-off, a SELL that
  // only closes and so blocks nothing, was then refused "insufficient funds: margin needed 0,
  // available -…": the MIS position stayed open past 15:20.
  it("a closing order blocks nothing, so the 15:20 square-off closes an MIS long even when what may be spent is below zero", async function () {
    const clock = new ManualClock();
    const broker = new PaperBroker(
      {
        starting_cash: 100_000,
        volatility: 0,
        spread_bps: 0,
        slippage_bps: 0,
        interval_ms: 86_400_000,
        market: "nse",
      },
      { clock },
    );
    await broker.connect();
    try {
      broker.setPrice("INFY", 100, { bid: 100, ask: 100 });
      const mis = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(mis.status, "FILLED", mis.status_message);
      // What may be spent goes below zero the one way left (a resting BUY no longer fills past
      // it): a closing order, which blocks nothing, buys back an MIS short at a twentyfold loss.
      broker.setPrice("TCS", 100, { bid: 100, ask: 100 });
      const short = await broker.placeOrder({
        symbol: "TCS",
        side: "SELL",
        quantity: 100,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(short.status, "FILLED", short.status_message);
      broker.setPrice("TCS", 2000, { bid: 2000, ask: 2000 });
      const cover = await broker.placeOrder({
        symbol: "TCS",
        side: "BUY",
        quantity: 100,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(cover.status, "FILLED", cover.status_message);
      const account = await broker.getAccount();
      assert.ok(account.cash < -50_000, String(account.cash));
      assert.ok((account.available ?? 0) < -50_000, String(account.available));
      clock.advance(6 * 3_600_000 + 6 * 60_000); // 15:21 IST
      await broker.flush();
      const squareOffs = (await broker.getOrderbook()).filter((o) => o.tag === "SQUAREOFF");
      assert.deepEqual(
        squareOffs.map((o) => [o.side, o.quantity, o.status, o.status_message]),
        [["SELL", 100, "FILLED", undefined]],
      );
      const position = (await broker.getPositions()).find((p) => p.product === "MIS");
      assert.equal(position?.quantity, 0);
    } finally {
      await broker.close();
    }
  });
});
