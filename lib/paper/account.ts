import { randomBytes } from "node:crypto";
import type { Quote } from "../protocol";
import { istDay } from "../market/ist";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey } from "../protocol/instrument";
import { isTerminal } from "../protocol/orders";
import type {
  AccountRecord,
  AccountSnapshot,
  GttState,
  LiquidityTaken,
  OrderState,
  PositionState,
  ReplayPosition,
} from "./account-state";

import type { PositionKey } from "./ledger";
import { positionKey } from "./ledger";
import type { Paise } from "./money";
import { newClientOrderId } from "../common/ids";
import { RetentionQueue } from "../common/retention-queue";
import { OrderTable } from "./order-table";
import { gttRecord } from "./views";
import type { DecodedRecord, RecordExtra } from "./compact-record";
import { writeRecord } from "./compact-record";
import type { JsonSink } from "./json-sink";
import type { EventLog } from "./event-log";

/**
 * Everything one operation changed: written to the journal as one record, then announced. The lists
 * may name an item more than once (noteChanged() only skips a repeat of the last one); record()
 * keeps the first of each. Arrays, not Sets: a placement touches one order and one position, and
 * three Sets per operation were a measurable share of the broker's garbage.
 */
export interface Change {
  orders: OrderState[];
  /** Orders placed or modified by the operation: written whole; the other orders as a change. */
  fresh: OrderState[];
  gtts: GttState[];
  positions: PositionState[];
  /** Order events deferred (built when announced) while a journal's fsync stands between them and the flow. */
  events: EventLog;
  defer: boolean;
  /** Orders and GTTs that ended, in the order they ended (the retention queue's order). */
  ended: string[];
  now: string;
  /** Instruments whose quote liquidity this operation took from (market rules only). */
  liquidity?: Set<InstrumentKey>;
}

/** Notes an item an operation changed; the same item twice in a row (touch, then fill) is noted once. */
export function noteChanged<T>(list: T[], item: T): void {
  if (list.length === 0 || list[list.length - 1] !== item) list.push(item);
}

/** Each item once, in the order first noted. */
function distinct<T>(list: T[]): T[] {
  return list.length < 2 ? list : Array.from(new Set(list));
}

/** The trading day (Asia/Kolkata date) an ISO time falls on. */
export function tradingDay(iso: string): string {
  return istDay(Date.parse(iso));
}

/**
 * The paper account's state and its bookkeeping: cash, ids, orders (in placement order, which is
 * time priority), resting orders per instrument, GTTs, positions, the retention queue and the
 * client_order_id index. It knows nothing of matching; it can write itself as a snapshot and be
 * rebuilt from a snapshot and records to exactly the state it had.
 */
export class PaperAccount {
  readonly startingCash: Paise;
  readonly retention: number;

  cash: Paise;
  seq = 0;
  nextOrder = 1;
  nextGtt = 1;
  /** In placement order, which is time priority (OrderTable: a Map for the broker's own ids). */
  readonly orders = new OrderTable<OrderState>();
  readonly byClientId = new Map<string, string>();
  /** client_order_id → [order_id, day] of orders that left retention, kept for their trading day. */
  readonly retiredClientIds = new Map<string, [string, string]>();
  /** Live orders per instrument, in time priority; what a quote is matched against. */
  readonly resting = new Map<InstrumentKey, Set<OrderState>>();
  readonly ended = new RetentionQueue<"order" | "gtt">();
  readonly gtts = new Map<string, GttState>();
  readonly positions = new Map<PositionKey, PositionState>();
  /** Σ reserved over live orders, so a funds check is O(1). */
  reservedTotal: Paise = 0;
  /** What orders took from each instrument's current quote (market rules with finite liquidity). */
  readonly liquidity = new Map<InstrumentKey, LiquidityTaken>();
  /** The CSV replay's position as the journal last had it (restore only). */
  replay: ReplayPosition | undefined;

  constructor(startingCash: Paise, retention: number) {
    this.startingCash = startingCash;
    this.retention = retention;
    this.cash = startingCash;
  }

