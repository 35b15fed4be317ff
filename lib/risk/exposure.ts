import type { OrderSnapshot, Position, Quote, Side } from "../protocol";
import { isTerminal } from "../protocol/orders";

const KEYS = new Map<string, Map<string, string>>();

/**
 * "NSE:INFY": positions are netted per instrument across products. Interned, since every order
 * looks its key up several times: a fresh concatenated string would be flattened and hashed anew
 * each time (a measurable part of the guard's cost per order).
 */
export function instrumentOf(exchange: string, symbol: string): string {
  let bySymbol = KEYS.get(exchange);
  if (bySymbol === undefined) {
    bySymbol = new Map();
    KEYS.set(exchange, bySymbol);
  }
  let key = bySymbol.get(symbol);
  if (key === undefined) {
    key = `${exchange}:${symbol}`;
    // Bounded: symbols come from orders a flow sends; past this, keys are made afresh.
    if (bySymbol.size < 50_000) bySymbol.set(symbol, key);
  }
  return key;
}

interface Entry {
  key: string;
  side: Side;
  /** Quantity still to fill (0 once terminal). */
  remaining: number;
  /** Filled quantity already counted into the net position. */
  filled: number;
  /** Terminal: remembered only so a late or replayed event cannot count a fill twice. */
  done: boolean;
}

interface Pending {
  buy: number;
  sell: number;
}

/**
 * A terminal order first seen terminal: all it needs is to be known as done, so one object serves
 * all. Never written to (done entries are returned from before any write); not frozen, so it keeps
 * the shape of every other entry and the lookups stay monomorphic.
 */
const DONE: Readonly<Entry> = { key: "", side: "BUY", remaining: 0, filled: 0, done: true };

/** Orders added per generation: terminal ids are remembered for at least this many new orders. */
const GENERATION = 10_000;

/**
 * The account's exposure as the broker reports it: net positions, open orders and orders still
 * in flight (sent, no answer yet). Seeded from the broker's positions and order book at connect
 * and kept in step from its own order events and answers; never from what a strategy believes.
 */
export class Exposure {
  readonly #net = new Map<string, number>();
  readonly #lastPrice = new Map<string, number>();
  readonly #pending = new Map<string, Pending>();
  /**
   * Every order seen, open and terminal, in two generations: one lookup per event answers both
   * "is it open?" and "is it already done?". When the newer generation has taken GENERATION new
   * orders the older is dropped whole (its open orders carried over first), which is cheaper
   * than forgetting terminal ids one at a time.
   */
  #orders = new Map<string, Entry>();
  #older = new Map<string, Entry>();
  #added = 0;
  #open = 0;
  /**
   * The order last added to the newer generation: an order's later events and the broker's answer
   * usually follow its first event straight away, and find it here without a map lookup.
   */
  #lastId: string | undefined;
  #lastEntry: Entry | undefined;
  /** Orders sent and not answered yet; their quantities are in #pending until settled. */
  #inFlight = 0;

  /** Replaces everything with the broker's own view (at connect and after a reconnect). */
  seed(positions: readonly Position[], book: readonly OrderSnapshot[]): void {
    this.#net.clear();
    this.#pending.clear();
    this.#orders.clear();
    this.#older.clear();
    this.#added = 0;
    this.#open = 0;
    this.#lastId = undefined;
    this.#lastEntry = undefined;
    for (const p of positions) {
      const key = instrumentOf(p.exchange, p.symbol);
      this.#net.set(key, (this.#net.get(key) ?? 0) + p.quantity);
      if (p.last_price > 0) this.#lastPrice.set(key, p.last_price);
    }
    // The positions already hold every fill so far: orders only add what they have still to fill.
    for (const order of book) {
      if (isTerminal(order.status)) this.#add(order.order_id, DONE);
      else this.#addOpen(order, order.filled_quantity);
    }
  }

