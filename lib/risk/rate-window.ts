/**
 * Orders sent in the last second and the last minute, from the times they were sent. Only what
 * was let through counts: a refused order must not hold back the next good one.
 *
 * Exact, and cheap however fast orders go: orders sent in the same millisecond share one entry
 * (a time and a count), each window keeps its start index and a running total, so recording and
 * counting are O(1) amortized and the list holds at most a minute of distinct milliseconds.
 */
export class RateWindow {
  #times: number[] = [];
  #counts: number[] = [];
  /** First index inside the last second / the last minute, and the orders from there on. */
  #second = 0;
  #minute = 0;
  #inSecond = 0;
  #inMinute = 0;
  /** The time advanced to last: checking and recording one order advance once. */
  #at = Number.NaN;

  /**
   * `now` never goes back in use (an elapsed clock); should it, the order counts as sent at the
   * latest time seen, which keeps it in the windows longer rather than not at all.
   */
  record(at: number): void {
    const now = at < this.#at ? this.#at : at;
    this.#advance(now);
    const last = this.#times.length - 1;
    if (last >= this.#second && this.#times[last] === now) this.#counts[last]! += 1;
    else {
      this.#times.push(now);
      this.#counts.push(1);
    }
    this.#inSecond += 1;
    this.#inMinute += 1;
  }

  /** Orders sent within the last second (`ms` 1000) or minute (`ms` 60000) before `now`. */
  count(now: number, ms: 1000 | 60_000): number {
    this.#advance(now);
    return ms === 1000 ? this.#inSecond : this.#inMinute;
  }

  #advance(now: number): void {
    // Nothing leaves the windows twice at one time, and what was recorded at it stays in them.
    if (now === this.#at) return;
    this.#at = now;
    const times = this.#times;
    const counts = this.#counts;
    while (this.#minute < times.length && times[this.#minute]! <= now - 60_000) {
      this.#inMinute -= counts[this.#minute]!;
      if (this.#second === this.#minute) {
        this.#inSecond -= counts[this.#second]!;
        this.#second++;
      }
      this.#minute++;
    }
    while (this.#second < times.length && times[this.#second]! <= now - 1000) {
      this.#inSecond -= counts[this.#second]!;
      this.#second++;
    }
    // Drop what left the minute now and then, so the lists hold about a minute.
    if (this.#minute > 1024 && this.#minute * 2 > times.length) {
      this.#times = times.slice(this.#minute);
      this.#counts = counts.slice(this.#minute);
      this.#second -= this.#minute;
      this.#minute = 0;
    }
  }
}
