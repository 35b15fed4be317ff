import type { OrderRequest, OrderSnapshot, OrderStatus } from "../protocol/orders";
import { ORDER_OPTION_KEYS } from "../protocol/order-options";

/**
 * An order's first snapshot, built from the request that placed it: nothing filled yet, placed and
 * stamped `now`, with the optional fields (price, trigger, tag, order options) only where the
 * request set them. A broker that knows more (a venue's view) overwrites from there.
 */
export function snapshotFromRequest(
  request: OrderRequest,
  ids: { order_id: string; client_order_id: string },
  status: OrderStatus,
  now: string,
): OrderSnapshot {
  const snapshot: OrderSnapshot = {
    order_id: ids.order_id,
    client_order_id: ids.client_order_id,
    symbol: request.symbol,
    exchange: request.exchange,
    side: request.side,
    quantity: request.quantity,
    order_type: request.order_type,
    product: request.product,
    validity: request.validity,
    status,
    filled_quantity: 0,
    average_price: 0,
    placed_at: now,
    timestamp: now,
  };
  if (request.price !== undefined) snapshot.price = request.price;
  if (request.trigger_price !== undefined) snapshot.trigger_price = request.trigger_price;
  if (request.tag !== undefined) snapshot.tag = request.tag;
  for (const key of ORDER_OPTION_KEYS) {
    const value = request[key];
    if (value !== undefined) (snapshot as Record<string, unknown>)[key] = value;
  }
  return snapshot;
}
