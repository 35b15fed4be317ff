import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import { Exposure } from "../../lib/risk/exposure";

/** A snapshot as a broker reports it; only the fields the exposure reads matter here. */
function snap(
  id: string,
  side: "BUY" | "SELL",
  quantity: number,
  filled: number,
  status: string,
): OrderSnapshot {
  return {
    order_id: id,
    symbol: "INFY",
    exchange: "NSE",
    side,
    quantity,
    filled_quantity: filled,
    average_price: filled > 0 ? 100 : 0,
    status,
  } as OrderSnapshot;
}

describe("Exposure: order bookkeeping over many orders", function () {
  it("counts a fill once however often its events and the answer are replayed", function () {
    const exposure = new Exposure();
    for (let i = 0; i < 30_000; i++) {
      const id = `P${i}`;
      const side = i % 2 === 0 ? "BUY" : "SELL";
      exposure.onOrder(snap(id, side, 3, 0, "OPEN"));
      exposure.onOrder(snap(id, side, 3, 3, "FILLED"));
      exposure.onOrder(snap(id, side, 3, 3, "FILLED"));
      // A stale OPEN after the fill must neither reopen nor count.
      exposure.onOrder(snap(id, side, 3, 0, "OPEN"));
    }
    assert.equal(exposure.net("NSE:INFY"), 0);
    assert.equal(exposure.openOrders, 0);
    assert.equal(exposure.pending("NSE:INFY", "BUY"), 0);
    // Replays of recent terminal orders (within the last generation) change nothing.
    for (let i = 29_000; i < 30_000; i++) exposure.onOrder(snap(`P${i}`, "BUY", 3, 3, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), 0);
  });

  it("keeps a long-lived open order through many generations, and remembers it once it ends", function () {
    const exposure = new Exposure();
    exposure.onOrder(snap("OLD", "BUY", 10, 2, "OPEN"));
    for (let i = 0; i < 45_000; i++) exposure.onOrder(snap(`Q${i}`, "SELL", 1, 1, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), 2 - 45_000);
    assert.equal(exposure.openOrders, 1);
    const open = exposure.openOrder("OLD");
    assert.deepEqual(open && { key: open.key, side: open.side, remaining: open.remaining }, {
      key: "NSE:INFY",
      side: "BUY",
      remaining: 8,
    });
    assert.equal(exposure.pending("NSE:INFY", "BUY"), 8);
    exposure.onOrder(snap("OLD", "BUY", 10, 10, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), 10 - 45_000);
    assert.equal(exposure.openOrders, 0);
    assert.equal(exposure.openOrder("OLD"), undefined);
    assert.equal(exposure.pending("NSE:INFY", "BUY"), 0);
    // Two thousand newer orders later (past a generation change) a replay of its fill is still known.
    for (let i = 0; i < 2_000; i++) exposure.onOrder(snap(`R${i}`, "SELL", 1, 1, "FILLED"));
    exposure.onOrder(snap("OLD", "BUY", 10, 10, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), 10 - 47_000);
  });

  it("seed replaces everything, and terminal orders in the book are not counted again", function () {
    const exposure = new Exposure();
    exposure.onOrder(snap("A", "BUY", 5, 0, "OPEN"));
    exposure.seed(
      [{ symbol: "INFY", exchange: "NSE", quantity: 4, last_price: 100 } as never],
      [snap("B", "BUY", 4, 4, "FILLED"), snap("C", "SELL", 6, 1, "OPEN")],
    );
    assert.equal(exposure.openOrders, 1);
    assert.equal(exposure.pending("NSE:INFY", "BUY"), 0);
    assert.equal(exposure.pending("NSE:INFY", "SELL"), 5);
    exposure.onOrder(snap("B", "BUY", 4, 4, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), 4);
    exposure.onOrder(snap("C", "SELL", 6, 6, "FILLED"));
    assert.equal(exposure.net("NSE:INFY"), -1);
    assert.equal(exposure.openOrders, 0);
  });

  it("finds orders numbered upwards (and some not) when their fills are replayed in any order", function () {
    const exposure = new Exposure();
    const id = (n: number) => `P${String(n).padStart(9, "0")}`;
    let expected = 0;
    const seen: string[] = [];
    for (let n = 0; n < 3000; n++) {
      // Every seventh order arrives with an id below the highest seen (another client, a restart).
      const orderId = n % 7 === 3 ? `A${String(n).padStart(9, "0")}` : id(n);
      const side = n % 3 === 0 ? "SELL" : "BUY";
      exposure.onOrder(snap(orderId, side, 2, 0, "OPEN"));
      exposure.onOrder(snap(orderId, side, 2, 1, "PARTIALLY_FILLED"));
      exposure.onOrder(snap(orderId, side, 2, 2, "FILLED"));
      expected += side === "BUY" ? 2 : -2;
      seen.push(orderId);
    }
    assert.equal(exposure.net("NSE:INFY"), expected);
    // Replays of the last 1500 orders, shuffled, every status again: nothing counts twice.
    const recent = seen.slice(-1500);
    for (let i = recent.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [recent[i], recent[j]] = [recent[j]!, recent[i]!];
    }
    for (const orderId of recent) {
      const n = Number(orderId.slice(1));
      const side = n % 3 === 0 ? "SELL" : "BUY";
      exposure.onOrder(snap(orderId, side, 2, 1, "PARTIALLY_FILLED"));
      exposure.onOrder(snap(orderId, side, 2, 2, "FILLED"));
    }
    assert.equal(exposure.net("NSE:INFY"), expected);
    assert.equal(exposure.openOrders, 0);
  });
});