  /** Back to starting cash with nothing in it; seq, ids and the client_order_id index go on. */
  clear(): void {
    this.orders.clear();
    this.byClientId.clear();
    this.resting.clear();
    this.ended.clear();
    this.gtts.clear();
    this.positions.clear();
    this.liquidity.clear();
    this.reservedTotal = 0;
    this.cash = this.startingCash;
  }

  /** Notes what orders have taken from an instrument's current quote, for the journal. */
  noteLiquidity(change: Change, key: InstrumentKey, taken: LiquidityTaken): void {
    this.liquidity.set(key, taken);
    (change.liquidity ??= new Set()).add(key);
  }

  /** As if never opened: for a restore that must not land on top of what is in memory. */
  reset(): void {
    this.clear();
    this.retiredClientIds.clear();
    this.replay = undefined;
    this.seq = 0;
    this.nextOrder = 1;
    this.nextGtt = 1;
  }

  newOrderId(): string {
    return orderIdOf(this.nextOrder++);
  }

  /**
   * The highest order id made and no longer held ("" when every one is held): evicted past the
   * retention, or wiped by a reset. Walks down from the newest, so it costs the run held at the top.
   */
  lastForgottenOrderId(): string {
    for (let n = this.nextOrder - 1; n >= 1; n--) {
      const id = orderIdOf(n);
      if (!this.orders.has(id)) return id;
    }
    return "";
  }

  /**
   * Made once per account object, random: the client_order_ids it makes are this prefix and the
   * order's id, unique like the order ids and 20 letters or digits (Kite's tag). Such an id names
   * its order, so it needs no entry in byClientId: two of the three hash-table updates a placement
   * and its eviction made there were the bare broker's largest single cost.
   */
  readonly #madePrefix = randomBytes(5).toString("hex");

  /** A client_order_id for an order placed without one. */
  clientIdFor(orderId: string): string {
    const id = this.#madePrefix + orderId;
    return id.length === 20 ? id : newClientOrderId();
  }

  /** Whether the order's client_order_id was made by clientIdFor() here, so lookups derive it. */
  #derived(order: OrderState): boolean {
    const clientId = order.client_order_id;
    return (
      !order.client_id_given &&
      clientId.length === 20 &&
      clientId.startsWith(this.#madePrefix) &&
      clientId.endsWith(order.order_id)
    );
  }

  newGttId(): string {
    return `G${String(this.nextGtt++).padStart(9, "0")}`;
  }

  availableCash(): Paise {
    return this.cash - this.reservedTotal;
  }

  setReserved(order: OrderState, amount: Paise): void {
    this.reservedTotal += amount - order.reserved;
    order.reserved = amount;
  }

