import { EventEmitter } from "node:events";
import type {
  Account,
  AccountEvent,
  ConnectionState,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEvent,
  OrderRequestInput,
  OrderSnapshot,
  OrderStatus,
  Position,
  Quote,
} from "../protocol";
// Straight from the defining modules: the index's re-exports are getters on every access.
import { BrokerError, toBrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument } from "../protocol/instrument";
import { OrderChanges as OrderChangesSchema, OrderRequest, isTerminal } from "../protocol/orders";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { Quote as QuoteSchema } from "../protocol/quotes";
import { parseOrThrow } from "../protocol/validate";
import type { Change } from "../paper/account";
import { PaperAccount, tradingDay } from "../paper/account";
import type { GttState, OrderState } from "../paper/account-state";
import type { Clock, TimerRef } from "../paper/clock";
import { systemClock } from "../paper/clock";
import type { RecordExtra } from "../paper/compact-record";
import { CsvReplayFeed } from "../paper/csv-replay-feed";
import { EventLog } from "../paper/event-log";
import { DurableAnnouncer } from "../paper/durable-announcer";
import { isStop } from "../paper/fill-rules";
import { applyGttFields, gttFields } from "../paper/gtt-book";
import { positionView } from "../paper/ledger";
import { PaperMarket, sameQuote } from "../paper/market-rules";
import { MatchingEngine } from "../paper/matching-engine";
import { TtlExpiry, copyOrderOptions, hasOrderOptions, ttlDeadline } from "../paper/order-coverage";
import { toPaise, toRupees } from "../paper/money";
import type { PaperJournal, RestoreReport } from "../paper/paper-journal";
import { openPaperJournal } from "../paper/paper-journal";
import type { QuoteFeed } from "../paper/quote-feed";
import type { Random } from "../paper/random";
import { seededRandom } from "../paper/random";
import { RandomWalkFeed } from "../paper/random-walk-feed";
import type { PaperSettings, PaperSettingsInput } from "../paper/settings";
import { PaperSettings as PaperSettingsSchema } from "../paper/settings";
import { gttView, laterView, orderView, viewOf } from "../paper/views";
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

