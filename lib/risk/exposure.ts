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

interface OpenOrder {
  key: string;
  side: Side;
  /** Quantity still to fill. */
  remaining: number;
  /** Filled quantity already counted into the net position. */
  filled: number;
}

interface Pending {
  buy: number;
  sell: number;
}

/** Terminal order ids remembered (at least half this many) so a late or replayed event cannot count a fill twice. */
const DONE_MEMORY = 20_000;

/**
 * The account's exposure as the broker reports it: net positions, open orders and orders still
 * in flight (sent, no answer yet). Seeded from the broker's positions and order book at connect
 * and kept in step from its own order events and answers; never from what a strategy believes.
 */
export class Exposure {
  readonly #net = new Map<string, number>();
  readonly #lastPrice = new Map<string, number>();
  readonly #open = new Map<string, OpenOrder>();
  readonly #pending = new Map<string, Pending>();
  /**
   * Terminal order ids in two generations: when the newer fills up it becomes the older and the
   * oldest are dropped at once (deleting one at a time from a Set's front costs more and more).
   */
  #done = new Set<string>();
  #doneBefore = new Set<string>();
  /** Orders sent and not answered yet; their quantities are in #pending until settled. */
  #inFlight = 0;

  /** Replaces everything with the broker's own view (at connect and after a reconnect). */
  seed(positions: readonly Position[], book: readonly OrderSnapshot[]): void {
    this.#net.clear();
    this.#open.clear();
    this.#pending.clear();
    this.#done.clear();
    this.#doneBefore.clear();
    for (const p of positions) {
      const key = instrumentOf(p.exchange, p.symbol);
      this.#net.set(key, (this.#net.get(key) ?? 0) + p.quantity);
      if (p.last_price > 0) this.#lastPrice.set(key, p.last_price);
    }
    // The positions already hold every fill so far: orders only add what they have still to fill.
    for (const order of book) {
      if (isTerminal(order.status)) this.#remember(order.order_id);
      else this.#setOpen(order.order_id, this.#entryOf(order, order.filled_quantity));
    }
  }

  /** Counts a snapshot from an event or an answer; stale and repeated ones change nothing. */
  onOrder(order: OrderSnapshot): void {
    const id = order.order_id;
    if (this.#done.has(id) || this.#doneBefore.has(id)) return;
    const known = this.#open.get(id);
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
      if (known !== undefined) this.#setOpen(id, undefined);
      this.#remember(id);
    } else if (known !== undefined) {
      // Same order, moved on: update in place (no new object per event on the hot path).
      const remaining = Math.max(0, order.quantity - order.filled_quantity);
      this.#addPending(known.key, known.side, remaining - known.remaining);
      known.remaining = remaining;
      known.filled = order.filled_quantity;
    } else {
      this.#setOpen(id, this.#entryOf(order, order.filled_quantity));
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
    return this.#open.size + this.#inFlight;
  }

  openOrder(orderId: string): { key: string; side: Side; remaining: number } | undefined {
    return this.#open.get(orderId);
  }

  #entryOf(order: OrderSnapshot, filled: number): OpenOrder {
    return {
      key: instrumentOf(order.exchange, order.symbol),
      side: order.side,
      remaining: Math.max(0, order.quantity - order.filled_quantity),
      filled,
    };
  }

  #setOpen(id: string, entry: OpenOrder | undefined): void {
    const old = this.#open.get(id);
    if (old !== undefined) this.#addPending(old.key, old.side, -old.remaining);
    if (entry === undefined) {
      this.#open.delete(id);
      return;
    }
    this.#open.set(id, entry);
    this.#addPending(entry.key, entry.side, entry.remaining);
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

  #remember(id: string): void {
    this.#done.add(id);
    if (this.#done.size >= DONE_MEMORY / 2) {
      this.#doneBefore = this.#done;
      this.#done = new Set();
    }
  }
}
