import { z } from "zod";
import type { Quote } from "../protocol";
import { Quote as QuoteSchema } from "../protocol/quotes";
import type {
  AccountSnapshot as AccountSnapshotType,
  GttState as GttStateType,
  LiquidityTaken as LiquidityTakenType,
  OrderState as OrderStateType,
  PositionState as PositionStateType,
  ReplayPosition as ReplayPositionType,
  WalkPosition as WalkPositionType,
} from "./account-state";
import {
  GttState,
  LiquidityTaken,
  OrderState,
  PositionState,
  ReplayPosition,
  WalkPosition,
} from "./account-state";
import type { JsonSink, SelfWriting } from "./json-sink";
import { averageRupees } from "./money";

// Record format 3: one operation as a positional JSON array, written where format 2 wrote an object
// of whole orders and positions (~580 bytes and a JSON.stringify of nested objects per MARKET order;
// ~200 bytes here). Its first element, the number 3, is the format marker: a format 2 record is an
// object carrying "version":2, so one journal may hold both (records written before an upgrade, then
// these) and every line says which it is.
//
// A snapshot (version 3) is the version 2 object with its orders as whole-order tuples (below), every
// timestamp written out (a snapshot has no `now`): 10,000 retained orders as objects were ~3.8 MB of
// keys and values written member by member; as tuples ~1.6 MB, written without a key. Version 2
// snapshots still open (fromWrittenSnapshot()).
//
//   [3, now, seq, cash, next_order, next_gtt, orders, positions, ended, extra]
//
// - orders: one tuple per order the operation changed, in the order first changed:
//   - whole (17): an order placed or modified by the operation, every field:
//     [order_id, client_order_id, symbol, exchange, side, quantity, order_type, product, validity,
//      status, filled_quantity, filled_value, placed_at, timestamp, reserved, client_id_given, more]
//   - change (7): what a fill, cancel, expiry, trigger or release changes on an order already written:
//     [order_id, status, filled_quantity, filled_value, timestamp, reserved, more]
//     Its `more` sets status_message, charges and release_at exactly (absent = none).
//   Timestamps equal to `now` are written as 0. average_price is filled_value / filled_quantity (as
//   the engine computes it) unless `more` says otherwise (orders upgraded from version 1 rupees).
//   `more` is 0 or an object of the optional fields that are set.
// - positions: [exchange, symbol, product, quantity, cost, realized] (+ charges when set): the new
//   state, money in paise.
// - ended: ids of the orders and GTTs that ended, in the order they ended.
// - extra: 0 or an object with what few operations change: gtts, prices, walk, liquidity, replay,
//   in format 2's shapes.

/** The format marker, first element of every format 3 record. */
export const COMPACT_FORMAT = 3;

const WHOLE_FIXED = [
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
  "filled_value",
  "placed_at",
  "timestamp",
  "reserved",
  "client_id_given",
] as const;

/** Every optional field of an order, taken from the schema so a new one is never silently dropped. */
const WHOLE_OPTIONAL = (Object.keys(OrderState.shape) as (keyof OrderStateType)[]).filter(
  (key) => !(WHOLE_FIXED as readonly string[]).includes(key) && key !== "average_price",
);

const Count = z.number().int().nonnegative();
const NextId = z.number().int().positive();

// Restore names every position first (named() below) and checks the named form, so an error names
// the field and the rule ("orders.0.status: …"), as it does for a format 2 record.
const WholeOrder = OrderState.extend({ kind: z.literal("whole") });
const OrderChange = OrderState.pick({
  order_id: true,
  status: true,
  filled_quantity: true,
  filled_value: true,
  average_price: true,
  timestamp: true,
  reserved: true,
  status_message: true,
  charges: true,
  release_at: true,
}).extend({ kind: z.literal("change") });
const Extra = z.strictObject({
  gtts: z.array(GttState).optional(),
  prices: z.array(QuoteSchema).optional(),
  walk: WalkPosition.optional(),
  liquidity: z.array(LiquidityTaken).optional(),
  replay: ReplayPosition.optional(),
});

