import type { Exchange } from "./fields";
import { BrokerError } from "./errors";
import { Exchange as ExchangeSchema } from "./fields";

/** Prices and orders are keyed by exchange and symbol: INFY on NSE and on BSE are two books. */
export type InstrumentKey = `${Exchange}:${string}`;

export function instrumentKey(exchange: Exchange, symbol: string): InstrumentKey {
  return `${exchange}:${symbol}`;
}

/** Accepts "INFY" (NSE assumed) or "BSE:INFY", as traders write them in the editor. */
export function parseInstrument(
  text: string,
  defaultExchange: Exchange = "NSE",
): { exchange: Exchange; symbol: string } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(":");
  if (colon < 0) {
    if (trimmed === "") throw new BrokerError("VALIDATION", "symbol: must not be empty");
    return { exchange: defaultExchange, symbol: trimmed };
  }
  const exchange = ExchangeSchema.safeParse(trimmed.slice(0, colon));
  const symbol = trimmed.slice(colon + 1);
  if (!exchange.success) {
    throw new BrokerError(
      "VALIDATION",
      `symbol: "${trimmed}" names an unknown exchange (NSE, BSE, NFO, BFO, CDS, BCD, MCX)`,
    );
  }
  if (symbol === "")
    throw new BrokerError("VALIDATION", `symbol: "${trimmed}" has no symbol after the exchange`);
  return { exchange: exchange.data, symbol };
}

/** Prices shown and filled at two decimals, like the exchanges' rupee prices. */
export function roundPrice(price: number): number {
  return Math.round(price * 100) / 100;
}
