import type { Quote } from "../protocol";
import { BrokerError } from "../protocol/errors";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument } from "../protocol/instrument";
import { SymbolList } from "../protocol/quotes";
import { parseOrThrow } from "../protocol/validate";
import type { KiteInstruments } from "./kite-instruments";
import { quoteFromTick } from "./snapshots";
import type { KiteTickerClient } from "./ticker-client";
import type { Tick, TickMode } from "./ticker-parser";

export interface KiteQuotesDeps {
  ticker: KiteTickerClient;
  instruments: KiteInstruments;
  mode: TickMode;
  emit: (quote: Quote) => void;
}

/**
 * Quote subscriptions by symbol over the ticker's subscriptions by instrument token: symbols are
 * resolved through the day's instrument list, and ticks are told back as quotes by symbol.
 */
export class KiteQuotes {
  readonly #deps: KiteQuotesDeps;
  readonly #keys = new Map<number, InstrumentKey>();

  constructor(deps: KiteQuotesDeps) {
    this.#deps = deps;
  }

  async subscribe(symbols: string[], usable: () => void): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    usable();
    const keys = list.map((text) => parseInstrument(text));
    await this.#deps.instruments.ensure(keys);
    const tokens: number[] = [];
    const unknown: string[] = [];
    for (const { exchange, symbol } of keys) {
      const token = this.#deps.instruments.tokenOf(exchange, symbol);
      if (token === undefined) unknown.push(`${exchange}:${symbol}`);
      else tokens.push(token);
    }
    if (unknown.length > 0) {
      throw new BrokerError("VALIDATION", `symbols: ${unknown.join(", ")} not in Kite's instrument list`);
    }
    this.#deps.ticker.subscribe(tokens, this.#deps.mode);
    keys.forEach(({ exchange, symbol }, i) => this.#keys.set(tokens[i]!, instrumentKey(exchange, symbol)));
  }

  unsubscribe(symbols: string[]): void {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    const tokens: number[] = [];
    for (const text of list) {
      const { exchange, symbol } = parseInstrument(text);
      const token = this.#deps.instruments.tokenOf(exchange, symbol);
      if (token === undefined) continue;
      this.#keys.delete(token);
      tokens.push(token);
    }
    this.#deps.ticker.unsubscribe(tokens);
  }

  onTicks(ticks: Tick[]): void {
    const now = new Date().toISOString();
    for (const tick of ticks) {
      const key = this.#keys.get(tick.instrument_token);
      if (key === undefined) continue;
      const quote = quoteFromTick(tick, key, now);
      if (quote !== undefined) this.#deps.emit(quote);
    }
  }
}