/** A format 3 record with its positions named: what restore checks before anything is applied. */
export const CompactRecord = z.strictObject({
  format: z.literal(COMPACT_FORMAT),
  now: OrderState.shape.timestamp,
  seq: Count,
  cash: PositionState.shape.cost,
  next_order: NextId,
  next_gtt: NextId,
  orders: z.array(z.discriminatedUnion("kind", [WholeOrder, OrderChange])),
  positions: z.array(PositionState),
  ended: z.array(z.string()),
  extra: Extra,
});
export type CompactRecord = z.output<typeof CompactRecord>;

const TOP = [
  "format",
  "now",
  "seq",
  "cash",
  "next_order",
  "next_gtt",
  "orders",
  "positions",
  "ended",
  "extra",
];
const POSITION = ["exchange", "symbol", "product", "quantity", "cost", "realized", "charges"];
const CHANGE_FIXED = ["order_id", "status", "filled_quantity", "filled_value", "timestamp", "reserved"];

/** Positions to names, checking nothing but the arity; 0 stands for `now` / nothing, as written. */
function nameOrder(tuple: unknown, now: unknown, withKind = true): unknown {
  if (!Array.isArray(tuple) || (tuple.length !== 17 && tuple.length !== 7)) return tuple;
  const whole = tuple.length === 17;
  const names = whole ? WHOLE_FIXED : CHANGE_FIXED;
  // Without `kind` (a snapshot's order) from the start: deleting it would leave a slow dictionary object.
  const out: Record<string, unknown> = withKind ? { kind: whole ? "whole" : "change" } : {};
  const items: unknown[] = tuple;
  names.forEach((name, i) => {
    out[name] = items[i];
  });
  for (const key of ["placed_at", "timestamp"]) if (out[key] === 0) out[key] = now;
  if (whole)
    out.client_id_given =
      out.client_id_given === 1 ? true : out.client_id_given === 0 ? false : out.client_id_given;
  const more = items[items.length - 1];
  if (typeof more === "object" && more !== null) Object.assign(out, more);
  else if (more !== 0) out.more = more;
  if (
    out.average_price === undefined &&
    typeof out.filled_value === "number" &&
    typeof out.filled_quantity === "number"
  )
    out.average_price = averageRupees(out.filled_value, out.filled_quantity);
  return out;
}

function named(value: unknown[]): unknown {
  if (value.length !== TOP.length) return value;
  const out: Record<string, unknown> = {};
  TOP.forEach((name, i) => (out[name] = value[i]));
  if (Array.isArray(out.orders)) out.orders = out.orders.map((t) => nameOrder(t, out.now));
  if (Array.isArray(out.positions)) {
    out.positions = out.positions.map((t: unknown) => {
      if (!Array.isArray(t) || (t.length !== 6 && t.length !== 7)) return t;
      const p: Record<string, unknown> = {};
      const items: unknown[] = t;
      items.forEach((v, i) => {
        p[POSITION[i]!] = v;
      });
      return p;
    });
  }
  if (out.extra === 0) out.extra = {};
  return out;
}

/** Checks a format 3 record; the record with its fields named, or what is wrong. */
export function parseCompact(value: unknown[]): ReturnType<typeof CompactRecord.safeParse> {
  return CompactRecord.safeParse(named(value));
}

export function isCompact(value: unknown): boolean {
  return Array.isArray(value) && value[0] === COMPACT_FORMAT;
}

/** The rare parts of an operation, in format 2's shapes. */
export interface RecordExtra {
  gtts?: GttStateType[];
  prices?: Quote[];
  walk?: WalkPositionType;
  liquidity?: LiquidityTakenType[];
  replay?: ReplayPositionType;
}

export interface Counters {
  seq: number;
  cash: number;
  nextOrder: number;
  nextGtt: number;
}

