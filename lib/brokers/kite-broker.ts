import { EventEmitter } from "node:events";
import http from "node:http";
import https from "node:https";
import { KiteConnect } from "kiteconnect";
import type {
  Account,
  ConnectionState,
  Exchange,
  GttEventType,
  GttRequest as GttRequestType,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEventType,
  OrderRequest,
  OrderRequestInput,
  OrderSnapshot,
  Position,
} from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument } from "../protocol/instrument";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { OrderChanges as OrderChangesSchema, isTerminal } from "../protocol/orders";
import { SymbolList } from "../protocol/quotes";
import { canTransition } from "../protocol/state-machine";
import { parseOrThrow } from "../protocol/validate";
import { newClientOrderId } from "../paper/ids";
import { RetentionQueue } from "../paper/retention-queue";
import { SESSION_EXPIRED, isKiteErrorBody, isUnknownOutcome, mapKiteError } from "../kite/errors";
import { InstrumentMap } from "../kite/instruments";
import type { KiteOrder, KitePosition, KiteTrigger } from "../kite/mapping";
import {
  toGttSnapshot,
  toKiteGttParams,
  toKiteOrderParams,
  toOrderSnapshot,
  toPosition,
} from "../kite/mapping";
import { RateLimiter, bucket } from "../kite/rate-limiter";
import { sleep } from "../ws/sleep";
import type { TickerState } from "../kite/ticker-client";
import { KiteTickerClient } from "../kite/ticker-client";
import type { Tick } from "../kite/ticker-parser";
import type { BrokerEvents, BrokerInterface } from "./interface";
import type { KiteSettings } from "./kite-settings";
import type { BrokerLogger } from "./logger";
import { silentLogger } from "./logger";

export interface KiteBrokerDeps {
  log?: BrokerLogger;
}

/** The kiteconnect methods this broker calls, typed loosely: the 5.3.0 types lag the API (KITE.md §11.8). */
interface KiteRest {
  placeOrder(variety: string, params: object): Promise<unknown>;
  modifyOrder(variety: string, orderId: string, params: object): Promise<unknown>;
  cancelOrder(variety: string, orderId: string, params?: object): Promise<unknown>;
  getOrders(): Promise<unknown>;
  getOrderHistory(orderId: string): Promise<unknown>;
  getPositions(): Promise<unknown>;
  getMargins(segment?: string): Promise<unknown>;
  getInstruments(exchange?: string): Promise<unknown>;
  getLTP(instruments: string[]): Promise<unknown>;
  placeGTT(params: object): Promise<unknown>;
  modifyGTT(triggerId: string, params: object): Promise<unknown>;
  deleteGTT(triggerId: string): Promise<unknown>;
  getGTTs(): Promise<unknown>;
  getGTT(triggerId: string): Promise<unknown>;
  setAccessToken(token: string): void;
  requestInstance: { defaults: { httpAgent?: unknown; httpsAgent?: unknown } };
}

/** An order as this broker last knew it, and whether its placement was announced yet. */
interface Tracked {
  order: OrderSnapshot;
  announced: boolean;
}

const VARIETY = "regular";
/** Kite order ids are digits; this also keeps ids from breaking kiteconnect's unescaped URL paths. */
const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** How long a lost placement must stay absent from the order book before it is sent again. */
const ABSENT_GRACE_MS = 300;

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

