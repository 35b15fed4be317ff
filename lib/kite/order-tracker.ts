import type { OrderEventType, OrderSnapshot } from "../protocol";
import { isTerminal } from "../protocol/orders";
import { canTransition } from "../protocol/state-machine";
import { RetentionQueue } from "../common/retention-queue";
import { BoundedIds, DAY_IDS_CAP } from "./bounded-ids";
import type { KiteOrder } from "./mapping";
import { toOrderSnapshot } from "./mapping";

/** What an earlier run told the flows (ReportedLedger), for baseline(). */
export interface BaselineMemory {
  reportedOf(orderId: string): { status: OrderSnapshot["status"]; filled_quantity: number } | undefined;
  wasPlacing(clientId: string): boolean;
}

/** An order as this broker last knew it, and whether its placement was announced yet. */
interface Tracked {
  order: OrderSnapshot;
  announced: boolean;
}

const EVENT_FOR_END: Partial<Record<OrderSnapshot["status"], OrderEventType>> = {
  PARTIALLY_FILLED: "ORDER_PARTIALLY_FILLED",
  FILLED: "ORDER_FILLED",
  CANCELLED: "ORDER_CANCELLED",
  REJECTED: "ORDER_REJECTED",
  EXPIRED: "ORDER_EXPIRED",
};

function copy(order: OrderSnapshot): OrderSnapshot {
  return { ...order };
}

/** What an order's changes were, as an event type; undefined when nothing a flow sees has changed. */
function changeEvent(before: OrderSnapshot, after: OrderSnapshot): OrderEventType | undefined {
  if (before.status !== after.status) {
    if (after.status === "OPEN")
      return before.status === "TRIGGER_PENDING" ? "ORDER_TRIGGERED" : "ORDER_MODIFIED";
    if (after.status === "TRIGGER_PENDING" || after.status === "PENDING") return "ORDER_MODIFIED";
    return EVENT_FOR_END[after.status];
  }
  if (after.filled_quantity !== before.filled_quantity)
    return EVENT_FOR_END[after.status] ?? "ORDER_MODIFIED";
  if (
    after.quantity !== before.quantity ||
    after.price !== before.price ||
    after.trigger_price !== before.trigger_price ||
    after.order_type !== before.order_type ||
    after.validity !== before.validity ||
    after.disclosed_quantity !== before.disclosed_quantity
  ) {
    return "ORDER_MODIFIED";
  }
  return undefined;
}

/**
 * Every order this broker knows, and the one path their news takes: any Kite order dict (postback,
 * history entry, order book row) becomes a snapshot, runs through the order state machine, and
 * what changed is reported once, in order. Kite has no sequence numbers: a snapshot older than
 * what is known (a REST reply overtaken by a postback) is ignored. An order first seen past its
 * placement (a fill whose OPEN update never came) gets ORDER_PLACED first.
 */
