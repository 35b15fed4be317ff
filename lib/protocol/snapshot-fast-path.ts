import type { OrderEvent } from "./events";
import { OrderEventType } from "./events";
import { Exchange, OrderType, Product, Side, Validity, Variety } from "./fields";
import { ICEBERG_LEGS, TTL_MINUTES } from "./order-options";
import type { OrderSnapshot as OrderSnapshotType } from "./orders";
import { OrderStatus } from "./orders";
import { MAX_TRADES_PER_EVENT } from "./trade";

/**
 * A quick yes to "is this plainly a valid OrderSnapshot?", for the client's hot path: every order
 * comes back as an answer and two events, and zod spends several µs on each snapshot. A false here
 * only means "ask the schema" (lib/protocol/orders.ts stays the definition);
 * test/unit/snapshot-fast-path.spec.ts checks with fast-check that true is never given to a value
 * the schema refuses or would change.
 */
// The enums come from the schemas, so a new status or exchange cannot be missed here.
const EXCHANGES: ReadonlySet<unknown> = new Set(Exchange.options);
const SIDES: ReadonlySet<unknown> = new Set(Side.options);
const ORDER_TYPES: ReadonlySet<unknown> = new Set(OrderType.options);
const PRODUCTS: ReadonlySet<unknown> = new Set(Product.options);
const VALIDITIES: ReadonlySet<unknown> = new Set(Validity.options);
const STATUSES: ReadonlySet<unknown> = new Set(OrderStatus.options);
const VARIETIES: ReadonlySet<unknown> = new Set(Variety.options);
const REQUIRED = [
  "order_id",
  "client_order_id",
  "symbol",
  "exchange",
  "side",
  "quantity",
  "order_type",
  "product",
  "validity",
  "status",
  "filled_quantity",
  "average_price",
  "placed_at",
  "timestamp",
] as const;
const OPTIONAL: ReadonlySet<string> = new Set([
  "price",
  "trigger_price",
  "tag",
  "status_message",
  "gtt_id",
  "variety",
  "validity_ttl",
  "disclosed_quantity",
  "iceberg_legs",
  "iceberg_quantity",
]);
const KNOWN: ReadonlySet<string> = new Set([...REQUIRED, ...OPTIONAL]);
const SYMBOL = /^[A-Za-z0-9&_.:-]{1,64}$/;
const ID20 = /^[A-Za-z0-9]{1,20}$/;

function isId(value: unknown): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= 64;
}

/** Absent, or a whole number within [min, max]. */
function isCount(value: unknown, min: number, max: number): boolean {
  return (
    value === undefined ||
    (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max)
  );
}

function isPrice(value: unknown): boolean {
  return typeof value === "number" && value > 0 && value <= 1e12;
}

/** The last few timestamps that passed: an order's answer and events mostly share them. */
const recentIso: string[] = [];

/** Only the exact form our servers write (toISOString), which the schema's ISO rule accepts. */
function isIsoUtc(value: unknown): boolean {
  if (typeof value !== "string" || value.length !== 24) return false;
  if (recentIso.includes(value)) return true;
  const time = Date.parse(value);
  if (!Number.isFinite(time) || new Date(time).toISOString() !== value) return false;
  if (recentIso.unshift(value) > 4) recentIso.pop();
  return true;
}

export function isPlainOrderSnapshot(value: unknown): value is OrderSnapshotType {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  const o = value as Record<string, unknown>;
  for (const key in o) if (!KNOWN.has(key)) return false;
  const q = o.quantity;
  const filled = o.filled_quantity;
  const average = o.average_price;
  return (
    isId(o.order_id) &&
    typeof o.client_order_id === "string" &&
    ID20.test(o.client_order_id) &&
    typeof o.symbol === "string" &&
    SYMBOL.test(o.symbol) &&
    EXCHANGES.has(o.exchange) &&
    SIDES.has(o.side) &&
    typeof q === "number" &&
    Number.isInteger(q) &&
    q > 0 &&
    q <= 10_000_000 &&
    ORDER_TYPES.has(o.order_type) &&
    (o.price === undefined || isPrice(o.price)) &&
    (o.trigger_price === undefined || isPrice(o.trigger_price)) &&
    PRODUCTS.has(o.product) &&
    VALIDITIES.has(o.validity) &&
    (o.tag === undefined || (typeof o.tag === "string" && ID20.test(o.tag))) &&
    STATUSES.has(o.status) &&
    typeof filled === "number" &&
    Number.isSafeInteger(filled) &&
    filled >= 0 &&
    typeof average === "number" &&
    Number.isFinite(average) &&
    average >= 0 &&
    (o.status_message === undefined || typeof o.status_message === "string") &&
    (o.gtt_id === undefined || typeof o.gtt_id === "string") &&
    (o.variety === undefined || VARIETIES.has(o.variety)) &&
    isCount(o.validity_ttl, TTL_MINUTES.min, TTL_MINUTES.max) &&
    isCount(o.disclosed_quantity, 1, 10_000_000) &&
    isCount(o.iceberg_legs, ICEBERG_LEGS.min, ICEBERG_LEGS.max) &&
    isCount(o.iceberg_quantity, 1, 10_000_000) &&
    isIsoUtc(o.placed_at) &&
    isIsoUtc(o.timestamp)
  );
}

const ORDER_EVENT_TYPES: ReadonlySet<unknown> = new Set(OrderEventType.options);
const EVENT_KEYS: ReadonlySet<string> = new Set([
  "type",
  "seq",
  "order",
  "synthesized",
  "trades",
  "timestamp",
]);
const TRADE_KEYS: ReadonlySet<string> = new Set(["trade_id", "quantity", "price", "timestamp"]);

/** A plainly valid `trades` list (lib/protocol/trade.ts), or absent. */
function isPlainTradeList(value: unknown): boolean {
  if (value === undefined) return true;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_TRADES_PER_EVENT) return false;
  for (const trade of value as unknown[]) {
    if (typeof trade !== "object" || trade === null || Object.getPrototypeOf(trade) !== Object.prototype)
      return false;
    const t = trade as Record<string, unknown>;
    for (const key in t) if (!TRADE_KEYS.has(key)) return false;
    const q = t.quantity;
    if (
      !isId(t.trade_id) ||
      typeof q !== "number" ||
      !Number.isInteger(q) ||
      q <= 0 ||
      q > 10_000_000 ||
      !isPrice(t.price) ||
      !isIsoUtc(t.timestamp)
    )
      return false;
  }
  return true;
}

/** The order event inside a plainly valid `{type: "EVENT", event}` message; undefined: ask the schema. */
export function plainOrderEventOf(message: unknown): OrderEvent | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  const m = message as Record<string, unknown>;
  if (m.type !== "EVENT" || Object.keys(m).length !== 2) return undefined;
  const event = m.event;
  if (typeof event !== "object" || event === null || Object.getPrototypeOf(event) !== Object.prototype)
    return undefined;
  const e = event as Record<string, unknown>;
  for (const key in e) if (!EVENT_KEYS.has(key)) return undefined;
  const seq = e.seq;
  const ok =
    ORDER_EVENT_TYPES.has(e.type) &&
    typeof seq === "number" &&
    Number.isSafeInteger(seq) &&
    seq > 0 &&
    (e.synthesized === undefined || typeof e.synthesized === "boolean") &&
    isPlainTradeList(e.trades) &&
    isIsoUtc(e.timestamp) &&
    isPlainOrderSnapshot(e.order);
  return ok ? (e as unknown as OrderEvent) : undefined;
}
