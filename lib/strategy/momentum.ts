import { z } from "zod";
import type { Side } from "../protocol/fields";
import { Exchange, Product, Quantity, Symbol } from "../protocol/fields";
import type { OrderRequestInput } from "../protocol/orders";
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
  order: OrderRequestInput & { side: Side; quantity: number };
  roc: number;
  lookback: number;
  price: number;
  /** The strategy's own net position in the symbol once this order fills. */
  position_after: number;
}

interface SymbolState {
  /** The last lookback + 1 prices, oldest first. */
  prices: number[];
  /** Quotes still to skip after the last signal. */
  cooldown: number;
  /** Net position the strategy intends (its own signals summed), not what the broker filled. */
  position: number;
}

/**
 * Rate-of-change momentum per symbol: ROC = (price now − price `lookback` quotes ago) / that price.
 * ROC ≥ threshold buys; ROC ≤ −threshold sells a long position down, or goes short when allowed;
 * |position| never exceeds max_position.
 */
export class MomentumStrategy {
  readonly settings: MomentumSettings;
  readonly #states = new Map<string, SymbolState>();

  constructor(settings: MomentumSettingsInput) {
    this.settings = parseOrThrow(MomentumSettings, settings, "momentum settings");
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
    const roc = (quote.last_price - then) / then;
    const trade = this.#decide(roc, state.position);
    if (trade === undefined) return undefined;
    state.position += trade.side === "BUY" ? trade.quantity : -trade.quantity;
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
      },
      roc,
      lookback,
      price: quote.last_price,
      position_after: state.position,
    };
  }

  position(symbol: string, exchange: Exchange = "NSE"): number {
    return this.#states.get(`${exchange}:${symbol}`)?.position ?? 0;
  }

  /** Forgets prices, cooldowns and positions of every symbol. */
  reset(): void {
    this.#states.clear();
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
