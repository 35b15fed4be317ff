import { BrokerError } from "../protocol/errors";
import { parseInstrument } from "../protocol/instrument";

/** Whoever holds subscriptions (a gateway connection, a quotes node), with its side of them. */
export interface Subscriber {
  /** "EXCHANGE:SYMBOL" keys this subscriber holds. */
  readonly symbols: Set<string>;
}

/** What the subscriptions are counted over: the broker, or a way to reach it. */
export interface QuoteSource {
  subscribeQuotes(keys: string[]): Promise<void>;
  unsubscribeQuotes(keys: string[]): Promise<void>;
}

export interface QuoteSubscriptionOptions<S extends Subscriber = Subscriber> {
  source: QuoteSource;
  /** Subscriptions one subscriber may hold, and what to call it in the refusal. */
  cap?: { max: number; holder: string };
  /**
   * Subscriptions a group of subscribers may hold together (a gateway's api key over all its
   * connections), and what to call the group in the refusal: without it, a group of capped
   * subscribers holds as many as it has members.
   */
  groupCap?: { max: number; holder: string; groupOf(subscriber: S): string };
  /**
   * Subscriptions all subscribers may hold together (a whole gateway, over all its api keys), and
   * what to call their holder in the refusal: without it, many groups hold as many as they are.
   */
  totalCap?: { max: number; holder: string };
  /** A failed broker unsubscribe: the subscriber has let go either way, so it is only reported. */
  onUnsubscribeFailed(keys: readonly string[], error: unknown): void;
}

interface Subscription<S> {
  readonly subscribers: Set<S>;
  /** Settles when the broker has (or has failed to) subscribe(d). */
  ready: Promise<void>;
}

/**
 * Quote subscriptions counted per symbol over their subscribers: the broker is asked to subscribe
 * a symbol when the first subscriber wants it and to unsubscribe when the last lets go, in the
 * order those calls were made. A subscriber that asks while the broker is still subscribing waits
 * for that answer, so nobody is told "subscribed" before the broker is.
 */
export class QuoteSubscriptions<S extends Subscriber> {
  readonly #options: QuoteSubscriptionOptions<S>;
  readonly #bySymbol = new Map<string, Subscription<S>>();
  /** Subscriptions held per group (groupCap), counted as they are added and released. */
  readonly #perGroup = new Map<string, number>();
  /** Subscriptions held by all subscribers (totalCap). */
  #total = 0;
  /** Broker subscribe/unsubscribe calls run one after another, so they reach it in the order made. */
  #ops: Promise<void> = Promise.resolve();

  constructor(options: QuoteSubscriptionOptions<S>) {
    this.#options = options;
  }

  /** Adds symbols to the subscriber's set; the broker is asked only for ones no subscriber had. */
  async subscribe(subscriber: S, symbols: readonly string[]): Promise<string[]> {
    const keys = symbols.map(symbolKey);
    const { cap, groupCap, totalCap } = this.#options;
    if (cap !== undefined || groupCap !== undefined || totalCap !== undefined) {
      const adding = new Set(keys.filter((key) => !subscriber.symbols.has(key))).size;
      if (cap !== undefined && subscriber.symbols.size + adding > cap.max) {
        throw new BrokerError(
          "VALIDATION",
          `symbols: ${cap.holder} may hold at most ${cap.max} subscriptions (it holds ${subscriber.symbols.size}, this adds ${adding}); unsubscribe some first`,
        );
      }
      const held = groupCap === undefined ? 0 : (this.#perGroup.get(groupCap.groupOf(subscriber)) ?? 0);
      if (groupCap !== undefined && held + adding > groupCap.max) {
        throw new BrokerError(
          "VALIDATION",
          `symbols: ${groupCap.holder} may hold at most ${groupCap.max} subscriptions (it holds ${held}, this adds ${adding}); unsubscribe some first`,
        );
      }
      if (totalCap !== undefined && this.#total + adding > totalCap.max) {
        throw new BrokerError(
          "VALIDATION",
          `symbols: ${totalCap.holder} may hold at most ${totalCap.max} subscriptions (it holds ${this.#total}, this adds ${adding}); unsubscribe some first`,
        );
      }
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
    this.#count(subscriber, added.length);
    if (fresh.length > 0) {
      const ready = this.#op(() => this.#options.source.subscribeQuotes(fresh));
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

  async unsubscribe(subscriber: S, symbols: readonly string[]): Promise<string[]> {
    const gone = symbols.map(symbolKey).filter((key) => this.#release(subscriber, key));
    if (gone.length > 0) await this.#unsubscribeSource(gone);
    return Array.from(subscriber.symbols);
  }

  /** Drops everything a leaving subscriber held, without waiting for the broker. */
  releaseAll(subscriber: S): void {
    const gone = Array.from(subscriber.symbols).filter((key) => this.#release(subscriber, key));
    if (gone.length > 0) void this.#unsubscribeSource(gone);
  }

  /** Forgets every subscription at once: the broker behind them is gone. */
  clear(): void {
    for (const subscription of this.#bySymbol.values()) {
      for (const subscriber of subscription.subscribers) subscriber.symbols.clear();
    }
    this.#bySymbol.clear();
    this.#perGroup.clear();
    this.#total = 0;
  }

  /** Who wants quotes of this instrument now. */
  subscribersOf(exchange: string, symbol: string): ReadonlySet<S> | undefined {
    return this.#bySymbol.get(`${exchange}:${symbol}`)?.subscribers;
  }

  /** Subscriptions held now, over all subscribers. */
  get total(): number {
    return this.#total;
  }

  /** Subscriptions a group (groupCap) holds now, over all its subscribers. */
  heldByGroup(group: string): number {
    return this.#perGroup.get(group) ?? 0;
  }

  /** Each subscribed instrument key with how many subscribers hold it. */
  counts(): Map<string, number> {
    return new Map(Array.from(this.#bySymbol, ([key, { subscribers }]) => [key, subscribers.size]));
  }

  /** Settles once every broker call made so far has. */
  settled(): Promise<void> {
    return this.#ops;
  }

  #unsubscribeSource(gone: string[]): Promise<void> {
    return this.#op(() => this.#options.source.unsubscribeQuotes(gone)).catch((error: unknown) => {
      this.#options.onUnsubscribeFailed(gone, error);
    });
  }

  #op(operation: () => Promise<void>): Promise<void> {
    const run = this.#ops.then(operation);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  /** Adds `delta` to the subscriber's group's count; a group holding nothing is forgotten. */
  #count(subscriber: S, delta: number): void {
    this.#total += delta;
    const groupCap = this.#options.groupCap;
    if (groupCap === undefined || delta === 0) return;
    const group = groupCap.groupOf(subscriber);
    const held = (this.#perGroup.get(group) ?? 0) + delta;
    if (held > 0) this.#perGroup.set(group, held);
    else this.#perGroup.delete(group);
  }

  /** Drops one subscriber's interest in a symbol; true when it was the last one (unsubscribe the broker). */
  #release(subscriber: S, key: string): boolean {
    if (subscriber.symbols.delete(key)) this.#count(subscriber, -1);
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
