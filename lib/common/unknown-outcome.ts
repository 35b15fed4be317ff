import { BrokerError, toBrokerError } from "../protocol/errors";
import type { OrderChanges } from "../protocol/orders";
import { sleep } from "./sleep";

/** Longest pause between two lookups while the outcome stays unknown. */
const LOOKUP_RETRY_MS = 250;

/**
 * True when a request may or may not have taken effect: no answer came back (a timeout, a dropped
 * connection), so nothing proves it failed. Brokers that know more widen it (Kite: a 5xx).
 */
export function isUnknownOutcome(error: BrokerError): boolean {
  return error.code === "TIMEOUT" || error.code === "NETWORK";
}

export interface UnknownPlacement<T> {
  /** The order's client_order_id: what the lookups search by and what the messages name. */
  clientId: string;
  /** Why the outcome is unknown (the placement's own error). */
  first: BrokerError;
  /** How long to keep looking before reporting the outcome unknown. */
  windowMs: number;
  /** After this time (ms since the epoch) the order is never sent again: a stale order is not placed late. */
  sendBy: number;
  /** The time to live `sendBy` was made from, for the message. */
  ttlMs: number;
  /** Who never saw the order, for the message ("the server", "Kite"). */
  venue: string;
  /** Ends the wait at once (the broker is closing). */
  signal: AbortSignal;
  /** This broker's idea of an unknown outcome. */
  isUnknown(error: BrokerError): boolean;
  /**
   * The order if the venue has it; undefined when it is absent. Throws while that cannot be told.
   * `remainingMs` is what is left of the window, a bound for the lookup's own wait.
   */
  lookup(remainingMs: number): Promise<T | undefined>;
  /** A lookup failure that settles the matter (the id was refused); anything else is asked again. */
  isFinal(error: BrokerError): boolean;
  /** Sends the order again (same client_order_id), with `ttlMs` left of its time to live. */
  resend(ttlMs: number): Promise<T>;
  /**
   * A venue that may list a new order a moment late (Kite) is asked twice, this far apart, before
   * the order counts as absent; 0 believes the first answer.
   */
  absentGraceMs?: number;
  /** What the messages call the request; `order <clientId>` by default. */
  subject?: string;
  /** What the request does once carried out, for the messages; "placed" by default. */
  done?: string;
}

/**
 * Settles a placement whose answer was lost: the order may or may not exist. It is looked up by its
 * client_order_id; when the venue never saw it, it is sent again (same id, so at most one order)
 * only while its time to live lasts. Resolves with the order, or rejects with why it cannot:
 * CLOSED (the broker closed), EXPIRED (never placed, too late to send), NETWORK (still unknown
 * after the window), or a final refusal.
 */
export async function settlePlacement<T>(placement: UnknownPlacement<T>): Promise<T> {
  const { clientId, signal } = placement;
  const giveUpAt = Date.now() + placement.windowMs;
  const graceMs = placement.absentGraceMs ?? 0;
  let last = placement.first;
  let absentOnce = graceMs <= 0;
  const subject = placement.subject ?? `order ${clientId}`;
  const done = placement.done ?? "placed";
  const closed = (): BrokerError =>
    new BrokerError(
      "CLOSED",
      `broker closed while ${placement.subject === undefined ? `order ${clientId}'s outcome` : `the outcome of ${subject}`} was unknown (${last.message}); it will show in order events if it was ${done}`,
    );
  while (Date.now() < giveUpAt) {
    if (signal.aborted) throw closed();
    let found: T | undefined;
    try {
      found = await placement.lookup(giveUpAt - Date.now());
    } catch (error) {
      const err = toBrokerError(error);
      if (placement.isFinal(err)) throw err;
      last = err;
      await sleep(
        Math.min(err.retryAfterMs ?? LOOKUP_RETRY_MS, LOOKUP_RETRY_MS, Math.max(0, giveUpAt - Date.now())),
        signal,
      );
      if (signal.aborted) throw closed();
      continue;
    }
    if (found !== undefined) return found;
    if (!absentOnce) {
      absentOnce = true;
      await sleep(graceMs, signal);
      continue;
    }
    const ttl = placement.sendBy - Date.now();
    if (ttl <= 0) {
      throw new BrokerError(
        "EXPIRED",
        `${subject} never reached ${placement.venue} (${last.message}) and its ${placement.ttlMs} ms time to live has passed; not ${done}`,
      );
    }
    try {
      return await placement.resend(ttl);
    } catch (error) {
      const err = toBrokerError(error);
      if (!placement.isUnknown(err)) throw err;
      last = err;
      absentOnce = graceMs <= 0;
    }
  }
  throw new BrokerError(
    "NETWORK",
    `${subject}: outcome still unknown after ${placement.windowMs} ms (${last.message}); it will show in order events if it was ${done}`,
  );
}

/** The fields a modify may change: exactly OrderChanges' (the compiler checks both ways). */
const CHANGEABLE_FIELDS: Record<keyof OrderChanges, true> = {
  quantity: true,
  order_type: true,
  price: true,
  trigger_price: true,
  validity: true,
  disclosed_quantity: true,
};
const CHANGEABLE = Object.keys(CHANGEABLE_FIELDS) as (keyof OrderChanges)[];

/** The fields a modify may change, for a broker building its request from OrderChanges. */
export const CHANGEABLE_FIELD_NAMES: readonly (keyof OrderChanges)[] = CHANGEABLE;

/**
 * Whether an order shows a modify: every field the modify names holds the value it asked for.
 *
 * This is what "applied" means when a modify's answer was lost. A modify to values the order
 * already had shows at once; counting it applied is right, since the order is as the caller asked
 * and sending it again would change nothing. Fills do not move these fields (they move
 * filled_quantity and status), so an order that filled after the modify still shows it. An order
 * that does not show it was not modified, or was modified again by someone else since: either way
 * the caller's change is not in force.
 */
export function showsChanges(
  order: Partial<Record<keyof OrderChanges, unknown>>,
  changes: OrderChanges,
): boolean {
  for (const key of CHANGEABLE) {
    if (changes[key] !== undefined && order[key] !== changes[key]) return false;
  }
  return true;
}
