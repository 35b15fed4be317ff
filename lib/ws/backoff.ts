export interface BackoffOptions {
  /** Ceiling of the first delay. */
  initialMs: number;
  /** How much the ceiling grows per attempt. */
  factor: number;
  /** The ceiling never grows past this. */
  maxMs: number;
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: each delay is uniform in [0, min(maxMs, initialMs * factor^attempt)].
 * Full jitter (rather than a fixed ladder) spreads out clients that lost the same server at the same
 * moment, so a restarted gateway is not hit by all of them in lock-step.
 */
export class Backoff {
  readonly initialMs: number;
  readonly factor: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    requireFinite("initialMs", options.initialMs, 0, "greater than 0");
    requireFinite("factor", options.factor, 1, "at least 1", true);
    requireFinite(
      "maxMs",
      options.maxMs,
      options.initialMs,
      `at least initialMs (${options.initialMs})`,
      true,
    );
    this.initialMs = options.initialMs;
    this.factor = options.factor;
    this.maxMs = options.maxMs;
    this.#random = options.random ?? Math.random;
  }

  /** Delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The upper bound of the delay the next call to next() will draw from. */
  get ceilingMs(): number {
    // factor ** attempt overflows to Infinity after many attempts; min() turns that into maxMs.
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.#attempt);
  }

  next(): number {
    const ceiling = this.ceilingMs;
    this.#attempt += 1;
    return Math.min(ceiling, Math.max(0, this.#random() * ceiling));
  }

  reset(): void {
    this.#attempt = 0;
  }
}

function requireFinite(name: string, value: number, bound: number, rule: string, inclusive = false): void {
  const ok = Number.isFinite(value) && (inclusive ? value >= bound : value > bound);
  if (!ok) throw new RangeError(`backoff ${name} must be a finite number ${rule}, got ${value}`);
}
