// Spendable money never goes below zero (README fill rules; issue 12): a partly filled MARKET BUY
// that rests holds cash for its remainder at the price of its time; when the price then jumps, the
// remainder takes only what its held cash and the spendable money cover at the new price, and the
// rest is cancelled for funds (paperfuzz11 saw a tenfold jump fill it all, spendable far below 0).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";

async function spendable(broker: PaperBroker): Promise<number> {
  const account = await broker.getAccount();
  assert.equal(typeof account.available, "number", "the account shows what may be spent");
  return account.available!;
}

async function order(broker: PaperBroker, id: string): Promise<OrderSnapshot> {
  return broker.getOrder(id);
}

describe("paper broker: spendable money never goes below zero", function () {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-spendable-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("relaxed: a resting MARKET BUY remainder fills only what the money covers after a tenfold jump, the rest is cancelled", async function () {
    const broker = new PaperBroker(
      { starting_cash: 20_000, max_fill_per_quote: 10, slippage_bps: 0 },
      { clock: new ManualClock(), journalFile: path.join(dir, "relaxed.jsonl") },
    );
    const events: OrderEvent[] = [];
    broker.on("order", (e) => events.push(e));
    await broker.connect();
    try {
      broker.setPrice("NSE:INFY", 100, { bid: 100, ask: 100 });
      const placed = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "MARKET",
        product: "CNC",
      });
      assert.equal(placed.status, "PARTIALLY_FILLED");
      assert.equal(placed.filled_quantity, 10);
      // 20,000 − 10 × 100 paid − 90 × 100 held.
      assert.equal(await spendable(broker), 10_000);
      // Held 9,000 + spendable 10,000 = 19,000: 19 units at 1,000, never 20 (or 100).
      for (let i = 0; i < 5; i++) {
        broker.setPrice("NSE:INFY", 1000, { bid: 1000, ask: 1000 });
        await broker.flush();
        const money = await spendable(broker);
        assert.ok(money >= 0, `quote ${i}: spendable ${money} after the jump`);
      }
      const after = await order(broker, placed.order_id);
      assert.equal(after.status, "CANCELLED");
      assert.equal(after.filled_quantity, 10 + 10);
      assert.match(after.status_message ?? "", /insufficient funds/);
      const account = await broker.getAccount();
      assert.equal(account.cash, 20_000 - 10 * 100 - 10 * 1000);
      assert.equal(account.available, account.cash);
      assert.equal(
        events.filter((e) => e.order.order_id === placed.order_id && e.type === "ORDER_CANCELLED").length,
        1,
      );
    } finally {
      await broker.close();
    }
  });

  it("relaxed: when the money covers the quote's fill exactly it fills, then the rest is cancelled and spendable is 0", async function () {
    const broker = new PaperBroker(
      { starting_cash: 20_000, max_fill_per_quote: 10, slippage_bps: 0 },
      { clock: new ManualClock() },
    );
    await broker.connect();
    try {
      broker.setPrice("NSE:INFY", 100, { bid: 100, ask: 100 });
      const placed = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 30,
        order_type: "MARKET",
        product: "MIS",
      });
      assert.equal(placed.filled_quantity, 10);
      // Held 2,000 + spendable 17,000 = 19,000 at 1,900: 10 affordable, exactly the quote's cap.
      broker.setPrice("NSE:INFY", 1900, { bid: 1900, ask: 1900 });
      const after = await order(broker, placed.order_id);
      assert.equal(after.filled_quantity, 20);
      assert.equal(after.status, "CANCELLED");
      assert.equal(await spendable(broker), 0);
    } finally {
      await broker.close();
    }
  });

  it("relaxed: an SL-M BUY that gaps tenfold past its trigger fills what its held cash and the spendable money pay for", async function () {
    const broker = new PaperBroker({ starting_cash: 12_000, slippage_bps: 0 }, { clock: new ManualClock() });
    await broker.connect();
    try {
      broker.setPrice("NSE:INFY", 100, { bid: 100, ask: 100 });
      const stop = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "SL-M",
        trigger_price: 110,
        product: "CNC",
      });
      assert.equal(stop.status, "TRIGGER_PENDING");
      assert.equal(await spendable(broker), 1000);
      broker.setPrice("NSE:INFY", 1000, { bid: 1000, ask: 1000 });
      const after = await order(broker, stop.order_id);
      // 11,000 held + 1,000 spendable = 12 units at 1,000.
      assert.equal(after.filled_quantity, 12);
      assert.equal(after.status, "CANCELLED");
      assert.equal(await spendable(broker), 0);
    } finally {
      await broker.close();
    }
  });

  it("nse: after a jump the remainder walks the book as far as the money pays, over several levels, then the rest is cancelled", async function () {
    const csv = path.join(dir, "quotes.csv");
    fs.writeFileSync(csv, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
    const broker = new PaperBroker(
      {
        starting_cash: 4_700_000,
        quote_source: "csv",
        csv_file: csv,
        replay_loop: false,
        slippage_bps: 0,
        market: "nse",
      },
      { clock: new ManualClock() },
    );
    await broker.connect();
    try {
      broker.setPrice("INFY", 1500, { bid: 1499.95, ask: 1500.05 });
      const placed = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1000,
        order_type: "MARKET",
        product: "CNC",
      });
      assert.equal(placed.filled_quantity, 600);
      const money = (await spendable(broker)) + 400 * 1500.3; // what it holds for the rest, about
      // The rest of 400 would need ~6,000,000 at 15,000; the money pays for ~250 of it.
      broker.setPrice("INFY", 15_000, { bid: 14_999.95, ask: 15_000.05 });
      const after = await order(broker, placed.order_id);
      assert.equal(after.status, "CANCELLED");
      const bought = after.filled_quantity - 600;
      assert.ok(bought > 200 && bought < 260, `bought ${bought} of the rest with ${money}`);
      const left = await spendable(broker);
      assert.ok(left >= 0 && left < 15_001, `spendable ${left}: less than one more unit`);
    } finally {
      await broker.close();
    }
  });

  for (const product of ["CNC", "MIS"] as const) {
    it(`nse: a ${product} MARKET BUY left resting by the book's depth does not spend past zero when the price jumps tenfold`, async function () {
      const csv = path.join(dir, "quotes.csv");
      fs.writeFileSync(csv, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
      const settings: PaperSettingsInput = {
        starting_cash: product === "CNC" ? 1_600_000 : 320_000,
        quote_source: "csv",
        csv_file: csv,
        replay_loop: false,
        slippage_bps: 0,
        market: "nse",
      };
      const broker = new PaperBroker(settings, {
        clock: new ManualClock(),
        journalFile: path.join(dir, "nse.jsonl"),
      });
      await broker.connect();
      try {
        broker.setPrice("INFY", 1500, { bid: 1499.95, ask: 1500.05 });
        const placed = await broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1000,
          order_type: "MARKET",
          product,
        });
        assert.equal(placed.status, "PARTIALLY_FILLED");
        assert.ok((await spendable(broker)) >= 0);
        for (let i = 0; i < 5; i++) {
          broker.setPrice("INFY", 15_000 + i, { bid: 14_999.95 + i, ask: 15_000.05 + i });
          await broker.flush();
          const money = await spendable(broker);
          assert.ok(money >= 0, `quote ${i}: spendable ${money} after the jump`);
        }
        const after = await order(broker, placed.order_id);
        assert.equal(after.status, "CANCELLED");
        assert.ok(after.filled_quantity > 600 && after.filled_quantity < 1000, String(after.filled_quantity));
      } finally {
        await broker.close();
      }
    });
  }
});
