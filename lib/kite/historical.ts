import type { Exchange } from "../protocol";
import { BrokerError } from "../protocol/errors";
import { parseInstrument } from "../protocol/instrument";
import type { Candle } from "./candles";
import { CANDLE_SPAN_DAYS, CandleInterval, kiteDateTime, toCandles } from "./candles";
import type { KiteInstruments } from "./kite-instruments";
import type { KiteRestClient } from "./rest-client";

export interface CandleQuery {
  symbol: string;
  exchange?: Exchange;
  interval: string;
  from: string;
  to: string;
}

/**
 * Historical candles for one instrument (Kite's historical API, 3 requests a second), oldest
 * first; `from`/`to` are ISO times and may span at most CANDLE_SPAN_DAYS[interval] days.
 */
export async function readCandles(
  rest: KiteRestClient,
  instruments: KiteInstruments,
  query: CandleQuery,
): Promise<Candle[]> {
  const { exchange, symbol } = parseInstrument(query.symbol, query.exchange ?? "NSE");
  const parsed = CandleInterval.safeParse(query.interval);
  if (!parsed.success) throw new BrokerError("VALIDATION", `interval: ${parsed.error.issues[0]?.message}`);
  const interval = parsed.data;
  const from = kiteDateTime(query.from);
  const to = kiteDateTime(query.to);
  const span = (Date.parse(query.to) - Date.parse(query.from)) / 86_400_000;
  if (!(span > 0) || span > CANDLE_SPAN_DAYS[interval]) {
    throw new BrokerError(
      "VALIDATION",
      `from/to: must span more than 0 and at most ${CANDLE_SPAN_DAYS[interval]} days for ${interval} candles`,
    );
  }
  await instruments.ensure([{ exchange, symbol }]);
  const token = instruments.tokenOf(exchange, symbol);
  if (token === undefined) {
    throw new BrokerError("VALIDATION", `symbol: ${exchange}:${symbol} not in Kite's instrument list`);
  }
  const reply = await rest.call("historical", "historical data request", (k) =>
    k.getHistoricalData(token, interval, from, to, false, false),
  );
  return toCandles(reply);
}
