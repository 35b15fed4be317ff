import { EventEmitter } from "node:events";
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
  Trade,
  Variety,
} from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey, parseInstrument } from "../protocol/instrument";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { OrderChanges as OrderChangesSchema, isTerminal } from "../protocol/orders";
import { SymbolList } from "../protocol/quotes";
import { parseOrThrow } from "../protocol/validate";
import { newClientOrderId } from "../common/ids";
import { SESSION_EXPIRED, isUnknownOutcome } from "../kite/errors";
import { GttTracker, copyGtt } from "../kite/gtt-tracker";
import type { InstrumentInfo } from "../kite/instruments";
import { KiteInstruments } from "../kite/kite-instruments";
import type { Candle } from "../kite/candles";
import { CANDLE_SPAN_DAYS, CandleInterval, kiteDateTime, toCandles } from "../kite/candles";
import type { KiteOrder, KitePosition } from "../kite/mapping";
import { kiteVariety, toGttSnapshot, toKiteGttParams, toKiteOrderParams, toPosition } from "../kite/mapping";
import { OrderTracker } from "../kite/order-tracker";
import type { FillToReport } from "../kite/trade-reporter";
import { TradeReporter, toTrade } from "../kite/trade-reporter";
import { registerLiveBroker, unregisterLiveBroker, liveBrokers } from "../kite/live-brokers";
import { KiteRestClient, isKiteOrder, isKiteTrigger } from "../kite/rest-client";
import type { KiteSession } from "../kite/session";
import { toKiteSession } from "../kite/session";
import { sleep } from "../common/sleep";
import type { TickerState } from "../kite/ticker-client";
import { KiteTickerClient } from "../kite/ticker-client";
import type { Tick } from "../kite/ticker-parser";
import type { BrokerEvents, BrokerInterface } from "./interface";
import type { KiteSettings } from "./kite-settings";
import type { BrokerLogger } from "./logger";
import { silentLogger } from "./logger";
import { isRecord } from "../common/is-record";
import { settlePlacement } from "../common/unknown-outcome";

export interface KiteBrokerDeps {
  log?: BrokerLogger;
}

/** What Kite's modify takes (and so what a modification may change). */
const CHANGEABLE = [
  "quantity",
  "price",
  "trigger_price",
  "order_type",
  "validity",
  "disclosed_quantity",
] as const;
/** Kite order ids are digits; this also keeps ids from breaking kiteconnect's unescaped URL paths. */
const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** How long a lost placement must stay absent from the order book before it is sent again. */
const ABSENT_GRACE_MS = 300;

/**
 * BrokerInterface over Zerodha Kite Connect v3, a facade over five parts in lib/kite/:
 * KiteRestClient (kiteconnect behind Kite's rate limits, errors mapped, the session gate),
 * OrderTracker (every order update through the state machine, events once and in order),
 * GttTracker (GTT news, polled, once per change), KiteInstruments (the day's instrument lists:
 * tokens, lot and tick checks, lookup) and KiteTickerClient (our own ticker client, never
 * kiteconnect's KiteTicker: KITE.md §11.1-2).
 *
 * - Our client_order_id travels in Kite's `tag`. A placement whose answer does not prove Kite
 *   refused it (no answer, 5xx, an HTML page) is looked up by tag in the order book before
 *   anything is reported; it is sent again only when absent and still within order_ttl_ms, so it
 *   never yields two orders. Modifications and cancellations are settled likewise, by reading the
 *   order.
 * - After a ticker reconnect the order book and the GTTs are reconciled, and what changed is
 *   reported as synthesized events, so no fill is missed.
 * - A TokenException (the daily session ended) fails every later call with AUTH and one
 *   documented message (SESSION_EXPIRED), stops the ticker and emits `session` until
 *   setAccessToken() or login() brings a new token. A ticker 403 alone is confirmed with one REST
 *   call first.
 */
export class KiteBroker extends EventEmitter<BrokerEvents> implements BrokerInterface {
  readonly kind = "kite" as const;
  readonly settings: KiteSettings;

  readonly #log: BrokerLogger;
  readonly #rest: KiteRestClient;
  readonly #ticker: KiteTickerClient;
  readonly #orders: OrderTracker;
  readonly #gtts: GttTracker;
  readonly #instruments: KiteInstruments;
  readonly #closed = new AbortController();
  readonly #placing = new Map<string, Promise<OrderSnapshot>>();
  readonly #quoteKeys = new Map<number, InstrumentKey>();
  readonly #trades: TradeReporter;
  /** Events waiting behind a fill whose trades are being read, so seq order stays event order. */
  readonly #outbox: Outgoing[] = [];
  #draining: Promise<void> | undefined;

