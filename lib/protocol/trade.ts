import { z } from "zod";
import { IsoTimestamp, Price, Quantity } from "./fields";

/**
 * The most trades one event carries. An event reports the fills since the order's previous event,
 * usually one; the cap keeps an event inside a wire frame (about 100 bytes a trade).
 */
export const MAX_TRADES_PER_EVENT = 200;

/**
 * One fill (an execution) of an order, as the broker reports it. `trade_id` is unique per broker
 * account and never reused: Kite's own trade id; paper: `<order_id>-<filled quantity after it>`.
 */
export const Trade = z.strictObject({
  trade_id: z
    .string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(64, { error: "must be at most 64 characters" }),
  quantity: Quantity,
  price: Price,
  /** When it filled (ISO 8601 UTC). */
  timestamp: IsoTimestamp,
});
export type Trade = z.output<typeof Trade>;

export const TradeList = z
  .array(Trade)
  .min(1, { error: "must hold at least one trade when present" })
  .max(MAX_TRADES_PER_EVENT, { error: `must hold at most ${MAX_TRADES_PER_EVENT} trades` });
