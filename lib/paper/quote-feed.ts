import type { Quote } from "../protocol";
import type { InstrumentKey } from "../protocol/instrument";

/**
 * Where the paper broker's prices come from. A feed calls `onQuote` for every price it moves;
 * the broker matches orders against those and passes subscribed ones on to the flow.
 */
export interface QuoteFeed {
  /** Starts moving this instrument's price (no-op for feeds that replay a fixed set). */
  track(key: InstrumentKey): void;
  /** Stops moving an instrument nobody watches or trades; its last price stays with the broker. */
  forget(key: InstrumentKey): void;
  /** The latest quote, or undefined when the feed has no price for the instrument yet. */
  latest(key: InstrumentKey): Quote | undefined;
  /** Moves an instrument's price by hand (tests, manual what-ifs); the feed carries on from it. */
  set(quote: Quote): void;
  start(): Promise<void>;
  stop(): void;
}

export type QuoteListener = (quote: Quote) => void;
