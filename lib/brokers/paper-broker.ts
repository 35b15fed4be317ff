import { EventEmitter } from "node:events";
import type {
  Account,
  ConnectionState,
  GttEvent,
  GttEventType,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEvent,
  OrderEventType,
  OrderRequestInput,
  OrderSnapshot,
  OrderStatus,
  Position,
  Quote,
} from "../protocol";
// Straight from the defining modules: the index's re-exports are getters on every access.
import { BrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import { OrderChanges as OrderChangesSchema, OrderRequest, isTerminal } from "../protocol/orders";
import { Quote as QuoteSchema } from "../protocol/quotes";
import { assertTransition } from "../protocol/state-machine";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { parseOrThrow } from "../protocol/validate";
import type { AccountRecord, AccountSnapshot, GttState } from "../paper/account-state";
import type { Clock } from "../paper/clock";
import { systemClock } from "../paper/clock";
import { CsvReplayFeed } from "../paper/csv-replay-feed";
import { newClientOrderId } from "../paper/ids";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument, roundPrice } from "../protocol/instrument";
import { Journal } from "../paper/journal";
import type { PositionKey, PositionState } from "../paper/ledger";
import { applyFill, positionKey, positionView } from "../paper/ledger";
import type { QuoteFeed } from "../paper/quote-feed";
import type { Random } from "../paper/random";
import { seededRandom } from "../paper/random";
import { RandomWalkFeed } from "../paper/random-walk-feed";
import { RetentionQueue } from "../paper/retention-queue";
import type { PaperSettings, PaperSettingsInput } from "../paper/settings";
import { PaperSettings as PaperSettingsSchema } from "../paper/settings";
import type { BrokerEvents, BrokerInterface } from "./interface";
import type { BrokerLogger } from "./logger";
import { silentLogger } from "./logger";

export interface PaperBrokerDeps {
  clock?: Clock;
  random?: Random;
  /** Where the account is kept; absent = in memory only (benchmarks, throwaway tests). */
  journalFile?: string;
  log?: BrokerLogger;
  /** Journal records between compactions. */
  compactEvery?: number;
}

/** An order as the engine keeps it: the snapshot plus the cash it holds back while open. */
interface OrderState extends OrderSnapshot {
  reserved: number;
}

/** Two brokers writing one journal would corrupt the account, so a file is opened once per process. */
const openJournals = new Set<string>();

const STOP_TYPES = new Set(["SL", "SL-M"]);

type GttFields = Pick<
  GttState,
  "type" | "symbol" | "exchange" | "trigger_values" | "orders" | "last_price" | "direction"
>;

/** Everything one operation changed, written to the journal as one record and then announced. */
interface Change {
  /** The latest view of each order the operation touched, by id (the journal writes these). */
  orders: Map<string, OrderSnapshot>;
  gtts: Set<GttState>;
  positions: PositionState[];
  events: (OrderEvent | GttEvent)[];
  now: string;
}

/**
 * The embedded default broker: an in-process simulator with a matching engine, positions, cash
 * and GTTs, priced by a seeded random walk or a CSV replay. Fill rules (README "Paper broker"):
 * MARKET fills at the ask (BUY) or bid (SELL), or the last price ± slippage when the quote has no
 * book; LIMIT rests until marketable and fills at its price or better; SL/SL-M trigger when the
 * last price reaches trigger_price, then act as LIMIT/MARKET.
 */
export class PaperBroker extends EventEmitter<BrokerEvents> implements BrokerInterface {
  readonly kind = "paper" as const;
  readonly settings: PaperSettings;

  readonly #clock: Clock;
  readonly #random: Random;
  readonly #log: BrokerLogger;
  readonly #journalFile: string | undefined;
  readonly #compactEvery: number;
  readonly #feed: QuoteFeed;

  #state: ConnectionState = "disconnected";
  #connecting: Promise<void> | undefined;
  #journal: Journal<AccountSnapshot, AccountRecord> | undefined;
  #compacting: Promise<void> | undefined;
  /** Whether this broker holds the process-wide claim on its journal file. */
  #claimed = false;

  #cash: number;
  #seq = 0;
  #nextOrder = 1;
  #nextGtt = 1;
  readonly #orders = new Map<string, OrderState>();
  readonly #byClientId = new Map<string, string>();
  readonly #open = new Map<InstrumentKey, Set<OrderState>>();
  /** Terminal orders and GTTs in the order they ended, oldest first, for the retention bound. */
  readonly #ended = new RetentionQueue<"order" | "gtt">();
  readonly #gtts = new Map<string, GttState>();
  readonly #positions = new Map<PositionKey, PositionState>();
  readonly #subscribed = new Set<InstrumentKey>();
  #reservedTotal = 0;