function copyGtt(gtt: GttSnapshot): GttSnapshot {
  return {
    ...gtt,
    trigger_values: [...gtt.trigger_values],
    orders: gtt.orders.map((o) => ({ ...o })),
    order_ids: [...gtt.order_ids],
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isKiteOrder(value: unknown): value is KiteOrder {
  return (
    isRecord(value) &&
    (typeof value.order_id === "string" || typeof value.order_id === "number") &&
    typeof value.tradingsymbol === "string" &&
    typeof value.transaction_type === "string"
  );
}

function isKiteTrigger(value: unknown): value is KiteTrigger {
  return (
    isRecord(value) &&
    value.id !== undefined &&
    isRecord(value.condition) &&
    Array.isArray(value.condition.trigger_values) &&
    Array.isArray(value.orders)
  );
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
    after.validity !== before.validity
  ) {
    return "ORDER_MODIFIED";
  }
  return undefined;
}

/**
 * BrokerInterface over Zerodha Kite Connect v3. Orders, positions and GTTs go through the official
 * kiteconnect REST client; order updates and quotes come over Kite's ticker WebSocket through our
 * own client (lib/kite/ticker-client.ts, never kiteconnect's KiteTicker: KITE.md §11.1-2).
 *
 * - Our client_order_id travels in Kite's `tag`. A placement whose answer was lost (a
 *   NetworkException) is looked up by tag in the order book before anything is reported; it is sent
 *   again only when absent and still within order_ttl_ms, so it never yields two orders.
 * - Every order update (postback, order history, order book) is a snapshot run through the order
 *   state machine; events are numbered by this broker (Kite has no sequence). An order first seen
 *   past its placement (a fill whose OPEN update never came) gets ORDER_PLACED first.
 * - After a ticker reconnect the order book and the GTTs are reconciled, and what changed is
 *   reported as synthesized events, so no fill is missed.
 * - Kite pushes nothing about GTTs: while any is active they are polled (gtt_poll_ms), and at once
 *   when an order shows up that we did not place.
 * - A TokenException (the daily session ended) fails every later call with AUTH and stops the
 *   ticker until setAccessToken() brings a new token.
 */
export class KiteBroker extends EventEmitter<BrokerEvents> implements BrokerInterface {
  readonly kind = "kite" as const;
  readonly settings: KiteSettings;

  readonly #log: BrokerLogger;
  readonly #kite: KiteRest;
  readonly #agent: http.Agent;
  readonly #ticker: KiteTickerClient;
  readonly #orderLimit: RateLimiter;
  readonly #restLimit: RateLimiter;
  readonly #quoteLimit: RateLimiter;
  readonly #instruments: InstrumentMap;
  readonly #closed = new AbortController();

  readonly #orders = new Map<string, Tracked>();
  readonly #ended = new RetentionQueue<"order">();
  readonly #byClientId = new Map<string, string>();
  readonly #userTags = new Map<string, string>();
  readonly #placing = new Map<string, Promise<OrderSnapshot>>();
  readonly #gtts = new Map<string, GttSnapshot>();
  readonly #gttOfOrder = new Map<string, string>();
  readonly #quoteKeys = new Map<number, InstrumentKey>();
  readonly #loadingInstruments = new Map<string, Promise<void>>();

  #seq = 0;
  #state: ConnectionState = "disconnected";
  #authError: BrokerError | undefined;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #inbound: Promise<void> = Promise.resolve();
  #reconciling: Promise<void> | undefined;
  #polling: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;

  constructor(settings: KiteSettings, deps: KiteBrokerDeps = {}) {
    super();
    this.settings = settings;
    this.#log = deps.log ?? silentLogger;
    this.#kite = new KiteConnect({
      api_key: settings.api_key,
      access_token: settings.access_token,
      root: settings.root,
      timeout: settings.timeout_ms,
    }) as unknown as KiteRest;
    // Our own agent, so close() can destroy every kept-alive socket (the global agent would keep them).
    this.#agent = settings.root.startsWith("https:")
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
    this.#kite.requestInstance.defaults.httpAgent = this.#agent;
    this.#kite.requestInstance.defaults.httpsAgent = this.#agent;

    const limits = settings.rate_limit;
    const wait = limits.max_wait_ms;
    this.#orderLimit = new RateLimiter(
      "order",
      [
        bucket(limits.orders_per_second, Math.max(1, Math.floor(limits.orders_per_second))),
        bucket(limits.orders_per_minute / 60, Math.max(1, Math.floor(limits.orders_per_minute))),
      ],
      wait,
    );
    this.#restLimit = new RateLimiter(
      "request",
      [bucket(limits.requests_per_second, Math.max(1, Math.floor(limits.requests_per_second)))],
      wait,
    );
    this.#quoteLimit = new RateLimiter(
      "quote",
      [bucket(limits.quotes_per_second, Math.max(1, Math.floor(limits.quotes_per_second)))],
      wait,
    );
    this.#instruments = new InstrumentMap(settings.instruments);

    this.#ticker = new KiteTickerClient({
      url: settings.ticker_url,
      apiKey: settings.api_key,
      accessToken: settings.access_token,
      readTimeoutMs: settings.read_timeout_ms,
      backoff: {
        initialMs: settings.reconnect.initial_ms,
        factor: settings.reconnect.factor,
        maxMs: settings.reconnect.max_ms,
      },
    });
    this.#ticker.on("state", (state, reason) => this.#onTickerState(state, reason));
    this.#ticker.on("open", (reconnect) => {
      if (reconnect) void this.#reconcile();
    });
    this.#ticker.on("ticks", (ticks) => this.#onTicks(ticks));
    this.#ticker.on("order", (data) => this.#onPostback(data));
    this.#ticker.on("error", (error) => {
      if (error.code === "AUTH") this.#sessionExpired(error);
      else this.#emitError(error);
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The last event seq issued (orders and GTTs share it). */
  get lastSeq(): number {
    return this.#seq;
  }

  // #region lifecycle

  /**
   * Reads the order book and GTTs (the baseline later updates are compared with; it also proves
   * the session) and starts the ticker. Resolves once the ticker is connected or its first attempt
   * failed (it keeps retrying); rejects AUTH when Kite refuses the session.
   */
  connect(): Promise<void> {
    if (this.#closing !== undefined)
      return Promise.reject(new BrokerError("CLOSED", "Kite broker is closed"));
    if (this.#state === "connected") return Promise.resolve();
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<void> {
    if (this.#authError !== undefined) throw this.#authError;
    this.#setState("connecting");
    try {
      await this.#baseline();
    } catch (error) {
      const err = toBrokerError(error);
      if (this.#authError === undefined) this.#setState("disconnected", err.message);
      throw err;
    }
    if (this.#closing !== undefined) throw new BrokerError("CLOSED", "Kite broker closed while connecting");
    const settled = new Promise<void>((resolve, reject) => {
      const onState = (state: TickerState, reason?: string): void => {
        if (state === "connecting") return;
        this.#ticker.off("state", onState);
        if (state === "disconnected") {
          reject(this.#authError ?? new BrokerError("NOT_CONNECTED", reason ?? "Kite ticker disconnected"));
        } else resolve();
      };
      this.#ticker.on("state", onState);
    });
    this.#ticker.start();
    await settled;
  }

  /** Everything Kite already has, recorded without events: later updates are compared with it. */
  async #baseline(): Promise<void> {
    const book = await this.#fetchBook();
    const now = new Date().toISOString();
    for (const raw of book) {
      const snapshot = this.#toSnapshot(raw, now);
      if (this.#orders.has(snapshot.order_id)) continue;
      this.#orders.set(snapshot.order_id, { order: snapshot, announced: true });
      if (typeof raw.tag === "string" && raw.tag !== "")
        this.#byClientId.set(snapshot.client_order_id, snapshot.order_id);
      if (isTerminal(snapshot.status)) this.#retire(snapshot.order_id);
    }
    this.#ingestGtts(await this.#fetchGtts(), true);
    this.#schedulePoll();
  }

  /** Ends the ticker, the GTT poll and every REST socket; requests still waiting end CLOSED. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed.abort();
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    // The ticker and the REST sockets go first: a connect() still waiting on either ends at once.
    await this.#ticker.close();
    this.#agent.destroy();
    await this.#connecting?.catch(() => undefined);
    await this.#inbound;
    await this.#reconciling;
    await this.#polling?.catch(() => undefined);
    this.#agent.destroy();
    this.#setState("disconnected", "closed");
  }

  /**
   * A new access token after the daily login: clears the AUTH failure and restarts the ticker
   * (which reconciles what happened meanwhile).
   */
  setAccessToken(token: string): void {
    this.#kite.setAccessToken(token);
    this.#ticker.setAccessToken(token);
    const wasExpired = this.#authError !== undefined;
    this.#authError = undefined;
    if (wasExpired && this.#closing === undefined) {
      this.#ticker.start();
      this.#schedulePoll();
    }
  }

  #onTickerState(state: TickerState, reason?: string): void {
    if (this.#authError !== undefined) {
      this.#setState("disconnected", this.#authError.message);
      return;
    }
    if (this.#closing !== undefined && state !== "disconnected") return;
    this.#setState(state, reason);
  }

  #setState(state: ConnectionState, detail?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.emit("state", state, detail);
  }

  #sessionExpired(error: BrokerError): void {
    if (this.#authError !== undefined) return;
    const message = error.message.startsWith(SESSION_EXPIRED)
      ? error.message
      : `${SESSION_EXPIRED} (${error.message})`;
    this.#authError = new BrokerError("AUTH", message, { cause: error });
    this.#log.error(message);
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    void this.#ticker.stop(message);
    this.#setState("disconnected", message);
    this.#emitError(this.#authError);
  }

  #emitError(error: BrokerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else this.#log.warn(error.message);
  }

  // #endregion

  // #region REST plumbing

  /** One kiteconnect call: rate-limited, its rejection (or resolved error body) made a BrokerError. */
  async #rest(
    limiter: RateLimiter,
    what: string,
    call: (kite: KiteRest) => Promise<unknown>,
  ): Promise<unknown> {
    if (this.#closed.signal.aborted)
      throw new BrokerError("CLOSED", `Kite broker is closed; ${what} not sent`);
    if (this.#authError !== undefined) {
      throw new BrokerError("AUTH", `${this.#authError.message}; ${what} not sent`);
    }
    await limiter.acquire(this.#closed.signal);
    let result: unknown;
    try {
      result = await call(this.#kite);
    } catch (error) {
      throw this.#failure(error, what);
    }
    // A 2xx reply with the wrong Content-Type resolves with a DataException body (KITE.md §5).
    if (isKiteErrorBody(result)) throw this.#failure(result, what);
    return result;
  }

  #failure(error: unknown, what: string): BrokerError {
    if (this.#closed.signal.aborted && !(error instanceof BrokerError)) {
      return new BrokerError("CLOSED", `Kite broker closed during the ${what}`, { cause: error });
    }
    const err = mapKiteError(error, what);
    if (err.code === "AUTH") this.#sessionExpired(err);
    return err;
  }

  #usable(what: string): void {
    if (this.#closing !== undefined)
      throw new BrokerError("CLOSED", `Kite broker is closed; ${what} not sent`);
    if (this.#authError !== undefined)
      throw new BrokerError("AUTH", `${this.#authError.message}; ${what} not sent`);
  }

  async #fetchBook(): Promise<KiteOrder[]> {
    const book = await this.#rest(this.#restLimit, "order book request", (k) => k.getOrders());
    if (!Array.isArray(book))
      throw new BrokerError("INTERNAL", "bad reply from Kite: the order book is not a list");
    return book.filter(isKiteOrder);
  }

  async #fetchGtts(): Promise<KiteTrigger[]> {
    const list = await this.#rest(this.#restLimit, "GTT list request", (k) => k.getGTTs());
    if (!Array.isArray(list))
      throw new BrokerError("INTERNAL", "bad reply from Kite: the GTT list is not a list");
    return list.filter(isKiteTrigger);
  }

  // #endregion

  // #region order state

  #toSnapshot(raw: KiteOrder, now: string): OrderSnapshot {
    const id = String(raw.order_id);
    const known = this.#orders.get(id)?.order;
    const tag = typeof raw.tag === "string" ? raw.tag : undefined;
    const userTag = tag === undefined ? undefined : this.#userTags.get(tag);
    const gttId = this.#gttOfOrder.get(id) ?? known?.gtt_id;
    const snapshot = toOrderSnapshot(raw, {
      ...(known === undefined ? {} : { previous: known.status }),
      ...(userTag === undefined ? {} : { userTag }),
      ...(gttId === undefined ? {} : { gttId }),
      now,
    });
    if (known !== undefined) snapshot.placed_at = known.placed_at;
    return snapshot;
  }

  /** Any Kite order dict (postback, history entry, order book row) → state, events, current snapshot. */
  #ingest(raw: KiteOrder, synthesized = false): OrderSnapshot {
    const snapshot = this.#toSnapshot(raw, new Date().toISOString());
    if (typeof raw.tag === "string" && raw.tag !== "" && !this.#byClientId.has(snapshot.client_order_id)) {
      this.#byClientId.set(snapshot.client_order_id, snapshot.order_id);
    }
    return this.#observe(snapshot, synthesized);
  }

  /**
   * Applies a snapshot if it is newer than what we know (the state machine allows the step, fills
   * do not shrink, the time does not go back) and reports what changed. Returns the current state.
   */
  #observe(next: OrderSnapshot, synthesized: boolean): OrderSnapshot {
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
      // An older snapshot (a REST reply overtaken by a postback): what we know is newer.
      return copy(before);
    }
    tracked.order = next;
    if (!tracked.announced) this.#announce(tracked, synthesized);
    else {
      const type = changeEvent(before, next);
      if (type !== undefined) this.#emitOrder(type, next, synthesized);
    }
    if (isTerminal(next.status) && !isTerminal(before.status)) this.#retire(next.order_id);
    return copy(next);
  }

  /**
   * The first report of an order: ORDER_PLACED once it is live; an order first seen already filled
   * or cancelled (its OPEN update never came) gets ORDER_PLACED, as it was placed, then its outcome.
   */
  #announce(tracked: Tracked, synthesized: boolean): void {
    const order = tracked.order;
    if (order.status === "PENDING") return;
    tracked.announced = true;
    if (order.status === "OPEN" || order.status === "TRIGGER_PENDING") {
      this.#emitOrder("ORDER_PLACED", order, synthesized);
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
      this.#emitOrder("ORDER_PLACED", placed, synthesized);
    }
    const type = EVENT_FOR_END[order.status];
    if (type !== undefined) this.#emitOrder(type, order, synthesized);
  }

  #emitOrder(type: OrderEventType, order: OrderSnapshot, synthesized: boolean): void {
    const event = {
      type,
      seq: ++this.#seq,
      order: copy(order),
      timestamp: new Date().toISOString(),
      ...(synthesized ? { synthesized: true } : {}),
    };
    this.emit("order", event);
  }

  #retire(orderId: string): void {
    this.#ended.push(orderId, "order");
    this.#ended.trim(this.settings.retention, (id) => {
      const tracked = this.#orders.get(id);
      this.#orders.delete(id);
      this.#gttOfOrder.delete(id);
      if (tracked !== undefined && this.#byClientId.get(tracked.order.client_order_id) === id) {
        this.#byClientId.delete(tracked.order.client_order_id);
        this.#userTags.delete(tracked.order.client_order_id);
      }
    });
  }

  #current(orderId: string): OrderSnapshot | undefined {
    const tracked = this.#orders.get(orderId);
    return tracked === undefined ? undefined : copy(tracked.order);
  }

  /** Postbacks are handled one at a time, in arrival order. */
  #onPostback(data: unknown): void {
    this.#inbound = this.#inbound
      .then(() => this.#handlePostback(data))
      .catch((error: unknown) => this.#emitError(toBrokerError(error)));
  }

  async #handlePostback(data: unknown): Promise<void> {
    if (!isKiteOrder(data)) {
      this.#emitError(
        new BrokerError("BAD_FRAME", "Kite sent an order update without order_id/tradingsymbol"),
      );
      return;
    }
    const id = String(data.order_id);
    const tag = typeof data.tag === "string" ? data.tag : "";
    const ours = this.#orders.has(id) || this.#byClientId.has(tag) || this.#placing.has(tag);
    if (!ours && this.#hasActiveGtt()) {
      // An order we did not place while GTTs are active: most likely one of them fired. Learn
      // which, so the order carries its gtt_id and GTT_TRIGGERED comes first.
      await this.#pollGtts().catch((error: unknown) =>
        this.#log.warn(`GTT refresh failed: ${toBrokerError(error).message}`),
      );
    }
    if (this.#closing !== undefined) return;
    this.#ingest(data);
  }

  /** After a ticker reconnect: what changed while we were away, as synthesized events. */
  #reconcile(): Promise<void> {
    this.#reconciling ??= (async () => {
      try {
        const book = await this.#fetchBook();
        // Behind the postbacks that arrived meanwhile, so those win over this older view.
        await this.#inbound;
        for (const raw of book) this.#ingest(raw, true);
        await this.#pollGtts();
      } catch (error) {
        const err = toBrokerError(error);
        if (err.code !== "CLOSED") {
          this.#emitError(
            new BrokerError(err.code, `reconciling after the ticker reconnected: ${err.message}`),
          );
        }
      }
    })().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  // #endregion

  // #region orders

  placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    let request: OrderRequest;
    try {
      // A parsed copy: the caller's object is never touched (kiteconnect mutates what it is given).
      request = parseOrderRequest(input);
      this.#usable("order");
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
    const clientId = request.client_order_id ?? newClientOrderId();
    const existing = this.#byClientId.get(clientId);
    if (existing !== undefined) {
      const known = this.#current(existing);
      if (known !== undefined) return Promise.resolve(known);
    }
    const inFlight = this.#placing.get(clientId);
    if (inFlight !== undefined) return inFlight;
    const placing = this.#place(request, clientId).finally(() => this.#placing.delete(clientId));
    this.#placing.set(clientId, placing);
    return placing;
  }

  async #place(request: OrderRequest, clientId: string): Promise<OrderSnapshot> {
    if (request.tag !== undefined) this.#userTags.set(clientId, request.tag);
    const params = toKiteOrderParams(request, clientId, this.settings.market_protection);
    const sendBy = Date.now() + this.settings.order_ttl_ms;
    let orderId: string;
    try {
      orderId = await this.#sendPlacement(params);
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) {
        this.#userTags.delete(clientId);
        throw err;
      }
      this.#log.warn(`placement ${clientId}: ${err.message}; looking it up by tag before reporting`);
      orderId = await this.#settlePlacement(params, clientId, sendBy, err);
    }
    this.#byClientId.set(clientId, orderId);
    // A postback usually tells us first; then the history request (10/s shared with every other
    // read) is not spent.
    const known = this.#current(orderId);
    if (known !== undefined) return known;
    return this.#refreshOrder(orderId, () => this.#pendingSnapshot(request, clientId, orderId));
  }

  async #sendPlacement(params: object): Promise<string> {
    // kiteconnect adds `variety` to what it is given: each attempt gets its own copy.
    const reply = await this.#rest(this.#orderLimit, "order placement", (k) =>
      k.placeOrder(VARIETY, { ...params }),
    );
    const id = isRecord(reply) ? reply.order_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the placement answer has no order_id");
    }
    return String(id);
  }

  /**
   * A placement whose answer was lost: the order may or may not exist. Look for its tag in the
   * order book (twice, ABSENT_GRACE_MS apart, since Kite may list it a moment late); send it again
   * only when it is absent and its time to live lasts, so it never yields two orders.
   */
  async #settlePlacement(
    params: { tag: string },
    clientId: string,
    sendBy: number,
    first: BrokerError,
  ): Promise<string> {
    const window = this.settings.resolve_window_ms;
    const giveUpAt = Date.now() + window;
    let last = first;
    let absentOnce = false;
    while (Date.now() < giveUpAt) {
      if (this.#closed.signal.aborted) {
        throw new BrokerError(
          "CLOSED",
          `broker closed while order ${clientId}'s outcome was unknown (${last.message}); it will show in order events if it was placed`,
        );
      }
      let book: KiteOrder[];
      try {
        book = await this.#fetchBook();
      } catch (error) {
        const err = toBrokerError(error);
        if (!err.retryable) throw err;
        last = err;
        await sleep(Math.min(250, Math.max(0, giveUpAt - Date.now())), this.#closed.signal);
        continue;
      }
      const found = book.find(
        (o) => o.tag === clientId || (Array.isArray(o.tags) && o.tags.includes(clientId)),
      );
      if (found !== undefined) {
        this.#ingest(found);
        return String(found.order_id);
      }
      const viaPostback = this.#byClientId.get(clientId);
      if (viaPostback !== undefined) return viaPostback;
      if (!absentOnce) {
        absentOnce = true;
        await sleep(ABSENT_GRACE_MS, this.#closed.signal);
        continue;
      }
      if (Date.now() > sendBy) {
        throw new BrokerError(
          "EXPIRED",
          `order ${clientId} never reached Kite (${last.message}) and its ${this.settings.order_ttl_ms} ms time to live has passed; not placed`,
        );
      }
      try {
        return await this.#sendPlacement(params);
      } catch (error) {
        const err = toBrokerError(error);
        if (!isUnknownOutcome(err)) throw err;
        last = err;
        absentOnce = false;
      }
    }
    throw new BrokerError(
      "NETWORK",
      `order ${clientId}: outcome still unknown after ${window} ms (${last.message}); it will show in order events if it was placed`,
    );
  }

  #pendingSnapshot(request: OrderRequest, clientId: string, orderId: string): OrderSnapshot {
    const now = new Date().toISOString();
    const snapshot: OrderSnapshot = {
      order_id: orderId,
      client_order_id: clientId,
      symbol: request.symbol,
      exchange: request.exchange,
      side: request.side,
      quantity: request.quantity,
      order_type: request.order_type,
      product: request.product,
      validity: request.validity,
      status: "PENDING",
      filled_quantity: 0,
      average_price: 0,
      placed_at: now,
      timestamp: now,
    };
    if (request.price !== undefined) snapshot.price = request.price;
    if (request.trigger_price !== undefined) snapshot.trigger_price = request.trigger_price;
    if (request.tag !== undefined) snapshot.tag = request.tag;
    return snapshot;
  }

  /**
   * The order's latest state from its history (the last entry; the earlier ones are older than
   * what postbacks may already have told us). When that read fails, what we know, or `fallback`.
   */
  async #refreshOrder(orderId: string, fallback?: () => OrderSnapshot): Promise<OrderSnapshot> {
    try {
      const history = await this.#rest(this.#restLimit, "order history request", (k) =>
        k.getOrderHistory(orderId),
      );
      const entries = Array.isArray(history) ? history.filter(isKiteOrder) : [];
      const latest = entries[entries.length - 1];
      if (latest !== undefined) return this.#ingest(latest);
    } catch (error) {
      const err = toBrokerError(error);
      if (fallback === undefined) throw err;
      this.#log.warn(`order ${orderId}: ${err.message}; answering with what is known`);
    }
    const known = this.#current(orderId);
    if (known !== undefined) return known;
    if (fallback !== undefined) return this.#observe(fallback(), false);
    throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
  }

  #checkOrderId(orderId: string): void {
    if (typeof orderId !== "string" || !ORDER_ID.test(orderId)) {
      throw new BrokerError("NOT_FOUND", `order ${String(orderId)} not found (not a Kite order id)`);
    }
  }

  #refuseIfEnded(orderId: string, verb: string): void {
    const known = this.#orders.get(orderId)?.order;
    if (known !== undefined && isTerminal(known.status)) {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${known.status}; only open orders can be ${verb}`,
      );
    }
  }

  /**
   * Kite answers a change to a missing or finished order with a generic refusal; the order book
   * says which it was (NOT_FOUND, ORDER_TERMINAL), or the refusal stands.
   */
  async #explain(orderId: string, error: BrokerError, verb: string): Promise<BrokerError> {
    if (error.code !== "VALIDATION" && error.code !== "ORDER_REJECTED" && error.code !== "INTERNAL")
      return error;
    let book: KiteOrder[];
    try {
      book = await this.#fetchBook();
    } catch {
      return error;
    }
    const raw = book.find((o) => String(o.order_id) === orderId);
    if (raw === undefined) return new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    const order = this.#ingest(raw);
    if (isTerminal(order.status)) {
      return new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${order.status}; only open orders can be ${verb}`,
      );
    }
    return error;
  }

  async modifyOrder(orderId: string, changesInput: OrderChanges): Promise<OrderSnapshot> {
    const changes = parseOrThrow(OrderChangesSchema, changesInput, "order changes");
    this.#usable("order change");
    this.#checkOrderId(orderId);
    this.#refuseIfEnded(orderId, "modified");
    const params: Record<string, unknown> = {};
    for (const key of ["quantity", "price", "trigger_price", "order_type", "validity"] as const) {
      if (changes[key] !== undefined) params[key] = changes[key];
    }
    if (changes.order_type === "MARKET" || changes.order_type === "SL-M") {
      params.market_protection = this.settings.market_protection;
    }
    try {
      await this.#rest(this.#orderLimit, "order change", (k) => k.modifyOrder(VARIETY, orderId, params));
    } catch (error) {
      throw await this.#explain(orderId, toBrokerError(error), "modified");
    }
    return this.#refreshOrder(orderId);
  }

  async cancelOrder(orderId: string): Promise<OrderSnapshot> {
    this.#usable("cancellation");
    this.#checkOrderId(orderId);
    this.#refuseIfEnded(orderId, "cancelled");
    try {
      await this.#rest(this.#orderLimit, "cancellation", (k) => k.cancelOrder(VARIETY, orderId));
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) throw await this.#explain(orderId, err, "cancelled");
      // Cancelling twice is harmless; asking first tells whether the first one landed.
      const current = await this.#refreshOrder(orderId);
      if (isTerminal(current.status)) return current;
      try {
        await this.#rest(this.#orderLimit, "cancellation", (k) => k.cancelOrder(VARIETY, orderId));
      } catch (again) {
        throw await this.#explain(orderId, toBrokerError(again), "cancelled");
      }
    }
    return this.#refreshOrder(orderId);
  }

  async getOrder(orderId: string): Promise<OrderSnapshot> {
    this.#usable("order request");
    this.#checkOrderId(orderId);
    try {
      return await this.#refreshOrder(orderId);
    } catch (error) {
      const err = await this.#explain(orderId, toBrokerError(error), "read");
      if (err.code === "ORDER_TERMINAL") {
        const known = this.#current(orderId);
        if (known !== undefined) return known;
      }
      throw err;
    }
  }

  async getOrderbook(): Promise<OrderSnapshot[]> {
    this.#usable("order book request");
    const book = await this.#fetchBook();
    return book.map((raw) => this.#ingest(raw));
  }

  async getPositions(): Promise<Position[]> {
    this.#usable("positions request");
    const reply = await this.#rest(this.#restLimit, "positions request", (k) => k.getPositions());
    const net = isRecord(reply) && Array.isArray(reply.net) ? (reply.net as unknown[]) : [];
    return net
      .filter((p): p is KitePosition => isRecord(p) && typeof p.tradingsymbol === "string")
      .map(toPosition);
  }

  async getAccount(): Promise<Account> {
    this.#usable("margins request");
    const [margins, positions] = await Promise.all([
      this.#rest(this.#restLimit, "margins request", (k) => k.getMargins("equity")),
      this.getPositions(),
    ]);
    const m = isRecord(margins) ? margins : {};
    const available = isRecord(m.available) ? m.available : {};
    const cash = Number(available.live_balance ?? available.cash ?? m.net ?? 0) || 0;
    const realized = positions.reduce((sum, p) => sum + p.realized_pnl, 0);
    const unrealized = positions.reduce((sum, p) => sum + p.unrealized_pnl, 0);
    return {
      cash,
      realized_pnl: Math.round(realized * 100) / 100,
      unrealized_pnl: Math.round(unrealized * 100) / 100,
      equity: Number(m.net ?? cash) || 0,
    };
  }

  // #endregion

  // #region GTTs

  async placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    this.#usable("GTT placement");
    const last = request.last_price ?? (await this.#lastPrice(request.exchange, request.symbol));
    const params = toKiteGttParams(request, last);
    const reply = await this.#rest(this.#restLimit, "GTT placement", (k) => k.placeGTT(params));
    const id = isRecord(reply) ? reply.trigger_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the GTT placement answer has no trigger_id");
    }
    const gtt = await this.#readGtt(String(id), () =>
      this.#gttFromRequest(String(id), request, last, "active"),
    );
    this.#gtts.set(gtt.gtt_id, gtt);
    this.#emitGtt("GTT_PLACED", gtt);
    this.#schedulePoll();
    return copyGtt(gtt);
  }

  async modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    this.#usable("GTT change");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "modified");
    const last = request.last_price ?? (await this.#lastPrice(request.exchange, request.symbol));
    const params = toKiteGttParams(request, last);
    try {
      await this.#rest(this.#restLimit, "GTT change", (k) => k.modifyGTT(gttId, params));
    } catch (error) {
      throw await this.#explainGtt(gttId, toBrokerError(error), "modified");
    }
    const gtt = await this.#readGtt(gttId, () => this.#gttFromRequest(gttId, request, last, "active"));
    this.#gtts.set(gtt.gtt_id, gtt);
    this.#emitGtt("GTT_MODIFIED", gtt);
    return copyGtt(gtt);
  }

  async deleteGtt(gttId: string): Promise<GttSnapshot> {
    this.#usable("GTT deletion");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "deleted");
    try {
      await this.#rest(this.#restLimit, "GTT deletion", (k) => k.deleteGTT(gttId));
    } catch (error) {
      throw await this.#explainGtt(gttId, toBrokerError(error), "deleted");
    }
    const now = new Date().toISOString();
    const known = this.#gtts.get(gttId);
    let gtt: GttSnapshot;
    try {
      gtt = await this.#readGtt(gttId);
    } catch (error) {
      if (known === undefined) throw error;
      gtt = copyGtt(known);
    }
    if (gtt.status === "active") gtt = { ...gtt, status: "deleted", updated_at: now };
    this.#gtts.set(gttId, gtt);
    this.#emitGtt("GTT_DELETED", gtt);
    return copyGtt(gtt);
  }

  async getGtts(): Promise<GttSnapshot[]> {
    this.#usable("GTT list request");
    const list = await this.#fetchGtts();
    this.#ingestGtts(list, false);
    return list.map((t) =>
      copyGtt(this.#gtts.get(String(t.id)) ?? toGttSnapshot(t, new Date().toISOString())),
    );
  }

  #checkGttId(gttId: string): void {
    if (typeof gttId !== "string" || !/^[0-9A-Za-z_-]{1,64}$/.test(gttId)) {
      throw new BrokerError("NOT_FOUND", `GTT ${String(gttId)} not found (not a Kite trigger id)`);
    }
  }

  #refuseIfGttEnded(gttId: string, verb: string): void {
    const known = this.#gtts.get(gttId);
    if (known !== undefined && known.status !== "active") {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${known.status}; only active GTTs can be ${verb}`,
      );
    }
  }

  async #explainGtt(gttId: string, error: BrokerError, verb: string): Promise<BrokerError> {
    if (error.code !== "VALIDATION" && error.code !== "ORDER_REJECTED" && error.code !== "INTERNAL")
      return error;
    let gtt: GttSnapshot;
    try {
      gtt = await this.#readGtt(gttId);
    } catch (lookup) {
      const err = toBrokerError(lookup);
      if (err.retryable || err.code === "AUTH" || err.code === "CLOSED") return error;
      return new BrokerError("NOT_FOUND", `GTT ${gttId} not found`);
    }
    if (gtt.status !== "active") {
      this.#gtts.set(gttId, gtt);
      return new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${gtt.status}; only active GTTs can be ${verb}`,
      );
    }
    return error;
  }

  async #readGtt(gttId: string, fallback?: () => GttSnapshot): Promise<GttSnapshot> {
    try {
      const reply = await this.#rest(this.#restLimit, "GTT request", (k) => k.getGTT(gttId));
      if (!isKiteTrigger(reply)) throw new BrokerError("INTERNAL", "bad reply from Kite: not a GTT");
      this.#learnGttOrders(reply);
      return toGttSnapshot(reply, new Date().toISOString());
    } catch (error) {
      if (fallback === undefined) throw error;
      this.#log.warn(`GTT ${gttId}: ${toBrokerError(error).message}; answering with what is known`);
      return fallback();
    }
  }

  #gttFromRequest(gttId: string, request: GttRequestType, last: number, status: "active"): GttSnapshot {
    const now = new Date().toISOString();
    return {
      gtt_id: gttId,
      type: request.type,
      symbol: request.symbol,
      exchange: request.exchange,
      last_price: last,
      trigger_values: [...request.trigger_values],
      orders: request.orders.map((o) => ({ ...o })),
      status,
      order_ids: [],
      created_at: now,
      updated_at: now,
    };
  }

  async #lastPrice(exchange: Exchange, symbol: string): Promise<number> {
    const key = `${exchange}:${symbol}`;
    const reply = await this.#rest(this.#quoteLimit, "last price request", (k) => k.getLTP([key]));
    const entry = isRecord(reply) ? reply[key] : undefined;
    const last = isRecord(entry) ? Number(entry.last_price) : Number.NaN;
    if (!(last > 0)) {
      throw new BrokerError("NO_QUOTE", `no last price for ${key} from Kite: give last_price with the GTT`);
    }
    return last;
  }

  #learnGttOrders(trigger: KiteTrigger): void {
    const gttId = String(trigger.id);
    for (const order of trigger.orders) {
      const id = order.result?.order_result?.order_id;
      if (id === undefined || id === null || String(id) === "") continue;
      this.#gttOfOrder.set(String(id), gttId);
      const tracked = this.#orders.get(String(id));
      if (tracked !== undefined && tracked.order.gtt_id === undefined) {
        tracked.order = { ...tracked.order, gtt_id: gttId };
      }
    }
  }

  /** Records GTTs as listed; unless `silent`, reports what changed since we last looked. */
  #ingestGtts(list: KiteTrigger[], silent: boolean): void {
    const now = new Date().toISOString();
    for (const trigger of list) {
      this.#learnGttOrders(trigger);
      const gtt = toGttSnapshot(trigger, now);
      const known = this.#gtts.get(gtt.gtt_id);
      this.#gtts.set(gtt.gtt_id, gtt);
      if (silent) continue;
      let type: GttEventType | undefined;
      if (known === undefined) type = gtt.status === "active" ? "GTT_PLACED" : undefined;
      else if (known.status !== gtt.status) {
        if (gtt.status === "triggered") type = "GTT_TRIGGERED";
        else if (gtt.status === "deleted") type = "GTT_DELETED";
      }
      if (type !== undefined) this.#emitGtt(type, gtt);
    }
  }

  #emitGtt(type: GttEventType, gtt: GttSnapshot): void {
    this.emit("gtt", { type, seq: ++this.#seq, gtt: copyGtt(gtt), timestamp: new Date().toISOString() });
  }

  #hasActiveGtt(): boolean {
    for (const gtt of this.#gtts.values()) if (gtt.status === "active") return true;
    return false;
  }

  #pollGtts(): Promise<void> {
    this.#polling ??= (async () => {
      this.#ingestGtts(await this.#fetchGtts(), false);
    })().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Kite pushes nothing about GTTs: while one is active, look every gtt_poll_ms. */
  #schedulePoll(): void {
    if (this.#pollTimer !== undefined || this.#closing !== undefined || this.#authError !== undefined) return;
    if (!this.#hasActiveGtt()) return;
    this.#pollTimer = setTimeout(() => {
      void this.#pollGtts()
        .catch((error: unknown) => {
          const err = toBrokerError(error);
          if (err.code !== "CLOSED" && err.code !== "AUTH") this.#log.warn(`GTT poll failed: ${err.message}`);
        })
        .finally(() => {
          this.#pollTimer = undefined;
          this.#schedulePoll();
        });
    }, this.settings.gtt_poll_ms);
  }

  // #endregion

  // #region quotes

  async subscribeQuotes(symbols: string[]): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    this.#usable("quote subscription");
    const keys = list.map((text) => parseInstrument(text));
    const missing = new Set<string>();
    for (const { exchange, symbol } of keys) {
      if (
        this.#instruments.tokenOf(exchange, symbol) === undefined &&
        !this.#instruments.isLoaded(exchange)
      ) {
        missing.add(exchange);
      }
    }
    await Promise.all(Array.from(missing, (exchange) => this.#loadInstruments(exchange)));
    const tokens: number[] = [];
    const unknown: string[] = [];
    for (const { exchange, symbol } of keys) {
      const token = this.#instruments.tokenOf(exchange, symbol);
      if (token === undefined) unknown.push(`${exchange}:${symbol}`);
      else tokens.push(token);
    }
    if (unknown.length > 0) {
      throw new BrokerError("VALIDATION", `symbols: ${unknown.join(", ")} not in Kite's instrument list`);
    }
    this.#ticker.subscribe(tokens, this.settings.ticker_mode);
    keys.forEach(({ exchange, symbol }, i) =>
      this.#quoteKeys.set(tokens[i]!, instrumentKey(exchange, symbol)),
    );
  }

  async unsubscribeQuotes(symbols: string[]): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    const tokens: number[] = [];
    for (const text of list) {
      const { exchange, symbol } = parseInstrument(text);
      const token = this.#instruments.tokenOf(exchange, symbol);
      if (token === undefined) continue;
      this.#quoteKeys.delete(token);
      tokens.push(token);
    }
    this.#ticker.unsubscribe(tokens);
    return Promise.resolve();
  }

  #loadInstruments(exchange: string): Promise<void> {
    let loading = this.#loadingInstruments.get(exchange);
    if (loading === undefined) {
      loading = this.#rest(this.#restLimit, "instrument list request", (k) => k.getInstruments(exchange))
        .then((rows) => {
          const added = this.#instruments.load(exchange, rows);
          this.#log.info(`Kite instrument list for ${exchange}: ${added} instruments`);
        })
        .finally(() => this.#loadingInstruments.delete(exchange));
      this.#loadingInstruments.set(exchange, loading);
    }
    return loading;
  }

  #onTicks(ticks: Tick[]): void {
    const now = new Date().toISOString();
    for (const tick of ticks) {
      const key = this.#quoteKeys.get(tick.instrument_token);
      if (key === undefined || !(tick.last_price > 0)) continue;
      const colon = key.indexOf(":");
      const quote: {
        symbol: string;
        exchange: Exchange;
        last_price: number;
        bid?: number;
        ask?: number;
        volume?: number;
        timestamp: string;
      } = {
        symbol: key.slice(colon + 1),
        exchange: key.slice(0, colon) as Exchange,
        last_price: tick.last_price,
        timestamp:
          tick.exchange_timestamp !== undefined ? new Date(tick.exchange_timestamp).toISOString() : now,
      };
      const bid = tick.depth?.buy[0]?.price;
      const ask = tick.depth?.sell[0]?.price;
      if (bid !== undefined && bid > 0) quote.bid = bid;
      if (ask !== undefined && ask > 0) quote.ask = ask;
      if (tick.volume_traded !== undefined) quote.volume = tick.volume_traded;
      this.emit("quote", quote);
    }
  }

  // #endregion
}
