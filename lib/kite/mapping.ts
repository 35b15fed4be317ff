import type {
  Exchange,
  GttOrder,
  GttRequest,
  GttSnapshot,
  GttStatus,
  OrderRequest,
  OrderSnapshot,
  OrderStatus,
  OrderType,
  Position,
  Product,
  Side,
  Validity,
  Variety,
} from "../protocol";
import { isTerminal } from "../protocol/orders";
import { parseKiteTimestamp } from "./time";

/** An order as Kite's order book, order history and postbacks carry it (the fields we read). */
export interface KiteOrder {
  order_id: string;
  status: string;
  tradingsymbol: string;
  exchange: string;
  transaction_type: string;
  order_type: string;
  product: string;
  validity: string;
  variety?: string;
  quantity: number;
  price?: number;
  trigger_price?: number;
  average_price?: number;
  filled_quantity?: number;
  pending_quantity?: number;
  cancelled_quantity?: number;
  status_message?: string | null;
  status_message_raw?: string | null;
  tag?: string | null;
  tags?: string[] | null;
  order_timestamp?: string | Date | null;
  exchange_timestamp?: string | Date | null;
  exchange_update_timestamp?: string | Date | null;
  instrument_token?: number;
  [key: string]: unknown;
}

const STOP_TYPES: ReadonlySet<string> = new Set(["SL", "SL-M"]);
/** Statuses of an order Kite is still taking in: it is not live at the exchange yet. */
const PENDING_STATUSES: ReadonlySet<string> = new Set([
  "PUT ORDER REQ RECEIVED",
  "AMO REQ RECEIVED",
  "VALIDATION PENDING",
  "OPEN PENDING",
  "TRIGGER PENDING REQ RECEIVED",
]);
/** A change or cancel on its way: the order keeps the status it had. */
const KEEP_STATUSES: ReadonlySet<string> = new Set([
  "MODIFY VALIDATION PENDING",
  "MODIFY PENDING",
  "MODIFIED",
  "CANCEL PENDING",
]);