/** The optional fields noneSet() reads by name; checked against the schema's list below. */
const NAMED_OPTIONAL = [
  "price",
  "trigger_price",
  "variety",
  "tag",
  "status_message",
  "gtt_id",
  "validity_ttl",
  "disclosed_quantity",
  "iceberg_legs",
  "iceberg_quantity",
  "release_at",
  "charges",
] as const;
if (
  NAMED_OPTIONAL.length !== WHOLE_OPTIONAL.length ||
  !WHOLE_OPTIONAL.every((key) => (NAMED_OPTIONAL as readonly string[]).includes(key))
) {
  // A field added to OrderState must be read here too, or noneSet() would drop it from records.
  throw new Error(`compact-record: noneSet() must read exactly ${WHOLE_OPTIONAL.join(", ")}`);
}

/**
 * Whether the order has none of its optional fields (a plain MARKET order): read by name, which
 * V8 answers from the order's shape, where the loop over WHOLE_OPTIONAL is a keyed read each.
 */
function noneSet(order: OrderStateType): boolean {
  return (
    order.price === undefined &&
    order.trigger_price === undefined &&
    order.variety === undefined &&
    order.tag === undefined &&
    order.status_message === undefined &&
    order.gtt_id === undefined &&
    order.validity_ttl === undefined &&
    order.disclosed_quantity === undefined &&
    order.iceberg_legs === undefined &&
    order.iceberg_quantity === undefined &&
    order.release_at === undefined &&
    order.charges === undefined
  );
}

/** A whole order's `more`: its optional fields that are set, and an average that is not derived. */
function wholeMore(order: OrderStateType): Record<string, unknown> | 0 {
  let more: Record<string, unknown> | 0 = 0;
  if (!noneSet(order))
    for (const key of WHOLE_OPTIONAL) {
      const value = order[key];
      if (value !== undefined) (more === 0 ? (more = {}) : more)[key] = value;
    }
  if (order.average_price !== averageRupees(order.filled_value, order.filled_quantity))
    (more === 0 ? (more = {}) : more).average_price = order.average_price;
  return more;
}

/** A change's `more`: status_message, charges and release_at when set, and an average not derived. */
function changeMore(order: OrderStateType): Record<string, unknown> | 0 {
  let more: Record<string, unknown> | 0 = 0;
  if (order.status_message !== undefined) more = { status_message: order.status_message };
  if (order.charges !== undefined) (more === 0 ? (more = {}) : more).charges = order.charges;
  if (order.release_at !== undefined) (more === 0 ? (more = {}) : more).release_at = order.release_at;
  if (order.average_price !== averageRupees(order.filled_value, order.filled_quantity))
    (more === 0 ? (more = {}) : more).average_price = order.average_price;
  return more;
}

function wholeOrder(order: OrderStateType, now: string | undefined): unknown[] {
  const more = wholeMore(order);
  return [
    order.order_id,
    order.client_order_id,
    order.symbol,
    order.exchange,
    order.side,
    order.quantity,
    order.order_type,
    order.product,
    order.validity,
    order.status,
    order.filled_quantity,
    order.filled_value,
    order.placed_at === now ? 0 : order.placed_at,
    order.timestamp === now ? 0 : order.timestamp,
    order.reserved,
    order.client_id_given ? 1 : 0,
    more,
  ];
}

function orderChange(order: OrderStateType, now: string): unknown[] {
  const more = changeMore(order);
  return [
    order.order_id,
    order.status,
    order.filled_quantity,
    order.filled_value,
    order.timestamp === now ? 0 : order.timestamp,
    order.reserved,
    more,
  ];
}

function position(p: PositionStateType): unknown[] {
  return p.charges === undefined
    ? [p.exchange, p.symbol, p.product, p.quantity, p.cost, p.realized]
    : [p.exchange, p.symbol, p.product, p.quantity, p.cost, p.realized, p.charges];
}

/**
 * One operation as a format 3 record. `orders` lists each changed order once; those in `whole`
 * (placed or modified by the operation) are written in full, the rest as a change.
 */
export function encodeRecord(
  now: string,
  counters: Counters,
  orders: readonly OrderStateType[],
  whole: readonly OrderStateType[],
  positions: readonly PositionStateType[],
  ended: readonly string[],
  extra: RecordExtra | undefined,
): unknown[] {
  const tuples: unknown[][] = [];
  for (const order of orders)
    tuples.push(whole.includes(order) ? wholeOrder(order, now) : orderChange(order, now));
  return [
    COMPACT_FORMAT,
    now,
    counters.seq,
    counters.cash,
    counters.nextOrder,
    counters.nextGtt,
    tuples,
    positions.map(position),
    ended,
    extra ?? 0,
  ];
}

