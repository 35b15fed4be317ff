import { BrokerError } from "../protocol/errors";
import type { ErrorCode } from "../protocol/errors";

export type CircuitState = "closed" | "open" | "half-open";

/**
 * What a failed request says about the link, for the breaker:
 * - "unhealthy": no answer (TIMEOUT, NETWORK), or an answer saying the far side cannot carry out
 *   requests now (INTERNAL, NOT_CONNECTED, CIRCUIT_OPEN from a gateway's own breaker). A trial that
 *   ends so re-opens the circuit: the answer crossed the link, but the request could not be served.
 * - "healthy": a refusal on the merits (VALIDATION, INSUFFICIENT_FUNDS, ...): the gateway read the
 *   request and judged it, so the link and the venue work.
 * - "neutral": the request ended without asking the link (a local queue, deadline or rate limit,
 *   the broker closing) or for a reason unrelated to its health (credentials); also any code this
 *   list does not know, so a code added later never closes a circuit by accident.
 */
export type LinkVerdict = "healthy" | "unhealthy" | "neutral";

const UNHEALTHY: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "TIMEOUT",
  "NETWORK",
  "NOT_CONNECTED",
  "INTERNAL",
  "CIRCUIT_OPEN",
]);

const HEALTHY: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "VALIDATION",
  "NOT_FOUND",
  "ORDER_TERMINAL",
  "ORDER_REJECTED",
  "ILLEGAL_TRANSITION",
  "INSUFFICIENT_FUNDS",
  "DUPLICATE_ORDER",
  "NO_QUOTE",
  "IDEMPOTENCY_MISMATCH",
  "IDEMPOTENCY_UNKNOWN",
  "RISK",
  "BAD_FRAME",
  "UNKNOWN_TYPE",
  "FRAME_TOO_LARGE",
  "BATCH_TOO_LARGE",
]);

export function linkVerdict(code: ErrorCode): LinkVerdict {
  if (UNHEALTHY.has(code)) return "unhealthy";
  return HEALTHY.has(code) ? "healthy" : "neutral";
}

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
  /** The ticket of the trial in flight while half-open; 0 when there is none. */
  #trial = 0;
  #tickets = 0;

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
   * and it must report success(), failure() or release() or the circuit stays half-open.
   */
  tryAcquire(): boolean {
    return this.acquire() !== undefined;
  }

  /**
   * tryAcquire() that names who went ahead: 0 for a request of a closed circuit, a fresh ticket for
   * the half-open trial, undefined when refused. Reports made with the ticket count as the trial's
   * outcome only when they are the trial's own: an answer to a request sent before the circuit
   * opened says nothing about whether the link works now that the cool-down is over.
   */
  acquire(): number | undefined {
    switch (this.state) {
      case "closed":
        return 0;
      case "open":
        return undefined;
      case "half-open":
        if (this.#trial !== 0) return undefined;
        this.#trial = ++this.#tickets;
        return this.#trial;
    }
  }

  /** acquire() that throws CIRCUIT_OPEN, saying when to come back. */
  check(): number {
    const ticket = this.acquire();
    if (ticket !== undefined) return ticket;
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

  /**
   * The link worked. `ticket` is what acquire() gave; without one the report is taken as the trial's
   * when a trial is in flight (callers that do not track tickets).
   */
  success(ticket: number = this.#trial): void {
    if (this.#state === "closed") {
      this.#failures = 0;
    } else if (this.#isTrial(ticket)) {
      this.#close();
    }
    // While open, a success can only be a late report from before the circuit opened: the cool-down stands.
  }

  failure(ticket: number = this.#trial): void {
    if (this.#state === "closed") {
      this.#failures += 1;
      if (this.#failures >= this.failureThreshold) this.#open();
    } else if (this.#isTrial(ticket)) {
      this.#open();
    }
  }

  /**
   * The request ended without telling whether the link works (it never left, or ended for a reason
   * of its own): a trial gives its slot back so the next caller becomes the trial, rather than
   * leaving the circuit half-open and refusing everyone for good.
   */
  release(ticket: number = this.#trial): void {
    if (this.#isTrial(ticket)) this.#trial = 0;
  }

  #isTrial(ticket: number): boolean {
    return this.#state === "half-open" && ticket !== 0 && ticket === this.#trial;
  }

  #halfOpenIfCooledDown(): void {
    if (this.#state === "open" && this.#now() - this.#openedAt >= this.coolDownMs) {
      this.#trial = 0;
      this.#transition("half-open");
    }
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#trial = 0;
    this.#transition("open");
  }

  #close(): void {
    this.#failures = 0;
    this.#trial = 0;
    this.#transition("closed");
  }

  #transition(state: CircuitState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#onStateChange?.(state);
  }
}
