import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import { Exchange } from "../protocol/fields";
import type { OrderRequest } from "../protocol/orders";
import { parseOrThrow } from "./issues";
import { IsoDate, istDay } from "./ist";
import { exactPaise, mulDivCeil, mulDivFloor } from "./money";
import { NSE_INSTRUMENTS } from "./nse-instruments";

export const InstrumentSegment = z.enum(["EQ", "FUT", "OPT", "INDEX"], {
  error: "must be one of EQ, FUT, OPT, INDEX",
});
export type InstrumentSegment = z.infer<typeof InstrumentSegment>;

/**
 * What the market model knows about one instrument. Prices are rupees here because this is what
 * users type and Kite's instrument list carries; every check converts them to paise once.
 */
export const InstrumentSpec = z
  .strictObject({
    exchange: Exchange,
    /** Kite's tradingsymbol; indices have spaces ("NIFTY 50"), so the order Symbol rule is not used. */
    symbol: z
      .string()
      .trim()
      .min(1, { error: "must not be empty" })
      .max(64, { error: "must be at most 64 characters" }),
    segment: InstrumentSegment,
    /** Defaults to false for indices, true otherwise. */
    tradable: z.boolean().optional(),
    tick_size: z
      .number()
      .positive({ error: "must be greater than 0" })
      .max(1e6, { error: "must be at most 1000000" }),
    lot_size: z
      .number()
      .int({ error: "must be a whole number" })
      .positive({ error: "must be greater than 0" })
      .max(10_000_000)
      .default(1),
    /** Last trading day (IST) of a future or option. */
    expiry: IsoDate.optional(),
    strike: z.number().positive({ error: "must be greater than 0" }).optional(),
    option_type: z.enum(["CE", "PE"], { error: "must be CE or PE" }).optional(),
    underlying: z.string().min(1).optional(),
    /** Circuit limit: a LIMIT price more than this % from the reference price is refused. */
    band_pct: z
      .number()
      .positive({ error: "must be greater than 0" })
      .max(100, { error: "must be at most 100" })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (exactPaise(spec.tick_size) === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tick_size"],
        message: "must be a whole number of paise (at most 2 decimals)",
      });
    }
    if ((spec.segment === "FUT" || spec.segment === "OPT") && spec.expiry === undefined) {
      ctx.addIssue({ code: "custom", path: ["expiry"], message: `is required for ${spec.segment}` });
    }
    if (spec.segment === "OPT") {
      if (spec.strike === undefined)
        ctx.addIssue({ code: "custom", path: ["strike"], message: "is required for OPT" });
      if (spec.option_type === undefined) {
        ctx.addIssue({ code: "custom", path: ["option_type"], message: "is required for OPT" });
      }
    } else if (spec.strike !== undefined || spec.option_type !== undefined) {
      ctx.addIssue({ code: "custom", path: ["strike"], message: "strike and option_type are only for OPT" });
    }
    // 4.35 × 100 is 434.99999999999994 in binary: the same tolerant test as for prices.
    if (spec.band_pct !== undefined && exactPaise(spec.band_pct) === undefined) {
      ctx.addIssue({ code: "custom", path: ["band_pct"], message: "must have at most 2 decimals" });
    }
  })
  .transform((spec) => ({ ...spec, tradable: spec.tradable ?? spec.segment !== "INDEX" }));
export type InstrumentSpecInput = z.input<typeof InstrumentSpec>;
export type Instrument = z.output<typeof InstrumentSpec>;

/** Which instrument rules apply, and the user's own instruments. */
export const InstrumentRules = z.strictObject({
  enforce_tick: z.boolean().default(true),
  enforce_lot: z.boolean().default(true),
  enforce_band: z.boolean().default(true),
  /** Unknown symbols are refused unless this is on (then they trade with tick 0.01, lot 1, no band). */
  allow_unknown: z.boolean().default(false),
  /** Include the small built-in NSE list (lib/market/nse-instruments.ts). */
  builtin: z.boolean().default(true),
  /** Added to (and replacing same-key entries of) the built-in list. */
  extra: z.array(InstrumentSpec).default([]),
});
export type InstrumentRulesInput = z.input<typeof InstrumentRules>;
export type InstrumentRules = z.output<typeof InstrumentRules>;

/** The fields of an order request the instrument rules look at. */
export type InstrumentOrder = Pick<OrderRequest, "exchange" | "symbol" | "quantity"> &
  Partial<Pick<OrderRequest, "price" | "trigger_price">>;

