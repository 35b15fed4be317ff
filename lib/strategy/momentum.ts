import { z } from "zod";
import { newClientOrderId } from "../common/ids";
import type { Side } from "../protocol/fields";
import { Exchange, Product, Quantity, Symbol } from "../protocol/fields";
import type { OrderRequestInput, OrderSnapshot } from "../protocol/orders";
import { isTerminal } from "../protocol/orders";
import type { Position } from "../protocol/positions";
import { parseOrThrow } from "../protocol/validate";

const WholeAtLeast = (min: number) =>
  z
    .number({ error: (issue) => (issue.input === undefined ? "is required" : "must be a number") })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` });

export const MomentumSettings = z.strictObject({
  /** How many quotes back the rate of change looks. */
  lookback: WholeAtLeast(1).max(10_000, { error: "must be at most 10000" }).default(10),
  /** Rate of change (a fraction: 0.002 = 0.2 %) that makes a signal, up or down. */
  threshold: z
    .number({ error: (issue) => (issue.input === undefined ? "is required" : "must be a number") })
    .positive({ error: "must be greater than 0" })
    .max(1, { error: "must be at most 1 (100 %)" })
    .default(0.002),
  quantity: Quantity.default(1),
  /** Largest net position, long or short, the strategy lets itself build. */
  max_position: WholeAtLeast(1).default(10),
  allow_short: z.boolean().default(false),
  /** Quotes to skip after a signal, per symbol; absent = lookback. */
  cooldown: WholeAtLeast(0).optional(),
  product: Product.default("MIS"),
});
export type MomentumSettingsInput = z.input<typeof MomentumSettings>;
export type MomentumSettings = z.output<typeof MomentumSettings>;

/** A quote, or anything with a symbol and a last price (other fields are ignored). */
export const MomentumQuote = z.object({
  symbol: Symbol,
  exchange: Exchange.default("NSE"),
  last_price: z
    .number({ error: (issue) => (issue.input === undefined ? "is required" : "must be a number") })
    .positive({ error: "must be greater than 0" }),
});

export interface MomentumSignal {
  order: OrderRequestInput & { side: Side; quantity: number; client_order_id: string };
  roc: number;
  lookback: number;
  price: number;
  /** The net position in the symbol (account's, or the strategy's own) once this order fills. */
  position_after: number;
}

interface SymbolState {
  /** The last lookback + 1 prices, oldest first. */
  prices: number[];
  /** Quotes still to skip after the last signal. */
  cooldown: number;
  /**
   * Net position: the account's (from its positions, then its fills) once `seed` has run, else
   * the strategy's own signals summed.
   */
  position: number;
}

/** An order the strategy sent that has not filled or ended yet: signed quantity still to come. */
interface PendingOrder {
  key: string;
  remaining: number;
  sentAt: number;
  /** The broker has reported it: it stays pending until it ends, however long that takes. */
  seen: boolean;
}

/**
 * A signal the broker never reported within this time was refused before it reached the broker
 * (a risk limit, a validation error, no broker wired): it stops counting toward the position.
 */
export const UNSEEN_SIGNAL_TTL_MS = 30_000;

/** Events kept while the account is read, at most. */
const HEARD_MAX = 10_000;

/** Ended order ids remembered so a replayed fill event is not counted twice. */
const DONE_MEMORY = 10_000;

/**
 * Rate-of-change momentum per symbol: ROC = (price now − price `lookback` quotes ago) / that price.
 * ROC ≥ threshold buys; ROC ≤ −threshold sells a long position down, or goes short when allowed;
 * |position| never exceeds max_position.
 */
export class MomentumStrategy {
  readonly settings: MomentumSettings;
  readonly #states = new Map<string, SymbolState>();
  /** Signals sent and not yet filled, by client_order_id: they count toward max_position. */
  readonly #pending = new Map<string, PendingOrder>();
  /** Filled quantity already counted, by order id. */
  readonly #counted = new Map<string, number>();
  readonly #done = new Set<string>();
  /** Whether positions come from an account: then no signal goes out before `seed`. */
  readonly #fromAccount: boolean;
  readonly #now: () => number;
  #seeded = false;
  /** Order events heard while the account is being read (`beginRead`), applied again after `seed`. */
  #heard: OrderSnapshot[] | undefined;

  /**
   * With `fromAccount`, the position is the account's (per symbol and this strategy's product,
   * whoever traded it): `seed` it from the broker's positions and feed it every order event. Until
   * seeded it sends nothing, so a redeploy or restart can never start from a false zero.
   */
  constructor(settings: MomentumSettingsInput, options: { fromAccount?: boolean; now?: () => number } = {}) {
    this.settings = parseOrThrow(MomentumSettings, settings, "momentum settings");
    this.#fromAccount = options.fromAccount === true;
    this.#now = options.now ?? Date.now;
  }

  /** Whether the strategy knows its positions (always, when it keeps them itself). */
  get seeded(): boolean {
    return !this.#fromAccount || this.#seeded;
  }

  /**
   * The account is about to be read: events heard from now until `seed` are applied again on top of
   * what it read. An event for a fill the read already holds then changes nothing; one for a fill
   * that landed after the read (its event came before the seed replaced the counts) is not lost.
   */
  beginRead(): void {
    this.#heard ??= [];
  }

  /**
   * Takes the account's positions (of this strategy's product) and order book as the truth:
   * positions hold every fill so far, so open orders only add what they have still to fill.
   */
  seed(positions: readonly Position[], book: readonly OrderSnapshot[]): void {
    for (const state of this.#states.values()) state.position = 0;
    for (const p of positions) {
      if (p.product !== this.settings.product) continue;
      this.#state(`${p.exchange}:${p.symbol}`).position += p.quantity;
    }
    this.#counted.clear();
    this.#done.clear();
    for (const order of book) {
      if (isTerminal(order.status)) this.#remember(order.order_id);
      else this.#counted.set(order.order_id, order.filled_quantity);
    }
    for (const [clientId, pending] of this.#pending) {
      const order = book.find((o) => o.client_order_id === clientId);
      if (order === undefined) continue;
      if (isTerminal(order.status)) this.#pending.delete(clientId);
      else {
        pending.remaining = Math.sign(pending.remaining) * (order.quantity - order.filled_quantity);
        pending.seen = true;
      }
    }
    this.#seeded = true;
    const heard = this.#heard;
    this.#heard = undefined;
    if (heard !== undefined) for (const order of heard) this.onOrder(order);
  }

  /** Keeps the position in step with the account: every fill of this product moves it. */
  onOrder(order: OrderSnapshot): void {
    if (!this.#fromAccount || order.product !== this.settings.product) return;
    // Bounded: a read that never ends must not hold every event of the day.
    if (this.#heard !== undefined && this.#heard.length < HEARD_MAX) this.#heard.push(order);
    const id = order.order_id;
    const pending = this.#pending.get(order.client_order_id);
    if (pending !== undefined) {
      const left = order.quantity - order.filled_quantity;
      if (isTerminal(order.status) || left <= 0) this.#pending.delete(order.client_order_id);
      else {
        pending.remaining = (order.side === "BUY" ? 1 : -1) * left;
        pending.seen = true;
      }
    }
    if (this.#done.has(id)) return;
    const counted = this.#counted.get(id) ?? 0;
    const delta = order.filled_quantity - counted;
    if (delta > 0) {
      this.#state(`${order.exchange}:${order.symbol}`).position += order.side === "BUY" ? delta : -delta;
    }
    if (isTerminal(order.status)) {
      this.#counted.delete(id);
      this.#remember(id);
    } else if (delta > 0 || !this.#counted.has(id)) {
      this.#counted.set(id, Math.max(counted, order.filled_quantity));
    }
  }

  /** A signal whose order was refused or failed to send: it will never fill. */
  forget(clientOrderId: string): void {
    this.#pending.delete(clientOrderId);
  }

  get cooldown(): number {
    return this.settings.cooldown ?? this.settings.lookback;
  }

  /** Feeds one quote; returns the order to place when it makes a signal. */
  onQuote(input: unknown): MomentumSignal | undefined {
    const quote = parseOrThrow(MomentumQuote, input, "quote");
    const state = this.#state(`${quote.exchange}:${quote.symbol}`);
    const { lookback } = this.settings;
    state.prices.push(quote.last_price);
    if (state.prices.length > lookback + 1) state.prices.shift();
    if (state.cooldown > 0) {
      state.cooldown--;
      return undefined;
    }
    const then = state.prices[0];
    if (then === undefined || state.prices.length <= lookback) return undefined;
    if (!this.seeded) return undefined;
    const key = `${quote.exchange}:${quote.symbol}`;
    const roc = (quote.last_price - then) / then;
    const before = this.#effective(key, state);
    const trade = this.#decide(roc, before);
    if (trade === undefined) return undefined;
    const signed = trade.side === "BUY" ? trade.quantity : -trade.quantity;
    const clientOrderId = newClientOrderId();
    if (this.#fromAccount) {
      this.#pending.set(clientOrderId, { key, remaining: signed, sentAt: this.#now(), seen: false });
    } else state.position += signed;
    state.cooldown = this.cooldown;
    return {
      order: {
        symbol: quote.symbol,
        exchange: quote.exchange,
        side: trade.side,
        quantity: trade.quantity,
        order_type: "MARKET",
        product: this.settings.product,
        tag: "momentum",
        client_order_id: clientOrderId,
      },
      roc,
      lookback,
      price: quote.last_price,
      position_after: before + signed,
    };
  }

  /**
   * Puts past prices (oldest first) in front of what the symbol has seen, keeping the last
   * lookback + 1: the strategy then signals on its first live quote instead of after lookback
   * quotes. Never signals and leaves positions and cooldown alone. Returns the prices now held.
   */
  warmUp(exchange: Exchange, symbol: string, prices: readonly number[]): number {
    const state = this.#state(`${exchange}:${symbol}`);
    const usable = prices.filter((price) => Number.isFinite(price) && price > 0);
    state.prices = [...usable, ...state.prices].slice(-(this.settings.lookback + 1));
    return state.prices.length;
  }

  /** Net position, counting this strategy's orders still on their way. */
  position(symbol: string, exchange: Exchange = "NSE"): number {
    const key = `${exchange}:${symbol}`;
    const state = this.#states.get(key);
    return state === undefined ? this.#pendingFor(key) : this.#effective(key, state);
  }

  /**
   * Forgets prices and cooldowns of every symbol; a strategy keeping its own positions forgets
   * those too, while one reading the account keeps the account's (a reset cannot change them).
   */
  reset(): void {
    if (!this.#fromAccount) {
      this.#states.clear();
      return;
    }
    for (const state of this.#states.values()) {
      state.prices = [];
      state.cooldown = 0;
    }
  }

  #effective(key: string, state: SymbolState): number {
    return state.position + this.#pendingFor(key);
  }

  #pendingFor(key: string): number {
    const now = this.#now();
    let sum = 0;
    for (const [clientId, pending] of this.#pending) {
      if (!pending.seen && now - pending.sentAt > UNSEEN_SIGNAL_TTL_MS) this.#pending.delete(clientId);
      else if (pending.key === key) sum += pending.remaining;
    }
    return sum;
  }

  #remember(id: string): void {
    this.#done.add(id);
    if (this.#done.size > DONE_MEMORY) {
      const oldest = this.#done.values().next().value;
      if (oldest !== undefined) this.#done.delete(oldest);
    }
  }

  #decide(roc: number, position: number): { side: Side; quantity: number } | undefined {
    const { threshold, quantity, max_position: max, allow_short: allowShort } = this.settings;
    if (roc >= threshold) {
      const room = max - position;
      return room > 0 ? { side: "BUY", quantity: Math.min(quantity, room) } : undefined;
    }
    if (roc > -threshold) return undefined;
    if (position > 0) return { side: "SELL", quantity: Math.min(quantity, position) };
    if (!allowShort) return undefined;
    const room = max + position;
    return room > 0 ? { side: "SELL", quantity: Math.min(quantity, room) } : undefined;
  }

  #state(key: string): SymbolState {
    let state = this.#states.get(key);
    if (state === undefined) {
      state = { prices: [], cooldown: 0, position: 0 };
      this.#states.set(key, state);
    }
    return state;
  }
}
