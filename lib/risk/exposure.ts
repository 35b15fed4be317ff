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

/** An instrument with nothing held, open or in flight and no price yet (one literal: one V8 shape). */
export function blankInstrument(exchange: string, symbol: string): Instrument {
  return {
    key: instrumentOf(exchange, symbol),
    net: 0,
    openBuy: 0,
    openSell: 0,
    flightBuy: 0,
    flightSell: 0,
    last: 0,
  };
}

/**
 * An order sent with a client_order_id and not yet answered. Its first event may come before its
 * answer (pushes overtaking an answer, Kite's ticker before its REST reply); the event counts it
 * in the position or as open, so it stops counting as in flight then, not twice until the answer.
 */
export interface Flight {
  readonly instrument: Instrument;
  readonly side: Side;
  readonly quantity: number;
  readonly clientId: string;
  landed: boolean;
  /** Set when its answer proved nothing (see `keepUnknown`): the read count then; -1 before. */
  unknownSince: number;
}

/**
 * Quantity whose outcome is unknown (a placement or an enlarging modify whose answer was lost and
 * could not be settled): it counts as if it went through until the broker's own view shows it.
 */
interface Unknown {
  readonly instrument: Instrument;
  readonly side: Side;
  readonly quantity: number;
  /** A placement (counts as an open order too), not the extra quantity of a modify. */
  readonly order: boolean;
  readonly since: number;
}

/** An order remembered outside the ring (ids out of order, long-lived open orders, a seeded book). */
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
 * Orders held in the ring: the last RING orders whose ids came in ascending order (brokers number
 * orders upwards, so nearly all of them). Slots are reused and the per-order figures are typed
 * arrays, so remembering an order allocates nothing and leaves nothing for the garbage collector:
 * an object per order kept for a few thousand orders was most of the guard's cost per order on a
 * busy heap (each young-generation collection copied every one of them).
 *
 * An order leaving the ring moves to the maps if it is still open or was seen within the last
 * GENERATION orders, so a terminal order is remembered at least GENERATION orders after it was
 * last seen and a late or replayed event cannot count a fill twice; replays come soon after what
 * they repeat (an answer after its events, the events a client synthesizes just after it
 * reconnects), and a reconnect reseeds from the book.
 */
const RING = 4096;
const MASK = RING - 1;
const OPEN = 1;
const SELL = 2;

/**
 * Orders remembered outside the ring, per generation: at least one generation, and open ones for
 * as long as they stay open. A seed keeps the whole order book here for a generation after it.
 */
const GENERATION = 2048;

/** Bounded: instruments come from orders, quotes and positions; past this, the oldest unused go. */
const MAX_INSTRUMENTS = 50_000;

/**
 * The account's exposure as the broker reports it: net positions, open orders and orders still
 * in flight (sent, no answer yet). Seeded from the broker's positions and order book at connect
 * and kept in step from its own order events and answers; never from what a strategy believes.
 *
 * Every order seen is remembered with the filled quantity already counted, so an event or answer
 * that repeats a fill (a replay after a reconnect, an answer after its events) changes nothing.
 */
export class Exposure {
  readonly #instruments = new Map<string, Map<string, Instrument>>();
  #instrumentCount = 0;
  /** The instrument looked up last: an order's events and answer name the same one. */
  #lastExchange: string | undefined;
  #lastSymbol: string | undefined;
  #lastInstrument: Instrument | undefined;

  // The ring: slot `n & MASK` holds the n-th order appended; orders #head - RING … #head - 1 are live.
  readonly #ids: (string | undefined)[] = new Array<string | undefined>(RING).fill(undefined);
  readonly #of: (Instrument | undefined)[] = new Array<Instrument | undefined>(RING).fill(undefined);
  readonly #remaining = new Float64Array(RING);
  readonly #filled = new Float64Array(RING);
  readonly #flags = new Uint8Array(RING);
  /** The ring number #head had when each order was last seen. */
  readonly #seen = new Float64Array(RING);
  #head = 0;

