/**
 * Time as the paper broker sees it. Injected so tests can step time by hand and get the same
 * fills, timestamps and quote walks on every run.
 */
export type TimerRef = { readonly id: number } | NodeJS.Timeout;

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerRef;
  clearTimeout(timer: TimerRef): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

interface ManualTimer {
  id: number;
  due: number;
  callback: () => void;
}

/** A clock that moves only when a test calls `advance`; due timers run in due order. */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers = new Map<number, ManualTimer>();

  constructor(start = Date.UTC(2026, 0, 5, 3, 45)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerRef {
    const timer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), callback };
    this.#timers.set(timer.id, timer);
    return { id: timer.id };
  }

  clearTimeout(timer: TimerRef): void {
    if ("id" in timer && typeof timer.id === "number") this.#timers.delete(timer.id);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const next = this.#earliestDue(end);
      if (next === undefined) break;
      this.#timers.delete(next.id);
      this.#now = next.due;
      next.callback();
    }
    this.#now = end;
  }

  #earliestDue(limit: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.due <= limit && (best === undefined || timer.due < best.due)) best = timer;
    }
    return best;
  }
}
