import type { Exchange, GttRequest, GttSnapshot, OrderRequest, OrderSnapshot, Quote } from "../protocol";
import type { InstrumentKey } from "../protocol/instrument";
import { snapshotFromRequest } from "../common/order-snapshot";
import type { Tick } from "./ticker-parser";

/*
 * The snapshots the Kite broker makes up itself, when Kite has not (yet) told it: every other
 * snapshot comes from Kite's own records through mapping.ts.
 */

/** A placement Kite accepted but whose order could not be read yet: what was asked, PENDING. */
export function pendingSnapshot(request: OrderRequest, clientId: string, orderId: string): OrderSnapshot {
  const snapshot = snapshotFromRequest(
    request,
    { order_id: orderId, client_order_id: clientId },
    "PENDING",
    new Date().toISOString(),
  );
  // Kite's records leave out the default variety; so does a snapshot made up in their place.
  if (snapshot.variety === "regular") delete snapshot.variety;
  return snapshot;
}

/** A GTT Kite accepted but could not be read back: what was asked, active. */
export function gttFromRequest(gttId: string, request: GttRequest, last: number): GttSnapshot {
  const now = new Date().toISOString();
  return {
    gtt_id: gttId,
    type: request.type,
    symbol: request.symbol,
    exchange: request.exchange,
    last_price: last,
    trigger_values: [...request.trigger_values],
    orders: request.orders.map((o) => ({ ...o })),
    status: "active",
    order_ids: [],
    created_at: now,
    updated_at: now,
  };
}

/** A tick as the broker's quote event; undefined for a tick with no price (Kite sends 0 before the open). */
export function quoteFromTick(tick: Tick, key: InstrumentKey, now: string): Quote | undefined {
  if (!(tick.last_price > 0)) return undefined;
  const colon = key.indexOf(":");
  const quote: Quote = {
    symbol: key.slice(colon + 1),
    exchange: key.slice(0, colon) as Exchange,
    last_price: tick.last_price,
    timestamp: tick.exchange_timestamp !== undefined ? new Date(tick.exchange_timestamp).toISOString() : now,
  };
  const bid = tick.depth?.buy[0]?.price;
  const ask = tick.depth?.sell[0]?.price;
  if (bid !== undefined && bid > 0) quote.bid = bid;
  if (ask !== undefined && ask > 0) quote.ask = ask;
  if (tick.volume_traded !== undefined) quote.volume = tick.volume_traded;
  return quote;
}