  #recent = new Map<string, Tracked>();
  #older = new Map<string, Tracked>();
  /** The order seen last (its ring number): its next events and the answer usually follow. */
  #lastId: string | undefined;
  #lastIndex = -1;
  /**
   * The greatest order id ever remembered (string order). An id above it cannot have been seen,
   * so a new order skips every lookup and goes to the end of the ring. Any total order works: the
   * test is only ever a shortcut to "not seen".
   */
  #maxId = "";
  #openCount = 0;
  /** Orders sent and not answered yet. */
  #inFlight = 0;
  /** Those of them sent with a client_order_id, by it, until their first event or answer. */
  readonly #flights = new Map<string, Flight>();
  /** Outcomes not known yet, kept until a read of the broker's book that began after them. */
  readonly #unknowns = new Set<Unknown>();
  readonly #unknownFlights = new Set<Flight>();
  /** Reads of the broker's book begun so far (`beginRead`). */
  #reads = 0;

  /** The instrument's entry, made on first use. */
  instrument(exchange: string, symbol: string): Instrument {
    if (symbol === this.#lastSymbol && exchange === this.#lastExchange) return this.#lastInstrument!;
    let bySymbol = this.#instruments.get(exchange);
    if (bySymbol === undefined) {
      bySymbol = new Map();
      this.#instruments.set(exchange, bySymbol);
    }
    let entry = bySymbol.get(symbol);
    if (entry === undefined) {
      // Before the new entry goes in, so the entry handed out is always the one in the map.
      if (this.#instrumentCount >= MAX_INSTRUMENTS) this.#forgetIdle();
      entry = blankInstrument(exchange, symbol);
      bySymbol.set(symbol, entry);
      this.#instrumentCount += 1;
    }
    this.#lastExchange = exchange;
    this.#lastSymbol = symbol;
    this.#lastInstrument = entry;
    return entry;
  }

  /** The instrument's entry if the guard holds one, without making one. */
  find(exchange: string, symbol: string): Instrument | undefined {
    if (symbol === this.#lastSymbol && exchange === this.#lastExchange) return this.#lastInstrument;
    return this.#instruments.get(exchange)?.get(symbol);
  }

  /**
   * Replaces positions and open orders with the broker's own view (at connect and after a
   * reconnect). In-flight quantities stay (those orders are still on their way and settle later),
   * and so do last prices, being the market's and not the account's.
   */
  seed(positions: readonly Position[], book: readonly OrderSnapshot[], read = this.#reads): void {
    for (const bySymbol of this.#instruments.values()) {
      for (const entry of bySymbol.values()) {
        entry.net = 0;
        entry.openBuy = 0;
        entry.openSell = 0;
      }
    }
    this.#ids.fill(undefined);
    this.#of.fill(undefined);
    this.#flags.fill(0);
    this.#head = 0;
    this.#recent = new Map();
    this.#older = new Map();
    this.#lastId = undefined;
    this.#lastIndex = -1;
    this.#openCount = 0;
    for (const p of positions) {
      const entry = this.instrument(p.exchange, p.symbol);
      entry.net += p.quantity;
      if (p.last_price > 0) entry.last = p.last_price;
    }
    // The positions already hold every fill so far: orders only add what they have still to fill.
    // The whole book is kept (outside the ring, which holds fewer) for a generation after this.
    for (const order of book)
      this.#remember(order.order_id, this.#tracked(order, order.filled_quantity), false);
    this.#settleUnknowns(book, read);
  }

  /** Marks the start of a read of the broker's book; `seed` takes the mark it returned. */
  beginRead(): number {
    this.#reads += 1;
    return this.#reads;
  }

  /**
   * The book read from `read` on now counts every order in it, so an order still in flight that it
   * lists stops counting as in flight (its answer then lands nothing), and an unknown outcome from
   * before that read is settled: the order is in the book if it was placed, and absent if not.
   */
  #settleUnknowns(book: readonly OrderSnapshot[], read: number): void {
    if (this.#flights.size !== 0) {
      for (const order of book) {
        const flight = this.#flights.get(order.client_order_id);
        if (flight !== undefined) this.land(flight);
      }
    }
    for (const flight of this.#unknownFlights) {
      if (flight.unknownSince < read) this.land(flight);
    }
    for (const unknown of this.#unknowns) {
      if (unknown.since >= read) continue;
      this.#unknowns.delete(unknown);
      if (unknown.order) this.settle(unknown.instrument, unknown.side, unknown.quantity);
      else this.release(unknown.instrument, unknown.side, unknown.quantity);
    }
  }

  /**
   * A placement (`order`) or a modify's extra quantity whose answer proved nothing: it stays
   * counted until a book read begun after now (or, with a client_order_id, its first event).
   */
  keepUnknown(instrument: Instrument, side: Side, quantity: number, order: boolean): void {
    this.#unknowns.add({ instrument, side, quantity, order, since: this.#reads });
  }

  /** As `keepUnknown`, for a placement sent with a client_order_id (still in `#flights`). */
  keepUnknownFlight(flight: Flight): void {
    if (flight.landed) return;
    flight.unknownSince = this.#reads;
    this.#unknownFlights.add(flight);
  }

  /** Outcomes still unknown (for the admin view and tests). */
  get unknownOutcomes(): number {
    return this.#unknowns.size + this.#unknownFlights.size;
  }

  /** Counts a snapshot from an event or an answer; stale and repeated ones change nothing. */
  onOrder(order: OrderSnapshot): void {
    if (this.#flights.size !== 0) {
      const flight = this.#flights.get(order.client_order_id);
      if (flight !== undefined) this.land(flight);
    }
    const id = order.order_id;
    let index: number;
    if (id === this.#lastId) index = this.#lastIndex;
    else if (id > this.#maxId) {
      // Not seen before: everything it has filled is new.
      this.#append(id, order);
      return;
    } else {
      index = this.#ringIndex(id);
      if (index < 0) {
        this.#onTracked(id, order);
        return;
      }
      this.#lastId = id;
      this.#lastIndex = index;
    }
    const slot = index & MASK;
    this.#seen[slot] = this.#head;
    const counted = this.#filled[slot]!;
    const filled = order.filled_quantity;
    // An answer can arrive after the event that already moved the order on.
    if (filled < counted) return;
    const flags = this.#flags[slot]!;
    const instrument = this.#of[slot]!;
    if (filled > counted) {
      this.#filled[slot] = filled;
      countFill(instrument, (flags & SELL) === 0, filled - counted, order.average_price);
    }
    if ((flags & OPEN) === 0) return;
    const terminal = isTerminal(order.status);
    const remaining = terminal ? 0 : Math.max(0, order.quantity - filled);
    const before = this.#remaining[slot]!;
    if (remaining !== before) {
      if ((flags & SELL) === 0) instrument.openBuy += remaining - before;
      else instrument.openSell += remaining - before;
      this.#remaining[slot] = remaining;
    }
    if (terminal) {
      this.#flags[slot] = flags & ~OPEN;
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

  /**
   * As `send`, for an order with a client_order_id: it stops counting as in flight at its first
   * event or its answer, whichever comes first (`land`). Undefined when that id is already in
   * flight (a retry): then it counts as `send` does, until `settle`.
   */
  sendTracked(instrument: Instrument, side: Side, quantity: number, clientId: string): Flight | undefined {
    this.send(instrument, side, quantity);
    if (this.#flights.has(clientId)) return undefined;
    const flight: Flight = { instrument, side, quantity, clientId, landed: false, unknownSince: -1 };
    this.#flights.set(clientId, flight);
    return flight;
  }

  /** The order `sendTracked` counted was answered, failed, or reported by an event: once. */
  land(flight: Flight): void {
    if (flight.landed) return;
    flight.landed = true;
    this.#unknownFlights.delete(flight);
    if (this.#flights.get(flight.clientId) === flight) this.#flights.delete(flight.clientId);
    this.settle(flight.instrument, flight.side, flight.quantity);
  }

  /** The broker answered (or failed) the order `send` counted. */
  settle(instrument: Instrument, side: Side, quantity: number): void {
    this.#inFlight -= 1;
    if (side === "BUY") instrument.flightBuy -= quantity;
    else instrument.flightSell -= quantity;
  }

  /** Counts quantity a modify adds as on its way (not an order of its own) until `release`. */
  hold(instrument: Instrument, side: Side, quantity: number): void {
    if (side === "BUY") instrument.flightBuy += quantity;
    else instrument.flightSell += quantity;
  }

  release(instrument: Instrument, side: Side, quantity: number): void {
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
    const index = this.#ringIndex(orderId);
    if (index >= 0) {
      const slot = index & MASK;
      const flags = this.#flags[slot]!;
      if ((flags & OPEN) === 0) return undefined;
      return {
        key: this.#of[slot]!.key,
        side: (flags & SELL) === 0 ? "BUY" : "SELL",
        remaining: this.#remaining[slot]!,
      };
    }
    const tracked = this.#recent.get(orderId) ?? this.#older.get(orderId);
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

  /** The ring number of order `id`, or -1 when the ring does not hold it (binary search: ids ascend). */
  #ringIndex(id: string): number {
    const ids = this.#ids;
    let low = Math.max(0, this.#head - RING);
    let high = this.#head - 1;
    while (low <= high) {
      const mid = Math.floor((low + high) / 2);
      const at = ids[mid & MASK]!;
      if (at === id) return mid;
      if (at < id) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  /** An order above every id seen: counted, and remembered at the end of the ring. */
  #append(id: string, order: OrderSnapshot): void {
    const index = this.#head;
    const slot = index & MASK;
    if (index >= RING) {
      const flags = this.#flags[slot]!;
      const open = (flags & OPEN) !== 0;
      // Still open, or seen lately: it moves out of the ring rather than being forgotten.
      if (open || index - this.#seen[slot]! < GENERATION) {
        const tracked: Tracked = {
          instrument: this.#of[slot]!,
          side: (flags & SELL) === 0 ? "BUY" : "SELL",
          remaining: this.#remaining[slot]!,
          filled: this.#filled[slot]!,
          open,
        };
        this.#remember(this.#ids[slot]!, tracked, true);
      }
    }
    const instrument = this.instrument(order.exchange, order.symbol);
    const buy = order.side === "BUY";
    const open = !isTerminal(order.status);
    const filled = order.filled_quantity;
    const remaining = open ? Math.max(0, order.quantity - filled) : 0;
    this.#ids[slot] = id;
    this.#of[slot] = instrument;
    this.#remaining[slot] = remaining;
    this.#filled[slot] = filled;
    this.#flags[slot] = (open ? OPEN : 0) | (buy ? 0 : SELL);
    this.#seen[slot] = index;
    this.#head = index + 1;
    this.#maxId = id;
    this.#lastId = id;
    this.#lastIndex = index;
    if (open) {
      this.#openCount += 1;
      if (buy) instrument.openBuy += remaining;
      else instrument.openSell += remaining;
    }
    if (filled > 0) countFill(instrument, buy, filled, order.average_price);
  }

  /** An order outside the ring: counted against what it had counted, or remembered afresh. */
  #onTracked(id: string, order: OrderSnapshot): void {
    let tracked = this.#recent.get(id);
    if (tracked === undefined) {
      tracked = this.#older.get(id);
      if (tracked === undefined) {
        this.#remember(id, this.#tracked(order, 0), true);
        return;
      }
      // Seen again: it moves up a generation, so it is remembered a whole generation from now.
      this.#recent.set(id, tracked);
    }
    const filled = order.filled_quantity;
    if (filled < tracked.filled) return;
    if (filled > tracked.filled) {
      countFill(tracked.instrument, tracked.side === "BUY", filled - tracked.filled, order.average_price);
      tracked.filled = filled;
    }
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

  /** Counts an order first seen with `counted` of its fills already in the net position. */
  #tracked(order: OrderSnapshot, counted: number): Tracked {
    const instrument = this.instrument(order.exchange, order.symbol);
    const open = !isTerminal(order.status);
    const remaining = open ? Math.max(0, order.quantity - order.filled_quantity) : 0;
    const tracked: Tracked = { instrument, side: order.side, remaining, filled: counted, open };
    if (open) {
      this.#openCount += 1;
      if (order.side === "BUY") instrument.openBuy += remaining;
      else instrument.openSell += remaining;
    }
    if (order.filled_quantity > counted) {
      countFill(instrument, order.side === "BUY", order.filled_quantity - counted, order.average_price);
      tracked.filled = order.filled_quantity;
    }
    return tracked;
  }

  #remember(id: string, tracked: Tracked, rotate: boolean): void {
    if (id > this.#maxId) this.#maxId = id;
    this.#recent.set(id, tracked);
    if (!rotate || this.#recent.size < Math.max(GENERATION, this.#openCount * 2)) return;
    // The older generation goes; what of it is still open moves up, so it is never forgotten.
    const dropped = this.#older;
    this.#older = this.#recent;
    this.#recent = new Map();
    for (const [oldId, old] of dropped) {
      if (old.open && !this.#older.has(oldId)) this.#recent.set(oldId, old);
    }
  }

  /** Drops instruments with nothing on them (no position, nothing open or in flight). */
  #forgetIdle(): void {
    this.#lastExchange = undefined;
    this.#lastSymbol = undefined;
    this.#lastInstrument = undefined;
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

/** Adds `delta` newly filled on one side to the net position. */
function countFill(instrument: Instrument, buy: boolean, delta: number, averagePrice: number): void {
  instrument.net += buy ? delta : -delta;
  if (instrument.last === 0 && averagePrice > 0) instrument.last = averagePrice;
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
