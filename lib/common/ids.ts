import { randomBytes } from "node:crypto";

/**
 * client_order_id values: 20 letters or digits (Kite's `tag` limit), unique per process by a
 * counter and across processes by a random prefix drawn once, so making one costs no entropy.
 */
const PREFIX = randomBytes(5).toString("hex");
let counter = 0;

export function newClientOrderId(): string {
  counter += 1;
  return PREFIX + counter.toString(36).padStart(10, "0");
}
