import { BrokerError } from "../protocol/errors";

export type CircuitState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit fails fast before it lets one trial through. */
  coolDownMs: number;
  now?: () => number;
  onStateChange?: (state: CircuitState) => void;
}

/**
 * Fails fast while a broker keeps failing, so a flow does not pile requests onto a dead link.
 *
 * There is no timer: the open → half-open move is computed from the clock when the breaker is next
 * consulted, so a breaker nobody asks leaves nothing behind to clean up on redeploy. onStateChange
 * therefore reports "half-open" at that next consultation, not at the exact end of the cool-down.
 */
export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly coolDownMs: number;
  readonly #now: () => number;
  readonly #onStateChange: ((state: CircuitState) => void) | undefined;
  #state: CircuitState = "closed";
  #failures = 0;
  #openedAt = 0;
  #trialInFlight = false;

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1) {
      throw new RangeError(
        `failureThreshold must be an integer of at least 1, got ${options.failureThreshold}`,
      );
    }
    if (!Number.isFinite(options.coolDownMs) || options.coolDownMs < 0) {
      throw new RangeError(`coolDownMs must be a finite number of at least 0, got ${options.coolDownMs}`);
    }
    this.failureThreshold = options.failureThreshold;
    this.coolDownMs = options.coolDownMs;
    this.#now = options.now ?? (() => performance.now());
    this.#onStateChange = options.onStateChange;
  }

  get state(): CircuitState {
    this.#halfOpenIfCooledDown();
    return this.#state;
  }

  /** Consecutive failures counted while closed. */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until an open circuit admits a trial; 0 when it is not open. */
  get retryInMs(): number {
    if (this.state !== "open") return 0;
    return Math.max(0, Math.ceil(this.#openedAt + this.coolDownMs - this.#now()));
  }

  /**
   * True when the caller may go ahead. In half-open only the first caller gets true: it is the trial,
   * and it must report success() or failure() or the circuit stays half-open.
   */
  tryAcquire(): boolean {
    switch (this.state) {
      case "closed":
        return true;
      case "open":
        return false;
      case "half-open":
        if (this.#trialInFlight) return false;
        this.#trialInFlight = true;
        return true;
    }
  }

  /** tryAcquire() that throws CIRCUIT_OPEN, saying when to come back. */
  check(): void {
    if (this.tryAcquire()) return;
    if (this.#state === "open") {
      const wait = this.retryInMs;
      throw new BrokerError(
        "CIRCUIT_OPEN",
        `circuit open after ${this.failureThreshold} consecutive failures; retry in ${wait} ms`,
        { retryAfterMs: wait },
      );
    }
    throw new BrokerError(
      "CIRCUIT_OPEN",
      "circuit half-open: a trial request is in flight; retry when it completes",
    );
  }

  success(): void {
    if (this.#state === "closed") {
      this.#failures = 0;
    } else if (this.#state === "half-open" && this.#trialInFlight) {
      this.#close();
    }
    // While open, a success can only be a late report from before the circuit opened: the cool-down stands.
  }

  failure(): void {
    if (this.#state === "closed") {
      this.#failures += 1;
      if (this.#failures >= this.failureThreshold) this.#open();
    } else if (this.#state === "half-open" && this.#trialInFlight) {
      this.#open();
    }
  }

  #halfOpenIfCooledDown(): void {
    if (this.#state === "open" && this.#now() - this.#openedAt >= this.coolDownMs) {
      this.#trialInFlight = false;
      this.#transition("half-open");
    }
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#trialInFlight = false;
    this.#transition("open");
  }

  #close(): void {
    this.#failures = 0;
    this.#trialInFlight = false;
    this.#transition("closed");
  }

  #transition(state: CircuitState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#onStateChange?.(state);
  }
}
