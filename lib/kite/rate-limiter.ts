import { sleep } from "../common/sleep";
import { BrokerError } from "../protocol/errors";

/**
 * At most `limit` requests in any window of `windowMs`, counted where the server counts them. The
 * server sees a request arrive somewhere between our send and its answer, and the network may
 * delay one and not the next; so a request holds its place from the moment it is sent until
 * `windowMs` after its answer came back, and a new one goes only while fewer than `limit` places
 * are held. Then any server window that holds k arrivals also held, at the last of those sends,
 * k − 1 places (each other one was in flight or answered less than `windowMs` before), so k ≤
 * limit whatever the delays. A token bucket (which starts full and keeps refilling) or a window
 * over send times alone lets a late batch and an early one meet inside one second (KITE.md §9;
 * issue 10 defect 2).
 */
export class SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
  /** Answer times of finished requests, oldest first; never more than `limit` of them. */
  readonly #done: number[] = [];
  /** Requests sent and not yet answered: they hold a place until windowMs after their answer. */
  #inFlight = 0;

  constructor(limit: number, windowMs: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a whole number ≥ 1, got ${limit}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be greater than 0, got ${windowMs}`);
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * When the send `ahead` places after the next one could go, given the places held now and those
   * `ahead` going as early as they can and answered at once. A request still in flight is taken as
   * answered now, so this is the earliest it could be: the caller checks again when it comes.
   */
  earliest(now: number, ahead = 0): number {
    const times = this.#done.slice();
    for (let i = 0; i < this.#inFlight; i++) times.push(now);
    let at = now;
    for (let i = 0; i <= ahead; i++) {
      at = times.length < this.limit ? now : Math.max(now, times[times.length - this.limit]! + this.windowMs);
      times.push(at);
    }
    return at;
  }

  /** A request is sent: it holds a place until finish(). */
  start(): void {
    this.#inFlight += 1;
  }

  /** Its answer (or failure) came back at `now`: it keeps its place for windowMs more. */
  finish(now: number): void {
    if (this.#inFlight > 0) this.#inFlight -= 1;
    this.#done.push(now);
    if (this.#done.length > this.limit) this.#done.shift();
  }

  /** A request that took its place and then was not sent after all: the place is free again. */
  cancel(): void {
    if (this.#inFlight > 0) this.#inFlight -= 1;
  }

  /** A request answered the moment it was sent (start and finish at once). */
  record(now: number): void {
    this.start();
    this.finish(now);
  }
}

/**
 * Client-side limits under Kite's published ones (KITE.md §9), so a burst waits here instead of
 * drawing HTTP 429s: each acquire() is recorded in every window, first come first served, except
 * that an urgent one (the login's session exchange) goes before every ordinary one still waiting:
 * background reads queued behind a dead session must not keep the one call that revives it
 * waiting, or refused. One that would wait longer than `maxWaitMs` fails at once with
 * RATE_LIMITED (it would be stale by the time it went out).
 */
export class RateLimiter {
  readonly name: string;
  readonly #windows: SlidingWindow[];
  readonly #maxWaitMs: number;
  readonly #now: () => number;
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;
  /** Urgent requests wait in a queue of their own, which every ordinary one lets go first. */
  #urgentQueue: Promise<void> = Promise.resolve();
  #urgentWaiting = 0;

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

  /**
   * Waits for a place in every window and takes it; call the returned function when the request's
   * answer (or failure) is back, so the place is held until windowMs after that; or with `unsent`
   * true when the request was not sent after all, which frees the place at once.
   */
  async acquire(signal: AbortSignal, urgent = false): Promise<(unsent?: boolean) => void> {
    const estimate = this.#estimate(urgent ? this.#urgentWaiting : this.#urgentWaiting + this.#waiting);
    if (estimate > this.#maxWaitMs) {
      throw new BrokerError(
        "RATE_LIMITED",
        `Kite ${this.name} rate limit: this request would wait ${estimate} ms, more than ${this.#maxWaitMs} ms; not sent`,
        { retryAfterMs: estimate },
      );
    }
    if (urgent) this.#urgentWaiting += 1;
    else this.#waiting += 1;
    const before = urgent ? this.#urgentQueue : this.#queue;
    const turn = before.then(() => this.#take(signal, urgent));
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    if (urgent) this.#urgentQueue = settled;
    else this.#queue = settled;
    try {
      return await turn;
    } finally {
      if (urgent) this.#urgentWaiting -= 1;
      else this.#waiting -= 1;
    }
  }

  async #take(signal: AbortSignal, urgent: boolean): Promise<(unsent?: boolean) => void> {
    for (;;) {
      if (signal.aborted)
        throw new BrokerError("CLOSED", "broker closed while the request waited for the rate limit");
      if (!urgent && this.#urgentWaiting > 0) {
        // The next free place is an urgent request's: wait until every urgent one has its own.
        await this.#urgentQueue;
        continue;
      }
      const wait = this.#estimate(0);
      if (wait <= 0) {
        for (const window of this.#windows) window.start();
        let finished = false;
        return (unsent = false) => {
          if (finished) return;
          finished = true;
          const now = this.#now();
          for (const window of this.#windows) {
            if (unsent) window.cancel();
            else window.finish(now);
          }
        };
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
