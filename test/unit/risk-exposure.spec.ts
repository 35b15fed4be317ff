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

/** A small deterministic generator, so a failing run can be repeated from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Life {
  id: string;
  side: "BUY" | "SELL";
  quantity: number;
  /** Every snapshot the broker has sent of it, oldest first. */
  sent: OrderSnapshot[];
  /** Step at which the exposure last saw a snapshot of it. */
  seen: number;
  /** Step at which it fills the rest, or is cancelled. */
  endsAt: number;
  done: boolean;
}

describe("Exposure: agrees with the account over long random runs", function () {
  this.timeout(20_000);

  // Resting orders outlive thousands of newer ones (past the ring and the generations), ids come
  // mostly upwards with some below the highest seen, and snapshots already sent are replayed
  // (stale or current) while the order was seen within the last 1500 orders.
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: net, open and pending match the broker's truth after replays`, function () {
      const next = random(seed);
      const exposure = new Exposure();
      const lives: Life[] = [];
      const live = new Set<Life>();
      /** Resting orders that ended, newest last: their ends are replayed too. */
      const ended: Life[] = [];
      const feed = (life: Life, order: OrderSnapshot, step: number): void => {
        exposure.onOrder(order);
        life.seen = step;
      };
      const emit = (life: Life, filled: number, status: string, step: number): void => {
        const order = snap(life.id, life.side, life.quantity, filled, status);
        life.sent.push(order);
        feed(life, order, step);
      };
      const check = (): void => {
        let net = 0;
        const pending = { BUY: 0, SELL: 0 };
        let open = 0;
        for (const life of lives) {
          const last = life.sent[life.sent.length - 1]!;
          net += life.side === "BUY" ? last.filled_quantity : -last.filled_quantity;
          if (!life.done) {
            open++;
            pending[life.side] += life.quantity - last.filled_quantity;
          }
        }
        assert.equal(exposure.net("NSE:INFY"), net, "net");
        assert.equal(exposure.openOrders, open, "open orders");
        assert.equal(exposure.pending("NSE:INFY", "BUY"), pending.BUY, "pending BUY");
        assert.equal(exposure.pending("NSE:INFY", "SELL"), pending.SELL, "pending SELL");
      };
      const steps = 30_000;
      for (let step = 0; step < steps; step++) {
        const n = lives.length;
        const id = next() < 0.1 ? `A${String(n).padStart(9, "0")}` : `P${String(n).padStart(9, "0")}`;
        const resting = next() < 0.05;
        const life: Life = {
          id,
          side: next() < 0.5 ? "BUY" : "SELL",
          quantity: 1 + Math.floor(next() * 5),
          sent: [],
          seen: step,
          endsAt: resting ? step + Math.floor(next() * 12_000) : step,
          done: false,
        };
        lives.push(life);
        emit(life, 0, "OPEN", step);
        if (resting) {
          live.add(life);
          if (life.quantity > 1 && next() < 0.5) emit(life, 1, "PARTIALLY_FILLED", step);
        } else {
          life.done = true;
          emit(life, life.quantity, "FILLED", step);
          feed(life, life.sent[1]!, step); // the broker's answer after its events
        }
        for (const other of live) {
          if (other.endsAt > step) continue;
          live.delete(other);
          ended.push(other);
          other.done = true;
          const filled = other.sent[other.sent.length - 1]!.filled_quantity;
          if (next() < 0.5) emit(other, other.quantity, "FILLED", step);
          else emit(other, filled, "CANCELLED", step);
        }
        // Replays of what was already sent, of orders seen lately.
        for (let r = 0; r < 3; r++) {
          const pick =
            r < 2 || ended.length === 0
              ? lives[n - Math.floor(next() * Math.min(n + 1, 1500))]!
              : ended[ended.length - 1 - Math.floor(next() * Math.min(ended.length, 50))]!;
          if (step - pick.seen >= 1500) continue;
          feed(pick, pick.sent[Math.floor(next() * pick.sent.length)]!, step);
        }
        if (step % 2500 === 0) check();
      }
      check();
    });
  }
});
