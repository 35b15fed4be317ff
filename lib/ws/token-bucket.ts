/**
 * A token bucket: `ratePerSecond` tokens a second, holding at most `burst`. Used on both sides of
 * the wire: the client keeps under a broker's published limit, the gateway enforces its own.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #updated: number;

  constructor(ratePerSecond: number, burst: number, now: () => number = () => performance.now()) {
    if (!(ratePerSecond > 0))
      throw new RangeError(`ratePerSecond must be greater than 0, got ${ratePerSecond}`);
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1, got ${burst}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#updated = now();
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updated) * this.ratePerSecond) / 1000);
    this.#updated = now;
  }

  /** Takes `count` tokens if there are enough and returns 0; otherwise takes none and returns the ms to wait. */
  take(count = 1): number {
    this.#refill();
    if (this.#tokens >= count) {
      this.#tokens -= count;
      return 0;
    }
    return Math.ceil(((count - this.#tokens) * 1000) / this.ratePerSecond);
  }

  get available(): number {
    this.#refill();
    return this.#tokens;
  }
}
