import { z } from "zod";
import type { Side } from "../protocol/fields";
import type { Quote } from "../protocol/quotes";
import { exactPaise } from "./money";
import type { Paise } from "./money";

/**
 * How much of an order one quote can fill, and at which prices.
 *
 * A quote offers its touch: the ask (BUY) or bid (SELL), or the last price when that side is
 * missing, moved onto the tick grid against the taker, for the size the quote states (ask_size / bid_size) or `default_touch_size` when it
 * states none. A LIMIT order takes at most what is left at the touch, and only if the touch is
 * at or better than its limit. A MARKET order also walks `market_depth_levels` synthetic levels
 * behind the touch, each `level_step_ticks` ticks further away and holding `level_size_pct` % of
 * the touch size. What is not filled waits for the next quote (or, for IOC, is cancelled by the
 * caller). Liquidity taken by one order is gone for the next order on the same quote, so a quote
 * fills resting orders in the order the caller offers them (time priority), not all at once.
 * With `volume_participation_pct`, all fills from one quote together also take at most that share
 * of the volume traded since the previous quote. `infinite` (relaxed) fills everything at the
 * touch, as the paper broker did before.
 */
export const LiquiditySettings = z.strictObject({
  infinite: z.boolean().default(false),
  default_touch_size: z.number().int().positive({ error: "must be greater than 0" }).max(1e9).default(100),
  market_depth_levels: z.number().int().min(0).max(50, { error: "must be at most 50" }).default(5),
  level_step_ticks: z.number().int().min(1).max(1000).default(1),
  level_size_pct: z.number().int().min(1).max(10_000).default(100),
  /**
   * When a quote says how much traded since the previous quote (`traded_volume`), all fills from
   * that quote together take at most this % of it (0 = no volume cap). Off by default: the touch
   * size already bounds a fill.
   */
  volume_participation_pct: z.number().int().min(0).max(100, { error: "must be at most 100" }).default(0),
});
export type LiquiditySettingsInput = z.input<typeof LiquiditySettings>;
export type LiquiditySettings = z.output<typeof LiquiditySettings>;

/** The parts of the protocol's Quote liquidity reads (rupees), plus sizes it may carry later. */
export type LiquidityQuote = Pick<Quote, "last_price"> &
  Partial<Pick<Quote, "bid" | "ask">> & {
    bid_size?: number | undefined;
    ask_size?: number | undefined;
    /** Shares traded since the previous quote (see tradedSince), for the volume cap. */
    traded_volume?: number | undefined;
  };

/**
 * What traded between two quotes, from the cumulative day volume both carry: the difference, or
 * the whole new volume when it went down (a new trading day started the count again).
 */
export function tradedSince(
  previousVolume: number | undefined,
  volume: number | undefined,
): number | undefined {
  if (volume === undefined || !Number.isFinite(volume) || volume < 0) return undefined;
  if (previousVolume === undefined || !Number.isFinite(previousVolume)) return undefined;
  return Math.floor(volume >= previousVolume ? volume - previousVolume : volume);
}

export interface LiquidityOrder {
  side: Side;
  order_type: "MARKET" | "LIMIT";
  quantity: number;
  /** LIMIT only. */
  limit_paise?: Paise | undefined;
}

export interface Fill {
  price_paise: Paise;
  quantity: number;
}

export interface LiquidityResult {
  fills: Fill[];
  filled: number;
  remaining: number;
}

interface Level {
  price: Paise;
  left: number;
}

/**
 * The liquidity of one quote, consumed as orders take from it. Deterministic: the same quote,
 * settings and sequence of orders always give the same fills.
 */
export class QuoteLiquidity {
  readonly #settings: LiquiditySettings;
  readonly #tick: Paise;
  readonly #quote: LiquidityQuote;
  #asks: Level[] | undefined;
  #bids: Level[] | undefined;
  /** Shared by both sides: the volume cap counts every fill from this quote. */
  #volumeLeft: number;

