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

/**
 * Everything the guard knows of one instrument, as plain numbers changed in place: one lookup
 * per order finds all of it, and an event changes it without allocating.
 */
export interface Instrument {
  readonly key: string;
  /** Net position (all products), from the broker's positions and the fills seen since. */
  net: number;
  /** Quantity still to fill on open orders, per side. */
  openBuy: number;
  openSell: number;
  /** Quantity of orders sent and not answered yet, per side; a seed leaves these alone. */
  flightBuy: number;
  flightSell: number;
  /** Last traded price; 0 while none is known. */
  last: number;
}

/** One order the guard has seen: what of it is already counted. */
interface Tracked {
  readonly instrument: Instrument;
  readonly side: Side;
  /** Quantity still to fill, counted in the instrument's openBuy/openSell while the order is open. */
  remaining: number;
  /** Filled quantity already counted into the net position. */
  filled: number;
  open: boolean;
}

/**
 * Orders remembered per generation. Terminal orders are kept for at least one generation so a
 * late or replayed event cannot count a fill twice; open orders are carried over for as long as
 * they stay open, and a seed keeps the whole order book for a generation after it.
 *
 * Small on purpose: a map of a few thousand entries stays in the CPU's cache, while one of tens
 * of thousands made every new order a cache miss and a large allocation (a third of the guard's
 * cost per order). Replays come soon after what they repeat (an answer after its events, the
 * events a client synthesizes just after it reconnects), and a reconnect reseeds from the book.
 */
const GENERATION = 2048;

/** Bounded: instruments come from orders, quotes and positions; past this, the oldest unused go. */
const MAX_INSTRUMENTS = 50_000;

/**
 * The account's exposure as the broker reports it: net positions, open orders and orders still
 * in flight (sent, no answer yet). Seeded from the broker's positions and order book at connect
 * and kept in step from its own order events and answers; never from what a strategy believes.
 *
 * Every order seen is tracked with the filled quantity already counted, so an event or answer
 * that repeats a fill (a replay after a reconnect, an answer after its events) changes nothing.
 */
export class Exposure {
  readonly #instruments = new Map<string, Map<string, Instrument>>();
  #instrumentCount = 0;
  #orders = new Generation();
  #older = new Generation();
  /** The order seen last: its next events and the broker's answer usually follow straight away. */
  #lastId: string | undefined;
  #lastTracked: Tracked | undefined;
  /**
   * The greatest order id ever tracked (string order). An id above it cannot have been seen, so
   * a new order skips two lookups in large maps; brokers number orders upwards, so that is the
   * usual case. Any total order works: the test is only ever a shortcut to "not seen".
   */
  #maxId = "";
  #openCount = 0;
  /** Orders sent and not answered yet. */
  #inFlight = 0;