export interface InstrumentCheckContext {
  /** The price the band is measured from (previous close), rupees; no band check without it. */
  reference_price?: number | undefined;
  /** Now, to refuse contracts past their expiry. */
  now_ms?: number | undefined;
}

/** A price band in paise: every price from lower to upper inclusive, on the tick, is allowed. */
export interface PriceBand {
  lower_paise: number;
  upper_paise: number;
}

/**
 * The instruments an account may trade: the built-in list, the user's additions, and (for a Kite
 * session) rows from Kite's instrument list. Lookups are O(1); checks return a BrokerError value
 * (never throw) naming the field and the rule, or undefined when the order passes.
 */
export class InstrumentRegistry {
  readonly rules: InstrumentRules;
  /** exchange → symbol → instrument: two lookups are cheaper than building "NSE:INFY" per order. */
  readonly #byExchange = new Map<string, Map<string, Instrument>>();
  #size = 0;

  constructor(rules: InstrumentRulesInput = {}) {
    this.rules = parseOrThrow(InstrumentRules, rules, "CONFIG", "instruments");
    if (this.rules.builtin) for (const spec of NSE_INSTRUMENTS) this.#put(InstrumentSpec.parse(spec));
    for (const spec of this.rules.extra) this.#put(spec);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds or replaces an instrument; a bad spec throws VALIDATION naming the field. */
  add(spec: InstrumentSpecInput): Instrument {
    const instrument = parseOrThrow(InstrumentSpec, spec, "VALIDATION", "instrument");
    this.#put(instrument);
    return instrument;
  }

  /**
   * Adds the rows of Kite's instrument list (parsed CSV objects) that this model can trade; they
   * replace built-in entries of the same key. Returns how many were added.
   */
  addKiteRows(rows: readonly unknown[]): number {
    let added = 0;
    for (const row of rows) {
      if (typeof row !== "object" || row === null) continue;
      const instrument = instrumentFromKiteRow(row as Record<string, unknown>);
      if (instrument === undefined) continue;
      this.#put(instrument);
      added += 1;
    }
    return added;
  }

  get(exchange: Exchange, symbol: string): Instrument | undefined {
    return this.#byExchange.get(exchange)?.get(symbol);
  }

  /** The instrument, a stand-in for an allowed unknown symbol, or the error that refuses it. */
  resolve(exchange: Exchange, symbol: string): Instrument | BrokerError {
    const known = this.get(exchange, symbol);
    if (known !== undefined) return known;
    if (this.rules.allow_unknown) {
      return { exchange, symbol, segment: "EQ", tradable: true, tick_size: 0.01, lot_size: 1 };
    }
    return new BrokerError(
      "VALIDATION",
      `symbol: ${exchange}:${symbol} is not a known instrument (add it to the market settings' instruments, or allow unknown symbols)`,
    );
  }

  /** Every instrument rule an order must meet before it may rest or fill. */
  checkOrder(order: InstrumentOrder, context: InstrumentCheckContext = {}): BrokerError | undefined {
    const found = this.resolve(order.exchange, order.symbol);
    if (found instanceof BrokerError) return found;
    const where = `${found.exchange}:${found.symbol}`;
    if (!found.tradable) {
      return new BrokerError(
        "VALIDATION",
        `symbol: ${where} is ${found.segment === "INDEX" ? "an index" : "marked not tradable"} and cannot be traded`,
      );
    }
    if (found.expiry !== undefined && context.now_ms !== undefined && istDay(context.now_ms) > found.expiry) {
      return new BrokerError("VALIDATION", `symbol: ${where} expired on ${found.expiry}`);
    }
    if (this.rules.enforce_lot && order.quantity % found.lot_size !== 0) {
      return new BrokerError(
        "VALIDATION",
        `quantity: ${order.quantity} is not a multiple of the lot size ${found.lot_size} for ${where}`,
      );
    }
    if (this.rules.enforce_tick) {
      const tickError =
        (order.price === undefined ? undefined : checkTick(found, order.price, "price")) ??
        (order.trigger_price === undefined
          ? undefined
          : checkTick(found, order.trigger_price, "trigger_price"));
      if (tickError !== undefined) return tickError;
    }
    if (this.rules.enforce_band && order.price !== undefined && context.reference_price !== undefined) {
      const band = priceBand(found, context.reference_price);
      const price = exactPaise(order.price);
      if (
        band !== undefined &&
        price !== undefined &&
        (price < band.lower_paise || price > band.upper_paise)
      ) {
        return new BrokerError(
          "ORDER_REJECTED",
          `price: ${order.price} is outside the price band ${band.lower_paise / 100} to ${band.upper_paise / 100} ` +
            `(±${found.band_pct}% of the reference price ${context.reference_price}) for ${where}`,
        );
      }
    }
    return undefined;
  }

  #put(instrument: Instrument): void {
    let symbols = this.#byExchange.get(instrument.exchange);
    if (symbols === undefined)
      this.#byExchange.set(instrument.exchange, (symbols = new Map<string, Instrument>()));
    if (!symbols.has(instrument.symbol)) this.#size += 1;
    symbols.set(instrument.symbol, instrument);
  }
}

