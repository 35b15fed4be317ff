import { sleep } from "../ws/sleep";
import { BrokerError } from "../protocol/errors";
import { TokenBucket } from "../ws/token-bucket";

/**
 * Client-side limits under Kite's published ones (KITE.md §9), so a burst waits here instead of
 * drawing HTTP 429s: every acquire() takes a token from each of its buckets, first come first
 * served. One that would wait longer than `maxWaitMs` fails at once with RATE_LIMITED (it would be
 * stale by the time it went out).
 */
export class RateLimiter {
  readonly name: string;
  readonly #buckets: TokenBucket[];
  readonly #maxWaitMs: number;
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;

  constructor(name: string, buckets: TokenBucket[], maxWaitMs: number) {
    this.name = name;
    this.#buckets = buckets;
    this.#maxWaitMs = maxWaitMs;
  }

  /** Milliseconds until `count` more tokens exist in every bucket. */
  #estimate(count: number): number {
    let wait = 0;
    for (const bucket of this.#buckets) {
      const missing = count - bucket.available;
      if (missing > 0) wait = Math.max(wait, Math.ceil((missing * 1000) / bucket.ratePerSecond));
    }
    return wait;
  }

  async acquire(signal: AbortSignal): Promise<void> {
    const estimate = this.#estimate(this.#waiting + 1);
    if (estimate > this.#maxWaitMs) {
      throw new BrokerError(
        "RATE_LIMITED",
        `Kite ${this.name} rate limit: this request would wait ${estimate} ms, more than ${this.#maxWaitMs} ms; not sent`,
        { retryAfterMs: estimate },
      );
    }
    this.#waiting += 1;
    const turn = this.#queue.then(() => this.#take(signal));
    this.#queue = turn.catch(() => undefined);
    try {
      await turn;
    } finally {
      this.#waiting -= 1;
    }
  }

  async #take(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted)
        throw new BrokerError("CLOSED", "broker closed while the request waited for the rate limit");
      const wait = this.#estimate(1);
      if (wait === 0) {
        for (const bucket of this.#buckets) bucket.take(1);
        return;
      }
      await sleep(wait, signal);
    }
  }
}

export function bucket(ratePerSecond: number, burst: number): TokenBucket {
  return new TokenBucket(ratePerSecond, burst);
}