/**
 * Writes `JSON.stringify(encodeRecord(…))` for the same arguments straight into `sink`, without
 * the tuples or the string (the journaled broker's hot path). encodeRecord() stays the definition
 * of the format: a spec checks that the two write the same bytes for any record.
 */
export function writeRecord(
  sink: JsonSink,
  now: string,
  counters: Counters,
  orders: readonly OrderStateType[],
  whole: readonly OrderStateType[],
  positions: readonly PositionStateType[],
  ended: readonly string[],
  extra: RecordExtra | undefined,
): void {
  sink.byte(0x5b); // [
  sink.number(COMPACT_FORMAT);
  sink.byte(0x2c);
  sink.string(now);
  sink.byte(0x2c);
  sink.number(counters.seq);
  sink.byte(0x2c);
  sink.number(counters.cash);
  sink.byte(0x2c);
  sink.number(counters.nextOrder);
  sink.byte(0x2c);
  sink.number(counters.nextGtt);
  sink.byte(0x2c);
  sink.byte(0x5b);
  for (let i = 0; i < orders.length; i++) {
    if (i > 0) sink.byte(0x2c);
    const order = orders[i]!;
    if (whole.includes(order)) writeWholeOrder(sink, order, now);
    else writeOrderChange(sink, order, now);
  }
  sink.byte(0x5d);
  sink.byte(0x2c);
  sink.byte(0x5b);
  for (let i = 0; i < positions.length; i++) {
    if (i > 0) sink.byte(0x2c);
    writePosition(sink, positions[i]!);
  }
  sink.byte(0x5d);
  sink.byte(0x2c);
  sink.item(ended);
  sink.byte(0x2c);
  if (extra === undefined) sink.number(0);
  else sink.item(extra);
  sink.byte(0x5d);
}

function writeMore(sink: JsonSink, more: Record<string, unknown> | 0): void {
  if (more === 0) sink.number(0);
  else sink.item(more);
}

/** `now` undefined (a snapshot's orders): every timestamp written out. */
function writeTimestamp(sink: JsonSink, value: string, now: string | undefined): void {
  if (value === now) sink.number(0);
  else sink.string(value);
}

function writeWholeOrder(sink: JsonSink, order: OrderStateType, now: string | undefined): void {
  const more = wholeMore(order);
  sink.byte(0x5b);
  sink.string(order.order_id);
  sink.byte(0x2c);
  sink.string(order.client_order_id);
  sink.byte(0x2c);
  sink.string(order.symbol);
  sink.byte(0x2c);
  sink.string(order.exchange);
  sink.byte(0x2c);
  sink.string(order.side);
  sink.byte(0x2c);
  sink.number(order.quantity);
  sink.byte(0x2c);
  sink.string(order.order_type);
  sink.byte(0x2c);
  sink.string(order.product);
  sink.byte(0x2c);
  sink.string(order.validity);
  sink.byte(0x2c);
  sink.string(order.status);
  sink.byte(0x2c);
  sink.number(order.filled_quantity);
  sink.byte(0x2c);
  sink.number(order.filled_value);
  sink.byte(0x2c);
  writeTimestamp(sink, order.placed_at, now);
  sink.byte(0x2c);
  writeTimestamp(sink, order.timestamp, now);
  sink.byte(0x2c);
  sink.number(order.reserved);
  sink.byte(0x2c);
  sink.number(order.client_id_given ? 1 : 0);
  sink.byte(0x2c);
  writeMore(sink, more);
  sink.byte(0x5d);
}