  /**
   * The order a client_order_id names, or the id of one that left retention today (`nowMs`: the
   * broker's clock). A retired id guards its own trading day and no later one, whether or not the
   * process restarted since (a snapshot drops earlier days' ids; the live map prunes them only
   * when a later day's order leaves retention, so the day is checked here too).
   */
  lookupClientId(clientId: string, nowMs: number): OrderState | string | undefined {
    if (clientId.length === 20 && clientId.startsWith(this.#madePrefix)) {
      const made = this.orders.get(clientId.slice(10));
      if (made !== undefined && made.client_order_id === clientId) return made;
    }
    const orderId = this.byClientId.get(clientId);
    const order = orderId === undefined ? undefined : this.orders.get(orderId);
    if (order !== undefined) return order;
    const retired = this.retiredClientIds.get(clientId);
    if (retired === undefined) return undefined;
    if (retired[1] >= istDay(nowMs)) return retired[0];
    this.retiredClientIds.delete(clientId);
    return undefined;
  }

  add(order: OrderState): void {
    this.orders.set(order.order_id, order);
    if (!this.#derived(order)) this.byClientId.set(order.client_order_id, order.order_id);
  }

  rest(order: OrderState): void {
    const key = instrumentKey(order.exchange, order.symbol);
    let set = this.resting.get(key);
    if (set === undefined) {
      set = new Set();
      this.resting.set(key, set);
    }
    set.add(order);
  }

  /** Takes a terminal order out of matching and queues it for the retention bound. */
  retire(change: Change | undefined, order: OrderState): void {
    this.setReserved(order, 0);
    // An emptied set stays: instruments are few, and re-creating one per order costs more.
    this.resting.get(instrumentKey(order.exchange, order.symbol))?.delete(order);
    this.#ended(change, order.order_id, "order");
  }

  retireGtt(change: Change | undefined, gtt: GttState): void {
    this.#ended(change, gtt.gtt_id, "gtt");
  }

  #ended(change: Change | undefined, id: string, kind: "order" | "gtt"): void {
    this.ended.push(id, kind);
    change?.ended.push(id);
    this.#evictBeyondRetention();
  }

  #evictBeyondRetention(): void {
    if (this.ended.size > this.retention) this.ended.trim(this.retention, this.#evict);
  }

  /** One function for every eviction: a closure per retired order shows up in the hot path. */
  readonly #evict = (id: string, kind: "order" | "gtt"): void => {
    if (kind === "gtt") {
      this.gtts.delete(id);
      return;
    }
    const order = this.orders.get(id);
    this.orders.delete(id);
    if (order === undefined || this.#derived(order)) return;
    // Only if it still names this order: an id must never be taken from the order it now names.
    if (this.byClientId.get(order.client_order_id) === id) {
      this.byClientId.delete(order.client_order_id);
      if (order.client_id_given) {
        const day = tradingDay(order.placed_at);
        // An id guards its own trading day only (a snapshot drops earlier days' too). Entries go in
        // as orders leave retention, oldest days first, and one placed on a later day proves the
        // earlier days over: without this a broker running for days holds every id it was given.
        for (const [clientId, [, since]] of this.retiredClientIds) {
          if (since >= day) break;
          this.retiredClientIds.delete(clientId);
        }
        this.retiredClientIds.set(order.client_order_id, [id, day]);
      }
    }
  };

  position(exchange: OrderState["exchange"], symbol: string, product: OrderState["product"]): PositionState {
    const key = positionKey(exchange, symbol, product);
    let position = this.positions.get(key);
    if (position === undefined) {
      position = { symbol, exchange, product, quantity: 0, cost: 0, realized: 0 };
      this.positions.set(key, position);
    }
    return position;
  }

  // #region journal

  /**
   * One operation as a format 3 record (compact-record.ts: what changed, not whole objects), written
   * straight into the journal's pending bytes: the bytes of JSON.stringify(encodeRecord(…)).
   */
  writeRecord(sink: JsonSink, change: Change, prices: Quote[], extra?: RecordExtra): void {
    writeRecord(
      sink,
      change.now,
      // The account's own seq, cash, nextOrder and nextGtt: written at once, so no copy is needed.
      this,
      distinct(change.orders),
      change.fresh,
      distinct(change.positions),
      change.ended,
      change.gtts.length === 0 && prices.length === 0 && change.liquidity === undefined && extra === undefined
        ? undefined
        : this.#extra(change, prices, extra ?? {}),
    );
  }

  /** The rare parts of an operation's record; undefined when it has none. */
  #extra(change: Change, prices: Quote[], extra: RecordExtra): RecordExtra | undefined {
    if (change.gtts.length > 0) extra.gtts = distinct(change.gtts).map(gttRecord);
    if (prices.length > 0) extra.prices = prices;
    if (change.liquidity !== undefined && change.liquidity.size > 0) {
      const liquidity: LiquidityTaken[] = [];
      for (const key of change.liquidity) {
        const taken = this.liquidity.get(key);
        if (taken !== undefined) liquidity.push({ ...taken });
      }
      extra.liquidity = liquidity;
    }
    let any = false;
    for (const key in extra) if ((extra as Record<string, unknown>)[key] !== undefined) any = true;
    return any ? extra : undefined;
  }