  #seq = 0;
  #state: ConnectionState = "disconnected";
  #session: KiteSession | undefined;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #inbound: Promise<void> = Promise.resolve();
  #reconciling: Promise<void> | undefined;
  #polling: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #confirming: Promise<void> | undefined;
  /** Kite's order book and GTTs have been read once (connect got that far). */
  #baselined = false;

  constructor(settings: KiteSettings, deps: KiteBrokerDeps = {}) {
    super();
    this.settings = settings;
    this.#log = deps.log ?? silentLogger;
    this.#rest = new KiteRestClient(settings, this.#closed.signal, (detail) => this.#sessionExpired(detail));
    this.#gtts = new GttTracker(
      (type, gtt) => this.#emitGtt(type, gtt),
      (orderId, gttId) => this.#orders.setGtt(orderId, gttId),
    );
    this.#trades = new TradeReporter(
      {
        orderTrades: (orderId) =>
          this.#rest.call("request", "order trades request", (k) => k.getOrderTrades(orderId)),
        dayTrades: () => this.#rest.call("request", "trades request", (k) => k.getTrades()),
      },
      this.#closed.signal,
      this.#log,
    );
    this.#orders = new OrderTracker({
      retention: settings.retention,
      emit: (type, order, synthesized, previousFilled) =>
        this.#emitOrder(type, order, synthesized, previousFilled),
      gttOf: (orderId) => this.#gtts.gttOfOrder(orderId),
      onForget: (orderId) => {
        this.#gtts.forgetOrder(orderId);
        this.#trades.forget(orderId);
      },
    });
    this.#instruments = new KiteInstruments({
      fixed: settings.instruments,
      cacheDir: settings.cache_dir,
      rest: this.#rest,
      log: this.#log,
    });

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
      if (error.code === "AUTH") this.#confirmSession(error);
      else this.#emitError(error);
    });
    registerLiveBroker(settings.api_key, this);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The last event seq issued (orders and GTTs share it). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Who is logged in and since when, once known (after login() or a profile read at connect). */
  get session(): KiteSession | undefined {
    return this.#session === undefined ? undefined : { ...this.#session };
  }

  /** True while Kite refuses the access token: only a new login helps. */
  get sessionExpired(): boolean {
    return this.#rest.expired !== undefined;
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
    const expired = this.#rest.expired;
    if (expired !== undefined) throw expired;
    this.#setState("connecting");
    try {
      await this.#baseline();
    } catch (error) {
      const err = toBrokerError(error);
      if (this.#rest.expired === undefined) this.#setState("disconnected", err.message);
      throw err;
    }
    if (this.#closing !== undefined) throw new BrokerError("CLOSED", "Kite broker closed while connecting");
    const settled = new Promise<void>((resolve, reject) => {
      const onState = (state: TickerState, reason?: string): void => {
        if (state === "connecting") return;
        this.#ticker.off("state", onState);
        if (state !== "disconnected") {
          resolve();
          return;
        }
        const fail = (): void =>
          reject(
            this.#rest.expired ?? new BrokerError("NOT_CONNECTED", reason ?? "Kite ticker disconnected"),
          );
        // A 403 is being checked with Kite's REST API: the answer decides.
        if (this.#confirming !== undefined) {
          void this.#confirming.then(() => (this.#rest.expired === undefined ? resolve() : fail()));
        } else fail();
      };
      this.#ticker.on("state", onState);
    });
    this.#ticker.start();
    await settled;
  }

  /** Everything Kite already has, recorded without events: later updates are compared with it. */
  async #baseline(): Promise<void> {
    this.#orders.baseline(await this.#rest.fetchBook());
    // Whose session this is, for the editor dialog (Kite's profile has no login time; a login has).
    if (this.#session === undefined) {
      const profile = await this.#rest.call("request", "profile request", (k) => k.getProfile());
      this.#session = toKiteSession(profile);
    }
    this.#gtts.ingest(await this.#rest.fetchGtts(), true);
    this.#baselined = true;
    this.#schedulePoll();
  }

  /** Ends the ticker, the GTT poll and every REST socket; requests still waiting end CLOSED. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    unregisterLiveBroker(this.settings.api_key, this);
    this.#closed.abort();
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    // The ticker and the REST sockets go first: a connect() still waiting on either ends at once.
    await this.#ticker.close();
    this.#rest.destroy();
    await this.#connecting?.catch(() => undefined);
    await this.#inbound;
    await this.#reconciling;
    await this.#polling?.catch(() => undefined);
    await this.#confirming;
    // Events owed go out (without trades now: the REST client is closed).
    await this.#draining;
    this.#rest.destroy();
    this.#setState("disconnected", "closed");
  }

  /**
   * A new access token (after the daily login), switched over without a redeploy: REST uses it
   * at once, the ticker reconnects with it (and reconciles what happened meanwhile).
   */
  setAccessToken(token: string, session?: KiteSession): void {
    const wasExpired = this.#rest.expired !== undefined;
    this.#rest.setAccessToken(token);
    this.#ticker.setAccessToken(token);
    if (session !== undefined) this.#session = { ...session };
    if (this.#closing !== undefined) return;
    this.emit("session", {
      type: "SESSION_STARTED",
      timestamp: new Date().toISOString(),
      ...this.#sessionFields(),
    });
    if (!this.#baselined) {
      // Kite refused the old token before we ever connected: connect now, as a deploy would.
      this.connect().catch((error: unknown) =>
        this.#log.warn(`connecting with the new Kite session: ${toBrokerError(error).message}`),
      );
    } else if (wasExpired) {
      this.#ticker.start();
      this.#schedulePoll();
    } else this.#ticker.redial();
  }

  /**
   * Who a login kept from before a restart belongs to (user, login time), for the editor dialog;
   * not a new session, so nothing is announced. What connect() reads from Kite's profile yields to it.
   */
  restoreSession(session: KiteSession): void {
    this.#session = { ...session };
  }

  /**
   * The second half of Kite's login: trades the one-time request_token from the redirect for an
   * access token (kiteconnect's generateSession, checksum made with the api secret), and switches
   * this broker to it. Resolves the session (never the token).
   */
  async login(
    requestToken: string,
    apiSecret: string,
  ): Promise<{ session: KiteSession; accessToken: string }> {
    if (!/^[A-Za-z0-9]{1,128}$/.test(requestToken)) {
      throw new BrokerError("VALIDATION", "request_token: must be 1 to 128 letters or digits");
    }
    if (apiSecret === "")
      throw new BrokerError("CONFIG", "api secret: is required to log in (broker config credentials)");
    const reply = await this.#rest.unauthenticated("session exchange", (k) =>
      k.generateSession(requestToken, apiSecret),
    );
    const accessToken = isRecord(reply) && typeof reply.access_token === "string" ? reply.access_token : "";
    if (accessToken === "")
      throw new BrokerError("INTERNAL", "bad reply from Kite: the session has no access_token");
    const session = toKiteSession(reply);
    // Every broker on this account switches, this one included.
    for (const broker of liveBrokers(this.settings.api_key)) broker.setAccessToken(accessToken, session);
    if (!liveBrokers(this.settings.api_key).includes(this)) this.setAccessToken(accessToken, session);
    return { session, accessToken };
  }

  /**
   * Kite's login page for this app: the api key, and `state` carried back to the redirect URL
   * through Kite's redirect_params (so the callback can tell its own logins from forged ones).
   */
  loginUrl(state: string): string {
    const url = new URL(this.settings.login_url);
    url.searchParams.set("v", "3");
    url.searchParams.set("api_key", this.settings.api_key);
    url.searchParams.set("redirect_params", new URLSearchParams({ state }).toString());
    return url.toString();
  }

  #sessionFields(): { user_id?: string; user_name?: string; login_time?: string } {
    const s = this.#session;
    if (s === undefined) return {};
    return { user_id: s.user_id, user_name: s.user_name, login_time: s.login_time };
  }

  #onTickerState(state: TickerState, reason?: string): void {
    const expired = this.#rest.expired;
    if (expired !== undefined) {
      this.#setState("disconnected", expired.message);
      return;
    }
    if (this.#closing !== undefined && state !== "disconnected") return;
    // A ticker 403 under check: not down yet, and not expired unless REST agrees.
    if (this.#confirming !== undefined && state === "disconnected") {
      this.#setState("reconnecting", `${reason ?? "ticker refused"}; checking the session with Kite`);
      return;
    }
    this.#setState(state, reason);
  }

  #setState(state: ConnectionState, detail?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.emit("state", state, detail);
  }

  /**
   * The ticker refused the token (HTTP 403). A 403 alone does not prove the session is over (the
   * ticker has its own limits, three connections per key): one REST call decides. If Kite's REST
   * API refuses the token too, the session has expired; otherwise the ticker tries again after
   * its longest backoff.
   */
  #confirmSession(refusal: BrokerError): void {
    if (this.#rest.expired !== undefined || this.#confirming !== undefined) return;
    this.#confirming = (async () => {
      try {
        await this.#rest.call("request", "session check", (k) => k.getProfile());
        this.#emitError(
          new BrokerError(
            "NOT_CONNECTED",
            `${refusal.message}, though Kite's REST API accepts it; the ticker tries again in ${this.settings.reconnect.max_ms} ms`,
          ),
        );
      } catch (error) {
        if (this.#rest.expired !== undefined) return;
        this.#log.warn(`checking the session after the ticker's 403: ${toBrokerError(error).message}`);
      }
      await sleep(this.settings.reconnect.max_ms, this.#closed.signal);
      if (this.#closing === undefined && this.#rest.expired === undefined) this.#ticker.start();
    })().finally(() => {
      this.#confirming = undefined;
    });
  }

  /** Kite refused the token: the session is over until a new login. Reported once. */
  #sessionExpired(detail: BrokerError): void {
    if (!this.#rest.expire(detail)) return;
    const kiteSaid =
      detail.cause !== undefined && isRecord(detail.cause) && typeof detail.cause.message === "string"
        ? ` (Kite: ${detail.cause.message})`
        : "";
    this.#log.error(`${SESSION_EXPIRED}${kiteSaid}`);
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    void this.#ticker.stop(SESSION_EXPIRED);
    this.#setState("disconnected", SESSION_EXPIRED);
    this.emit("session", {
      type: "SESSION_EXPIRED",
      message: SESSION_EXPIRED,
      timestamp: new Date().toISOString(),
      ...this.#sessionFields(),
    });
    this.#emitError(this.#rest.expired!);
  }

  #emitError(error: BrokerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else this.#log.warn(error.message);
  }

  #usable(what: string): void {
    if (this.#closing !== undefined)
      throw new BrokerError("CLOSED", `Kite broker is closed; ${what} not sent`);
    const expired = this.#rest.expired;
    if (expired !== undefined) throw expired;
  }

  // #endregion

  // #region order events

  /**
   * A fill event waits for its trades (Kite's trade book, read through the rate limiter); every
   * event after it waits behind it, so events keep their order and seq. Other events go out at once
   * while nothing waits.
   */
  #emitOrder(type: OrderEventType, order: OrderSnapshot, synthesized: boolean, previousFilled: number): void {
    const fill = type === "ORDER_PARTIALLY_FILLED" || type === "ORDER_FILLED";
    const item: Outgoing = { kind: "order", type, order, synthesized, previousFilled, fill };
    if (!fill && this.#draining === undefined) this.#send(item, undefined);
    else this.#queue(item);
  }

  #emitGtt(type: GttEventType, gtt: GttSnapshot): void {
    const item: Outgoing = { kind: "gtt", type, gtt: copyGtt(gtt) };
    if (this.#draining === undefined) this.#send(item, undefined);
    else this.#queue(item);
  }

  #queue(item: Outgoing): void {
    this.#outbox.push(item);
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const batch = this.#outbox.splice(0);
        const fills = batch.filter((item): item is OutgoingOrder => item.kind === "order" && item.fill);
        const found: (Trade[] | undefined)[] =
          fills.length === 0
            ? []
            : await this.#trades.collect(
                fills.map((f): FillToReport => ({ order: f.order, previousFilled: f.previousFilled })),
              );
        for (const item of batch) {
          const at = item.kind === "order" && item.fill ? fills.indexOf(item) : -1;
          try {
            this.#send(item, at < 0 ? undefined : found[at]);
          } catch (error) {
            // A listener that throws must not cost the events after it.
            this.#emitError(toBrokerError(error));
          }
        }
      }
    } catch (error) {
      this.#emitError(toBrokerError(error));
    } finally {
      this.#draining = undefined;
    }
  }

  #send(item: Outgoing, trades: Trade[] | undefined): void {
    const timestamp = new Date().toISOString();
    if (item.kind === "gtt") {
      this.emit("gtt", { type: item.type, seq: ++this.#seq, gtt: item.gtt, timestamp });
      return;
    }
    this.emit("order", {
      type: item.type,
      seq: ++this.#seq,
      order: item.order,
      timestamp,
      ...(item.synthesized ? { synthesized: true } : {}),
      ...(trades === undefined ? {} : { trades }),
    });
  }

  /**
   * An order's fills (executions) from Kite's trade book, oldest first: what ORDER_PARTIALLY_FILLED
   * and ORDER_FILLED events carry in `trades`, read on demand.
   */
  async getOrderTrades(orderId: string): Promise<Trade[]> {
    this.#usable("order trades request");
    this.#checkOrderId(orderId);
    const reply = await this.#rest.call("request", "order trades request", (k) => k.getOrderTrades(orderId));
    const trades: Trade[] = [];
    for (const raw of Array.isArray(reply) ? reply : []) {
      const trade = toTrade(raw);
      if (trade === undefined || trade.order_id !== orderId) continue;
      trades.push({
        trade_id: trade.trade_id,
        quantity: trade.quantity,
        price: trade.price,
        timestamp: trade.timestamp,
      });
    }
    return trades.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
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
    const ours = this.#orders.has(id) || this.#orders.orderIdOf(tag) !== undefined || this.#placing.has(tag);
    if (!ours && this.#gtts.hasActive()) {
      // An order we did not place while GTTs are active: most likely one of them fired. Learn
      // which, so the order carries its gtt_id and GTT_TRIGGERED comes first.
      await this.#pollGtts().catch((error: unknown) =>
        this.#log.warn(`GTT refresh failed: ${toBrokerError(error).message}`),
      );
    }
    if (this.#closing !== undefined) return;
    this.#orders.ingest(data);
  }

  /** After a ticker reconnect: what changed while we were away, as synthesized events. */
  #reconcile(): Promise<void> {
    this.#reconciling ??= (async () => {
      try {
        const book = await this.#rest.fetchBook();
        // Behind the postbacks that arrived meanwhile, so those win over this older view.
        await this.#inbound;
        for (const raw of book) this.#orders.ingest(raw, true);
        await this.#pollGtts();
      } catch (error) {
        const err = toBrokerError(error);
        if (err.code !== "CLOSED" && err.code !== "AUTH") {
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
    const existing = this.#orders.orderIdOf(clientId);
    if (existing !== undefined) {
      const known = this.#orders.current(existing);
      if (known !== undefined) return Promise.resolve(known);
    }
    const inFlight = this.#placing.get(clientId);
    if (inFlight !== undefined) return inFlight;
    const placing = this.#place(request, clientId).finally(() => this.#placing.delete(clientId));
    this.#placing.set(clientId, placing);
    return placing;
  }

  async #place(request: OrderRequest, clientId: string): Promise<OrderSnapshot> {
    await this.#instruments.check(request.exchange, request.symbol, request);
    if (request.tag !== undefined) this.#orders.setUserTag(clientId, request.tag);
    const params = toKiteOrderParams(request, clientId, this.settings.market_protection);
    const variety = kiteVariety(request);
    const sendBy = Date.now() + this.settings.order_ttl_ms;
    let orderId: string;
    try {
      orderId = await this.#sendPlacement(params, variety);
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) {
        this.#orders.dropUserTag(clientId);
        throw err;
      }
      this.#log.warn(`placement ${clientId}: ${err.message}; looking it up by tag before reporting`);
      orderId = await this.#settlePlacement(params, variety, clientId, sendBy, err);
    }
    this.#orders.bindClientId(clientId, orderId);
    // A postback usually tells us first; then the history request (10/s shared with every other
    // read) is not spent.
    const known = this.#orders.current(orderId);
    if (known !== undefined) return known;
    return this.#refreshOrder(orderId, () => this.#pendingSnapshot(request, clientId, orderId));
  }

  async #sendPlacement(params: object, variety: Variety): Promise<string> {
    // kiteconnect adds `variety` to what it is given: each attempt gets its own copy.
    const reply = await this.#rest.call("order", "order placement", (k) =>
      k.placeOrder(variety, { ...params }),
    );
    const id = isRecord(reply) ? reply.order_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the placement answer has no order_id");
    }
    return String(id);
  }

  /**
   * A placement whose outcome is unknown, looked up by its tag in the order book (twice,
   * ABSENT_GRACE_MS apart, since Kite may list it a moment late) or a postback's word.
   */
  #settlePlacement(
    params: { tag: string },
    variety: Variety,
    clientId: string,
    sendBy: number,
    first: BrokerError,
  ): Promise<string> {
    return settlePlacement({
      clientId,
      first,
      windowMs: this.settings.resolve_window_ms,
      sendBy,
      ttlMs: this.settings.order_ttl_ms,
      venue: "Kite",
      signal: this.#closed.signal,
      isUnknown: isUnknownOutcome,
      lookup: async () => {
        const book = await this.#rest.fetchBook();
        const found = book.find(
          (o) => o.tag === clientId || (Array.isArray(o.tags) && o.tags.includes(clientId)),
        );
        if (found !== undefined) {
          this.#orders.ingest(found);
          return String(found.order_id);
        }
        return this.#orders.orderIdOf(clientId);
      },
      isFinal: (err) => !err.retryable && !isUnknownOutcome(err),
      resend: () => this.#sendPlacement(params, variety),
      absentGraceMs: ABSENT_GRACE_MS,
    });
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
    if (request.variety !== undefined && request.variety !== "regular") snapshot.variety = request.variety;
    if (request.validity_ttl !== undefined) snapshot.validity_ttl = request.validity_ttl;
    if (request.disclosed_quantity !== undefined) snapshot.disclosed_quantity = request.disclosed_quantity;
    if (request.iceberg_legs !== undefined) snapshot.iceberg_legs = request.iceberg_legs;
    if (request.iceberg_quantity !== undefined) snapshot.iceberg_quantity = request.iceberg_quantity;
    return snapshot;
  }

  /**
   * The variety an order was placed with: Kite changes and cancels an order only under its own
   * variety's path (/orders/amo/…, /orders/iceberg/…). Known from the tracker, else read once from
   * the order's history; an order that cannot be read is tried as regular (Kite then says why not).
   */
  async #varietyOf(orderId: string): Promise<Variety> {
    const known = this.#orders.current(orderId);
    if (known !== undefined) return kiteVariety(known);
    try {
      return kiteVariety(await this.#refreshOrder(orderId));
    } catch {
      return "regular";
    }
  }

  /**
   * The order's latest state from its history (the last entry; the earlier ones are older than
   * what postbacks may already have told us). When that read fails, what we know, or `fallback`.
   */
  async #refreshOrder(orderId: string, fallback?: () => OrderSnapshot): Promise<OrderSnapshot> {
    try {
      const history = await this.#rest.call("request", "order history request", (k) =>
        k.getOrderHistory(orderId),
      );
      const entries = Array.isArray(history) ? history.filter(isKiteOrder) : [];
      const latest = entries[entries.length - 1];
      if (latest !== undefined) return this.#orders.ingest(latest);
    } catch (error) {
      const err = toBrokerError(error);
      if (fallback === undefined) throw err;
      this.#log.warn(`order ${orderId}: ${err.message}; answering with what is known`);
    }
    const known = this.#orders.current(orderId);
    if (known !== undefined) return known;
    if (fallback !== undefined) return this.#orders.observe(fallback(), false);
    throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
  }

  #checkOrderId(orderId: string): void {
    if (typeof orderId !== "string" || !ORDER_ID.test(orderId)) {
      throw new BrokerError("NOT_FOUND", `order ${String(orderId)} not found (not a Kite order id)`);
    }
  }

  #refuseIfEnded(orderId: string, verb: string): void {
    const known = this.#orders.current(orderId);
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
      book = await this.#rest.fetchBook();
    } catch {
      return error;
    }
    const raw = book.find((o) => String(o.order_id) === orderId);
    if (raw === undefined) return new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    const order = this.#orders.ingest(raw);
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
    for (const key of CHANGEABLE) {
      if (changes[key] !== undefined) params[key] = changes[key];
    }
    if (changes.order_type === "MARKET" || changes.order_type === "SL-M") {
      params.market_protection = this.settings.market_protection;
    }
    const known = this.#orders.current(orderId);
    if (known !== undefined) await this.#instruments.check(known.exchange, known.symbol, changes);
    const landed = (order: OrderSnapshot): boolean =>
      CHANGEABLE.every((key) => changes[key] === undefined || order[key] === changes[key]);
    const variety = await this.#varietyOf(orderId);
    return this.#changeOnce(orderId, "modified", landed, () =>
      this.#rest.call("order", "order change", (k) => k.modifyOrder(variety, orderId, { ...params })),
    );
  }

  async cancelOrder(orderId: string): Promise<OrderSnapshot> {
    this.#usable("cancellation");
    this.#checkOrderId(orderId);
    this.#refuseIfEnded(orderId, "cancelled");
    const variety = await this.#varietyOf(orderId);
    // An order that ended another way meanwhile (filled) is the answer too: nothing is left to cancel.
    return this.#changeOnce(
      orderId,
      "cancelled",
      (order) => isTerminal(order.status),
      () => this.#rest.call("order", "cancellation", (k) => k.cancelOrder(variety, orderId)),
    );
  }

  /**
   * A modification or cancellation, exactly once: an answer that does not prove Kite refused it
   * (no answer, 5xx, HTML) is settled by reading the order. When the change shows, that is the
   * answer; when it does not, it is sent once more (setting the same values or cancelling twice is
   * harmless), and if that answer is lost too the outcome is reported unknown.
   */
  async #changeOnce(
    orderId: string,
    verb: "modified" | "cancelled",
    landed: (order: OrderSnapshot) => boolean,
    send: () => Promise<unknown>,
  ): Promise<OrderSnapshot> {
    for (let attempt = 1; ; attempt++) {
      let lost: BrokerError;
      try {
        await send();
        return await this.#refreshOrder(orderId);
      } catch (error) {
        lost = toBrokerError(error);
        if (!isUnknownOutcome(lost)) throw await this.#explain(orderId, lost, verb);
      }
      this.#log.warn(`order ${orderId} to be ${verb}: ${lost.message}; reading the order before reporting`);
      let current: OrderSnapshot | undefined;
      try {
        current = await this.#refreshOrder(orderId);
      } catch {
        current = undefined;
      }
      if (current !== undefined && landed(current)) return current;
      if (current !== undefined && isTerminal(current.status)) {
        throw new BrokerError(
          "ORDER_TERMINAL",
          `order ${orderId} is ${current.status}; only open orders can be ${verb}`,
        );
      }
      if (attempt >= 2) {
        throw new BrokerError(
          "NETWORK",
          `order ${orderId}: whether it was ${verb} is unknown (${lost.message}); it will show in order events`,
          { cause: lost },
        );
      }
    }
  }

  async getOrder(orderId: string): Promise<OrderSnapshot> {
    this.#usable("order request");
    this.#checkOrderId(orderId);
    try {
      return await this.#refreshOrder(orderId);
    } catch (error) {
      const err = await this.#explain(orderId, toBrokerError(error), "read");
      if (err.code === "ORDER_TERMINAL") {
        const known = this.#orders.current(orderId);
        if (known !== undefined) return known;
      }
      throw err;
    }
  }

  async getOrderbook(): Promise<OrderSnapshot[]> {
    this.#usable("order book request");
    const book = await this.#rest.fetchBook();
    return book.map((raw) => this.#orders.ingest(raw));
  }

  async getPositions(): Promise<Position[]> {
    this.#usable("positions request");
    const reply = await this.#rest.call("request", "positions request", (k) => k.getPositions());
    const net = isRecord(reply) && Array.isArray(reply.net) ? (reply.net as unknown[]) : [];
    return net
      .filter((p): p is KitePosition => isRecord(p) && typeof p.tradingsymbol === "string")
      .map(toPosition);
  }

  async getAccount(): Promise<Account> {
    this.#usable("margins request");
    const [margins, positions] = await Promise.all([
      this.#rest.call("request", "margins request", (k) => k.getMargins("equity")),
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
    const reply = await this.#rest.call("request", "GTT placement", (k) => k.placeGTT(params));
    const id = isRecord(reply) ? reply.trigger_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the GTT placement answer has no trigger_id");
    }
    const gtt = await this.#readGtt(String(id), () => this.#gttFromRequest(String(id), request, last));
    const current = this.#gtts.record(gtt);
    this.#schedulePoll();
    return current;
  }

  async modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    this.#usable("GTT change");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "modified");
    const last = request.last_price ?? (await this.#lastPrice(request.exchange, request.symbol));
    const params = toKiteGttParams(request, last);
    try {
      await this.#rest.call("request", "GTT change", (k) => k.modifyGTT(gttId, params));
    } catch (error) {
      throw await this.#explainGtt(gttId, toBrokerError(error), "modified");
    }
    const gtt = await this.#readGtt(gttId, () => this.#gttFromRequest(gttId, request, last));
    return this.#gtts.modified(gtt);
  }

  async deleteGtt(gttId: string): Promise<GttSnapshot> {
    this.#usable("GTT deletion");
    this.#checkGttId(gttId);
    this.#refuseIfGttEnded(gttId, "deleted");
    try {
      await this.#rest.call("request", "GTT deletion", (k) => k.deleteGTT(gttId));
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
    return this.#gtts.record(gtt);
  }

  async getGtts(): Promise<GttSnapshot[]> {
    this.#usable("GTT list request");
    const list = await this.#rest.fetchGtts();
    this.#gtts.ingest(list, false);
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
      this.#gtts.record(gtt);
      return new BrokerError(
        "ORDER_TERMINAL",
        `GTT ${gttId} is ${gtt.status}; only active GTTs can be ${verb}`,
      );
    }
    return error;
  }

  async #readGtt(gttId: string, fallback?: () => GttSnapshot): Promise<GttSnapshot> {
    try {
      const reply = await this.#rest.call("request", "GTT request", (k) => k.getGTT(gttId));
      if (!isKiteTrigger(reply)) throw new BrokerError("INTERNAL", "bad reply from Kite: not a GTT");
      this.#gtts.learnOrders(reply);
      return toGttSnapshot(reply, new Date().toISOString());
    } catch (error) {
      if (fallback === undefined) throw error;
      this.#log.warn(`GTT ${gttId}: ${toBrokerError(error).message}; answering with what is known`);
      return fallback();
    }
  }

  #gttFromRequest(gttId: string, request: GttRequestType, last: number): GttSnapshot {
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

  async #lastPrice(exchange: Exchange, symbol: string): Promise<number> {
    const key = `${exchange}:${symbol}`;
    const reply = await this.#rest.call("quote", "last price request", (k) => k.getLTP([key]));
    const entry = isRecord(reply) ? reply[key] : undefined;
    const last = isRecord(entry) ? Number(entry.last_price) : Number.NaN;
    if (!(last > 0)) {
      throw new BrokerError("NO_QUOTE", `no last price for ${key} from Kite: give last_price with the GTT`);
    }
    return last;
  }

  #pollGtts(): Promise<void> {
    this.#polling ??= (async () => {
      this.#gtts.ingest(await this.#rest.fetchGtts(), false);
    })().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Kite pushes nothing about GTTs: while one is active, look every gtt_poll_ms. */
  #schedulePoll(): void {
    if (this.#pollTimer !== undefined || this.#closing !== undefined || this.#rest.expired !== undefined)
      return;
    if (!this.#gtts.hasActive()) return;
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

  // #region quotes and instruments

  async subscribeQuotes(symbols: string[]): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    this.#usable("quote subscription");
    const keys = list.map((text) => parseInstrument(text));
    await this.#instruments.ensure(keys);
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

  /**
   * Historical candles for one instrument (Kite's historical API, 3 requests a second), oldest
   * first; `from`/`to` are ISO times and may span at most CANDLE_SPAN_DAYS[interval] days.
   */
  async getCandles(query: {
    symbol: string;
    exchange?: Exchange;
    interval: string;
    from: string;
    to: string;
  }): Promise<Candle[]> {
    this.#usable("historical data request");
    const { exchange, symbol } = parseInstrument(query.symbol, query.exchange ?? "NSE");
    const parsed = CandleInterval.safeParse(query.interval);
    if (!parsed.success) throw new BrokerError("VALIDATION", `interval: ${parsed.error.issues[0]?.message}`);
    const interval = parsed.data;
    const from = kiteDateTime(query.from);
    const to = kiteDateTime(query.to);
    const span = (Date.parse(query.to) - Date.parse(query.from)) / 86_400_000;
    if (!(span > 0) || span > CANDLE_SPAN_DAYS[interval]) {
      throw new BrokerError(
        "VALIDATION",
        `from/to: must span more than 0 and at most ${CANDLE_SPAN_DAYS[interval]} days for ${interval} candles`,
      );
    }
    await this.#instruments.ensure([{ exchange, symbol }]);
    const token = this.#instruments.tokenOf(exchange, symbol);
    if (token === undefined) {
      throw new BrokerError("VALIDATION", `symbol: ${exchange}:${symbol} not in Kite's instrument list`);
    }
    const reply = await this.#rest.call("historical", "historical data request", (k) =>
      k.getHistoricalData(token, interval, from, to, false, false),
    );
    return toCandles(reply);
  }

  /**
   * Instruments from the day's list, by exact symbol or by search text (symbol or name contains
   * it), for the flows' instrument lookup: lot and tick size, expiry, segment.
   */
  async findInstruments(query: {
    exchange?: Exchange;
    text: string;
    limit?: number;
  }): Promise<InstrumentInfo[]> {
    this.#usable("instrument lookup");
    const exchange = query.exchange ?? "NSE";
    return this.#instruments.search(exchange, query.text, Math.min(Math.max(1, query.limit ?? 20), 500));
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

interface OutgoingOrder {
  kind: "order";
  type: OrderEventType;
  order: OrderSnapshot;
  synthesized: boolean;
  previousFilled: number;
  fill: boolean;
}

type Outgoing = OutgoingOrder | { kind: "gtt"; type: GttEventType; gtt: GttSnapshot };