/**
 * The embedded default broker: an in-process simulator with a matching engine, positions, cash
 * and GTTs, priced by a seeded random walk or a CSV replay (fill rules: README "The paper broker's
 * fill rules"; lib/paper/fill-rules.ts).
 *
 * The durability point: with a journal, every operation is one journal record, and its events are
 * emitted — and its promise resolves — only once that record is fsync'd. What a listener or caller
 * has seen survives a crash; what it has not seen may be lost with the process, and nothing else.
 * Reads wait for the writes before them. Without a journal, events go out at once.
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
  /** The feed when it is a random walk, whose position the journal keeps so a reopen carries on. */
  readonly #walk: RandomWalkFeed | undefined;
  /** The walk's version last written to the journal. */
  #walkWritten = -1;
  /** The feed when it is a CSV replay, whose position the journal keeps so a reopen goes on after it. */
  readonly #replay: CsvReplayFeed | undefined;
  #replayWritten = -1;
  readonly #account: PaperAccount;
  readonly #engine: MatchingEngine;
  readonly #ttl: TtlExpiry;
  /** NSE's rules; undefined in the plain relaxed mode (settings.market), which trades as before. */
  readonly #market: PaperMarket | undefined;
  /** The next market boundary (open, square-off, close, a GTT's expiry), while connected. */
  #sessionTimer: TimerRef | undefined;

  #state: ConnectionState = "disconnected";
  #connecting: Promise<void> | undefined;
  /** Set from the start of close(): nothing new is taken, so nothing is taken that could be lost. */
  #closing = false;
  /** The close() under way: a second call waits for it rather than returning before the journal is let go. */
  #closed: Promise<void> | undefined;
  #journal: PaperJournal | undefined;
  #announcer: DurableAnnouncer | undefined;
  #restoreReport: RestoreReport | undefined;
  /** The seq of the last event emitted (not merely issued), for resume logic. */
  #announcedSeq = 0;
  readonly #subscribed = new Set<InstrumentKey>();
  /** Last quote per instrument, and those moved since the last journal record. */
  readonly #prices = new Map<InstrumentKey, Quote>();
  readonly #pricesToWrite = new Map<InstrumentKey, Quote>();
  /** The instruments settings.symbols allows; undefined = any. */
  readonly #known: ReadonlySet<InstrumentKey> | undefined;

  constructor(settings: PaperSettingsInput = {}, deps: PaperBrokerDeps = {}) {
    super();
    this.settings = parseOrThrow(PaperSettingsSchema, settings, "paper broker settings");
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? seededRandom(this.settings.seed ?? Date.now());
    this.#log = deps.log ?? silentLogger;
    this.#journalFile = deps.journalFile;
    this.#compactEvery = deps.compactEvery ?? Math.max(1000, this.settings.retention * 5);
    this.#account = new PaperAccount(toPaise(this.settings.starting_cash), this.settings.retention);
    this.#market = PaperMarket.of(this.settings.market, this.#clock);
    this.#engine = new MatchingEngine(this.#account, this.settings, this.#market);
    this.#ttl = new TtlExpiry(this.#clock, (ids) => this.#expire(ids));
    this.#feed = this.#createFeed();
    this.#walk = this.#feed instanceof RandomWalkFeed ? this.#feed : undefined;
    this.#replay = this.#feed instanceof CsvReplayFeed ? this.#feed : undefined;
    this.#known =
      this.settings.symbols === undefined
        ? undefined
        : new Set(
            this.settings.symbols.map((text) => {
              const { exchange, symbol } = parseInstrument(text);
              return instrumentKey(exchange, symbol);
            }),
          );
  }

  /** Refuses an instrument the account was not configured for (when it was configured at all). */
  #checkKnown(key: InstrumentKey): void {
    if (this.#known === undefined || this.#known.has(key)) return;
    throw new BrokerError(
      "VALIDATION",
      `symbol: ${key} is not one of this paper account's symbols (settings.symbols); add it there to trade it`,
    );
  }

  /** Starts the feed on an instrument, from its last known price if it had one. */
  #watch(key: InstrumentKey): void {
    if (this.#feed.latest(key) === undefined) {
      const last = this.#prices.get(key);
      if (last !== undefined) this.#feed.set(last);
    }
    this.#feed.track(key);
  }

  /** Whether anyone subscribes to, rests an order on, holds or has a GTT on an instrument. */
  #inUse(key: InstrumentKey): boolean {
    if (this.#subscribed.has(key) || (this.#account.resting.get(key)?.size ?? 0) > 0) return true;
    for (const product of ["CNC", "MIS", "NRML"] as const) {
      if ((this.#account.positions.get(`${key}:${product}`)?.quantity ?? 0) !== 0) return true;
    }
    return this.#activeGtts(key).length > 0;
  }

  /**
   * The feed forgets an instrument nobody uses, so a long session does not walk every symbol it
   * ever saw. Checked when the feed moves it (off the placement path) and on unsubscribe.
   */
  #forgetIfUnused(key: InstrumentKey): boolean {
    if (this.#inUse(key)) return false;
    this.#feed.forget(key);
    return true;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The seq of the last event this broker emitted (restored from the journal), for resume logic. */
  get lastSeq(): number {
    return this.#journal === undefined && this.#announcer === undefined
      ? this.#account.seq
      : this.#announcedSeq;
  }

  /** What the last connect() restored and set aside; undefined before a journaled connect. */
  get restoreReport(): RestoreReport | undefined {
    return this.#restoreReport;
  }

  // #region lifecycle

  connect(): Promise<void> {
    if (this.#state === "connected" && !this.#closing) return Promise.resolve();
    this.#connecting ??= this.#start().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #start(): Promise<void> {
    this.#closing = false;
    this.#setState("connecting");
    try {
      await this.#openJournal();
      await this.#feed.start();
      const due: string[] = [];
      for (const order of this.#account.orders.values()) this.#scheduleTtl(order, due);
      this.#setState("connected");
      // Minutes that ran out while the broker was closed end the order now, not at the next timer.
      this.#expire(due);
      // What fell due while the broker was down (a close, a square-off), then the next boundary.
      this.#sessionTick();
    } catch (error) {
      this.#feed.stop();
      await this.#closeJournal();
      this.#setState("disconnected", (error as Error).message);
      throw error instanceof BrokerError
        ? error
        : new BrokerError("CONFIG", (error as Error).message, { cause: error });
    }
  }

  close(): Promise<void> {
    this.#closed ??= this.#close().finally(() => {
      this.#closed = undefined;
    });
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    await this.#connecting?.catch(() => undefined);
    this.#stopSessionTimer();
    this.#feed.stop();
    this.#ttl.clear();
    await this.#announcer?.settled();
    const journal = this.#journal;
    if (journal !== undefined) {
      // The last prices, so a reopened account values its positions as this one did.
      if (this.#pricesToWrite.size > 0 || this.#walkMoved() || this.#replayMoved())
        this.#record(emptyChange(this.#isoNow()), journal);
      await journal.compactIfGrown(this.#compactEvery, () => this.#snapshot());
    }
    await this.#closeJournal();
    if (this.#state !== "disconnected") this.#setState("disconnected");
  }

  async #openJournal(): Promise<void> {
    const file = this.#journalFile;
    if (file === undefined) return;
    // The journal is the account: whatever is in memory from an earlier connect is replaced, not added to.
    this.#account.reset();
    this.#market?.reset();
    this.#prices.clear();
    this.#pricesToWrite.clear();
    const opened = await openPaperJournal({
      file,
      account: this.#account,
      settingsName: this.settings.account,
      log: this.#log,
      onError: (error) => this.#reportError(error),
    });
    this.#journal = opened.journal;
    this.#restoreReport = opened.report;
    // Last prices wait here; the feed takes up only the instruments still in use (#watch).
    for (const quote of opened.prices) this.#prices.set(instrumentKey(quote.exchange, quote.symbol), quote);
    if (opened.walk !== undefined && this.#walk !== undefined) {
      this.#walk.resume(opened.walk, (key) => this.#prices.get(key));
    }
    this.#walkWritten = this.#walk?.version ?? -1;
    if (this.#replay !== undefined && this.#account.replay !== undefined)
      this.#replay.resume(this.#account.replay);
    this.#replayWritten = this.#replay?.version ?? -1;
    for (const order of this.#account.orders.values()) {
      if (!isTerminal(order.status)) this.#watch(instrumentKey(order.exchange, order.symbol));
    }
    for (const gtt of this.#account.gtts.values()) {
      if (gtt.status === "active") this.#watch(instrumentKey(gtt.exchange, gtt.symbol));
    }
    for (const position of this.#account.positions.values()) {
      if (position.quantity !== 0) this.#watch(instrumentKey(position.exchange, position.symbol));
    }
    // What was taken from an instrument's quote carries over to that quote only, not to a new one
    // that equals it field for field (same millisecond): fills() tells them apart by identity.
    for (const [key, taken] of this.#account.liquidity) {
      const current = this.#feed.latest(key) ?? this.#prices.get(key);
      if (current !== undefined && sameQuote(current, taken.quote)) taken.quote = current;
    }
    if (opened.report.legacy) {
      // Version 1 did not write what each order holds back; work it out as a placement would.
      for (const order of this.#account.orders.values()) {
        if (isTerminal(order.status)) continue;
        const quote = this.#feed.latest(instrumentKey(order.exchange, order.symbol));
        this.#account.setReserved(order, this.#engine.reservation(order, quote));
      }
    }
    this.#announcedSeq = this.#account.seq;
    this.#announcer = new DurableAnnouncer(
      () => opened.journal.durable(() => this.#closing),
      (event) => {
        this.#announcedSeq = event.seq;
        this.#emit(event);
      },
      viewOf,
    );
  }

  async #closeJournal(): Promise<void> {
    const journal = this.#journal;
    this.#journal = undefined;
    await journal?.close();
  }

  #reportError(error: BrokerError): void {
    this.#log.error(error.message);
    // An unhandled 'error' event would throw out of a timer and take Node-RED down.
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }

  #setState(state: ConnectionState, detail?: string): void {
    this.#state = state;
    this.emit("state", state, detail);
  }

  /** Resolves when operations may run: at once (one shared settled promise) while connected. */
  #ready(): Promise<void> {
    // Not an async function: its promise per call, and the hop to settle it, came with every order.
    if (!this.#closing && this.#state === "connected") return READY;
    return this.#notReady();
  }

  async #notReady(): Promise<void> {
    if (this.#closing) throw new BrokerError("NOT_CONNECTED", "paper broker is closing");
    if (this.#state === "connected") return;
    if (this.#connecting !== undefined) {
      await this.#connecting;
      if (!this.#closing) return;
    }
    throw new BrokerError("NOT_CONNECTED", "paper broker is not connected");
  }

  /** Like #ready, and also waits until every earlier change is durable, so a read shows only what is. */
  async #readable(): Promise<void> {
    await this.#ready();
    await this.#announcer?.settled();
  }

  /**
   * Resolves once every change made so far is written and fsync'd (and its events emitted). A
   * gateway may await this before it acknowledges; concurrent callers share one write.
   */
  async flush(): Promise<void> {
    await this.#announcer?.settled();
    await this.#journal?.flush();
  }

  /** Wipes the account: cash back to starting_cash, no orders, GTTs or positions. `seq`, ids and client_order_ids go on. */
  async resetAccount(): Promise<void> {
    await this.#ready();
    await this.#announcer?.settled();
    this.#account.clear();
    await this.#journal?.compact(this.#snapshot());
    this.#log.info(`paper account "${this.settings.account}" reset to cash ${toRupees(this.#account.cash)}`);
  }

  // #endregion

  // #region orders

  placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    return this.#operate(parseOrderRequest, input, this.#placeParsed);
  }

  // Made once: closures made per call were ~160 bytes of garbage per order (placeOrder's two).
  readonly #placeParsed = (request: OrderRequest): Answer<OrderSnapshot> => this.#place(request);
  readonly #cancelParsed = (orderId: string): Answer<OrderSnapshot> => this.#cancel(orderId);

  /**
   * Checks the input (`parse(input)`), then runs the operation: at once when connected with a journal
   * (its events and answer wait for the fsync anyway, so nothing is emitted inside the call, and
   * operations keep the order they were called in without an await each); otherwise after
   * #ready(), as always. Whatever either step throws becomes the returned promise's rejection.
   */
  #operate<I, P, T>(parse: (input: I) => P, input: I, run: (parsed: P) => Answer<T>): Promise<T> {
    let parsed: P;
    try {
      parsed = parse(input);
      if (!this.#closing && this.#state === "connected") {
        if (this.#journal !== undefined) return Promise.resolve(run(parsed));
        return this.#later(run, parsed);
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#ready().then(() => run(parsed));
  }

  /**
   * Runs `run(parsed)` in a microtask of its own, in call order: queued here, and taken by one
   * function made once, so no closure is made per call to carry `parsed` there. Reactions to one
   * settled promise run in the order they were added, so the k-th reaction takes the k-th entry.
   */
  #later<P, T>(run: (parsed: P) => Answer<T>, parsed: P): Promise<T> {
    this.#laterRuns.push(run as (parsed: unknown) => unknown);
    this.#laterInputs.push(parsed);
    return READY.then(this.#runLater) as Promise<T>;
  }

  readonly #laterRuns: ((parsed: unknown) => unknown)[] = [];
  readonly #laterInputs: unknown[] = [];
  #laterHead = 0;

  readonly #runLater = (): unknown => {
    const at = this.#laterHead;
    const run = this.#laterRuns[at]!;
    const parsed = this.#laterInputs[at];
    if (at + 1 === this.#laterRuns.length) {
      // All taken: emptied by pop() so the arrays keep their stores (emptyList below).
      emptyList(this.#laterRuns);
      emptyList(this.#laterInputs);
      this.#laterHead = 0;
    } else {
      this.#laterInputs[at] = undefined;
      this.#laterHead = at + 1;
    }
    return run(parsed);
  };

  /** A retry of a live order: that order, once everything before it is durable. */
  async #retried(existing: OrderState): Promise<OrderSnapshot> {
    await this.#announcer?.settled();
    return orderView(existing);
  }

  #place(request: OrderRequest): Answer<OrderSnapshot> {
    if (request.client_order_id !== undefined) {
      const existing = this.#account.lookupClientId(request.client_order_id, this.#clock.now());
      if (typeof existing === "string") {
        throw new BrokerError(
          "DUPLICATE_ORDER",
          `client_order_id ${request.client_order_id} was already used today by order ${existing}, which has left the order book's retention; it is not placed again`,
        );
      }
      if (existing !== undefined) return this.#retried(existing);
    }
    const key = instrumentKey(request.exchange, request.symbol);
    this.#checkKnown(key);
    // #mutate written out: its closure, made per order, was garbage on the hottest path.
    const change = this.#takeChange();
    try {
      this.#watch(key);
      const quote = this.#feed.latest(key);
      // The price an order met is the instrument's last price, kept when the feed forgets it.
      if (quote !== undefined && this.#prices.get(key) !== quote) this.#notePrice(key, quote);
      const orderId = this.#account.newOrderId();
      // Not lib/common's snapshotFromRequest: the account's own fields belong in the same literal,
      // so every order gets one V8 shape on the matching hot path.
      const order: OrderState = {
        order_id: orderId,
        client_order_id: request.client_order_id ?? this.#account.clientIdFor(orderId),
        symbol: request.symbol,
        exchange: request.exchange,
        side: request.side,
        quantity: request.quantity,
        order_type: request.order_type,
        product: request.product,
        validity: request.validity,
        status: isStop(request) ? "TRIGGER_PENDING" : "OPEN",
        filled_quantity: 0,
        average_price: 0,
        placed_at: change.now,
        timestamp: change.now,
        reserved: 0,
        filled_value: 0,
        client_id_given: request.client_order_id !== undefined,
      };
      if (request.price !== undefined) order.price = request.price;
      if (request.trigger_price !== undefined) order.trigger_price = request.trigger_price;
      if (request.tag !== undefined) order.tag = request.tag;
      if (hasOrderOptions(request)) copyOrderOptions(request, order);
      this.#engine.admit(change, order, quote);
      this.#scheduleTtl(order);
      if (order.release_at !== undefined) this.#armSessionTimer();
      return this.#commit(change, laterView(order));
    } finally {
      this.#giveBack(change);
    }
  }

  modifyOrder(orderId: string, changesInput: OrderChanges): Promise<OrderSnapshot> {
    return this.#operate(
      (input) => parseOrThrow(OrderChangesSchema, input, "order changes"),
      changesInput,
      (changes) => this.#modify(orderId, changes),
    );
  }

  #modify(orderId: string, changes: OrderChanges): Answer<OrderSnapshot> {
    const order = this.#liveOrder(orderId, "modified");
    const merged = { ...requestOf(order), ...definedOnly(changes) };
    if (changes.order_type !== undefined && !isStop({ order_type: changes.order_type }))
      delete merged.trigger_price;
    if (changes.order_type === "MARKET" || changes.order_type === "SL-M") delete merged.price;
    if (changes.validity !== undefined && changes.validity !== "TTL") delete merged.validity_ttl;
    const request = parseOrThrow(OrderRequest, merged, "order changes");
    if (request.quantity <= order.filled_quantity) {
      throw new BrokerError(
        "VALIDATION",
        `invalid order changes: quantity: must be more than the ${order.filled_quantity} already filled`,
      );
    }
    const becomesStop = isStop(request) && !isStop(order);
    if (becomesStop && order.status === "PARTIALLY_FILLED") {
      throw new BrokerError(
        "VALIDATION",
        "invalid order changes: order_type: a partially filled order cannot become a stop order",
      );
    }
    const status: OrderStatus = becomesStop
      ? "TRIGGER_PENDING"
      : order.status === "TRIGGER_PENDING" && !isStop(request)
        ? "OPEN"
        : order.status;
    const next: OrderState = {
      ...order,
      quantity: request.quantity,
      order_type: request.order_type,
      validity: request.validity,
      status,
    };
    if (request.price === undefined) delete next.price;
    else next.price = request.price;
    if (request.trigger_price === undefined) delete next.trigger_price;
    else next.trigger_price = request.trigger_price;
    copyOrderOptions(request, next);
    const quote = this.#feed.latest(instrumentKey(order.exchange, order.symbol));
    // The same admission as a placement, for the order as it would be: nothing changes if refused.
    const refusal = this.#engine.refusal(next, quote, order);
    if (refusal !== undefined) {
      throw new BrokerError(refusal.code, `order ${orderId} not modified: ${refusal.message}`);
    }
    // Waiting events of this order show its fields as they were; a modify changes those, so they are built now.
    this.#announcer?.buildPending(order);
    return this.#mutate((change) => {
      this.#engine.modify(change, order, next, quote);
      return laterView(order);
    });
  }

  cancelOrder(orderId: string): Promise<OrderSnapshot> {
    return this.#operate(same, orderId, this.#cancelParsed);
  }

  #cancel(orderId: string): Answer<OrderSnapshot> {
    const order = this.#liveOrder(orderId, "cancelled");
    return this.#mutate((change) => {
      this.#engine.cancel(change, order);
      return laterView(order);
    });
  }

  /** BrokerInterface's optional capability: order ids here sort in the order they were made. */
  async lastForgottenOrderId(): Promise<string> {
    await this.#readable();
    return this.#account.lastForgottenOrderId();
  }

  async getOrder(orderId: string): Promise<OrderSnapshot> {
    await this.#readable();
    const order = this.#account.orders.get(orderId);
    if (order === undefined) throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    return orderView(order);
  }

  async getOrderbook(): Promise<OrderSnapshot[]> {
    await this.#readable();
    return Array.from(this.#account.orders.values(), orderView);
  }

  /** A live TTL order gets its expiry; one whose minutes ran out while closed expires at once. */
  #scheduleTtl(order: OrderState, due?: string[]): void {
    if (isTerminal(order.status)) return;
    const deadline = ttlDeadline(order);
    if (deadline === undefined) return;
    if (due !== undefined && deadline <= this.#clock.now()) due.push(order.order_id);
    else this.#ttl.schedule(order.order_id, deadline);
  }

  #expire(orderIds: string[]): void {
    if (this.#closing || this.#state !== "connected") return;
    const now = this.#clock.now();
    const due = orderIds
      .map((id) => this.#account.orders.get(id))
      .filter((order): order is OrderState => {
        if (order === undefined || isTerminal(order.status)) return false;
        const deadline = ttlDeadline(order);
        return deadline !== undefined && deadline <= now;
      });
    if (due.length === 0) return;
    this.#background(
      (change) => {
        for (const order of due) this.#engine.expire(change, order);
      },
      (error: unknown) => this.#reportError(toBrokerError(error)),
    );
  }

  #liveOrder(orderId: string, verb: string): OrderState {
    const order = this.#account.orders.get(orderId);
    if (order === undefined) throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    if (isTerminal(order.status)) {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${order.status}; only open orders can be ${verb}`,
      );
    }
    return order;
  }

  // #endregion

  // #region GTTs

  placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    return this.#operate(
      (gtt) => parseOrThrow(GttRequest, gtt, "GTT"),
      input,
      (request) => this.#placeGtt(request),
    );
  }

  #placeGtt(request: GttRequest): Answer<GttSnapshot> {
    const key = instrumentKey(request.exchange, request.symbol);
    this.#checkKnown(key);
    this.#checkGttMarket(request);
    this.#watch(key);
    const fields = gttFields(request, this.#feed.latest(key)?.last_price);
    return this.#mutate((change) => {
      const gtt: GttState = {
        gtt_id: this.#account.newGttId(),
        ...fields,
        status: "active",
        order_ids: [],
        created_at: change.now,
        updated_at: change.now,
      };
      this.#account.gtts.set(gtt.gtt_id, gtt);
      this.#engine.touchGtt(change, gtt, "GTT_PLACED");
      return gttView(gtt);
    });
  }

  modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    return this.#operate(
      (gtt) => parseOrThrow(GttRequest, gtt, "GTT"),
      input,
      (request) => this.#modifyGtt(gttId, request),
    );
  }

  #modifyGtt(gttId: string, request: GttRequest): Answer<GttSnapshot> {
    const gtt = this.#activeGtt(gttId, "modified");
    const key = instrumentKey(request.exchange, request.symbol);
    this.#checkKnown(key);
    this.#checkGttMarket(request);
    this.#watch(key);
    // Worked out before anything changes: a refusal (no price to tell the direction) leaves the GTT as it was.
    const fields = gttFields(request, this.#feed.latest(key)?.last_price);
    return this.#mutate((change) => {
      applyGttFields(gtt, fields, change.now);
      this.#engine.touchGtt(change, gtt, "GTT_MODIFIED");
      return gttView(gtt);
    });
  }

  /** Under market rules, a GTT on an unknown symbol or off the tick is refused now, not when it fires. */
  #checkGttMarket(request: GttRequest): void {
    const refused = this.#market?.gttRefusal(request);
    if (refused !== undefined) throw new BrokerError(refused.code, `GTT refused: ${refused.message}`);
  }

  deleteGtt(gttId: string): Promise<GttSnapshot> {
    return this.#operate(same, gttId, (id) => this.#deleteGtt(id));
  }

  #deleteGtt(gttId: string): Answer<GttSnapshot> {
    const gtt = this.#activeGtt(gttId, "deleted");
    return this.#mutate((change) => {
      gtt.status = "deleted";
      gtt.updated_at = change.now;
      this.#engine.touchGtt(change, gtt, "GTT_DELETED");
      this.#account.retireGtt(change, gtt);
      return gttView(gtt);
    });
  }

  async getGtts(): Promise<GttSnapshot[]> {
    await this.#readable();
    return Array.from(this.#account.gtts.values(), gttView);
  }

  #activeGtt(gttId: string, verb: string): GttState {
    const gtt = this.#account.gtts.get(gttId);
    if (gtt === undefined) throw new BrokerError("NOT_FOUND", `GTT ${gttId} not found`);
    if (gtt.status !== "active") {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${gtt.status}; only active GTTs can be ${verb}`,
      );
    }
    return gtt;
  }

  #activeGtts(key: InstrumentKey): GttState[] {
    const found: GttState[] = [];
    if (this.#account.gtts.size === 0) return found;
    for (const gtt of this.#account.gtts.values()) {
      if (gtt.status === "active" && gtt.exchange + ":" + gtt.symbol === key) found.push(gtt);
    }
    return found;
  }

  // #endregion

  // #region positions, account, quotes

  async getPositions(): Promise<Position[]> {
    await this.#readable();
    const withCharges = this.#market?.charges === true;
    return Array.from(this.#account.positions.values(), (position) =>
      positionView(
        position,
        this.#lastPaise(position.exchange, position.symbol, position.cost, position.quantity),
        withCharges,
      ),
    );
  }

  async getAccount(): Promise<Account> {
    await this.#readable();
    let realized = 0;
    let unrealized = 0;
    let holdings = 0;
    let charges = 0;
    for (const position of this.#account.positions.values()) {
      const last = this.#lastPaise(position.exchange, position.symbol, position.cost, position.quantity);
      realized += position.realized;
      charges += position.charges ?? 0;
      unrealized += position.quantity * last - position.cost;
      holdings += position.quantity * last;
    }
    const cash = this.#account.cash;
    const account: Account = {
      cash: toRupees(cash),
      realized_pnl: toRupees(realized),
      unrealized_pnl: toRupees(unrealized),
      equity: toRupees(cash + holdings),
      available: toRupees(this.#engine.available()),
    };
    // Gross P&L is realized + unrealized (price moves); net takes the charges off.
    if (this.#market?.charges === true) {
      account.charges = toRupees(charges);
      account.net_pnl = toRupees(realized + unrealized - charges);
    }
    return account;
  }

  /** The last price in paise; with none yet, the position's own average (no unrealized P&L). */
  #lastPaise(exchange: Quote["exchange"], symbol: string, cost: number, quantity: number): number {
    const quote =
      this.#prices.get(instrumentKey(exchange, symbol)) ?? this.#feed.latest(instrumentKey(exchange, symbol));
    if (quote !== undefined) return toPaise(quote.last_price);
    return quantity === 0 ? 0 : cost / quantity;
  }

  async subscribeQuotes(symbols: string[]): Promise<void> {
    const keys = symbols.map((text) => parseInstrument(text));
    for (const { exchange, symbol } of keys) this.#checkKnown(instrumentKey(exchange, symbol));
    await this.#ready();
    for (const { exchange, symbol } of keys) {
      const key = instrumentKey(exchange, symbol);
      this.#subscribed.add(key);
      this.#watch(key);
    }
  }

  async unsubscribeQuotes(symbols: string[]): Promise<void> {
    const keys = symbols.map((text) => parseInstrument(text));
    await this.#ready();
    for (const { exchange, symbol } of keys) {
      const key = instrumentKey(exchange, symbol);
      this.#subscribed.delete(key);
      this.#forgetIfUnused(key);
    }
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
    if (this.#state === "connected" && !this.#closing) this.#onQuote(quote, false);
    else this.#notePrice(instrumentKey(exchange, symbol), quote);
    return quote;
  }

  #onQuote(quote: Quote, fromFeed: boolean): void {
    const key = instrumentKey(quote.exchange, quote.symbol);
    // A walk step for an instrument nobody uses is dropped, and the walk stops; its last price stays.
    if (fromFeed && this.#forgetIfUnused(key)) return;
    this.#notePrice(key, quote);
    const resting = this.#account.resting.get(key);
    const gtts = this.#activeGtts(key);
    if ((resting !== undefined && resting.size > 0) || gtts.length > 0) {
      this.#background((change) => this.#engine.onQuote(change, key, quote, gtts), ignore);
    }
    if (this.#subscribed.has(key)) this.emit("quote", quote);
  }

  #notePrice(key: InstrumentKey, quote: Quote): void {
    this.#prices.set(key, quote);
    if (this.#journal !== undefined) this.#pricesToWrite.set(key, quote);
  }

  #takePrices(): Quote[] {
    if (this.#pricesToWrite.size === 0) return [];
    const prices = Array.from(this.#pricesToWrite.values());
    this.#pricesToWrite.clear();
    return prices;
  }

  #createFeed(): QuoteFeed {
    const onQuote = (quote: Quote) => this.#onQuote(quote, true);
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

  // #region market clock

  /** Runs what the market's clock made due by now, then waits for the next boundary. */
  #sessionTick(): void {
    const market = this.#market;
    if (market === undefined || !market.timed || this.#state !== "connected" || this.#closing) return;
    const now = this.#clock.now();
    this.#background(
      (change) =>
        this.#engine.sessionTick(change, now, (key) => this.#feed.latest(key) ?? this.#prices.get(key)),
      ignore,
    );
    this.#armSessionTimer();
  }

  #armSessionTimer(): void {
    const market = this.#market;
    if (market === undefined || !market.timed || this.#state !== "connected" || this.#closing) return;
    this.#stopSessionTimer();
    const now = this.#clock.now();
    let due = market.nextBoundary(now);
    for (const gtt of this.#account.gtts.values()) {
      if (gtt.status !== "active") continue;
      const expiry = market.gttExpiry(gtt);
      if (expiry !== undefined && (due === undefined || expiry < due)) due = Math.max(expiry, now);
    }
    for (const resting of this.#account.resting.values()) {
      for (const order of resting) {
        const release = order.release_at;
        if (release !== undefined && (due === undefined || release < due)) due = Math.max(release, now);
      }
    }
    if (due === undefined) return;
    // Node's timers hold at most 2^31-1 ms; a longer wait is re-armed when that one fires.
    this.#sessionTimer = this.#clock.setTimeout(
      () => {
        this.#sessionTimer = undefined;
        this.#sessionTick();
      },
      Math.min(due - now, 2_147_483_647),
    );
  }

  #stopSessionTimer(): void {
    if (this.#sessionTimer !== undefined) this.#clock.clearTimeout(this.#sessionTimer);
    this.#sessionTimer = undefined;
  }

  // #endregion

  // #region one operation: change, record, announce

  /**
   * Runs one operation: its changes become one journal record, then its events go out in order —
   * at once without a journal, after the record is fsync'd with one. The result is given only then.
   */
  #mutate<T>(operation: (change: Change) => T): Answer<T> {
    const change = this.#takeChange();
    try {
      return this.#commit(change, operation(change));
    } finally {
      this.#giveBack(change);
    }
  }

  /**
   * The end of an operation that ran on `change` (from #takeChange; given back with #giveBack):
   * its events go out now, or its record is appended and the events and result wait for the fsync.
   */
  #commit<T>(change: Change, result: T): Answer<T> {
    const journal = this.#journal;
    const announcer = this.#announcer;
    if (!change.defer || journal === undefined || announcer === undefined) {
      const events = change.events;
      for (let i = 0; i < events.length; i++) this.#emit(events.at(i));
      return viewOf(result);
    }
    if (!changedAnything(change)) return viewOf(result);
    this.#record(change, journal);
    if (journal.compactionDue(this.#compactEvery))
      void journal.compactIfGrown(this.#compactEvery, () => this.#snapshot());
    return announcer.queue(change.events, result);
  }

  #giveBack(change: Change): void {
    if (change === this.#change) this.#changeInUse = false;
  }

  /** An operation nobody awaits (a quote, a timer): a failure to make it durable goes to `onError`. */
  #background(operation: (change: Change) => unknown, onError: (error: unknown) => void): void {
    const answer = this.#mutate(operation);
    if (answer instanceof Promise) answer.catch(onError);
  }

  /**
   * One Change serves operation after operation: nothing keeps it past #mutate (the record is
   * written and the events copied into the announcer's batch before it returns), and its six lists
   * were a third of the bytes a journaled order allocated. An operation that starts while it is in
   * use (a listener placing an order from inside an emit) gets a fresh one.
   */
  readonly #change: Change = emptyChange("");
  #changeInUse = false;

  #takeChange(): Change {
    // Events wait (deferred) only where a journal's fsync stands between them and the flow.
    const defer = this.#journal !== undefined && this.#announcer !== undefined;
    const now = this.#isoNow();
    if (this.#changeInUse) return emptyChange(now, defer);
    this.#changeInUse = true;
    const change = this.#change;
    emptyList(change.orders);
    emptyList(change.fresh);
    emptyList(change.gtts);
    emptyList(change.positions);
    change.events.clear();
    emptyList(change.ended);
    change.liquidity = undefined;
    change.defer = defer;
    change.now = now;
    return change;
  }

  #emit(event: AccountEvent): void {
    if ("order" in event) this.#emitOrder(event);
    else this.emit("gtt", event);
  }

  /** The engine leaves a terminal order's view to be built here (laterView). */
  #emitOrder(event: OrderEvent): void {
    event.order = viewOf(event.order);
    this.emit("order", event);
  }

  #snapshot() {
    const prices = Array.from(this.#prices.values());
    this.#pricesToWrite.clear();
    const snapshot = this.#account.snapshot(prices, tradingDay(this.#isoNow()));
    if (this.#walk !== undefined) {
      snapshot.walk = this.#walk.position();
      this.#walkWritten = this.#walk.version;
    }
    if (this.#replay !== undefined) {
      snapshot.replay = this.#replay.position();
      this.#replayWritten = this.#replay.version;
    }
    return snapshot;
  }

  /**
   * Appends one operation's record, with the prices and walk position that moved since the last
   * one, written straight into the journal's pending bytes (no record value, no JSON string).
   */
  #record(change: Change, journal: PaperJournal): void {
    let extra: RecordExtra | undefined;
    const walk = this.#walk;
    if (walk !== undefined && walk.version !== this.#walkWritten) {
      (extra ??= {}).walk = walk.position();
      this.#walkWritten = walk.version;
    }
    const replay = this.#replay;
    if (replay !== undefined && replay.version !== this.#replayWritten) {
      (extra ??= {}).replay = replay.position();
      this.#replayWritten = replay.version;
    }
    const prices = this.#takePrices();
    this.#account.writeRecord(journal.beginRecord(), change, prices, extra);
    journal.endRecord();
  }

  #replayMoved(): boolean {
    return this.#replay !== undefined && this.#replay.version !== this.#replayWritten;
  }

  #walkMoved(): boolean {
    return this.#walk !== undefined && this.#walk.version !== this.#walkWritten;
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

  // #endregion
}