  /** For Journal.compact(), which serializes it at once: it shares the live orders. */
  snapshot(prices: Quote[], today: string): AccountSnapshot {
    const clientIds: [string, string, string][] = [];
    for (const [clientId, [orderId, day]] of this.retiredClientIds) {
      if (day >= today) clientIds.push([clientId, orderId, day]);
    }
    const ended: string[] = [];
    this.ended.forEach((id) => ended.push(id));
    const snapshot: AccountSnapshot = {
      version: 2,
      cash: this.cash,
      seq: this.seq,
      next_order: this.nextOrder,
      next_gtt: this.nextGtt,
      // The live orders, not copies (10,000 of them at the default retention): Journal.compact()
      // serializes the snapshot before it returns, as it does a record.
      orders: Array.from(this.orders.values()),
      ended,
      gtts: Array.from(this.gtts.values(), gttRecord),
      positions: Array.from(this.positions.values(), (p) => ({ ...p })),
      prices,
      client_ids: clientIds,
    };
    if (this.liquidity.size > 0) snapshot.liquidity = Array.from(this.liquidity.values(), (t) => ({ ...t }));
    return snapshot;
  }

  /** Whether what was restored came from a version 1 journal (no retention order written). */
  #legacy = false;

  restoreSnapshot(snapshot: AccountSnapshot, legacy: boolean): void {
    this.#legacy ||= legacy;
    this.#counters(snapshot);
    for (const order of snapshot.orders) {
      this.orders.set(order.order_id, { ...order });
      // Now, not at rebuildIndexes(): a record replayed next may evict this order, and only an id
      // that still names its order is kept as retired (#evict); without it the id was forgotten.
      if (!this.#derived(order)) this.byClientId.set(order.client_order_id, order.order_id);
    }
    for (const gtt of snapshot.gtts) this.gtts.set(gtt.gtt_id, { ...gtt });
    for (const position of snapshot.positions) {
      this.positions.set(positionKey(position.exchange, position.symbol, position.product), { ...position });
    }
    for (const [clientId, orderId, day] of snapshot.client_ids) {
      this.retiredClientIds.set(clientId, [orderId, day]);
    }
    for (const id of snapshot.ended) this.ended.push(id, this.gtts.has(id) ? "gtt" : "order");
    this.#restoreLiquidity(snapshot.liquidity);
    this.replay = snapshot.replay ?? this.replay;
  }

  #restoreLiquidity(list: LiquidityTaken[] | undefined): void {
    for (const taken of list ?? []) {
      this.liquidity.set(instrumentKey(taken.quote.exchange, taken.quote.symbol), { ...taken });
    }
  }