  /** `tickPaise` spaces the synthetic levels (the instrument's tick). */
  constructor(quote: LiquidityQuote, settings: LiquiditySettings, tickPaise: Paise) {
    if (!Number.isSafeInteger(tickPaise) || tickPaise <= 0)
      throw new RangeError(`tick must be positive paise, got ${tickPaise}`);
    this.#settings = settings;
    this.#tick = tickPaise;
    this.#quote = quote;
    const traded = quote.traded_volume;
    this.#volumeLeft =
      settings.infinite || settings.volume_participation_pct === 0 || traded === undefined || !(traded >= 0)
        ? Number.MAX_SAFE_INTEGER
        : Math.floor((Math.floor(traded) * settings.volume_participation_pct) / 100);
  }

  /** Fills what this quote can of `order` now, taking it from the quote's remaining liquidity. */
  take(order: LiquidityOrder): LiquidityResult {
    if (!Number.isSafeInteger(order.quantity) || order.quantity <= 0) {
      throw new RangeError(`quantity must be a positive integer, got ${order.quantity}`);
    }
    const levels = this.#side(order.side);
    const fills: Fill[] = [];
    let remaining = order.quantity;
    const last = order.order_type === "MARKET" ? levels.length : 1;
    for (let i = 0; i < last && remaining > 0 && this.#volumeLeft > 0; i++) {
      const level = levels[i]!;
      if (level.left <= 0) continue;
      if (order.order_type === "LIMIT") {
        const limit = order.limit_paise;
        if (limit === undefined) throw new RangeError("a LIMIT order needs limit_paise");
        if (order.side === "BUY" ? level.price > limit : level.price < limit) break;
      }
      const quantity = Math.min(remaining, level.left, this.#volumeLeft);
      level.left -= quantity;
      this.#volumeLeft -= quantity;
      remaining -= quantity;
      const previous = fills[fills.length - 1];
      if (previous !== undefined && previous.price_paise === level.price) previous.quantity += quantity;
      else fills.push({ price_paise: level.price, quantity });
    }
    return { fills, filled: order.quantity - remaining, remaining };
  }

  /** What is left on one side, for display and tests. */
  available(side: Side): Fill[] {
    return this.#side(side).map((level) => ({ price_paise: level.price, quantity: level.left }));
  }

  #side(side: Side): Level[] {
    if (side === "BUY") return (this.#asks ??= this.#build("BUY"));
    return (this.#bids ??= this.#build("SELL"));
  }

  #build(side: Side): Level[] {
    const q = this.#quote;
    const touchRupees = (side === "BUY" ? q.ask : q.bid) ?? q.last_price;
    const statedSize = side === "BUY" ? q.ask_size : q.bid_size;
    // Snapped onto the tick grid against the taker (asks up, bids down): a quote that is off the
    // grid never gives a fill at a price the exchange could not print, nor a better one than quoted.
    const paise =
      exactPaise(touchRupees) ??
      (side === "BUY" ? Math.ceil(touchRupees * 100) : Math.floor(touchRupees * 100));
    const tick = this.#tick;
    const touch = side === "BUY" ? Math.ceil(paise / tick) * tick : Math.floor(paise / tick) * tick;
    if (!(touch > 0) || !Number.isSafeInteger(touch)) return [];
    if (this.#settings.infinite) return [{ price: touch, left: Number.MAX_SAFE_INTEGER }];
    const size =
      statedSize !== undefined && Number.isFinite(statedSize) && statedSize >= 0
        ? Math.floor(statedSize)
        : this.#settings.default_touch_size;
    const levels: Level[] = [{ price: touch, left: size }];
    const deeper = Math.floor((size * this.#settings.level_size_pct) / 100);
    const step = this.#settings.level_step_ticks * this.#tick;
    for (let i = 1; i <= this.#settings.market_depth_levels; i++) {
      const price = side === "BUY" ? touch + i * step : touch - i * step;
      // A bid ladder stops before zero: no synthetic level at or below a zero price.
      if (price <= 0) break;
      levels.push({ price, left: deeper });
    }
    return levels;
  }
}