/**
 * What an operation gives: its result at once (no journal, or nothing to make durable), or a promise
 * of it once durable. #operate makes it the caller's promise; a result at once saves a promise and
 * the extra turn of adopting one.
 */
type Answer<T> = T | Promise<T>;

/** Settled: what #ready() gives while connected. */
const READY: Promise<void> = Promise.resolve();

function ignore(): void {}

function same<T>(value: T): T {
  return value;
}

/**
 * Whether an operation changed state the journal keeps. Most changes come with an event, but not
 * all: an AMO released at the open with no quote yet only loses its release time.
 */
function changedAnything(change: Change): boolean {
  return (
    change.events.length > 0 ||
    change.orders.length > 0 ||
    change.gtts.length > 0 ||
    change.positions.length > 0 ||
    change.ended.length > 0 ||
    change.liquidity !== undefined
  );
}

/**
 * Empties a list and keeps its backing store for the next operation. Not `length = 0`: V8 then
 * lets the store go, and the next push allocates a new one (the very garbage reuse is for).
 */
function emptyList(list: unknown[]): void {
  while (list.length > 0) list.pop();
}

function emptyChange(now: string, defer = false): Change {
  return { orders: [], fresh: [], gtts: [], positions: [], events: new EventLog(), defer, ended: [], now };
}

function requestOf(order: OrderSnapshot): OrderRequestInput {
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
  if (hasOrderOptions(order)) copyOrderOptions(order, request);
  return request;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