  constructor(settings: PaperSettingsInput = {}, deps: PaperBrokerDeps = {}) {
    super();
    this.settings = parseOrThrow(PaperSettingsSchema, settings, "paper broker settings");
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? seededRandom(this.settings.seed ?? Date.now());
    this.#log = deps.log ?? silentLogger;
    this.#journalFile = deps.journalFile;
    this.#compactEvery = deps.compactEvery ?? Math.max(1000, this.settings.retention * 5);
    this.#cash = this.settings.starting_cash;
    this.#feed = this.#createFeed();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The last event seq issued for this account (restored from the journal), for resume logic. */
  get lastSeq(): number {
    return this.#seq;
  }

  // #region lifecycle

  connect(): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    this.#connecting ??= this.#open_().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open_(): Promise<void> {
    this.#setState("connecting");
    try {
      await this.#openJournal();
      await this.#feed.start();
      this.#setState("connected");
    } catch (error) {
      this.#feed.stop();
      await this.#closeJournal();
      this.#setState("disconnected", (error as Error).message);
      throw error instanceof BrokerError
        ? error
        : new BrokerError("CONFIG", (error as Error).message, { cause: error });
    }
  }

  async close(): Promise<void> {
    await this.#connecting?.catch(() => undefined);
    this.#feed.stop();
    await this.#compacting;
    // A long journal slows the next start; leave it compacted when it has grown past the bound.
    const journal = this.#journal;
    if (journal !== undefined && journal.recordsSinceCompaction >= this.#compactEvery) {
      await journal.compact(this.#snapshot()).catch((error: unknown) => {
        this.#log.warn(`paper journal compaction on close failed: ${(error as Error).message}`);
      });
    }
    await this.#closeJournal();
    if (this.#state !== "disconnected") this.#setState("disconnected");
  }