function writeOrderChange(sink: JsonSink, order: OrderStateType, now: string): void {
  const more = changeMore(order);
  sink.byte(0x5b);
  sink.string(order.order_id);
  sink.byte(0x2c);
  sink.string(order.status);
  sink.byte(0x2c);
  sink.number(order.filled_quantity);
  sink.byte(0x2c);
  sink.number(order.filled_value);
  sink.byte(0x2c);
  writeTimestamp(sink, order.timestamp, now);
  sink.byte(0x2c);
  sink.number(order.reserved);
  sink.byte(0x2c);
  writeMore(sink, more);
  sink.byte(0x5d);
}

function writePosition(sink: JsonSink, p: PositionStateType): void {
  sink.byte(0x5b);
  sink.string(p.exchange);
  sink.byte(0x2c);
  sink.string(p.symbol);
  sink.byte(0x2c);
  sink.string(p.product);
  sink.byte(0x2c);
  sink.number(p.quantity);
  sink.byte(0x2c);
  sink.number(p.cost);
  sink.byte(0x2c);
  sink.number(p.realized);
  if (p.charges !== undefined) {
    sink.byte(0x2c);
    sink.number(p.charges);
  }
  sink.byte(0x5d);
}

export interface DecodedRecord {
  counters: Counters;
  /** Whole orders as OrderState; changes as the fields they set, in the record's order. */
  orders: ({ whole: OrderStateType } | { update: OrderUpdate })[];
  positions: PositionStateType[];
  ended: string[];
  extra: RecordExtra;
}

/** What a change sets on an order already in the account; the optional fields exactly. */
export type OrderUpdate = Omit<Extract<CompactRecord["orders"][number], { kind: "change" }>, "kind">;

/** A record parseCompact() accepted, in the account's shapes. */
export function decodeRecord(record: CompactRecord): DecodedRecord {
  const extra: RecordExtra = {};
  for (const [key, value] of Object.entries(record.extra))
    if (value !== undefined) (extra as Record<string, unknown>)[key] = value;
  return {
    counters: { seq: record.seq, cash: record.cash, nextOrder: record.next_order, nextGtt: record.next_gtt },
    orders: record.orders.map((named) => {
      const { kind, ...fields } = named;
      return kind === "whole" ? { whole: fields as OrderStateType } : { update: fields };
    }),
    positions: record.positions,
    ended: record.ended,
    extra,
  };
}

/** A snapshot has no "now" for its timestamps to equal: each is written out. */
const NO_NOW = undefined;

/**
 * A snapshot's orders as written (version 3): whole-order tuples, straight into the sink. toJSON()
 * gives JSON.stringify the same tuples, so the bytes are the same either way.
 */
export class SnapshotOrders implements SelfWriting {
  readonly orders: readonly OrderStateType[];

  constructor(orders: readonly OrderStateType[]) {
    this.orders = orders;
  }

  writeJson(sink: JsonSink): void {
    sink.byte(0x5b); // [
    const orders = this.orders;
    for (let i = 0; i < orders.length; i++) {
      if (i > 0) sink.byte(0x2c);
      writeWholeOrder(sink, orders[i]!, NO_NOW);
    }
    sink.byte(0x5d); // ]
  }

  toJSON(): unknown[][] {
    return this.orders.map((order) => wholeOrder(order, NO_NOW));
  }
}

/**
 * A written snapshot (version 3: orders as tuples) as the version 2 object the account schemas
 * check; anything else as it is. Only 17-element tuples are named: whatever else stands in the list
 * is left for the schema to refuse, naming `orders.<i>`.
 */
export function fromWrittenSnapshot(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const written = value as Record<string, unknown>;
  if (written.version !== 3) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(written)) out[key] = written[key];
  out.version = 2;
  if (Array.isArray(written.orders)) {
    out.orders = written.orders.map((tuple: unknown) => {
      if (!Array.isArray(tuple) || tuple.length !== 17) return tuple;
      return nameOrder(tuple, undefined, false);
    });
  }
  return out;
}

/** The snapshot as compaction writes it (version 3): the same members, its orders as tuples. */
export function toWrittenSnapshot(snapshot: AccountSnapshotType): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(snapshot)) out[key] = (snapshot as unknown as Record<string, unknown>)[key];
  out.version = 3;
  out.orders = new SnapshotOrders(snapshot.orders);
  return out;
}
