import type { Quote } from "../protocol";
import type { Clock, TimerRef } from "./clock";
import type { InstrumentKey } from "../protocol/instrument";
import { roundPrice } from "../protocol/instrument";
import type { QuoteFeed, QuoteListener } from "./quote-feed";
import type { WalkPosition } from "./account-state";
import type { Random } from "./random";
import { gaussian, isSeeded } from "./random";

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
  /** When the next step falls due; kept across a restart so the walk keeps its rhythm. */
  #nextStepAt: number | undefined;
  /** Bumped whenever the position moves, so a journal writes it only when it changed. */
  #version = 0;

  constructor(options: RandomWalkOptions) {
    this.#options = options;
  }

  track(key: InstrumentKey): void {
    if (this.#quotes.has(key)) return;
    this.#quotes.set(key, this.#quoteAt(key, this.#options.startPrice));
    this.#version++;
  }

  forget(key: InstrumentKey): void {
    if (this.#quotes.delete(key)) this.#version++;
  }

  /** Changes whenever position() would return something different. */
  get version(): number {
    return this.#version;
  }

  /** Everything the walk's future depends on besides the prices themselves. */
  position(): WalkPosition {
    const position: WalkPosition = { instruments: Array.from(this.#quotes.keys()) };
    const random = this.#options.random;
    if (isSeeded(random)) position.random = random.state();
    if (this.#nextStepAt !== undefined) position.next_step_at = this.#nextStepAt;
    return position;
  }

  /**
   * Carries on from a saved position, before start(): the same instruments in the same order, from
   * their last prices, the same draws, the next step when it was due (at once if that has passed;
   * the time the broker was down is not walked).
   */
  resume(position: WalkPosition, lastPrice: (key: InstrumentKey) => Quote | undefined): void {
    const random = this.#options.random;
    if (position.random !== undefined && isSeeded(random)) random.restore(position.random);
    this.#quotes.clear();
    for (const key of position.instruments) {
      const quote = lastPrice(key as InstrumentKey);
      if (quote !== undefined) this.#quotes.set(key as InstrumentKey, quote);
    }
    this.#nextStepAt = position.next_step_at;
    this.#version++;
  }

  latest(key: InstrumentKey): Quote | undefined {
    return this.#quotes.get(key);
  }

  set(quote: Quote): void {
    const key: InstrumentKey = `${quote.exchange}:${quote.symbol}`;
    if (!this.#quotes.has(key)) this.#version++;
    this.#quotes.set(key, quote);
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
    const { clock, intervalMs } = this.#options;
    const now = clock.now();
    if (this.#nextStepAt === undefined) {
      this.#nextStepAt = now + intervalMs;
      this.#version++;
    }
    this.#timer = clock.setTimeout(() => this.#tick(), Math.max(0, this.#nextStepAt - now));
    if (typeof this.#timer === "object" && "unref" in this.#timer) this.#timer.unref();
  }

  #tick(): void {
    this.#timer = undefined;
    const { random, volatility, clock, intervalMs } = this.#options;
    // Set before the step: a record written while it runs already names the next one.
    this.#nextStepAt = Math.max(this.#nextStepAt ?? 0, clock.now()) + intervalMs;
    for (const [key, quote] of this.#quotes) {
      const next = this.#quoteAt(key, quote.last_price * Math.exp(volatility * gaussian(random)));
      this.#quotes.set(key, next);
      // Every draw moves the generator, and a record the quote causes must see where it now stands.
      this.#version++;
      this.#options.onQuote(next);
      if (!this.#running) return;
    }
    this.#version++;
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
