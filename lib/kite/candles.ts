import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import { IsoTimestamp } from "../protocol/fields";
import { formatKiteTimestamp, kiteTimestampMs } from "./time";

/** Kite's candle intervals, and the longest span one historical request may cover (Kite's rule). */
export const CANDLE_SPAN_DAYS = {
  minute: 60,
  "3minute": 100,
  "5minute": 100,
  "10minute": 100,
  "15minute": 200,
  "30minute": 200,
  "60minute": 400,
  day: 2000,
} as const;
export const CandleInterval = z.enum(Object.keys(CANDLE_SPAN_DAYS) as [keyof typeof CANDLE_SPAN_DAYS], {
  error: `must be one of ${Object.keys(CANDLE_SPAN_DAYS).join(", ")}`,
});
export type CandleInterval = z.infer<typeof CandleInterval>;

export const Candle = z.strictObject({
  timestamp: IsoTimestamp,
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number().nonnegative(),
  oi: z.number().nonnegative().optional(),
});
export type Candle = z.output<typeof Candle>;

/**
 * kiteconnect's parsed candles ({date, open, high, low, close, volume[, oi]}; `date` from Kite's
 * "2026-12-04T09:15:00+0530", so the instant is right whatever the host's zone) → Candles.
 */
export function toCandles(reply: unknown): Candle[] {
  if (!Array.isArray(reply))
    throw new BrokerError("INTERNAL", "bad reply from Kite: historical data is not a list");
  const candles: Candle[] = [];
  for (const row of reply as Record<string, unknown>[]) {
    // A Date here is already the true instant (Kite's text carries +0530); strings are read as IST.
    const ms = row.date instanceof Date ? row.date.getTime() : kiteTimestampMs(row.date);
    const candle = Candle.safeParse({
      timestamp: ms === undefined ? undefined : new Date(ms).toISOString(),
      open: Number(row.open),
      high: Number(row.high),
      low: Number(row.low),
      close: Number(row.close),
      volume: Number(row.volume ?? 0),
      ...(row.oi === undefined ? {} : { oi: Number(row.oi) }),
    });
    if (candle.success) candles.push(candle.data);
  }
  return candles;
}

/** The `from`/`to` Kite takes: IST wall clock, so the host's zone never shifts the window. */
export function kiteDateTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new BrokerError("VALIDATION", `from/to: "${iso}" is not an ISO 8601 time`);
  return formatKiteTimestamp(ms);
}

/**
 * Candles as the paper broker's CSV replay reads them (`timestamp,symbol,price,volume`, the symbol
 * as "EXCHANGE:SYMBOL"): one line per candle at its close, so a replay walks the day as the
 * candles saw it.
 */
export function candlesToCsv(instrument: string, candles: readonly Candle[]): string {
  // The replay splits on commas and has no quoting; Kite's symbols never hold one.
  if (/[",\r\n]/.test(instrument))
    throw new BrokerError("VALIDATION", `symbol: "${instrument}" cannot go in a CSV`);
  const lines = candles.map((c) => `${c.timestamp},${instrument},${c.close},${c.volume}`);
  return `timestamp,symbol,price,volume\n${lines.join("\n")}\n`;
}

/** Closing prices, oldest first: what a momentum strategy's lookback warms up from at start. */
export function warmupPrices(candles: readonly Candle[], count: number): number[] {
  return candles.slice(Math.max(0, candles.length - count)).map((c) => c.close);
}
