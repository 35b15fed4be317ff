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

/** Days in each month of a common year; February gains one in a leap year. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number `count` decimal digits at `at` stand for, or -1 if any is not a digit. */
function digits(value: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Only the exact form our servers write (toISOString of a date in years 0000–9999), which the
 * schema's ISO rule accepts: the same answer as `new Date(Date.parse(v)).toISOString() === v`
 * (snapshot-fast-path.spec checks that with fast-check), read field by field because parsing and
 * formatting a Date cost ~1 µs for each timestamp of each answer and event.
 */
export function isIsoUtc(value: unknown): boolean {
  if (typeof value !== "string" || value.length !== 24) return false;
  if (
    value.charCodeAt(4) !== 45 || // -
    value.charCodeAt(7) !== 45 ||
    value.charCodeAt(10) !== 84 || // T
    value.charCodeAt(13) !== 58 || // :
    value.charCodeAt(16) !== 58 ||
    value.charCodeAt(19) !== 46 || // .
    value.charCodeAt(23) !== 90 // Z
  )
    return false;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (MONTH_DAYS[month - 1] as number) + (leap && month === 2 ? 1 : 0)) return false;
  const hour = digits(value, 11, 2);
  const minute = digits(value, 14, 2);
  const second = digits(value, 17, 2);
  return (
    hour >= 0 &&
    hour <= 23 &&
    minute >= 0 &&
    minute <= 59 &&
    second >= 0 &&
    second <= 59 &&
    digits(value, 20, 3) >= 0
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

// Each field's rule once, shared by the whole-snapshot check and the patch check below.
const isClientId = (v: unknown): boolean => typeof v === "string" && ID20.test(v);
const isSymbol = (v: unknown): boolean => typeof v === "string" && SYMBOL.test(v);
const isQuantity = (v: unknown): boolean =>
  typeof v === "number" && Number.isInteger(v) && v > 0 && v <= 10_000_000;
const isFilled = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isAverage = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v) && v >= 0;
const isString = (v: unknown): boolean => typeof v === "string";
const inSet =
  (set: ReadonlySet<unknown>) =>
  (v: unknown): boolean =>
    set.has(v);
const isTtl = (v: unknown): boolean => isCount(v, TTL_MINUTES.min, TTL_MINUTES.max);
const isLegs = (v: unknown): boolean => isCount(v, ICEBERG_LEGS.min, ICEBERG_LEGS.max);
const isBigCount = (v: unknown): boolean => isCount(v, 1, 10_000_000);

/** The rule of each snapshot field as it stands in a whole snapshot, where it is present. */
const FIELD_RULES: ReadonlyMap<string, (value: unknown) => boolean> = new Map<
  string,
  (value: unknown) => boolean
>([
  ["order_id", isId],
  ["client_order_id", isClientId],
  ["symbol", isSymbol],
  ["exchange", inSet(EXCHANGES)],
  ["side", inSet(SIDES)],
  ["quantity", isQuantity],
  ["order_type", inSet(ORDER_TYPES)],
  ["price", isPrice],
  ["trigger_price", isPrice],
  ["product", inSet(PRODUCTS)],
  ["validity", inSet(VALIDITIES)],
  ["tag", isClientId],
  ["status", inSet(STATUSES)],
  ["filled_quantity", isFilled],
  ["average_price", isAverage],
  ["status_message", isString],
  ["gtt_id", isString],
  ["variety", inSet(VARIETIES)],
  ["validity_ttl", isTtl],
  ["disclosed_quantity", isBigCount],
  ["iceberg_legs", isLegs],
  ["iceberg_quantity", isBigCount],
  ["placed_at", isIsoUtc],
  ["timestamp", isIsoUtc],
]);

export function isPlainOrderSnapshot(value: unknown): value is OrderSnapshotType {
  if (!isPlainObject(value)) return false;
  const o = value;
  for (const key in o) if (!KNOWN.has(key)) return false;
  // Written out rather than looped over FIELD_RULES: this runs for every answer and event.
  return (
    isId(o.order_id) &&
    isClientId(o.client_order_id) &&
    isSymbol(o.symbol) &&
    EXCHANGES.has(o.exchange) &&
    SIDES.has(o.side) &&
    isQuantity(o.quantity) &&
    ORDER_TYPES.has(o.order_type) &&
    (o.price === undefined || isPrice(o.price)) &&
    (o.trigger_price === undefined || isPrice(o.trigger_price)) &&
    PRODUCTS.has(o.product) &&
    VALIDITIES.has(o.validity) &&
    (o.tag === undefined || isClientId(o.tag)) &&
    STATUSES.has(o.status) &&
    isFilled(o.filled_quantity) &&
    isAverage(o.average_price) &&
    (o.status_message === undefined || isString(o.status_message)) &&
    (o.gtt_id === undefined || isString(o.gtt_id)) &&
    (o.variety === undefined || VARIETIES.has(o.variety)) &&
    isTtl(o.validity_ttl) &&
    isBigCount(o.disclosed_quantity) &&
    isLegs(o.iceberg_legs) &&
    isBigCount(o.iceberg_quantity) &&
    isIsoUtc(o.placed_at) &&
    isIsoUtc(o.timestamp)
  );
}

/**
 * True when laying `value`'s fields over any plainly valid snapshot gives a plainly valid
 * snapshot: every field known and within its rule. The snapshot schema has no rule across fields,
 * so checking the changed fields is checking the result (snapshot-fast-path.spec checks that too).
 */
export function isPlainOrderPatch(value: unknown): value is Partial<OrderSnapshotType> {
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    const rule = FIELD_RULES.get(key);
    if (rule === undefined || !rule(value[key])) return false;
  }
  return true;
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

const ANSWERED_KEYS: ReadonlySet<string> = new Set(["type", "seq", "order", "trades", "timestamp"]);

/** The fields an answered event's entry has when isPlainAnsweredEntry says yes. */
export interface PlainAnsweredEntry {
  type: OrderEvent["type"];
  seq: number;
  order?: Partial<OrderSnapshotType>;
  trades?: unknown[];
  timestamp: string;
}

/**
 * True when an entry of a RESULT's `events` is plainly valid on its own: laid over a plainly
 * valid snapshot it makes an event the schema accepts unchanged (see plainAnsweredEventOf).
 */
export function isPlainAnsweredEntry(raw: unknown): raw is PlainAnsweredEntry & Record<string, unknown> {
  if (!isPlainObject(raw)) return false;
  for (const key in raw) if (!ANSWERED_KEYS.has(key)) return false;
  const { seq, order: changes } = raw;
  return (
    ORDER_EVENT_TYPES.has(raw.type) &&
    typeof seq === "number" &&
    Number.isSafeInteger(seq) &&
    seq > 0 &&
    (changes === undefined || isPlainOrderPatch(changes)) &&
    isPlainTradeList(raw.trades) &&
    isIsoUtc(raw.timestamp)
  );
}

/**
 * v1.1 answered_events: the whole order event an entry of a RESULT's `events` stands for (the
 * answer's snapshot with the entry's `order` laid over it), when the entry is plainly valid;
 * undefined: ask the schema. `snapshot` must have passed isPlainOrderSnapshot: only the entry's
 * own fields are checked here, so the answer's snapshot is not checked again per event.
 */
export function plainAnsweredEventOf(snapshot: OrderSnapshotType, raw: unknown): OrderEvent | undefined {
  if (!isPlainAnsweredEntry(raw)) return undefined;
  const { seq, order: changes } = raw;
  // A copy, field by field (a spread is slow in V8): listeners must not share the caller's answer.
  const order: Record<string, unknown> = {};
  for (const key in snapshot) order[key] = (snapshot as Record<string, unknown>)[key];
  if (changes !== undefined) {
    const patch = changes as Record<string, unknown>;
    for (const key in patch) order[key] = patch[key];
  }
  const event: Record<string, unknown> = { type: raw.type, seq, order, timestamp: raw.timestamp };
  if (raw.trades !== undefined) event.trades = raw.trades;
  return event as unknown as OrderEvent;
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
