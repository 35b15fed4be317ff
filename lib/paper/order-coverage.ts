import type { OrderOptions } from "../protocol/order-options";
import { ORDER_OPTION_KEYS } from "../protocol/order-options";
import type { Clock, TimerRef } from "./clock";

/**
 * How the paper broker treats Kite's order options (README "The paper broker's fill rules"):
 *
 * - variety amo: like regular here; queueing it until the market opens belongs to the market rules.
 * - validity TTL: the order ends EXPIRED validity_ttl minutes after it was placed, whatever is left
 *   of it (TtlExpiry below).
 * - iceberg: the order rests as legs. Only one leg of iceberg_quantity (the last one: what is left)
 *   is on the book at a time, and the next is put up only after it fills, so one quote fills at most
 *   one leg. Outward it stays one order: one order_id, its filled_quantity summed over the legs.
 * - disclosed_quantity: carried and reported, no effect on matching. It only hides part of the
 *   order from other traders' view of the book, and the paper exchange has no other traders: the
 *   whole quantity stays available to fill, as it does at the exchange.
 */

/** Copies the options that are set from one order shape onto another (request, state, view). */
export function copyOrderOptions(from: OrderOptions, to: OrderOptions): void {
  for (const key of ORDER_OPTION_KEYS) {
    const value = from[key];
    if (value !== undefined) (to as Record<string, unknown>)[key] = value;
    else delete (to as Record<string, unknown>)[key];
  }
}

/** Whether an order shape carries any option (most do not: the copy is skipped for them). */
export function hasOrderOptions(order: OrderOptions): boolean {
  return (
    order.variety !== undefined ||
    order.validity_ttl !== undefined ||
    order.disclosed_quantity !== undefined ||
    order.iceberg_legs !== undefined
  );
}

/**
 * How much of the order is on the book now: its unfilled rest, or for an iceberg what is left of
 * the leg it is on (legs are filled in order; the last leg holds the remainder).
 */
export function visibleQuantity(order: {
  quantity: number;
  filled_quantity: number;
  variety?: string | undefined;
  iceberg_quantity?: number | undefined;
}): number {
  const remaining = order.quantity - order.filled_quantity;
  const leg = order.iceberg_quantity;
  if (order.variety !== "iceberg" || leg === undefined || leg <= 0) return remaining;
  const legEnd = Math.min(order.quantity, (Math.floor(order.filled_quantity / leg) + 1) * leg);
  return Math.min(remaining, legEnd - order.filled_quantity);
}

/** When a TTL order expires (ms since the epoch), or undefined for any other validity. */
export function ttlDeadline(order: {
  validity: string;
  validity_ttl?: number | undefined;
  placed_at: string;
}): number | undefined {
  if (order.validity !== "TTL" || order.validity_ttl === undefined) return undefined;
  return Date.parse(order.placed_at) + order.validity_ttl * 60_000;
}

/**
 * Expiry of TTL orders on the broker's clock: one timer, set for the earliest deadline, however
 * many orders wait. `onDue` gets the ids whose time has come and judges each (it may have filled,
 * been cancelled or modified to DAY meanwhile).
 */
export class TtlExpiry {
  readonly #clock: Clock;
  readonly #onDue: (orderIds: string[]) => void;
  readonly #deadlines = new Map<string, number>();
  #timer: TimerRef | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, onDue: (orderIds: string[]) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  get size(): number {
    return this.#deadlines.size;
  }

  schedule(orderId: string, deadline: number): void {
    this.#deadlines.set(orderId, deadline);
    if (deadline < this.#timerAt) this.#arm(deadline);
  }

  forget(orderId: string): void {
    this.#deadlines.delete(orderId);
  }

  /** Stops the timer and forgets every deadline (close; a reopen schedules from the journal). */
  clear(): void {
    this.#deadlines.clear();
    this.#disarm();
  }

  #arm(at: number): void {
    this.#disarm();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const due: string[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [orderId, deadline] of this.#deadlines) {
      if (deadline <= now) due.push(orderId);
      else if (deadline < next) next = deadline;
    }
    for (const orderId of due) this.#deadlines.delete(orderId);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    if (due.length > 0) this.#onDue(due);
  }
}