  /** The instrument's entry, made on first use. */
  instrument(exchange: string, symbol: string): Instrument {
    let bySymbol = this.#instruments.get(exchange);
    if (bySymbol === undefined) {
      bySymbol = new Map();
      this.#instruments.set(exchange, bySymbol);
    }
    let entry = bySymbol.get(symbol);
    if (entry === undefined) {
      // Before the new entry goes in, so the entry handed out is always the one in the map.
      if (this.#instrumentCount >= MAX_INSTRUMENTS) this.#forgetIdle();
      entry = {
        key: instrumentOf(exchange, symbol),
        net: 0,
        openBuy: 0,
        openSell: 0,
        flightBuy: 0,
        flightSell: 0,
        last: 0,
      };
      bySymbol.set(symbol, entry);
      this.#instrumentCount += 1;
    }
    return entry;
  }

  /** The instrument's entry if the guard holds one, without making one. */
  find(exchange: string, symbol: string): Instrument | undefined {
    return this.#instruments.get(exchange)?.get(symbol);
  }

  /**
   * Replaces positions and open orders with the broker's own view (at connect and after a
   * reconnect). In-flight quantities stay (those orders are still on their way and settle later),
   * and so do last prices, being the market's and not the account's.
   */
  seed(positions: readonly Position[], book: readonly OrderSnapshot[]): void {
    for (const bySymbol of this.#instruments.values()) {
      for (const entry of bySymbol.values()) {
        entry.net = 0;
        entry.openBuy = 0;
        entry.openSell = 0;
      }
    }
    this.#orders = new Generation();
    this.#older = new Generation();
    this.#lastId = undefined;
    this.#lastTracked = undefined;
    this.#openCount = 0;
    for (const p of positions) {
      const entry = this.instrument(p.exchange, p.symbol);
      entry.net += p.quantity;
      if (p.last_price > 0) entry.last = p.last_price;
    }
    // The positions already hold every fill so far: orders only add what they have still to fill.
    for (const order of book) this.#track(order, order.filled_quantity, false);
  }

  /** Counts a snapshot from an event or an answer; stale and repeated ones change nothing. */
  onOrder(order: OrderSnapshot): void {
    const id = order.order_id;
    let tracked: Tracked | undefined;
    if (id === this.#lastId) tracked = this.#lastTracked!;
    else {
      tracked = id > this.#maxId ? undefined : this.#orders.get(id);
      if (tracked === undefined && id <= this.#maxId) {
        tracked = this.#older.get(id);
        // Seen again: it moves up a generation, so it is remembered a whole generation from now.
        if (tracked !== undefined) this.#orders.add(id, tracked, false);
      }
      if (tracked === undefined) {
        // Not seen before: everything it has filled is new.
        this.#track(order, 0);
        return;
      }
      this.#lastId = id;
      this.#lastTracked = tracked;
    }
    const filled = order.filled_quantity;
    // An answer can arrive after the event that already moved the order on.
    if (filled < tracked.filled) return;
    if (filled > tracked.filled) this.#countFill(tracked, filled, order.average_price);
    if (!tracked.open) return;
    const terminal = isTerminal(order.status);
    const remaining = terminal ? 0 : Math.max(0, order.quantity - filled);
    if (remaining !== tracked.remaining) {
      if (tracked.side === "BUY") tracked.instrument.openBuy += remaining - tracked.remaining;
      else tracked.instrument.openSell += remaining - tracked.remaining;
      tracked.remaining = remaining;
    }
    if (terminal) {
      tracked.open = false;
      this.#openCount -= 1;
    }
  }

  onQuote(quote: Quote): void {
    if (quote.last_price > 0) this.instrument(quote.exchange, quote.symbol).last = quote.last_price;
  }

  /** Marks an order as sent: it counts until `settle` is called with the same figures. */
  send(instrument: Instrument, side: Side, quantity: number): void {
    this.#inFlight += 1;
    if (side === "BUY") instrument.flightBuy += quantity;
    else instrument.flightSell += quantity;
  }

  /** The broker answered (or failed) the order `send` counted. */
  settle(instrument: Instrument, side: Side, quantity: number): void {
    this.#inFlight -= 1;
    if (side === "BUY") instrument.flightBuy -= quantity;
    else instrument.flightSell -= quantity;
  }

  net(key: string): number {
    return this.#byKey(key)?.net ?? 0;
  }

  lastPrice(key: string): number | undefined {
    const last = this.#byKey(key)?.last ?? 0;
    return last > 0 ? last : undefined;
  }

  /** Quantity open or in flight on `side` of `key`. */
  pending(key: string, side: Side): number {
    const entry = this.#byKey(key);
    return entry === undefined ? 0 : pendingOf(entry, side);
  }

  /** The position `key` would reach if every open and in-flight order on `side` filled. */
  worst(key: string, side: Side): number {
    const entry = this.#byKey(key);
    return entry === undefined ? 0 : worstOf(entry, side);
  }

  get openOrders(): number {
    return this.#openCount + this.#inFlight;
  }

  openOrder(orderId: string): { key: string; side: Side; remaining: number } | undefined {
    const tracked = this.#orders.get(orderId) ?? this.#older.get(orderId);
    if (tracked === undefined || !tracked.open) return undefined;
    return { key: tracked.instrument.key, side: tracked.side, remaining: tracked.remaining };
  }

  /** Every instrument the guard holds (for comparing with the broker's own view). */
  instruments(): Instrument[] {
    const all: Instrument[] = [];
    for (const bySymbol of this.#instruments.values()) for (const entry of bySymbol.values()) all.push(entry);
    return all;
  }

  #byKey(key: string): Instrument | undefined {
    const colon = key.indexOf(":");
    return this.#instruments.get(key.slice(0, colon))?.get(key.slice(colon + 1));
  }

  #countFill(tracked: Tracked, filled: number, averagePrice: number): void {
    const delta = filled - tracked.filled;
    tracked.filled = filled;
    const instrument = tracked.instrument;
    instrument.net += tracked.side === "BUY" ? delta : -delta;
    if (instrument.last === 0 && averagePrice > 0) instrument.last = averagePrice;
  }

  /** Starts tracking an order with `counted` of its fills already in the net position. */
  #track(order: OrderSnapshot, counted: number, rotate = true): void {
    const instrument = this.instrument(order.exchange, order.symbol);
    const open = !isTerminal(order.status);
    const remaining = open ? Math.max(0, order.quantity - order.filled_quantity) : 0;
    const tracked: Tracked = { instrument, side: order.side, remaining, filled: counted, open };
    if (open) {
      this.#openCount += 1;
      if (order.side === "BUY") instrument.openBuy += remaining;
      else instrument.openSell += remaining;
    }
    if (order.filled_quantity > counted) this.#countFill(tracked, order.filled_quantity, order.average_price);
    this.#remember(order.order_id, tracked, rotate);
  }