  async #openJournal(): Promise<void> {
    const file = this.#journalFile;
    if (file === undefined) return;
    if (openJournals.has(file)) {
      throw new BrokerError(
        "CONFIG",
        `paper account "${this.settings.account}" is already open by another broker config (${file}); give each config its own account name`,
      );
    }
    openJournals.add(file);
    this.#claimed = true;
    const opened = await Journal.open<AccountSnapshot, AccountRecord>({
      file,
      log: { warn: (m) => this.#log.warn(m) },
    });
    this.#journal = opened.journal;
    if (opened.contents.snapshot !== undefined) this.#restoreSnapshot(opened.contents.snapshot);
    for (const record of opened.contents.records) this.#restoreRecord(record);
    this.#rebuildIndexes();
    const restored = this.#orders.size + this.#gtts.size + this.#positions.size;
    if (restored > 0) {
      this.#log.info(
        `paper account "${this.settings.account}" restored: ${this.#orders.size} orders, ${this.#gtts.size} GTTs, cash ${this.#cash}`,
      );
    }
  }

  async #closeJournal(): Promise<void> {
    const journal = this.#journal;
    this.#journal = undefined;
    try {
      await journal?.close();
    } finally {
      // Only our own claim: a broker refused because another holds the file must not release it.
      if (this.#claimed && this.#journalFile !== undefined) openJournals.delete(this.#journalFile);
      this.#claimed = false;
    }
  }

  #setState(state: ConnectionState, detail?: string): void {
    this.#state = state;
    this.emit("state", state, detail);
  }

  async #ready(): Promise<void> {
    if (this.#state === "connected") return;
    if (this.#connecting !== undefined) {
      await this.#connecting;
      return;
    }
    throw new BrokerError("NOT_CONNECTED", "paper broker is not connected");
  }

  /**
   * Resolves once every change made so far is written and fsync'd. A gateway awaits this before it
   * acknowledges an order, so an acknowledged order survives the process being killed; concurrent
   * callers share one write (group commit).
   */
  async flush(): Promise<void> {
    await this.#journal?.flush();
  }

  /** Wipes the account: cash back to starting_cash, no orders, GTTs or positions. `seq` and ids go on. */
  async resetAccount(): Promise<void> {
    await this.#ready();
    this.#orders.clear();
    this.#byClientId.clear();
    this.#open.clear();
    this.#ended.clear();
    this.#gtts.clear();
    this.#positions.clear();
    this.#reservedTotal = 0;
    this.#cash = this.settings.starting_cash;
    await this.#journal?.compact(this.#snapshot());
    this.#log.info(`paper account "${this.settings.account}" reset to cash ${this.#cash}`);
  }

  // #endregion

  // #region orders

  async placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    const request = parseOrderRequest(input);
    await this.#ready();
    if (request.client_order_id !== undefined) {
      const existing = this.#byClientId.get(request.client_order_id);
      const order = existing === undefined ? undefined : this.#orders.get(existing);
      if (order !== undefined) return this.#view(order);
    }
    return this.#mutate((change) => {
      const key = instrumentKey(request.exchange, request.symbol);
      this.#feed.track(key);
      const quote = this.#feed.latest(key);
      // Built field by field: V8 takes a slow path for `{...spread, more}` (~10 µs a call on Node 20).
      const order: OrderState = {
        order_id: `P${String(this.#nextOrder++).padStart(9, "0")}`,
        client_order_id: request.client_order_id ?? newClientOrderId(),
        symbol: request.symbol,
        exchange: request.exchange,
        side: request.side,
        quantity: request.quantity,
        order_type: request.order_type,
        product: request.product,
        validity: request.validity,
        status: STOP_TYPES.has(request.order_type) ? "TRIGGER_PENDING" : "OPEN",
        filled_quantity: 0,
        average_price: 0,
        placed_at: change.now,
        timestamp: change.now,
        reserved: 0,
      };
      if (request.price !== undefined) order.price = request.price;
      if (request.trigger_price !== undefined) order.trigger_price = request.trigger_price;
      if (request.tag !== undefined) order.tag = request.tag;
      this.#admit(change, order, quote);
      return this.#view(order);
    });
  }

  async modifyOrder(orderId: string, changesInput: OrderChanges): Promise<OrderSnapshot> {
    const changes = parseOrThrow(OrderChangesSchema, changesInput, "order changes");
    await this.#ready();
    const order = this.#liveOrder(orderId, "modified");
    const merged = { ...this.#requestOf(order), ...definedOnly(changes) };
    if (changes.order_type !== undefined && !STOP_TYPES.has(changes.order_type)) delete merged.trigger_price;
    if (changes.order_type === "MARKET" || changes.order_type === "SL-M") delete merged.price;
    const request = parseOrThrow(OrderRequest, merged, "order changes");
    if (request.quantity <= order.filled_quantity) {
      throw new BrokerError(
        "VALIDATION",
        `invalid order changes: quantity: must be more than the ${order.filled_quantity} already filled`,
      );
    }
    const becomesStop = STOP_TYPES.has(request.order_type) && !STOP_TYPES.has(order.order_type);
    if (becomesStop && order.status === "PARTIALLY_FILLED") {
      throw new BrokerError(
        "VALIDATION",
        "invalid order changes: order_type: a partially filled order cannot become a stop order",
      );
    }
    return this.#mutate((change) => {
      const nextStatus: OrderStatus = becomesStop
        ? "TRIGGER_PENDING"
        : order.status === "TRIGGER_PENDING" && !STOP_TYPES.has(request.order_type)
          ? "OPEN"
          : order.status;
      assertTransition(order.status, nextStatus, order.order_id);
      order.quantity = request.quantity;
      order.order_type = request.order_type;
      order.validity = request.validity;
      setOptional(order, "price", request.price);
      setOptional(order, "trigger_price", request.trigger_price);
      order.status = nextStatus;
      const quote = this.#feed.latest(instrumentKey(order.exchange, order.symbol));
      this.#setReserved(order, this.#reservation(order, quote));
      this.#touch(change, order, "ORDER_MODIFIED");
      if (quote !== undefined) this.#match(change, order, quote);
      return this.#view(order);
    });
  }

  async cancelOrder(orderId: string): Promise<OrderSnapshot> {
    await this.#ready();
    const order = this.#liveOrder(orderId, "cancelled");
    return this.#mutate((change) => {
      this.#end(change, order, "CANCELLED", "ORDER_CANCELLED", "cancelled by the user");
      return this.#view(order);
    });
  }

  async getOrder(orderId: string): Promise<OrderSnapshot> {
    await this.#ready();
    const order = this.#orders.get(orderId);
    if (order === undefined) throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    return this.#view(order);
  }

  async getOrderbook(): Promise<OrderSnapshot[]> {
    await this.#ready();
    return Array.from(this.#orders.values(), (order) => this.#view(order));
  }

  #liveOrder(orderId: string, verb: string): OrderState {
    const order = this.#orders.get(orderId);
    if (order === undefined) throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    if (isTerminal(order.status)) {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${order.status}; only open orders can be ${verb}`,
      );
    }
    return order;
  }

  /** Why the broker refuses an order outright, as a status_message; undefined when it accepts. */
  #refusal(order: OrderState, quote: Quote | undefined): string | undefined {
    const where = `${order.exchange}:${order.symbol}`;
    if ((order.order_type === "MARKET" || order.validity === "IOC") && quote === undefined) {
      return `no price for ${where} yet, so a ${order.order_type} ${order.validity} order cannot fill`;
    }
    if (STOP_TYPES.has(order.order_type) && quote !== undefined && order.trigger_price !== undefined) {
      const last = quote.last_price;
      if (order.side === "BUY" && order.trigger_price <= last) {
        return `trigger_price ${order.trigger_price} must be above the last price ${last} for a BUY stop order`;
      }
      if (order.side === "SELL" && order.trigger_price >= last) {
        return `trigger_price ${order.trigger_price} must be below the last price ${last} for a SELL stop order`;
      }
    }
    if (order.side === "SELL" && order.product === "CNC") {
      const held = this.#positions.get(positionKey(order.exchange, order.symbol, "CNC"))?.quantity ?? 0;
      const selling = this.#openQuantity(order, "SELL", "CNC");
      if (order.quantity > held - selling) {
        return `insufficient holdings: CNC sell of ${order.quantity} ${where} but ${Math.max(0, held - selling)} held and not already being sold`;
      }
    }
    if (order.side === "BUY") {
      const needed = order.quantity * this.#referencePrice(order, quote);
      const available = this.#availableCash();
      if (needed > available) {
        return `insufficient funds: needs ${roundMoney(needed)}, available ${roundMoney(available)}`;
      }
    }
    return undefined;
  }

  #openQuantity(except: OrderState, side: "BUY" | "SELL", product: string): number {
    let total = 0;
    for (const order of this.#open.get(instrumentKey(except.exchange, except.symbol)) ?? []) {
      if (order !== except && order.side === side && order.product === product) {
        total += order.quantity - order.filled_quantity;
      }
    }
    return total;
  }

  #availableCash(): number {
    return this.#cash - this.#reservedTotal;
  }

  /** Keeps the sum of reservations current so a placement's funds check is O(1). */
  #setReserved(order: OrderState, amount: number): void {
    this.#reservedTotal += amount - order.reserved;
    order.reserved = amount;
  }

  /** The price a BUY is expected to pay: its limit, or the market plus slippage. */
  #referencePrice(order: OrderSnapshot, quote: Quote | undefined): number {
    if (order.price !== undefined) return order.price;
    const slip = 1 + this.settings.slippage_bps / 10_000;
    if (order.order_type === "SL-M" && order.trigger_price !== undefined) return order.trigger_price * slip;
    return quote?.ask ?? (quote?.last_price ?? 0) * slip;
  }

  #reservation(order: OrderState, quote: Quote | undefined): number {
    if (order.side !== "BUY" || isTerminal(order.status)) return 0;
    return (order.quantity - order.filled_quantity) * this.#referencePrice(order, quote);
  }

  // #endregion

  // #region matching

  #onQuote(quote: Quote): void {
    const key = instrumentKey(quote.exchange, quote.symbol);
    const open = this.#open.get(key);
    const gtts = this.#activeGtts(key);
    if ((open !== undefined && open.size > 0) || gtts.length > 0) {
      this.#mutate((change) => {
        for (const order of Array.from(open ?? [])) this.#match(change, order, quote);
        for (const gtt of gtts) this.#checkGtt(change, gtt, quote);
      });
    }
    if (this.#subscribed.has(key)) this.emit("quote", quote);
  }

  /** Triggers and fills one order against one quote, as far as the quote allows. */
  #match(change: Change, order: OrderState, quote: Quote): void {
    if (isTerminal(order.status)) return;
    if (order.status === "TRIGGER_PENDING") {
      if (!this.#triggered(order, quote)) return;
      this.#transition(order, "OPEN");
      this.#touch(change, order, "ORDER_TRIGGERED");
      this.#expireUnfilledIoc(change, order, quote);
      if (isTerminal(order.status)) return;
    }
    const price = this.#fillPrice(order, quote);
    if (price === undefined) return;
    const remaining = order.quantity - order.filled_quantity;
    const limit = this.settings.max_fill_per_quote;
    this.#fill(change, order, limit > 0 ? Math.min(limit, remaining) : remaining, price);
  }

  #triggered(order: OrderSnapshot, quote: Quote): boolean {
    const trigger = order.trigger_price ?? Number.NaN;
    return order.side === "BUY" ? quote.last_price >= trigger : quote.last_price <= trigger;
  }

  /** The price this quote fills the order at, or undefined when it is not marketable. */
  #fillPrice(order: OrderSnapshot, quote: Quote): number | undefined {
    const slip = this.settings.slippage_bps / 10_000;
    if (order.order_type === "MARKET" || order.order_type === "SL-M") {
      return order.side === "BUY"
        ? (quote.ask ?? roundPrice(quote.last_price * (1 + slip)))
        : (quote.bid ?? roundPrice(quote.last_price * (1 - slip)));
    }
    const limit = order.price ?? Number.NaN;
    if (order.side === "BUY") {
      const offer = quote.ask ?? quote.last_price;
      return offer <= limit ? Math.min(offer, limit) : undefined;
    }
    const bid = quote.bid ?? quote.last_price;
    return bid >= limit ? Math.max(bid, limit) : undefined;
  }

  #fill(change: Change, order: OrderState, quantity: number, price: number): void {
    const filled = order.filled_quantity + quantity;
    order.average_price = roundPrice4(
      (order.average_price * order.filled_quantity + price * quantity) / filled,
    );
    order.filled_quantity = filled;
    const done = filled >= order.quantity;
    this.#transition(order, done ? "FILLED" : "PARTIALLY_FILLED");
    const position = this.#position(order);
    applyFill(position, order.side, quantity, price);
    if (!change.positions.includes(position)) change.positions.push(position);
    this.#cash = roundMoney(this.#cash + (order.side === "BUY" ? -1 : 1) * quantity * price);
    this.#setReserved(order, done ? 0 : this.#reservation(order, undefined));
    if (done) this.#retire(order);
    this.#touch(change, order, done ? "ORDER_FILLED" : "ORDER_PARTIALLY_FILLED");
  }

  /** IOC: whatever did not fill at once is cancelled, as exchanges do. */
  #expireUnfilledIoc(change: Change, order: OrderState, _quote?: Quote): void {
    if (order.validity !== "IOC" || isTerminal(order.status) || order.status === "TRIGGER_PENDING") return;
    this.#end(change, order, "CANCELLED", "ORDER_CANCELLED", "IOC: unfilled quantity cancelled");
  }

  #end(change: Change, order: OrderState, status: OrderStatus, event: OrderEventType, message: string): void {
    this.#transition(order, status);
    order.status_message = message;
    this.#setReserved(order, 0);
    this.#retire(order);
    this.#touch(change, order, event);
  }

  #transition(order: OrderState, to: OrderStatus): void {
    assertTransition(order.status, to, order.order_id);
    order.status = to;
  }

  #position(order: OrderSnapshot): PositionState {
    const key = positionKey(order.exchange, order.symbol, order.product);
    let position = this.#positions.get(key);
    if (position === undefined) {
      position = {
        symbol: order.symbol,
        exchange: order.exchange,
        product: order.product,
        quantity: 0,
        average_price: 0,
        realized_pnl: 0,
      };
      this.#positions.set(key, position);
    }
    return position;
  }

  #index(order: OrderState): void {
    const key = instrumentKey(order.exchange, order.symbol);
    let set = this.#open.get(key);
    if (set === undefined) {
      set = new Set();
      this.#open.set(key, set);
    }
    set.add(order);
  }

  /** Takes a terminal order out of matching and queues it for the retention bound. */
  #retire(order: OrderState): void {
    const key = instrumentKey(order.exchange, order.symbol);
    // An emptied set stays: instruments are few, and re-creating one per order costs more.
    this.#open.get(key)?.delete(order);
    this.#ended.push(order.order_id, "order");
    this.#evictBeyondRetention();
  }

  #evictBeyondRetention(): void {
    this.#ended.trim(this.settings.retention, (id, kind) => {
      if (kind === "gtt") {
        this.#gtts.delete(id);
        return;
      }
      const order = this.#orders.get(id);
      this.#orders.delete(id);
      if (order !== undefined) this.#byClientId.delete(order.client_order_id);
    });
  }

  // #endregion

  // #region GTTs

  async placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    await this.#ready();
    return this.#mutate((change) => {
      const key = instrumentKey(request.exchange, request.symbol);
      this.#feed.track(key);
      const gtt: GttState = {
        gtt_id: `G${String(this.#nextGtt++).padStart(9, "0")}`,
        ...this.#gttFields(request, key),
        status: "active",
        order_ids: [],
        created_at: change.now,
        updated_at: change.now,
      };
      this.#gtts.set(gtt.gtt_id, gtt);
      this.#touchGtt(change, gtt, "GTT_PLACED");
      return gttView(gtt);
    });
  }

  async modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    await this.#ready();
    const gtt = this.#activeGtt(gttId, "modified");
    return this.#mutate((change) => {
      const key = instrumentKey(request.exchange, request.symbol);
      this.#feed.track(key);
      delete gtt.direction;
      delete gtt.last_price;
      Object.assign(gtt, this.#gttFields(request, key), { updated_at: change.now });
      this.#touchGtt(change, gtt, "GTT_MODIFIED");
      return gttView(gtt);
    });
  }

  async deleteGtt(gttId: string): Promise<GttSnapshot> {
    await this.#ready();
    const gtt = this.#activeGtt(gttId, "deleted");
    return this.#mutate((change) => {
      gtt.status = "deleted";
      gtt.updated_at = change.now;
      this.#ended.push(gtt.gtt_id, "gtt");
      this.#touchGtt(change, gtt, "GTT_DELETED");
      this.#evictBeyondRetention();
      return gttView(gtt);
    });
  }

  async getGtts(): Promise<GttSnapshot[]> {
    await this.#ready();
    return Array.from(this.#gtts.values(), gttView);
  }

  #activeGtt(gttId: string, verb: string): GttState {
    const gtt = this.#gtts.get(gttId);
    if (gtt === undefined) throw new BrokerError("NOT_FOUND", `GTT ${gttId} not found`);
    if (gtt.status !== "active") {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${gtt.status}; only active GTTs can be ${verb}`,
      );
    }
    return gtt;
  }

  #gttFields(request: GttRequest, key: InstrumentKey): GttFields {
    const last = request.last_price ?? this.#feed.latest(key)?.last_price;
    const fields: GttFields = {
      type: request.type,
      symbol: request.symbol,
      exchange: request.exchange,
      trigger_values: [...request.trigger_values],
      orders: request.orders.map((order) => ({ ...order })),
    };
    if (last !== undefined) fields.last_price = last;
    if (request.type === "single") {
      const trigger = request.trigger_values[0];
      if (last === undefined) {
        throw new BrokerError(
          "NO_QUOTE",
          `no price for ${key} yet: give last_price so the GTT knows which way to trigger`,
        );
      }
      fields.direction = trigger >= last ? "up" : "down";
    }
    return fields;
  }

  #activeGtts(key: InstrumentKey): GttState[] {
    const found: GttState[] = [];
    if (this.#gtts.size === 0) return found;
    for (const gtt of this.#gtts.values()) {
      if (gtt.status === "active" && gtt.exchange + ":" + gtt.symbol === key) found.push(gtt);
    }
    return found;
  }

  /** Fires a GTT whose condition the quote meets; an OCO fires one leg and the other is void. */
  #checkGtt(change: Change, gtt: GttState, quote: Quote): void {
    const leg = firedLeg(gtt, quote.last_price);
    if (leg === undefined) return;
    const legOrder = gtt.orders[leg];
    if (legOrder === undefined) return;
    gtt.status = "triggered";
    gtt.triggered_leg = leg;
    gtt.updated_at = change.now;
    this.#ended.push(gtt.gtt_id, "gtt");
    const order = this.#placeFromGtt(change, gtt, legOrder, quote);
    gtt.order_ids = [order.order_id];
    this.#touchGtt(change, gtt, "GTT_TRIGGERED");
  }

  #placeFromGtt(change: Change, gtt: GttState, leg: GttState["orders"][number], quote: Quote): OrderState {
    const order: OrderState = {
      symbol: gtt.symbol,
      exchange: gtt.exchange,
      side: leg.side,
      quantity: leg.quantity,
      order_type: leg.order_type,
      price: leg.price,
      product: leg.product,
      validity: "DAY",
      order_id: `P${String(this.#nextOrder++).padStart(9, "0")}`,
      client_order_id: newClientOrderId(),
      status: "OPEN",
      filled_quantity: 0,
      average_price: 0,
      gtt_id: gtt.gtt_id,
      placed_at: change.now,
      timestamp: change.now,
      reserved: 0,
    };
    this.#admit(change, order, quote);
    return order;
  }

  /**
   * Takes a new order into the book, from a request or a GTT: refused outright (REJECTED), or
   * placed and matched against the current quote at once; IOC leftovers are cancelled.
   */
  #admit(change: Change, order: OrderState, quote: Quote | undefined): void {
    this.#byClientId.set(order.client_order_id, order.order_id);
    this.#orders.set(order.order_id, order);
    const refusal = this.#refusal(order, quote);
    if (refusal !== undefined) {
      order.status = "REJECTED";
      order.status_message = refusal;
      this.#retire(order);
      this.#touch(change, order, "ORDER_REJECTED");
      return;
    }
    this.#setReserved(order, this.#reservation(order, quote));
    this.#touch(change, order, "ORDER_PLACED");
    if (quote !== undefined) this.#match(change, order, quote);
    this.#expireUnfilledIoc(change, order);
    // Indexed for later quotes only if it is still live: most MARKET orders never need it.
    if (!isTerminal(order.status)) this.#index(order);
  }

  // #endregion

  // #region positions, account, quotes

  async getPositions(): Promise<Position[]> {
    await this.#ready();
    return Array.from(this.#positions.values(), (position) =>
      positionView(position, this.#lastPrice(position.exchange, position.symbol, position.average_price)),
    );
  }

  async getAccount(): Promise<Account> {
    await this.#ready();
    let realized = 0;
    let unrealized = 0;
    let holdings = 0;
    for (const position of this.#positions.values()) {
      const view = positionView(
        position,
        this.#lastPrice(position.exchange, position.symbol, position.average_price),
      );
      realized += view.realized_pnl;
      unrealized += view.unrealized_pnl;
      holdings += view.quantity * view.last_price;
    }
    return {
      cash: this.#cash,
      realized_pnl: roundMoney(realized),
      unrealized_pnl: roundMoney(unrealized),
      equity: roundMoney(this.#cash + holdings),
    };
  }

  #lastPrice(exchange: Quote["exchange"], symbol: string, fallback: number): number {
    return this.#feed.latest(instrumentKey(exchange, symbol))?.last_price ?? fallback;
  }

  async subscribeQuotes(symbols: string[]): Promise<void> {
    const keys = symbols.map((text) => parseInstrument(text));
    await this.#ready();
    for (const { exchange, symbol } of keys) {
      const key = instrumentKey(exchange, symbol);
      this.#subscribed.add(key);
      this.#feed.track(key);
    }
  }

  async unsubscribeQuotes(symbols: string[]): Promise<void> {
    const keys = symbols.map((text) => parseInstrument(text));
    await this.#ready();
    for (const { exchange, symbol } of keys) this.#subscribed.delete(instrumentKey(exchange, symbol));
  }

  /**
   * Moves a price by hand and matches against it, as a quote from the feed would. For tests and
   * what-ifs; with no bid/ask given the quote has no book, so MARKET orders pay slippage.
   */
  setPrice(instrument: string, lastPrice: number, book: { bid?: number; ask?: number } = {}): Quote {
    const { exchange, symbol } = parseInstrument(instrument);
    const quote = parseOrThrow(
      QuoteSchema,
      {
        symbol,
        exchange,
        last_price: lastPrice,
        ...book,
        timestamp: new Date(this.#clock.now()).toISOString(),
      },
      "quote",
    );
    this.#feed.set(quote);
    if (this.#state === "connected") this.#onQuote(quote);
    return quote;
  }

  #createFeed(): QuoteFeed {
    const onQuote = (quote: Quote) => this.#onQuote(quote);
    const settings = this.settings;
    if (settings.quote_source === "csv") {
      return new CsvReplayFeed({
        clock: this.#clock,
        file: settings.csv_file ?? "",
        speed: settings.replay_speed,
        loop: settings.replay_loop,
        onQuote,
        onEnd: () => this.#log.info(`quote replay of ${settings.csv_file ?? ""} finished`),
      });
    }
    return new RandomWalkFeed({
      clock: this.#clock,
      random: this.#random,
      intervalMs: settings.interval_ms,
      startPrice: settings.start_price,
      volatility: settings.volatility,
      spreadBps: settings.spread_bps,
      onQuote,
    });
  }

  // #endregion

  // #region change tracking, journal and events

  /**
   * Runs one operation: its changes become one journal record, then its events go out in order.
   * Announcing after the record means a listener never sees an event the account could lose.
   */
  #mutate<T>(operation: (change: Change) => T): T {
    const change: Change = {
      orders: new Map(),
      gtts: new Set(),
      positions: [],
      events: [],
      now: this.#isoNow(),
    };
    const result = operation(change);
    this.#record(change);
    for (const event of change.events) {
      if ("order" in event) this.emit("order", event);
      else this.emit("gtt", event);
    }
    return result;
  }

  #isoAt = Number.NaN;
  #iso = "";

  /** The clock's time as ISO 8601; formatting costs more than a fill, so it is reused per ms. */
  #isoNow(): string {
    const now = this.#clock.now();
    if (now !== this.#isoAt) {
      this.#isoAt = now;
      this.#iso = new Date(now).toISOString();
    }
    return this.#iso;
  }

  #touch(change: Change, order: OrderState, type: OrderEventType): void {
    order.timestamp = change.now;
    const view = this.#view(order);
    // A Map: one quote can fill thousands of resting orders in one operation.
    change.orders.set(view.order_id, view);
    change.events.push({ type, seq: ++this.#seq, order: view, timestamp: change.now });
  }

  #touchGtt(change: Change, gtt: GttState, type: GttEventType): void {
    change.gtts.add(gtt);
    change.events.push({ type, seq: ++this.#seq, gtt: gttView(gtt), timestamp: change.now });
  }

  #record(change: Change): void {
    const journal = this.#journal;
    if (journal === undefined || (change.events.length === 0 && change.positions.length === 0)) return;
    const record: AccountRecord = {
      seq: this.#seq,
      cash: this.#cash,
      next_order: this.#nextOrder,
      next_gtt: this.#nextGtt,
    };
    // The journal serializes at append, so the views the events carry can be written as they are.
    if (change.orders.size > 0) record.orders = Array.from(change.orders.values());
    if (change.gtts.size > 0) record.gtts = Array.from(change.gtts);
    if (change.positions.length > 0) record.positions = change.positions;
    journal.append(record);
    if (journal.recordsSinceCompaction >= this.#compactEvery && this.#compacting === undefined) {
      this.#compacting = journal
        .compact(this.#snapshot())
        .catch((error: unknown) => {
          const failure = new BrokerError(
            "INTERNAL",
            `paper journal compaction failed: ${(error as Error).message}`,
          );
          this.#log.error(failure.message);
          this.emit("error", failure);
        })
        .finally(() => {
          this.#compacting = undefined;
        });
    }
  }

  #snapshot(): AccountSnapshot {
    const prices: Quote[] = [];
    for (const position of this.#positions.values()) {
      const quote = this.#feed.latest(instrumentKey(position.exchange, position.symbol));
      if (quote !== undefined) prices.push(quote);
    }
    return {
      version: 1,
      cash: this.#cash,
      seq: this.#seq,
      next_order: this.#nextOrder,
      next_gtt: this.#nextGtt,
      orders: Array.from(this.#orders.values(), (order) => this.#view(order)),
      gtts: Array.from(this.#gtts.values(), (gtt) => ({ ...gtt })),
      positions: Array.from(this.#positions.values(), (p) => ({ ...p })),
      prices,
    };
  }

  #restoreSnapshot(snapshot: AccountSnapshot): void {
    this.#cash = snapshot.cash;
    this.#seq = snapshot.seq;
    this.#nextOrder = snapshot.next_order;
    this.#nextGtt = snapshot.next_gtt;
    for (const order of snapshot.orders) this.#orders.set(order.order_id, { ...order, reserved: 0 });
    for (const gtt of snapshot.gtts) this.#gtts.set(gtt.gtt_id, { ...gtt });
    for (const position of snapshot.positions) {
      this.#positions.set(positionKey(position.exchange, position.symbol, position.product), { ...position });
    }
    for (const quote of snapshot.prices) this.#feed.set(quote);
  }

  #restoreRecord(record: AccountRecord): void {
    this.#cash = record.cash;
    this.#seq = record.seq;
    this.#nextOrder = record.next_order;
    this.#nextGtt = record.next_gtt;
    for (const order of record.orders ?? []) {
      this.#orders.delete(order.order_id);
      this.#orders.set(order.order_id, { ...order, reserved: 0 });
    }
    for (const gtt of record.gtts ?? []) this.#gtts.set(gtt.gtt_id, { ...gtt });
    for (const position of record.positions ?? []) {
      this.#positions.set(positionKey(position.exchange, position.symbol, position.product), { ...position });
    }
  }

  /** After a restore: which orders match, which ids are taken, what cash is held back. */
  #rebuildIndexes(): void {
    for (const order of this.#orders.values()) {
      this.#byClientId.set(order.client_order_id, order.order_id);
      const key = instrumentKey(order.exchange, order.symbol);
      this.#feed.track(key);
      if (isTerminal(order.status)) {
        this.#ended.push(order.order_id, "order");
      } else {
        this.#setReserved(order, this.#reservation(order, this.#feed.latest(key)));
        this.#index(order);
      }
    }
    for (const gtt of this.#gtts.values()) {
      if (gtt.status === "active") this.#feed.track(instrumentKey(gtt.exchange, gtt.symbol));
      else this.#ended.push(gtt.gtt_id, "gtt");
    }
    this.#evictBeyondRetention();
  }

  #requestOf(order: OrderSnapshot): OrderRequestInput {
    const request: OrderRequestInput = {
      symbol: order.symbol,
      exchange: order.exchange,
      side: order.side,
      quantity: order.quantity,
      order_type: order.order_type,
      product: order.product,
      validity: order.validity,
      client_order_id: order.client_order_id,
    };
    if (order.price !== undefined) request.price = order.price;
    if (order.trigger_price !== undefined) request.trigger_price = order.trigger_price;
    if (order.tag !== undefined) request.tag = order.tag;
    return request;
  }

  /** A plain copy for the flow: no engine bookkeeping, nothing a listener could mutate. */
  #view(order: OrderState): OrderSnapshot {
    return orderView(order);
  }

  // #endregion
}

