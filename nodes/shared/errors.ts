import type { OrderSnapshot } from "../../lib/protocol";
import { BrokerError } from "../../lib/protocol/errors";

/**
 * The broker answered, and its answer is a REJECTED order (insufficient funds, no price). For the
 * flow that is a failed order, so it goes to done(err) like any other failure, with a stable code.
 */
export class OrderRejectedError extends Error {
  readonly code = "ORDER_REJECTED";
  readonly order: OrderSnapshot;

  constructor(order: OrderSnapshot) {
    super(`order ${order.order_id} rejected: ${order.status_message ?? "no reason given"}`);
    this.name = "OrderRejectedError";
    this.order = order;
  }
}

/** Anything thrown, as an Error with a `code` a Catch node can switch on. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new BrokerError("INTERNAL", String(value));
}

/** What a node's red status says about a failure: the message without the error's class name. */
export function failureText(error: Error): string {
  if (error instanceof OrderRejectedError) {
    return `rejected: ${error.order.status_message ?? error.order.order_id}`;
  }
  return error.message;
}
