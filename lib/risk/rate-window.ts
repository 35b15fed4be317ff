/**
 * Orders sent in the last second and the last minute, from the times they were sent. Only what
 * was let through counts: a refused order must not hold back the next good one.
 */
export class RateWindow {
  readonly #times: number[] = [];
  #head = 0;

  record(now: number): void {
    this.#times.push(now);
    this.#prune(now);
  }

  /** Orders sent within `ms` before `now` (after it was `now - ms`). */
  count(now: number, ms: number): number {
    this.#prune(now);
    let n = 0;
    for (let i = this.#times.length - 1; i >= this.#head; i--) {
      if (this.#times[i]! <= now - ms) break;
      n++;
    }
    return n;
  }

  #prune(now: number): void {
    while (this.#head < this.#times.length && this.#times[this.#head]! <= now - 60_000) this.#head++;
    // Drop the consumed prefix now and then, so the array does not grow for ever.
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