/** A plain copy without the engine's bookkeeping, built field by field (rest spread is slow in V8). */
function orderView(order: OrderState): OrderSnapshot {
  const view: OrderSnapshot = {
    order_id: order.order_id,
    client_order_id: order.client_order_id,
    symbol: order.symbol,
    exchange: order.exchange,
    side: order.side,
    quantity: order.quantity,
    order_type: order.order_type,
    product: order.product,
    validity: order.validity,
    status: order.status,
    filled_quantity: order.filled_quantity,
    average_price: order.average_price,
    placed_at: order.placed_at,
    timestamp: order.timestamp,
  };
  if (order.price !== undefined) view.price = order.price;
  if (order.trigger_price !== undefined) view.trigger_price = order.trigger_price;
  if (order.tag !== undefined) view.tag = order.tag;
  if (order.status_message !== undefined) view.status_message = order.status_message;
  if (order.gtt_id !== undefined) view.gtt_id = order.gtt_id;
  return view;
}

function gttView(gtt: GttState): GttSnapshot {
  const { direction: _direction, ...snapshot } = gtt;
  return {
    ...snapshot,
    trigger_values: [...gtt.trigger_values],
    orders: gtt.orders.map((o) => ({ ...o })),
    order_ids: [...gtt.order_ids],
  };
}

/** Which leg a price fires: single GTTs by direction, OCO leg 0 at or below, leg 1 at or above. */
function firedLeg(gtt: GttState, last: number): number | undefined {
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

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function setOptional<K extends "price" | "trigger_price">(
  order: OrderState,
  key: K,
  value: number | undefined,
): void {
  if (value === undefined) delete order[key];
  else order[key] = value;
}

function roundMoney(value: number): number {
  return Math.round(value * 100) / 100;
}

function roundPrice4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