  #remember(id: string, tracked: Tracked, rotate: boolean): void {
    const ascending = id > this.#maxId;
    if (ascending) this.#maxId = id;
    this.#lastId = id;
    this.#lastTracked = tracked;
    this.#orders.add(id, tracked, ascending);
    if (!rotate || this.#orders.size < Math.max(GENERATION, this.#openCount * 2)) return;
    // The older generation goes; what of it is still open moves up, so it is never forgotten.
    const dropped = this.#older;
    this.#older = this.#orders;
    this.#orders = new Generation();
    dropped.forEach((oldId, old) => {
      if (old.open && this.#older.get(oldId) === undefined) this.#orders.add(oldId, old, false);
    });
  }

  /** Drops instruments with nothing on them (no position, nothing open or in flight). */
  #forgetIdle(): void {
    for (const bySymbol of this.#instruments.values()) {
      for (const [symbol, entry] of bySymbol) {
        if (entry.net === 0 && pendingOf(entry, "BUY") === 0 && pendingOf(entry, "SELL") === 0) {
          bySymbol.delete(symbol);
          this.#instrumentCount -= 1;
        }
      }
    }
  }
}

/** Quantity open or in flight on `side`. */
export function pendingOf(entry: Instrument, side: Side): number {
  return side === "BUY" ? entry.openBuy + entry.flightBuy : entry.openSell + entry.flightSell;
}

/** The position the instrument would reach if every open and in-flight order on `side` filled. */
export function worstOf(entry: Instrument, side: Side): number {
  return side === "BUY"
    ? entry.net + entry.openBuy + entry.flightBuy
    : entry.net - entry.openSell - entry.flightSell;
}

/**
 * One generation of tracked orders. Ids above every id seen before (brokers number orders
 * upwards, so nearly all of them) are appended to sorted arrays: remembering one is a push, not a
 * hash-table insert, and finding one (rare: the order just seen is cached) a binary search. Any
 * other id goes to a map.
 */
class Generation {
  readonly #map = new Map<string, Tracked>();
  readonly #ids: string[] = [];
  readonly #tracked: Tracked[] = [];

  get size(): number {
    return this.#map.size + this.#ids.length;
  }

  /** `ascending`: `id` is above every id this generation holds. */
  add(id: string, tracked: Tracked, ascending: boolean): void {
    if (ascending) {
      this.#ids.push(id);
      this.#tracked.push(tracked);
    } else this.#map.set(id, tracked);
  }

  get(id: string): Tracked | undefined {
    const found = this.#map.get(id);
    if (found !== undefined) return found;
    const ids = this.#ids;
    let low = 0;
    let high = ids.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = ids[mid]!;
      if (at === id) return this.#tracked[mid];
      if (at < id) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }

  forEach(fn: (id: string, tracked: Tracked) => void): void {
    for (const [id, tracked] of this.#map) fn(id, tracked);
    for (let i = 0; i < this.#ids.length; i++) fn(this.#ids[i]!, this.#tracked[i]!);
  }
}
