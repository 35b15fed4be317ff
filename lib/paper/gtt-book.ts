import type { GttRequest } from "../protocol/gtt";
import { BrokerError } from "../protocol/errors";
import type { GttState } from "./account-state";

export type GttFields = Pick<
  GttState,
  "type" | "symbol" | "exchange" | "trigger_values" | "orders" | "last_price" | "direction"
>;

/**
 * What a GTT request sets, worked out before anything changes: a single GTT needs a price to know
 * which way it fires, and failing for want of one must leave an existing GTT as it was.
 */
export function gttFields(request: GttRequest, latest: number | undefined): GttFields {
  const last = request.last_price ?? latest;
  const fields: GttFields = {
    type: request.type,
    symbol: request.symbol,
    exchange: request.exchange,
    trigger_values: [...request.trigger_values],
    orders: request.orders.map((order) => ({ ...order })),
  };
  if (last !== undefined) fields.last_price = last;
  if (request.type === "single") {
    if (last === undefined) {
      throw new BrokerError(
        "NO_QUOTE",
        `no price for ${request.exchange}:${request.symbol} yet: give last_price so the GTT knows which way to trigger`,
      );
    }
    fields.direction = request.trigger_values[0] >= last ? "up" : "down";
  }
  return fields;
}

/** Replaces a GTT's definition with new fields (the optional ones go when the new set lacks them). */
export function applyGttFields(gtt: GttState, fields: GttFields, now: string): void {
  delete gtt.direction;
  delete gtt.last_price;
  Object.assign(gtt, fields, { updated_at: now });
}

/** Which leg a price fires: single GTTs by direction, OCO leg 0 at or below, leg 1 at or above. */
export function firedLeg(gtt: GttState, last: number): number | undefined {
  const [low, high] = gtt.trigger_values;
  if (gtt.type === "single") {
    if (low === undefined) return undefined;
    const fired = gtt.direction === "down" ? last <= low : last >= low;
    return fired ? 0 : undefined;
  }
  if (low !== undefined && last <= low) return 0;
  if (high !== undefined && last >= high) return 1;
  return undefined;
}
