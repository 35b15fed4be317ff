import { BrokerError } from "./errors";
import { OrderStatus } from "./orders";

/**
 * The written order state machine: for each status, the statuses that may follow it.
 *
 * It accepts what real brokers do (ANCHORS.md §1, Nautilus' state table):
 * - the same status again (a repeated or duplicated update, a modify that leaves the order OPEN);
 * - CANCELLED → FILLED: the venue filled the order while our cancel was on its way, and the fill
 *   report arrives after the cancel confirmation;
 * - TRIGGER_PENDING → OPEN: a stop-limit triggered and now rests as a limit order;
 * - OPEN → TRIGGER_PENDING: a modify changed a LIMIT into an SL order.
 * Everything else out of a terminal status is illegal, and so is going back to PENDING.
 */
const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  // Any status, PENDING included: a venue may report any first answer (or repeat "sent").
  PENDING: OrderStatus.options,
  OPEN: ["OPEN", "TRIGGER_PENDING", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"],
  TRIGGER_PENDING: [
    "TRIGGER_PENDING",
    "OPEN",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELLED",
    "REJECTED",
    "EXPIRED",
  ],
  PARTIALLY_FILLED: ["PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED"],
  FILLED: ["FILLED"],
  CANCELLED: ["CANCELLED", "FILLED"],
  REJECTED: ["REJECTED"],
  EXPIRED: ["EXPIRED"],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function nextStatuses(from: OrderStatus): readonly OrderStatus[] {
  return TRANSITIONS[from];
}

/** Throws ILLEGAL_TRANSITION: an illegal transition is a bug, and tests must see it. */
export function assertTransition(from: OrderStatus, to: OrderStatus, orderId: string): void {
  if (!canTransition(from, to)) {
    throw new BrokerError("ILLEGAL_TRANSITION", `order ${orderId}: status ${from} cannot change to ${to}`);
  }
}