function num(value: unknown): number {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** The live status an order had, or what its fills say when we never saw it. */
function liveStatus(filled: number, quantity: number, previous: OrderStatus | undefined): OrderStatus {
  if (previous !== undefined && previous !== "PENDING" && !isTerminal(previous)) {
    if (filled > 0 && previous !== "TRIGGER_PENDING")
      return filled >= quantity ? "FILLED" : "PARTIALLY_FILLED";
    return previous;
  }
  if (filled > 0) return filled >= quantity ? "FILLED" : "PARTIALLY_FILLED";
  return "OPEN";
}

/**
 * Kite status → our status. OPEN with fills is PARTIALLY_FILLED; COMPLETE is FILLED; the
 * transient "… PENDING"/"… RECEIVED" statuses of an order being taken in are PENDING, while
 * MODIFY/CANCEL PENDING keep the status the order had; a postback's UPDATE (a modification or a
 * partial fill) is read from the filled and total quantities. An unknown status keeps the previous
 * one (or PENDING): it is never guessed to be terminal.
 */
export function mapKiteStatus(
  status: string,
  filled: number,
  quantity: number,
  previous?: OrderStatus,
): OrderStatus {
  const s = status.trim().toUpperCase();
  if (s === "COMPLETE") return "FILLED";
  if (s === "REJECTED") return "REJECTED";
  if (s === "CANCELLED" || s === "CANCELED" || s === "CANCEL" || s === "CANCELLED AMO") return "CANCELLED";
  if (s === "EXPIRED" || s === "LAPSED") return "EXPIRED";
  if (s === "TRIGGER PENDING") return "TRIGGER_PENDING";
  if (s === "OPEN") {
    if (filled <= 0) return "OPEN";
    return filled < quantity ? "PARTIALLY_FILLED" : "FILLED";
  }
  if (s === "UPDATE" || KEEP_STATUSES.has(s)) return liveStatus(filled, quantity, previous);
  if (PENDING_STATUSES.has(s) || s.endsWith(" PENDING") || s.endsWith(" RECEIVED")) {
    return previous ?? "PENDING";
  }
  return previous ?? "PENDING";
}

/** A stand-in client_order_id for orders placed without our tag (Kite web, a GTT): 20 alphanumerics. */
export function externalClientId(orderId: string): string {
  const clean = orderId.replace(/[^A-Za-z0-9]/g, "");
  return (clean === "" ? "K0" : clean).slice(-20);
}

export interface SnapshotContext {
  previous?: OrderStatus;
  /** The user's own tag for this client_order_id (Kite's single tag carries the client_order_id). */
  userTag?: string;
  gttId?: string;
  /** When Kite gives no usable timestamp. */
  now: string;
}

/** Kite's whole-number fields arrive as numbers or strings; 0 or less means "not set". */
function positiveInt(value: unknown): number | undefined {
  const n = num(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The options Kite reports on an order: its variety (absent = regular), TTL minutes, disclosed
 * quantity, and an iceberg's legs from `meta.iceberg` (legs, leg_quantity).
 */
function orderOptions(order: KiteOrder, snapshot: OrderSnapshot): void {
  const variety = typeof order.variety === "string" ? order.variety.toLowerCase() : "";
  if (variety === "amo" || variety === "iceberg") snapshot.variety = variety;
  const ttl = positiveInt(order.validity_ttl);
  if (snapshot.validity === "TTL" && ttl !== undefined && ttl <= 365) snapshot.validity_ttl = ttl;
  const disclosed = positiveInt(order.disclosed_quantity);
  if (disclosed !== undefined && disclosed <= 10_000_000) snapshot.disclosed_quantity = disclosed;
  const meta = order.meta;
  const iceberg =
    typeof meta === "object" && meta !== null ? (meta as Record<string, unknown>).iceberg : undefined;
  if (variety === "iceberg" && typeof iceberg === "object" && iceberg !== null) {
    const legs = positiveInt((iceberg as Record<string, unknown>).legs);
    const legQuantity = positiveInt((iceberg as Record<string, unknown>).leg_quantity);
    if (legs !== undefined && legs >= 2 && legs <= 50) snapshot.iceberg_legs = legs;
    if (legQuantity !== undefined && legQuantity <= 10_000_000) snapshot.iceberg_quantity = legQuantity;
  }
}

/** Kite order → OrderSnapshot; timestamps read as IST whatever the host's time zone. */
export function toOrderSnapshot(order: KiteOrder, context: SnapshotContext): OrderSnapshot {
  const quantity = num(order.quantity);
  const filled = num(order.filled_quantity);
  const orderType = order.order_type as OrderType;
  const tag = typeof order.tag === "string" && order.tag !== "" ? order.tag : undefined;
  const placedAt = parseKiteTimestamp(order.order_timestamp) ?? context.now;
  const updatedAt =
    parseKiteTimestamp(order.exchange_update_timestamp) ??
    parseKiteTimestamp(order.exchange_timestamp) ??
    placedAt;
  const snapshot: OrderSnapshot = {
    order_id: String(order.order_id),
    client_order_id:
      tag !== undefined && /^[A-Za-z0-9]{1,20}$/.test(tag) ? tag : externalClientId(String(order.order_id)),
    symbol: order.tradingsymbol,
    exchange: order.exchange as Exchange,
    side: order.transaction_type as Side,
    quantity,
    order_type: orderType,
    product: order.product as Product,
    validity: order.validity as Validity,
    status: mapKiteStatus(String(order.status ?? ""), filled, quantity, context.previous),
    filled_quantity: filled,
    average_price: num(order.average_price),
    placed_at: placedAt,
    timestamp: updatedAt,
  };
  const price = num(order.price);
  const trigger = num(order.trigger_price);
  if ((orderType === "LIMIT" || orderType === "SL") && price > 0) snapshot.price = price;
  if (STOP_TYPES.has(orderType) && trigger > 0) snapshot.trigger_price = trigger;
  if (context.userTag !== undefined) snapshot.tag = context.userTag;
  const message = order.status_message ?? order.status_message_raw;
  if (typeof message === "string" && message !== "") snapshot.status_message = message;
  if (context.gttId !== undefined) snapshot.gtt_id = context.gttId;
  orderOptions(order, snapshot);
  return snapshot;
}

/** The form fields Kite's POST /orders/regular takes for one of our requests (a fresh object). */
export interface KiteOrderParams {
  exchange: string;
  tradingsymbol: string;
  transaction_type: Side;
  quantity: number;
  order_type: OrderType;
  product: Product;
  validity: Validity;
  tag: string;
  price?: number;
  trigger_price?: number;
  market_protection?: number;
  validity_ttl?: number;
  disclosed_quantity?: number;
  iceberg_legs?: number;
  iceberg_quantity?: number;
}

/** The variety in Kite's URL path (/orders/{variety}) for placing, changing and cancelling an order. */
export function kiteVariety(order: { variety?: Variety | undefined }): Variety {
  return order.variety ?? "regular";
}

/**
 * Our request → Kite's order params. The client_order_id travels in Kite's `tag` (the one tag Kite
 * keeps per order). MARKET and SL-M orders carry market_protection (-1 = Kite's automatic
 * protection, or a percentage): since April 2026 Kite rejects them without it (KITE.md §11.10).
 */
export function toKiteOrderParams(
  request: OrderRequest,
  clientOrderId: string,
  marketProtection: number,
): KiteOrderParams {
  const params: KiteOrderParams = {
    exchange: request.exchange,
    tradingsymbol: request.symbol,
    transaction_type: request.side,
    quantity: request.quantity,
    order_type: request.order_type,
    product: request.product,
    validity: request.validity,
    tag: clientOrderId,
  };
  if (request.price !== undefined) params.price = request.price;
  if (request.trigger_price !== undefined) params.trigger_price = request.trigger_price;
  if (request.order_type === "MARKET" || request.order_type === "SL-M")
    params.market_protection = marketProtection;
  if (request.validity_ttl !== undefined) params.validity_ttl = request.validity_ttl;
  if (request.disclosed_quantity !== undefined) params.disclosed_quantity = request.disclosed_quantity;
  if (request.iceberg_legs !== undefined) params.iceberg_legs = request.iceberg_legs;
  if (request.iceberg_quantity !== undefined) params.iceberg_quantity = request.iceberg_quantity;
  return params;
}

/** A GTT as Kite lists it (GET /gtt/triggers). */
export interface KiteTrigger {
  id: number | string;
  type: string;
  status: string;
  created_at?: string | Date | null;
  updated_at?: string | Date | null;
  condition: {
    exchange: string;
    tradingsymbol: string;
    trigger_values: number[];
    last_price?: number;
    instrument_token?: number;
  };
  orders: {
    transaction_type: string;
    quantity: number;
    price: number;
    product: string;
    order_type: string;
    result?: { order_result?: { order_id?: string | number; status?: string } | null } | null;
  }[];
  [key: string]: unknown;
}

const GTT_STATUSES: ReadonlySet<string> = new Set<GttStatus>([
  "active",
  "triggered",
  "disabled",
  "expired",
  "cancelled",
  "rejected",
  "deleted",
]);

export function toGttSnapshot(trigger: KiteTrigger, now: string): GttSnapshot {
  const status = String(trigger.status).toLowerCase();
  const orders: GttOrder[] = trigger.orders.map((o) => ({
    side: o.transaction_type as Side,
    quantity: num(o.quantity),
    order_type: "LIMIT",
    price: num(o.price),
    product: o.product as Product,
  }));
  const orderIds: string[] = [];
  let triggeredLeg: number | undefined;
  trigger.orders.forEach((o, index) => {
    if (o.result === null || o.result === undefined) return;
    triggeredLeg ??= index;
    const id = o.result.order_result?.order_id;
    if (id !== undefined && id !== null && String(id) !== "") orderIds.push(String(id));
  });
  const createdAt = parseKiteTimestamp(trigger.created_at) ?? now;
  const snapshot: GttSnapshot = {
    gtt_id: String(trigger.id),
    type: trigger.type === "two-leg" ? "two-leg" : "single",
    symbol: trigger.condition.tradingsymbol,
    exchange: trigger.condition.exchange as Exchange,
    trigger_values: trigger.condition.trigger_values.map(num),
    orders,
    status: (GTT_STATUSES.has(status) ? status : "disabled") as GttStatus,
    order_ids: orderIds,
    created_at: createdAt,
    updated_at: parseKiteTimestamp(trigger.updated_at) ?? createdAt,
  };
  const last = num(trigger.condition.last_price);
  if (last > 0) snapshot.last_price = last;
  if (triggeredLeg !== undefined) snapshot.triggered_leg = triggeredLeg;
  return snapshot;
}

/** kiteconnect's placeGTT/modifyGTT params for one of our GTT requests. */
export interface KiteGttParams {
  trigger_type: "single" | "two-leg";
  tradingsymbol: string;
  exchange: string;
  trigger_values: number[];
  last_price: number;
  orders: {
    transaction_type: Side;
    quantity: number;
    product: Product;
    order_type: "LIMIT";
    price: number;
  }[];
}

export function toKiteGttParams(request: GttRequest, lastPrice: number): KiteGttParams {
  return {
    trigger_type: request.type,
    tradingsymbol: request.symbol,
    exchange: request.exchange,
    trigger_values: [...request.trigger_values],
    last_price: lastPrice,
    orders: request.orders.map((o) => ({
      transaction_type: o.side,
      quantity: o.quantity,
      product: o.product,
      order_type: "LIMIT" as const,
      price: o.price,
    })),
  };
}

/** A net position as GET /portfolio/positions lists it. */
export interface KitePosition {
  tradingsymbol: string;
  exchange: string;
  product: string;
  quantity: number;
  average_price?: number;
  last_price?: number;
  realised?: number;
  unrealised?: number;
  pnl?: number;
  [key: string]: unknown;
}

export function toPosition(position: KitePosition): Position {
  return {
    symbol: position.tradingsymbol,
    exchange: position.exchange as Exchange,
    product: position.product as Product,
    quantity: num(position.quantity),
    average_price: Math.abs(num(position.average_price)),
    last_price: Math.max(0, num(position.last_price)),
    realized_pnl: num(position.realised),
    unrealized_pnl: num(position.unrealised),
  };
}
