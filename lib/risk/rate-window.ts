/**
 * Orders sent in the last second and the last minute, from the times they were sent. Only what
 * was let through counts: a refused order must not hold back the next good one. Each window keeps
 * its own start index into one list of times, so a count is O(1) amortized however fast orders go.
 */
export class RateWindow {
  #times: number[] = [];
  /** First index inside the last second / the last minute. */
  #second = 0;
  #minute = 0;

  record(now: number): void {
    this.#times.push(now);
    this.#advance(now);
  }

  /** Orders sent within the last second (`ms` 1000) or minute (`ms` 60000) before `now`. */
  count(now: number, ms: 1000 | 60_000): number {
    this.#advance(now);
    return this.#times.length - (ms === 1000 ? this.#second : this.#minute);
  }

  #advance(now: number): void {
    const times = this.#times;
    while (this.#minute < times.length && times[this.#minute]! <= now - 60_000) this.#minute++;
    if (this.#second < this.#minute) this.#second = this.#minute;
    while (this.#second < times.length && times[this.#second]! <= now - 1000) this.#second++;
    // Drop what left the minute now and then, so the list holds about a minute of orders.
    if (this.#minute > 1024 && this.#minute * 2 > times.length) {
      this.#times = times.slice(this.#minute);
      this.#second -= this.#minute;
      this.#minute = 0;
    }
  }
}
