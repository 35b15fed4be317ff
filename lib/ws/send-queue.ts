import { BrokerError } from "../protocol/errors";

export interface SendQueueOptions<T = unknown> {
  /** Entries held at most; one more is refused at once. */
  max: number;
  /** Default time-to-live of an entry, from push() to being taken for sending. */
  ttlMs: number;
  now?: () => number;
  /**
   * Names an entry in error messages, for entries pushed with a bare ttl: built only when one
   * expires or is refused, never on the hot path.
   */
  labelOf?: (item: T) => string;
  /** Called once for an entry pushed with a bare ttl that outlives it; it has been removed by then. */
  onExpire?: (item: T, error: BrokerError) => void;
}

export interface EnqueueOptions {
  /** Overrides the queue's default time-to-live for this entry. */
  ttlMs?: number;
  /** Names the entry in error messages, e.g. "PLACE_ORDER k3f9-12". */
  label?: string;
  /** Called once if the entry outlives its time-to-live; it has been removed by then. */
  onExpire: (error: BrokerError) => void;
}

interface Entry<T> {
  readonly item: T;
  readonly deadline: number;
  readonly ttlMs: number;
  /** Undefined: the queue's labelOf names it, and its onExpire ends it. */
  readonly options: EnqueueOptions | undefined;
}

/**
 * Bounded FIFO of requests waiting for a connection. Every entry has a deadline: an order that could
 * not go out in time is stale, and sending it late would trade on a market that has moved, so it
 * ends EXPIRED instead. A full queue refuses at once rather than growing without bound
 * (reconnecting-websocket #110/#147: silent drops and unbounded memory).
 *
 * One timer serves every entry: it is armed for the earliest deadline and re-armed when it fires.
 */
export class SendQueue<T> {
  readonly max: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #labelOf: ((item: T) => string) | undefined;
  readonly #onExpire: ((item: T, error: BrokerError) => void) | undefined;
  #entries: Entry<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  constructor(options: SendQueueOptions<T>) {
    if (!Number.isInteger(options.max) || options.max < 1) {
      throw new RangeError(`queue max must be an integer of at least 1, got ${options.max}`);
    }
    requireTtl("queue ttlMs", options.ttlMs);
    this.max = options.max;
    this.ttlMs = options.ttlMs;
    this.#now = options.now ?? (() => performance.now());
    this.#labelOf = options.labelOf;
    this.#onExpire = options.onExpire;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Whether the expiry timer is armed (for tests and leak checks). */
  get timerArmed(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Throws BrokerError QUEUE_FULL when the queue already holds `max` entries. A bare number is the
   * entry's time-to-live, with the queue's own labelOf and onExpire (no closure per entry).
   */
  push(item: T, options: EnqueueOptions | number): void {
    const own = typeof options === "number" ? undefined : options;
    if (own === undefined && this.#onExpire === undefined) {
      throw new TypeError("push with a bare ttl needs the queue's onExpire");
    }
    if (this.#entries.length >= this.max) {
      throw new BrokerError(
        "QUEUE_FULL",
        `send queue full (${this.max} waiting); ${this.#label(item, own)} not sent`,
      );
    }
    const ttlMs = typeof options === "number" ? options : (options.ttlMs ?? this.ttlMs);
    requireTtl("ttlMs", ttlMs);
    const deadline = this.#now() + ttlMs;
    this.#entries.push({ item, deadline, ttlMs, options: own });
    if (deadline < this.#timerAt) this.#arm(deadline);
  }

  #label(item: T, options: EnqueueOptions | undefined): string {
    if (options !== undefined) return options.label ?? "request";
    return this.#labelOf?.(item) ?? "request";
  }

  /** The oldest entry still within its time-to-live, left in place. */
  peek(): T | undefined {
    this.#expireOverdueHead();
    return this.#entries[0]?.item;
  }

  /** Removes and returns the oldest entry still within its time-to-live. */
  shift(): T | undefined {
    this.#expireOverdueHead();
    const entry = this.#entries.shift();
    if (this.#entries.length === 0) this.#disarm();
    return entry?.item;
  }

  /** Empties the queue without expiring anything and returns the items oldest first. */
  clear(): T[] {
    const items = this.#entries.map((entry) => entry.item);
    this.#entries = [];
    this.#disarm();
    return items;
  }

  /**
   * The timer may not have fired yet for an entry whose deadline has passed (timers run late under
   * load); checking here keeps a stale entry from being handed out in that gap.
   */
  #expireOverdueHead(): void {
    const now = this.#now();
    while (this.#entries.length > 0 && this.#entries[0]!.deadline <= now) {
      this.#expire(this.#entries.shift()!);
    }
    if (this.#entries.length === 0) this.#disarm();
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    const due: Entry<T>[] = [];
    const kept: Entry<T>[] = [];
    for (const entry of this.#entries) (entry.deadline <= now ? due : kept).push(entry);
    this.#entries = kept;
    // Expire only after the queue is consistent: onExpire may push or shift re-entrantly.
    for (const entry of due) this.#expire(entry);
    this.#armForEarliest();
  }

  #expire(entry: Entry<T>): void {
    const error = new BrokerError(
      "EXPIRED",
      `${this.#label(entry.item, entry.options)} not sent within ${entry.ttlMs} ms; never sent`,
    );
    if (entry.options !== undefined) entry.options.onExpire(error);
    else this.#onExpire?.(entry.item, error);
  }

  #armForEarliest(): void {
    let earliest = Infinity;
    for (const entry of this.#entries) earliest = Math.min(earliest, entry.deadline);
    if (earliest === Infinity) this.#disarm();
    else if (earliest < this.#timerAt) this.#arm(earliest);
  }

  #arm(deadline: number): void {
    this.#disarm();
    this.#timerAt = deadline;
    // +1: setTimeout counts whole milliseconds and may fire a fraction early against performance.now().
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(1, Math.ceil(deadline - this.#now()) + 1));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

function requireTtl(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number greater than 0, got ${value}`);
  }
}