  /** Counts a snapshot from an event or an answer; stale and repeated ones change nothing. */
  onOrder(order: OrderSnapshot): void {
    const id = order.order_id;
    let known = id === this.#lastId ? this.#lastEntry : this.#orders.get(id);
    let older = false;
    if (known === undefined) {
      known = this.#older.get(id);
      older = known !== undefined;
    }
    if (known?.done === true) return;
    const counted = known?.filled ?? 0;
    // An answer can arrive after the event that already moved the order on.
    if (order.filled_quantity < counted) return;
    const delta = order.filled_quantity - counted;
    if (delta > 0) {
      const key = instrumentOf(order.exchange, order.symbol);
      this.#net.set(key, (this.#net.get(key) ?? 0) + (order.side === "BUY" ? delta : -delta));
      if (order.average_price > 0 && !this.#lastPrice.has(key)) this.#lastPrice.set(key, order.average_price);
    }
    if (isTerminal(order.status)) {
      if (known === undefined) {
        this.#add(id, DONE);
        return;
      }
      this.#addPending(known.key, known.side, -known.remaining);
      known.remaining = 0;
      known.filled = order.filled_quantity;
      known.done = true;
      this.#open -= 1;
      // A long-lived order ends: remember it for a whole generation from now, not just what is left of the older one.
      if (older) this.#orders.set(id, known);
    } else if (known !== undefined) {
      // Same order, moved on: update in place (no new object per event on the hot path).
      const remaining = Math.max(0, order.quantity - order.filled_quantity);
      this.#addPending(known.key, known.side, remaining - known.remaining);
      known.remaining = remaining;
      known.filled = order.filled_quantity;
    } else {
      this.#addOpen(order, order.filled_quantity);
    }
  }

  onQuote(quote: Quote): void {
    this.#lastPrice.set(instrumentOf(quote.exchange, quote.symbol), quote.last_price);
  }

  /** Marks an order as sent: it counts until `settle` is called with the same figures. */
  send(key: string, side: Side, quantity: number): void {
    this.#inFlight += 1;
    this.#addPending(key, side, quantity);
  }

  /** The broker answered (or failed) the order `send` counted. */
  settle(key: string, side: Side, quantity: number): void {
    this.#inFlight -= 1;
    this.#addPending(key, side, -quantity);
  }

  net(key: string): number {
    return this.#net.get(key) ?? 0;
  }

  lastPrice(key: string): number | undefined {
    return this.#lastPrice.get(key);
  }

  /** Quantity open or in flight on `side` of `key`. */
  pending(key: string, side: Side): number {
    const p = this.#pending.get(key);
    return p === undefined ? 0 : side === "BUY" ? p.buy : p.sell;
  }

  /** The position `key` would reach if every open and in-flight order on `side` filled. */
  worst(key: string, side: Side): number {
    return side === "BUY"
      ? this.net(key) + this.pending(key, "BUY")
      : this.net(key) - this.pending(key, "SELL");
  }

  get openOrders(): number {
    return this.#open + this.#inFlight;
  }

  openOrder(orderId: string): { key: string; side: Side; remaining: number } | undefined {
    const entry = this.#orders.get(orderId) ?? this.#older.get(orderId);
    return entry === undefined || entry.done ? undefined : entry;
  }

  #addOpen(order: OrderSnapshot, filled: number): void {
    const entry: Entry = {
      key: instrumentOf(order.exchange, order.symbol),
      side: order.side,
      remaining: Math.max(0, order.quantity - order.filled_quantity),
      filled,
      done: false,
    };
    this.#open += 1;
    this.#addPending(entry.key, entry.side, entry.remaining);
    this.#add(order.order_id, entry);
  }

  #add(id: string, entry: Entry): void {
    this.#orders.set(id, entry);
    this.#lastId = id;
    this.#lastEntry = entry;
    this.#added += 1;
    if (this.#added < GENERATION) return;
    // The entry cached is in the generation about to become the older one: look it up again.
    this.#lastId = undefined;
    this.#lastEntry = undefined;
    // Open orders of the generation being dropped live on in the new one.
    const next = new Map<string, Entry>();
    for (const [orderId, old] of this.#older) {
      if (!old.done && !this.#orders.has(orderId)) next.set(orderId, old);
    }
    this.#older = this.#orders;
    this.#orders = next;
    this.#added = 0;
  }

  #addPending(key: string, side: Side, quantity: number): void {
    let p = this.#pending.get(key);
    if (p === undefined) {
      p = { buy: 0, sell: 0 };
      this.#pending.set(key, p);
    }
    if (side === "BUY") p.buy += quantity;
    else p.sell += quantity;
  }
}
