import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import { Exchange } from "../protocol/fields";
import { parseInstrument } from "../protocol/instrument";
import { parseOrThrow } from "../protocol/validate";
import type { InstrumentInfo } from "../kite/instruments";
import type { Instrument } from "./instruments";
import { InstrumentSpec } from "./instruments";
import { NSE_INSTRUMENTS } from "./nse-instruments";

export const LOOKUP_MAX_LIMIT = 500;

/**
 * One instrument lookup: an exact symbol ("INFY", "NFO:NIFTY26DECFUT") or search text matched
 * against symbols and names. Exactly one of the two, so a flow never gets a silent guess.
 */
export const InstrumentLookup = z
  .strictObject({
    symbol: z.string().trim().min(1, { error: "must not be empty" }).max(80).optional(),
    search: z.string().trim().min(1, { error: "must not be empty" }).max(80).optional(),
    exchange: Exchange.optional(),
    limit: z
      .number({ error: "must be a number" })
      .int({ error: "must be a whole number" })
      .min(1, { error: "must be at least 1" })
      .max(LOOKUP_MAX_LIMIT, { error: `must be at most ${LOOKUP_MAX_LIMIT}` })
      .default(20),
  })
  .superRefine((query, ctx) => {
    if ((query.symbol === undefined) === (query.search === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: query.symbol === undefined ? [] : ["search"],
        message: "must hold either symbol (an exact lookup) or search (text), not both and not neither",
      });
    }
  });
export type InstrumentLookupInput = z.input<typeof InstrumentLookup>;
export type InstrumentLookup = z.output<typeof InstrumentLookup>;

/**
 * What the lookup answers, the same for every broker so a flow does not care which one it runs on.
 * `segment` is the pack's (EQ, FUT, OPT, INDEX); null fields are those the instrument does not have.
 */
export const InstrumentListing = z.strictObject({
  exchange: z.string(),
  symbol: z.string(),
  name: z.string(),
  segment: z.string(),
  lot_size: z.number().nonnegative(),
  tick_size: z.number().nonnegative(),
  /** Last trading day, YYYY-MM-DD (IST). */
  expiry: z.string().nullable(),
  strike: z.number().nullable(),
  option_type: z.enum(["CE", "PE"]).nullable(),
  tradable: z.boolean(),
  /** Kite's token; null for the built-in list. */
  instrument_token: z.number().int().nullable(),
});
export type InstrumentListing = z.output<typeof InstrumentListing>;

export function parseLookup(value: unknown): InstrumentLookup {
  return parseOrThrow(InstrumentLookup, value, "instrument lookup");
}

/** The exchange and the text to look for: an exchange prefix on the symbol wins over `exchange`. */
export function lookupTarget(query: InstrumentLookup): { exchange: Exchange; text: string } {
  if (query.symbol !== undefined) {
    const { exchange, symbol } = parseInstrument(query.symbol, query.exchange ?? "NSE");
    return { exchange, text: symbol };
  }
  return { exchange: query.exchange ?? "NSE", text: query.search! };
}

export function listingOfInstrument(instrument: Instrument): InstrumentListing {
  return {
    exchange: instrument.exchange,
    symbol: instrument.symbol,
    name: instrument.underlying ?? instrument.symbol,
    segment: instrument.segment,
    lot_size: instrument.lot_size,
    tick_size: instrument.tick_size,
    expiry: instrument.expiry ?? null,
    strike: instrument.strike ?? null,
    option_type: instrument.option_type ?? null,
    tradable: instrument.tradable,
    instrument_token: null,
  };
}

const KITE_TYPES: Readonly<Record<string, string>> = { EQ: "EQ", FUT: "FUT", CE: "OPT", PE: "OPT" };

/** A row of Kite's instrument list in the lookup's terms; unknown types keep Kite's own name. */
export function listingOfKiteInfo(info: InstrumentInfo): InstrumentListing {
  const segment =
    info.segment === "INDICES" ? "INDEX" : (KITE_TYPES[info.instrument_type] ?? info.instrument_type);
  const option = info.instrument_type === "CE" || info.instrument_type === "PE" ? info.instrument_type : null;
  return {
    exchange: info.exchange,
    symbol: info.tradingsymbol,
    name: info.name,
    segment,
    lot_size: info.lot_size,
    tick_size: info.tick_size,
    expiry: info.expiry === "" ? null : info.expiry,
    strike: option === null ? null : info.strike,
    option_type: option,
    tradable: segment !== "INDEX",
    instrument_token: info.instrument_token,
  };
}

let builtin: readonly Instrument[] | undefined;

/** The built-in NSE list (what the paper broker trades without a Kite session), parsed once. */
function builtinInstruments(): readonly Instrument[] {
  return (builtin ??= NSE_INSTRUMENTS.map((spec) => InstrumentSpec.parse(spec)));
}

/**
 * The lookup over the built-in list: an exact symbol answers one instrument or NOT_FOUND; search
 * text answers up to `limit` whose symbol or name holds it, exact symbols first.
 */
export function lookupBuiltin(query: InstrumentLookup): InstrumentListing[] {
  const { exchange, text } = lookupTarget(query);
  const needle = text.toUpperCase();
  const onExchange = builtinInstruments().filter((i) => i.exchange === exchange);
  if (query.symbol !== undefined) {
    const found = onExchange.find((i) => i.symbol === text);
    if (found === undefined) throw notFound(exchange, text, "the built-in NSE list");
    return [listingOfInstrument(found)];
  }
  const exact = onExchange.filter((i) => i.symbol.toUpperCase() === needle);
  const partial = onExchange.filter(
    (i) =>
      i.symbol.toUpperCase() !== needle &&
      (i.symbol.toUpperCase().includes(needle) || (i.underlying ?? "").toUpperCase().includes(needle)),
  );
  return [...exact, ...partial].slice(0, query.limit).map(listingOfInstrument);
}

export function notFound(exchange: string, symbol: string, where: string): BrokerError {
  return new BrokerError("NOT_FOUND", `symbol: ${exchange}:${symbol} is not in ${where}`);
}