const TICKS = new WeakMap<Instrument, number>();

/** The tick in paise (the schema guarantees it is whole), worked out once per instrument. */
export function tickPaise(instrument: Instrument): number {
  let tick = TICKS.get(instrument);
  if (tick === undefined) TICKS.set(instrument, (tick = exactPaise(instrument.tick_size)!));
  return tick;
}

/** Undefined when `price` is a whole number of ticks; else the error naming the field. */
export function checkTick(instrument: Instrument, price: number, field = "price"): BrokerError | undefined {
  const paise = exactPaise(price);
  if (paise !== undefined && paise % tickPaise(instrument) === 0) return undefined;
  return new BrokerError(
    "VALIDATION",
    `${field}: ${price} is not a multiple of the tick size ${instrument.tick_size} for ${instrument.exchange}:${instrument.symbol}`,
  );
}

/**
 * The circuit band around a reference price: reference × (1 ± band_pct/100), narrowed to the
 * tick grid (upper rounded down, lower rounded up) so every price it admits is inside the exact
 * band. Undefined when the instrument has no fixed band or the reference is not whole paise.
 */
export function priceBand(instrument: Instrument, referencePrice: number): PriceBand | undefined {
  if (instrument.band_pct === undefined) return undefined;
  const reference = exactPaise(referencePrice);
  if (reference === undefined || reference <= 0) return undefined;
  const bps = Math.round(instrument.band_pct * 100);
  const tick = tickPaise(instrument);
  const upperExact = mulDivFloor(reference, 10_000 + bps, 10_000);
  const lowerExact = mulDivCeil(reference, Math.max(0, 10_000 - bps), 10_000);
  const upper_paise = Math.floor(upperExact / tick) * tick;
  const lower_paise = Math.max(tick, Math.ceil(lowerExact / tick) * tick);
  return { lower_paise, upper_paise };
}

/** Rounds a paise price to the instrument's tick (half up), for synthetic prices. */
export function roundToTick(instrument: Instrument, paise: number): number {
  const tick = tickPaise(instrument);
  return Math.max(tick, Math.round(paise / tick) * tick);
}

const KITE_SEGMENTS: Record<string, InstrumentSegment> = { EQ: "EQ", FUT: "FUT", CE: "OPT", PE: "OPT" };

/**
 * One row of Kite's instrument list (GET /instruments, parsed CSV: every value may be a string)
 * as an instrument; undefined for rows this model does not trade (other exchanges, bad rows).
 */
export function instrumentFromKiteRow(row: Readonly<Record<string, unknown>>): Instrument | undefined {
  const type = typeof row.instrument_type === "string" ? row.instrument_type : "";
  const segment = row.segment === "INDICES" ? "INDEX" : KITE_SEGMENTS[type];
  if (segment === undefined) return undefined;
  const strike = Number(row.strike);
  const expiry = typeof row.expiry === "string" && row.expiry !== "" ? row.expiry.slice(0, 10) : undefined;
  const parsed = InstrumentSpec.safeParse({
    exchange: row.exchange,
    symbol: row.tradingsymbol,
    segment,
    tick_size: segment === "INDEX" ? 0.05 : Number(row.tick_size),
    lot_size: Math.max(1, Number(row.lot_size) || 1),
    expiry,
    strike: segment === "OPT" ? strike : undefined,
    option_type: segment === "OPT" ? type : undefined,
    underlying: typeof row.name === "string" && row.name !== "" ? row.name : undefined,
  });
  return parsed.success ? parsed.data : undefined;
}
