import type { Quote } from "../protocol";
import type { Clock, TimerRef } from "./clock";
import type { InstrumentKey } from "../protocol/instrument";
import { roundPrice } from "../protocol/instrument";
import type { QuoteFeed, QuoteListener } from "./quote-feed";
import type { Random } from "./random";
import { gaussian } from "./random";

export interface RandomWalkOptions {
  clock: Clock;
  random: Random;
  intervalMs: number;
  startPrice: number;
  /** Standard deviation of one tick's log return. */
  volatility: number;
  spreadBps: number;
  onQuote: QuoteListener;
}

/** A geometric random walk per tracked instrument, all stepped by one timer. */
export class RandomWalkFeed implements QuoteFeed {
  readonly #options: RandomWalkOptions;
  readonly #quotes = new Map<InstrumentKey, Quote>();
  #timer: TimerRef | undefined;
  #running = false;

  constructor(options: RandomWalkOptions) {
    this.#options = options;
  }

  track(key: InstrumentKey): void {
    if (this.#quotes.has(key)) return;
    this.#quotes.set(key, this.#quoteAt(key, this.#options.startPrice));
  }

  forget(key: InstrumentKey): void {
    this.#quotes.delete(key);
  }

  latest(key: InstrumentKey): Quote | undefined {
    return this.#quotes.get(key);
  }

  set(quote: Quote): void {
    this.#quotes.set(`${quote.exchange}:${quote.symbol}`, quote);
  }

  start(): Promise<void> {
    this.#running = true;
    this.#schedule();
    return Promise.resolve();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#options.clock.setTimeout(() => this.#tick(), this.#options.intervalMs);
    if (typeof this.#timer === "object" && "unref" in this.#timer) this.#timer.unref();
  }

  #tick(): void {
    this.#timer = undefined;
    const { random, volatility } = this.#options;
    for (const [key, quote] of this.#quotes) {
      const next = this.#quoteAt(key, quote.last_price * Math.exp(volatility * gaussian(random)));
      this.#quotes.set(key, next);
      this.#options.onQuote(next);
      if (!this.#running) return;
    }
    this.#schedule();
  }

  #quoteAt(key: InstrumentKey, price: number): Quote {
    const colon = key.indexOf(":");
    const last = Math.max(0.05, roundPrice(price));
    const half = (last * this.#options.spreadBps) / 20_000;
    const quote: Quote = {
      symbol: key.slice(colon + 1),
      exchange: key.slice(0, colon) as Quote["exchange"],
      last_price: last,
      timestamp: new Date(this.#options.clock.now()).toISOString(),
    };
    if (half > 0) {
      quote.bid = Math.max(0.01, roundPrice(last - half));
      quote.ask = roundPrice(last + half);
    }
    return quote;
  }
}