  applyRecord(record: AccountRecord, legacy: boolean): void {
    if (!legacy) this.#queueLegacyEnded();
    this.#legacy ||= legacy;
    this.#counters(record);
    // set() on an existing key keeps its place, so placement order (time priority) survives.
    for (const order of record.orders ?? []) {
      this.orders.set(order.order_id, { ...order });
      if (!this.#derived(order)) this.byClientId.set(order.client_order_id, order.order_id);
    }
    for (const gtt of record.gtts ?? []) this.gtts.set(gtt.gtt_id, { ...gtt });
    for (const position of record.positions ?? []) {
      this.positions.set(positionKey(position.exchange, position.symbol, position.product), { ...position });
    }
    for (const id of record.ended ?? []) this.#ended(undefined, id, this.gtts.has(id) ? "gtt" : "order");
    this.#restoreLiquidity(record.liquidity);
    this.replay = record.replay ?? this.replay;
  }

  /** Replays a format 3 record, as applyRecord() does a format 2 one. */
  applyCompact(record: DecodedRecord): void {
    this.#queueLegacyEnded();
    const c = record.counters;
    this.cash = c.cash;
    this.seq = c.seq;
    this.nextOrder = c.nextOrder;
    this.nextGtt = c.nextGtt;
    for (const entry of record.orders) {
      if ("whole" in entry) {
        const order = entry.whole;
        this.orders.set(order.order_id, order);
        if (!this.#derived(order)) this.byClientId.set(order.client_order_id, order.order_id);
        continue;
      }
      const update = entry.update;
      const order = this.orders.get(update.order_id);
      // A change always follows the order's whole record, or the snapshot that holds it.
      if (order === undefined)
        throw new Error(`record changes order ${update.order_id}, which the journal never placed`);
      order.status = update.status;
      order.filled_quantity = update.filled_quantity;
      order.filled_value = update.filled_value;
      order.average_price = update.average_price;
      order.timestamp = update.timestamp;
      order.reserved = update.reserved;
      if (update.status_message === undefined) delete order.status_message;
      else order.status_message = update.status_message;
      if (update.charges === undefined) delete order.charges;
      else order.charges = update.charges;
      if (update.release_at === undefined) delete order.release_at;
      else order.release_at = update.release_at;
    }
    const extra = record.extra;
    for (const gtt of extra.gtts ?? []) this.gtts.set(gtt.gtt_id, { ...gtt });
    for (const position of record.positions) {
      this.positions.set(positionKey(position.exchange, position.symbol, position.product), position);
    }
    for (const id of record.ended) this.#ended(undefined, id, this.gtts.has(id) ? "gtt" : "order");
    this.#restoreLiquidity(extra.liquidity);
    this.replay = extra.replay ?? this.replay;
  }

  #counters(from: { cash: Paise; seq: number; next_order: number; next_gtt: number }): void {
    this.cash = from.cash;
    this.seq = from.seq;
    this.nextOrder = from.next_order;
    this.nextGtt = from.next_gtt;
  }

  /**
   * Version 1 wrote no retention order: what it left ended is queued in placement order, as the
   * broker that first opened it did, before anything a later record ended. Done when the first newer
   * record is replayed, not at the end: that record's evictions must see the older orders queued
   * first, or a reopen would evict other orders than the broker that never restarted.
   */
  #queueLegacyEnded(): void {
    if (!this.#legacy) return;
    this.#legacy = false;
    this.ended.clear();
    for (const order of this.orders.values())
      if (isTerminal(order.status)) this.ended.push(order.order_id, "order");
    for (const gtt of this.gtts.values()) if (gtt.status !== "active") this.ended.push(gtt.gtt_id, "gtt");
  }

  /** After a restore: the indexes that follow from the orders (client ids, resting book, reservations). */
  rebuildIndexes(): void {
    this.byClientId.clear();
    this.reservedTotal = 0;
    this.#queueLegacyEnded();
    for (const order of this.orders.values()) {
      if (!this.#derived(order)) this.byClientId.set(order.client_order_id, order.order_id);
      if (isTerminal(order.status)) {
        order.reserved = 0;
      } else {
        this.reservedTotal += order.reserved;
        this.rest(order);
      }
    }
    this.#evictBeyondRetention();
  }

  /** Ids and seq past anything a dropped (quarantined) journal tail may have handed out. */
  skipPast(found: { seq?: number; next_order?: number; next_gtt?: number }): void {
    if (found.seq !== undefined) this.seq = Math.max(this.seq, found.seq);
    if (found.next_order !== undefined) this.nextOrder = Math.max(this.nextOrder, found.next_order);
    if (found.next_gtt !== undefined) this.nextGtt = Math.max(this.nextGtt, found.next_gtt);
  }

  // #endregion
}

/** "P" and 0…9 zeros: the part of an order id before its number's digits. */
const ID_PREFIX = Array.from({ length: 10 }, (_, zeros) => "P" + "0".repeat(zeros));

/** Order ids sort as strings in the order they were made (fixed width). */
function orderIdOf(n: number): string {
  // One concatenation onto a ready prefix: padStart built two more strings per order.
  const digits = String(n);
  return digits.length < 10 ? ID_PREFIX[9 - digits.length]! + digits : "P" + digits;
}
