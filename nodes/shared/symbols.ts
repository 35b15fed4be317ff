import { SymbolList } from "../../lib/protocol/quotes";
import { parseOrThrow } from "../../lib/protocol/validate";
import { instrumentKey, parseInstrument } from "../../lib/protocol/instrument";

/** Splits an editor list ("INFY, TCS BSE:SBIN") into its entries. */
export function splitSymbols(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

/**
 * Instrument keys ("NSE:INFY") for symbols as traders write them: "INFY" means NSE, "BSE:INFY"
 * names the exchange. Keys, not raw text, so "INFY" and "NSE:INFY" count as one subscription.
 */
export function instrumentKeys(symbols: readonly string[]): string[] {
  const valid = parseOrThrow(SymbolList, symbols, "symbols");
  return Array.from(
    new Set(
      valid.map((text) => {
        const { exchange, symbol } = parseInstrument(text);
        return instrumentKey(exchange, symbol);
      }),
    ),
  );
}

/** The editor's symbol list as instrument keys; blank gives none. */
export function parseSymbolList(text: string): string[] {
  const entries = splitSymbols(text);
  return entries.length === 0 ? [] : instrumentKeys(entries);
}
