import type { BrokerInterface } from "../brokers/interface";
import type { BrokerLogger } from "../brokers/logger";
import { BrokerError } from "../protocol/errors";
import { parseInstrument } from "../protocol/instrument";
import { describe } from "./frames";

/** Quote subscriptions one connection may hold: each costs the broker a tracked symbol. */
export const MAX_SYMBOLS_PER_CONNECTION = 3000;

/** A connection's side of its subscriptions, as "EXCHANGE:SYMBOL". */
export interface Subscriber {
  readonly symbols: Set<string>;
}

interface Subscription<S> {
  readonly subscribers: Set<S>;
  /** Settles when the broker has (or has failed to) subscribe(d). */
  ready: Promise<void>;
}

/**
 * The gateway's quote subscriptions, counted per symbol over its connections: the broker is asked
 * to subscribe a symbol when the first connection wants it and to unsubscribe when the last lets
 * go, in the order those calls were made.
 */
export class QuoteSubscriptions<S extends Subscriber> {
  readonly #broker: BrokerInterface;
  readonly #log: BrokerLogger;
  readonly #bySymbol = new Map<string, Subscription<S>>();
  /** Broker subscribe/unsubscribe calls run one after another, so they reach it in the order made. */
  #ops: Promise<void> = Promise.resolve();

  constructor(broker: BrokerInterface, log: BrokerLogger) {
    this.#broker = broker;
    this.#log = log;
  }

  /** Adds symbols to the subscriber's set; the broker is asked only for ones no subscriber had. */
  async subscribe(subscriber: S, symbols: string[]): Promise<string[]> {
    const keys = symbols.map(symbolKey);
    const adding = new Set(keys.filter((key) => !subscriber.symbols.has(key))).size;
    if (subscriber.symbols.size + adding > MAX_SYMBOLS_PER_CONNECTION) {
      throw new BrokerError(
        "VALIDATION",
        `symbols: a connection may hold at most ${MAX_SYMBOLS_PER_CONNECTION} subscriptions (it holds ${subscriber.symbols.size}, this adds ${adding}); unsubscribe some first`,
      );
    }
    const added: string[] = [];
    const fresh: string[] = [];
    for (const key of keys) {
      if (subscriber.symbols.has(key)) continue;
      let subscription = this.#bySymbol.get(key);
      if (subscription === undefined) {
        subscription = { subscribers: new Set(), ready: Promise.resolve() };
        this.#bySymbol.set(key, subscription);
        fresh.push(key);
      }
      subscription.subscribers.add(subscriber);
      subscriber.symbols.add(key);
      added.push(key);
    }
    if (fresh.length > 0) {
      const ready = this.#op(() => this.#broker.subscribeQuotes(fresh));
      for (const key of fresh) {
        const subscription = this.#bySymbol.get(key);
        if (subscription !== undefined) subscription.ready = ready;
      }
    }
    const waits = added.map((key) => this.#bySymbol.get(key)?.ready ?? Promise.resolve());
    try {
      await Promise.all(waits);
    } catch (error) {
      // The broker refused: the subscriber is not subscribed to what this request added.
      for (const key of added) this.#release(subscriber, key);
      throw error;
    }
    return Array.from(subscriber.symbols);
  }

  async unsubscribe(subscriber: S, symbols: string[]): Promise<string[]> {
    const gone = symbols.map(symbolKey).filter((key) => this.#release(subscriber, key));
    // The subscriber gets no more quotes for these either way; a broker failure is the gateway's to log.
    if (gone.length > 0) await this.#unsubscribeBroker(gone);
    return Array.from(subscriber.symbols);
  }

  /** Drops everything a closed connection held, without waiting for the broker. */
  releaseAll(subscriber: S): void {
    const gone = Array.from(subscriber.symbols).filter((key) => this.#release(subscriber, key));
    if (gone.length > 0) void this.#unsubscribeBroker(gone);
  }

  /** Who wants quotes of this instrument now. */
  subscribersOf(exchange: string, symbol: string): ReadonlySet<S> | undefined {
    return this.#bySymbol.get(`${exchange}:${symbol}`)?.subscribers;
  }

  /** Settles once every broker call made so far has. */
  settled(): Promise<void> {
    return this.#ops;
  }

  #unsubscribeBroker(gone: string[]): Promise<void> {
    return this.#op(() => this.#broker.unsubscribeQuotes(gone)).catch((error: unknown) => {
      this.#log.warn(`gateway: unsubscribing ${gone.join(", ")} failed: ${describe(error)}`);
    });
  }

  #op(operation: () => Promise<void>): Promise<void> {
    const run = this.#ops.then(operation);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  /** Drops one subscriber's interest in a symbol; true when it was the last one (unsubscribe the broker). */
  #release(subscriber: S, key: string): boolean {
    subscriber.symbols.delete(key);
    const subscription = this.#bySymbol.get(key);
    if (subscription === undefined || !subscription.subscribers.delete(subscriber)) return false;
    if (subscription.subscribers.size > 0) return false;
    this.#bySymbol.delete(key);
    return true;
  }
}

/** "INFY" and "NSE:INFY" name one instrument: subscriptions are counted by "EXCHANGE:SYMBOL". */
function symbolKey(text: string): string {
  const { exchange, symbol } = parseInstrument(text);
  return `${exchange}:${symbol}`;
}
