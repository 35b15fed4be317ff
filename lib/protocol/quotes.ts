import { z } from "zod";
import { Exchange, IsoTimestamp, Symbol } from "./fields";

export const Quote = z
  .strictObject({
    symbol: Symbol,
    exchange: Exchange,
    last_price: z.number().positive(),
    bid: z.number().positive().optional(),
    ask: z.number().positive().optional(),
    volume: z.number().nonnegative().optional(),
    timestamp: IsoTimestamp,
  })
  // A crossed book would fill a MARKET SELL above the price a BUY pays.
  .refine((q) => q.bid === undefined || q.ask === undefined || q.bid <= q.ask, {
    path: ["bid"],
    message: "must not be above ask",
  });
export type Quote = z.output<typeof Quote>;

/** quotes' payload: which symbols to subscribe to (or drop). */
export const SymbolList = z
  .array(Symbol, { error: "must be a list of symbols" })
  .min(1, { error: "must name at least one symbol" })
  .max(3000, { error: "must name at most 3000 symbols" });
