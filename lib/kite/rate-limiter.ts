import { sleep } from "../ws/sleep";
import { BrokerError } from "../protocol/errors";

/**
 * At most `limit` sends in any window of `windowMs`: the send times are remembered, and a new one
 * waits until the oldest of the last `limit` leaves the window. Unlike a token bucket (which
 * starts full and keeps refilling, so a burst can put twice the rate inside one second), no
 * sliding window ever holds more than the limit (KITE.md §9; issue 10 defect 2).
 */
export class SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
  /** Send times, oldest first; never more than `limit` of them. */
  readonly #sent: number[] = [];

  constructor(limit: number, windowMs: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a whole number ≥ 1, got ${limit}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be greater than 0, got ${windowMs}`);
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /**
   * When the send `ahead` places after the next one could go, given only the sends recorded so
   * far and those `ahead` going as early as they can: the waiting-time estimate for a queue.
   */
  earliest(now: number, ahead = 0): number {
    const times = this.#sent.slice();
    let at = now;
    for (let i = 0; i <= ahead; i++) {
      at = times.length < this.limit ? now : Math.max(now, times[times.length - this.limit]! + this.windowMs);
      times.push(at);
    }
    return at;
  }

  record(now: number): void {
    this.#sent.push(now);
    if (this.#sent.length > this.limit) this.#sent.shift();
  }
}

/**
 * Client-side limits under Kite's published ones (KITE.md §9), so a burst waits here instead of
 * drawing HTTP 429s: each acquire() is recorded in every window, first come first served. One
 * that would wait longer than `maxWaitMs` fails at once with RATE_LIMITED (it would be stale by
 * the time it went out).
 */
export class RateLimiter {
  readonly name: string;
  readonly #windows: SlidingWindow[];
  readonly #maxWaitMs: number;
  readonly #now: () => number;
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;

  constructor(
    name: string,
    windows: SlidingWindow[],
    maxWaitMs: number,
    now: () => number = () => performance.now(),
  ) {
    this.name = name;
    this.#windows = windows;
    this.#maxWaitMs = maxWaitMs;
    this.#now = now;
  }

  /** Milliseconds until the send `ahead` places back in the queue may go. */
  #estimate(ahead: number): number {
    const now = this.#now();
    let at = now;
    for (const window of this.#windows) at = Math.max(at, window.earliest(now, ahead));
    return Math.ceil(at - now);
  }

  async acquire(signal: AbortSignal): Promise<void> {
    const estimate = this.#estimate(this.#waiting);
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
      const wait = this.#estimate(0);
      if (wait <= 0) {
        const now = this.#now();
        for (const window of this.#windows) window.record(now);
        return;
      }
      await sleep(wait, signal);
    }
  }
}

/**
 * `perSecond` a second (and optionally a per-minute cap) as sliding windows widened by
 * `marginMs`: the server counts arrivals, and a request sent at the start of our window may arrive
 * late while the next one arrives early, so a window a little longer than Kite's keeps clear of
 * that jitter.
 */
export function kiteWindows(perSecond: number, marginMs: number, perMinute?: number): SlidingWindow[] {
  const windows = [new SlidingWindow(Math.max(1, Math.floor(perSecond)), 1000 + marginMs)];
  if (perMinute !== undefined)
    windows.push(new SlidingWindow(Math.max(1, Math.floor(perMinute)), 60_000 + marginMs));
  return windows;
}