export class OrderTracker {
  readonly #orders = new Map<string, Tracked>();
  readonly #ended = new RetentionQueue<"order">();
  /**
   * Open orders read at connect that no flow has heard of (background), oldest first: at most
   * `retention` are held. One beyond that is forgotten but for its client_order_id, and a later
   * change of it is its first report (ORDER_PLACED, then its news): flows were never told of it,
   * so nothing is told twice. An order once reported leaves this set and stays held while open.
   */
  readonly #background = new Set<string>();
  #untracked = 0;
  /** Our client_order_id (Kite's tag) → Kite's order id. */
  readonly #byClientId = new Map<string, string>();
  /**
   * Our client_order_id → Kite's order id, for ended orders retention let go: a retry of one is
   * answered DUPLICATE_ORDER, never placed again (bounded by the day's order limit, not retention).
   */
  readonly #endedLinks = new BoundedIds<string>(DAY_IDS_CAP);
  /** client_order_id → the user's own tag, which Kite cannot carry beside ours. */
  readonly #userTags = new Map<string, string>();
  readonly #retention: number;
  readonly #emit: (
    type: OrderEventType,
    order: OrderSnapshot,
    synthesized: boolean,
    previousFilled: number,
  ) => void;
  readonly #gttOf: (orderId: string) => string | undefined;
  readonly #onForget: (orderId: string) => void;

  constructor(options: {
    retention: number;
    emit: (type: OrderEventType, order: OrderSnapshot, synthesized: boolean, previousFilled: number) => void;
    gttOf: (orderId: string) => string | undefined;
    onForget: (orderId: string) => void;
  }) {
    this.#retention = options.retention;
    this.#emit = options.emit;
    this.#gttOf = options.gttOf;
    this.#onForget = options.onForget;
  }

  /** Orders held now (open and recently ended): bounded by what was reported plus 2 × retention. */
  get size(): number {
    return this.#orders.size;
  }

  /** Open orders from the book at connect that were beyond retention and are not held. */
  get untracked(): number {
    return this.#untracked;
  }

  has(orderId: string): boolean {
    return this.#orders.has(orderId);
  }

  orderIdOf(clientId: string): string | undefined {
    return this.#byClientId.get(clientId);
  }

  /** The order an ended client_order_id made, once retention has let the order go. */
  endedOrderIdOf(clientId: string): string | undefined {
    return this.#endedLinks.get(clientId);
  }

  /**
   * Whether ended client_order_ids were let go past the day's cap: a client_order_id not known here
   * may then still have made an order today.
   */
  get forgotEnded(): boolean {
    return this.#endedLinks.dropped > 0;
  }

  bindClientId(clientId: string, orderId: string): void {
    this.#byClientId.set(clientId, orderId);
  }

  setUserTag(clientId: string, tag: string): void {
    this.#userTags.set(clientId, tag);
  }

  dropUserTag(clientId: string): void {
    this.#userTags.delete(clientId);
  }

  current(orderId: string): OrderSnapshot | undefined {
    const tracked = this.#orders.get(orderId);
    return tracked === undefined ? undefined : copy(tracked.order);
  }

  /** Links an order to the GTT that placed it, once learnt. */
  setGtt(orderId: string, gttId: string): void {
    const tracked = this.#orders.get(orderId);
    if (tracked !== undefined && tracked.order.gtt_id === undefined) {
      tracked.order = { ...tracked.order, gtt_id: gttId };
    }
  }

  /**
   * What Kite already has at connect: recorded without events, later updates are compared with it.
   * With `told` (what an earlier run reported, from disk), an order that moved since it was last
   * reported gets its events now, synthesized, and one whose placement was sent but never told
   * is announced, as is each order in `announce` (placed by a GTT whose trigger is reported at
   * this start); the rest stays silent background. Returns the open orders taken in silently:
   * what a flow counts as told of them, for the ledger, so a fill while Node-RED is down is
   * reported at the next start (issue kite10, item 3).
   */
  baseline(book: KiteOrder[], told?: BaselineMemory, announce?: ReadonlySet<string>): OrderSnapshot[] {
    const now = new Date().toISOString();
    const silent: OrderSnapshot[] = [];
    for (const raw of book) {
      const id = String(raw.order_id);
      // Held already, or an open order beyond retention that an earlier read dropped.
      if (this.#orders.has(id) || (typeof raw.tag === "string" && this.#byClientId.get(raw.tag) === id))
        continue;
      const snapshot = this.#toSnapshot(raw, now);
      if (typeof raw.tag === "string" && raw.tag !== "")
        this.#byClientId.set(snapshot.client_order_id, snapshot.order_id);
      const before = told?.reportedOf(snapshot.order_id);
      if (before !== undefined) {
        this.#orders.set(snapshot.order_id, {
          order: { ...snapshot, status: before.status, filled_quantity: before.filled_quantity },
          announced: true,
        });
        this.observe(snapshot, true);
        // observe() retires an order only as it ends; one that had ended before is retired here.
        if (isTerminal(before.status)) this.#retire(snapshot.order_id);
        continue;
      }
      if (told?.wasPlacing(snapshot.client_order_id) === true || announce?.has(snapshot.order_id) === true) {
        this.observe(snapshot, true);
        continue;
      }
      this.#orders.set(snapshot.order_id, { order: snapshot, announced: true });
      if (isTerminal(snapshot.status)) this.#retire(snapshot.order_id);
      else {
        silent.push(snapshot);
        this.#holdBackground(snapshot.order_id);
      }
    }
    return silent;
  }

  #holdBackground(orderId: string): void {
    this.#background.add(orderId);
    while (this.#background.size > this.#retention) {
      const oldest = this.#background.values().next().value as string;
      this.#background.delete(oldest);
      // Its client_order_id stays bound: a retry of it is looked up, never placed again.
      this.#orders.delete(oldest);
      this.#onForget(oldest);
      this.#untracked++;
    }
  }

  /** Any Kite order dict → state, events, current snapshot. */
  ingest(raw: KiteOrder, synthesized = false): OrderSnapshot {
    const snapshot = this.#toSnapshot(raw, new Date().toISOString());
    if (typeof raw.tag === "string" && raw.tag !== "" && !this.#byClientId.has(snapshot.client_order_id)) {
      this.#byClientId.set(snapshot.client_order_id, snapshot.order_id);
    }
    return this.observe(snapshot, synthesized);
  }

  /**
   * Applies a snapshot if it is newer than what we know (the state machine allows the step, fills
   * do not shrink, the time does not go back) and reports what changed. Returns the current state.
   */
  observe(next: OrderSnapshot, synthesized: boolean): OrderSnapshot {
    const tracked = this.#orders.get(next.order_id);
    if (tracked === undefined) {
      const fresh: Tracked = { order: next, announced: false };
      this.#orders.set(next.order_id, fresh);
      this.#announce(fresh, synthesized);
      if (isTerminal(next.status)) this.#retire(next.order_id);
      return copy(next);
    }
    const before = tracked.order;
    if (
      !canTransition(before.status, next.status) ||
      next.filled_quantity < before.filled_quantity ||
      Date.parse(next.timestamp) < Date.parse(before.timestamp)
    ) {
      return copy(before);
    }
    tracked.order = next;
    if (!tracked.announced) this.#announce(tracked, synthesized);
    else {
      const type = changeEvent(before, next);
      if (type !== undefined) {
        this.#background.delete(next.order_id);
        this.#emit(type, copy(next), synthesized, before.filled_quantity);
      }
    }
    if (isTerminal(next.status) && !isTerminal(before.status)) this.#retire(next.order_id);
    return copy(next);
  }

  #toSnapshot(raw: KiteOrder, now: string): OrderSnapshot {
    const id = String(raw.order_id);
    const known = this.#orders.get(id)?.order;
    const tag = typeof raw.tag === "string" ? raw.tag : undefined;
    const userTag = tag === undefined ? undefined : this.#userTags.get(tag);
    const gttId = this.#gttOf(id) ?? known?.gtt_id;
    const snapshot = toOrderSnapshot(raw, {
      ...(known === undefined ? {} : { previous: known.status }),
      ...(userTag === undefined ? {} : { userTag }),
      ...(gttId === undefined ? {} : { gttId }),
      now,
    });
    if (known !== undefined) snapshot.placed_at = known.placed_at;
    return snapshot;
  }

  /**
   * The first report of an order: ORDER_PLACED once it is live; an order first seen already filled
   * or cancelled gets ORDER_PLACED, as it was placed, then its outcome.
   */
  #announce(tracked: Tracked, synthesized: boolean): void {
    const order = tracked.order;
    if (order.status === "PENDING") return;
    tracked.announced = true;
    if (order.status === "OPEN" || order.status === "TRIGGER_PENDING") {
      this.#emit("ORDER_PLACED", copy(order), synthesized, 0);
      return;
    }
    if (order.status !== "REJECTED") {
      const placed: OrderSnapshot = {
        ...order,
        status: order.order_type === "SL" || order.order_type === "SL-M" ? "TRIGGER_PENDING" : "OPEN",
        filled_quantity: 0,
        average_price: 0,
        timestamp: order.placed_at,
      };
      delete placed.status_message;
      this.#emit("ORDER_PLACED", placed, synthesized, 0);
    }
    const type = EVENT_FOR_END[order.status];
    if (type !== undefined) this.#emit(type, copy(order), synthesized, 0);
  }

  #retire(orderId: string): void {
    this.#background.delete(orderId);
    this.#ended.push(orderId, "order");
    this.#ended.trim(this.#retention, (id) => {
      const tracked = this.#orders.get(id);
      this.#orders.delete(id);
      this.#onForget(id);
      if (tracked !== undefined && this.#byClientId.get(tracked.order.client_order_id) === id) {
        this.#byClientId.delete(tracked.order.client_order_id);
        this.#userTags.delete(tracked.order.client_order_id);
        this.#endedLinks.set(tracked.order.client_order_id, id);
      }
    });
  }
}
