import type { Candle } from "../kite/candles";
import { warmupPrices } from "../kite/candles";
import type { Exchange } from "../protocol/fields";
import type { MomentumStrategy } from "./momentum";

/** What a broker offers when it has historical candles (Kite). */
export interface CandleSource {
  getCandles(query: {
    symbol: string;
    exchange?: Exchange;
    interval: string;
    from: string;
    to: string;
  }): Promise<Candle[]>;
}

export function offersCandles(broker: object): broker is CandleSource {
  return typeof (broker as Partial<CandleSource>).getCandles === "function";
}

/**
 * How far back the minute candles are asked for: four calendar days reach the last session
 * across a weekend and a holiday, and stay far inside Kite's 60-day limit for minute candles.
 */
export const WARMUP_SPAN_MS = 4 * 86_400_000;

/**
 * Fills the strategy's lookback for one symbol from the last lookback + 1 minute closes, so its
 * first live quote can already signal. Returns how many prices the symbol then holds.
 */
export async function warmUpFromCandles(
  strategy: MomentumStrategy,
  source: CandleSource,
  exchange: Exchange,
  symbol: string,
  nowMs: number,
): Promise<number> {
  const candles = await source.getCandles({
    symbol,
    exchange,
    interval: "minute",
    from: new Date(nowMs - WARMUP_SPAN_MS).toISOString(),
    to: new Date(nowMs).toISOString(),
  });
  return strategy.warmUp(exchange, symbol, warmupPrices(candles, strategy.settings.lookback + 1));
}
