import { EventEmitter } from "node:events";
import type {
  Account,
  ConnectionState,
  Exchange,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderRequestInput,
  OrderSnapshot,
  Position,
  Trade,
} from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { isRecord } from "../common/is-record";
import { sleep } from "../common/sleep";
import { readAccount, readPositions } from "../kite/account-views";
import type { Candle } from "../kite/candles";
import { KITE_LOGIN_NEEDED, SESSION_EXPIRED } from "../kite/errors";
import { EventOutbox } from "../kite/event-outbox";
import { GttDesk } from "../kite/gtt-desk";
import { GttTracker } from "../kite/gtt-tracker";
import type { CandleQuery } from "../kite/historical";
import { readCandles } from "../kite/historical";
import type { InstrumentInfo } from "../kite/instruments";
import { KiteInstruments } from "../kite/kite-instruments";
import { KiteQuotes } from "../kite/kite-quotes";
import { registerLiveBroker, unregisterLiveBroker, liveBrokers } from "../kite/live-brokers";
import { exchangeRequestToken, kiteLoginUrl } from "../kite/login";
import { OrderDesk } from "../kite/order-desk";
import { OrderFeed } from "../kite/order-feed";
import { OrderTracker } from "../kite/order-tracker";
import { ledgerReleased } from "../kite/ledger-holders";
import { ReportedLedger, ledgerFile } from "../kite/reported-ledger";
import { KiteRestClient } from "../kite/rest-client";
import type { KiteSession } from "../kite/session";
import { toKiteSession } from "../kite/session";
import type { ReadRetry, StartupRetry } from "../kite/startup-read";
import { STARTUP_RETRY, startupRead } from "../kite/startup-read";
import type { TickerState } from "../kite/ticker-client";
import { KiteTickerClient } from "../kite/ticker-client";
import { TradeReporter } from "../kite/trade-reporter";
import type { BrokerEvents, BrokerInterface } from "./interface";
import type { KiteSettings } from "./kite-settings";
import type { BrokerLogger } from "./logger";
import { silentLogger } from "./logger";

export interface KiteBrokerDeps {
  log?: BrokerLogger;
  /**
   * How connect() retries its start-up reads, and the background reads (the catch-up after a
   * ticker reconnect, the GTT poll) theirs (defaults: STARTUP_RETRY, the budget from
   * settings.startup_budget_ms).
   */
  startup?: Partial<StartupRetry>;
  /**
   * How long connect() waits for this broker's reported ledger to be let go by a broker closing
   * (a redeploy) before it fails CONFIG, naming the holder (default 5000 ms).
   */
  ledgerWaitMs?: number;
}

/**
 * BrokerInterface over Zerodha Kite Connect v3, a facade over parts in lib/kite/:
 * KiteRestClient (kiteconnect behind Kite's rate limits, errors mapped, the session gate),
 * OrderDesk (placing, changing, cancelling and reading orders, each exactly once), OrderTracker
 * (every order update through the state machine, events once and in order), GttDesk and
 * GttTracker (GTT requests; GTT news, polled, once per change), EventOutbox (events numbered and
 * sent, fills with their trades), KiteInstruments (the day's instrument lists: tokens, lot and
 * tick checks, lookup), KiteQuotes over KiteTickerClient (our own ticker client, never
 * kiteconnect's KiteTicker: KITE.md §11.1-2), account-views, historical and login.
 *
 * What stays here is the connection and the session, which every part shares:
 * - After a ticker reconnect the order book and the GTTs are reconciled, and what changed is
 *   reported as synthesized events, so no fill is missed.
 * - A TokenException (the daily session ended) fails every later call with AUTH and one
 *   documented message (SESSION_EXPIRED), stops the ticker and emits `session` until
 *   setAccessToken() or login() brings a new token. A ticker 403 alone is confirmed with one REST
 *   call first.
 */
export class KiteBroker extends EventEmitter<BrokerEvents> implements BrokerInterface {
  readonly kind = "kite" as const;
  /** Kite's positions report the day's realised and unrealised P&L, not a running total. */
  readonly pnlResetsDaily = true;
  readonly settings: KiteSettings;

  readonly #log: BrokerLogger;
  readonly #startup: StartupRetry;
  readonly #rest: KiteRestClient;
  readonly #ticker: KiteTickerClient;
  readonly #orders: OrderTracker;
  readonly #gtts: GttTracker;
  readonly #instruments: KiteInstruments;
  readonly #closed = new AbortController();
  readonly #trades: TradeReporter;
  readonly #outbox: EventOutbox;
  readonly #desk: OrderDesk;
  readonly #gttDesk: GttDesk;
  readonly #quotes: KiteQuotes;
  readonly #feed: OrderFeed;
  /**
   * What was reported, on disk (when settings.cache_dir is set): a restart picks up from it.
   * Opened by connect(), once the broker this one replaces has let it go.
   */
  #ledger: ReportedLedger | undefined;
  readonly #ledgerWaitMs: number;

  #state: ConnectionState = "disconnected";
  #session: KiteSession | undefined;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #confirming: Promise<void> | undefined;
  /** Kite's order book and GTTs have been read once (connect got that far). */
  #baselined = false;
  /**
   * Started without an access token: every call fails with this (AUTH) before reaching Kite,
   * until login() or setAccessToken() brings one.
   */
  #loginNeeded: BrokerError | undefined;

  constructor(settings: KiteSettings, deps: KiteBrokerDeps = {}) {
    super();
    this.settings = settings;
    this.#log = deps.log ?? silentLogger;
    if (settings.access_token === undefined) this.#loginNeeded = new BrokerError("AUTH", KITE_LOGIN_NEEDED);
    this.#startup = { ...STARTUP_RETRY, budgetMs: settings.startup_budget_ms, ...deps.startup };
    const reads: ReadRetry = {
      retry: this.#startup,
      signal: this.#closed.signal,
      warn: (message) => this.#log.warn(message),
    };
    this.#rest = new KiteRestClient(settings, this.#closed.signal, (detail) => this.#sessionExpired(detail));
    this.#outbox = new EventOutbox({
      emitOrder: (event) => this.emit("order", event),
      emitGtt: (event) => this.emit("gtt", event),
      tradesOf: (fills) => this.#trades.collect(fills),
      onError: (error) => this.#emitError(error),
      issuing: (seq) => this.#ledger?.issuing(seq),
    });
    this.#gtts = new GttTracker(
      (type, gtt) => {
        this.#ledger?.gttsKnown([gtt]);
        this.#outbox.gtt(type, gtt);
      },
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
    this.#ledgerWaitMs = deps.ledgerWaitMs ?? 5000;
    this.#orders = new OrderTracker({
      retention: settings.retention,
      emit: (type, order, synthesized, previousFilled) => {
        this.#ledger?.reported(order);
        this.#outbox.order(type, order, synthesized, previousFilled);
      },
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
    const usable = (what: string): void => this.#usable(what);
    this.#desk = new OrderDesk({
      settings,
      rest: this.#rest,
      orders: this.#orders,
      instruments: this.#instruments,
      log: this.#log,
      signal: this.#closed.signal,
      usable,
      onPlacing: (clientId) => this.#ledger?.placing(clientId),
      onRefused: (clientId) => this.#ledger?.refused(clientId),
      onToldUnknown: (clientId) => this.#ledger?.toldUnknown(clientId),
      onError: (error) => this.#emitError(error),
      sentBefore: (clientId) => this.#ledger?.wasPlacing(clientId) === true,
      reportedOf: (orderId) => this.#ledger?.reportedOf(orderId),
      durable: () => this.#ledger !== undefined,
    });
    this.#gttDesk = new GttDesk({
      settings,
      rest: this.#rest,
      gtts: this.#gtts,
      log: this.#log,
      usable,
      active: () => this.#closing === undefined && this.#rest.expired === undefined,
      reads,
    });
    this.#feed = new OrderFeed({
      rest: this.#rest,
      orders: this.#orders,
      gtts: this.#gtts,
      gttDesk: this.#gttDesk,
      isPlacing: (tag) => this.#desk.isPlacing(tag),
      closing: () => this.#closing !== undefined,
      log: this.#log,
      onError: (error) => this.#emitError(error),
      reads,
    });

    this.#ticker = new KiteTickerClient({
      url: settings.ticker_url,
      apiKey: settings.api_key,
      accessToken: settings.access_token ?? "",
      readTimeoutMs: settings.read_timeout_ms,
      backoff: {
        initialMs: settings.reconnect.initial_ms,
        factor: settings.reconnect.factor,
        maxMs: settings.reconnect.max_ms,
      },
    });
    this.#ticker.on("state", (state, reason) => this.#onTickerState(state, reason));
    this.#ticker.on("open", (reconnect) => {
      if (reconnect) void this.#feed.reconcile();
    });
    this.#quotes = new KiteQuotes({
      ticker: this.#ticker,
      instruments: this.#instruments,
      mode: settings.ticker_mode,
      emit: (quote) => this.emit("quote", quote),
    });
    this.#ticker.on("ticks", (ticks) => this.#quotes.onTicks(ticks));
    this.#ticker.on("order", (data) => this.#feed.postback(data));
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
    return this.#outbox.seq;
  }

  /** Who is logged in and since when, once known (after login() or a profile read at connect). */
  get session(): KiteSession | undefined {
    return this.#session === undefined ? undefined : { ...this.#session };
  }

  /** True while Kite refuses the access token: only a new login helps. */
  get sessionExpired(): boolean {
    return this.#rest.expired !== undefined;
  }

  /** True until the first login of a broker started without an access token. */
  get loginNeeded(): boolean {
    return this.#loginNeeded !== undefined;
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
    // No token yet: nothing is sent to Kite (it would only refuse), the login brings one.
    const expired = this.#loginNeeded ?? this.#rest.expired;
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
    // Reads only: one that meets a 429 or a passing outage is sent again, within one budget for
    // them all, so a deploy right after another app's burst still comes up.
    const options = {
      retry: this.#startup,
      deadline: performance.now() + this.#startup.budgetMs,
      signal: this.#closed.signal,
      warn: (message: string) => this.#log.warn(message),
    };
    const book = await startupRead(
      "GET /orders",
      "order book request",
      () => this.#rest.fetchBook(),
      options,
    );
    // Whose session this is, for the editor dialog (Kite's profile has no login time; a login has).
    if (this.#session === undefined) {
      const profile = await startupRead(
        "GET /user/profile",
        "profile request",
        () => this.#rest.call("request", "profile request", (k) => k.getProfile()),
        options,
      );
      this.#session = toKiteSession(profile);
    }
    const gtts = await startupRead(
      "GET /gtt/triggers",
      "GTT list request",
      () => this.#rest.fetchGtts(),
      options,
    );
    const ledger = await this.#openLedger();
    // GTTs first: one that triggered while we were down is reported before the orders it placed.
    const triggered = this.#gtts.baseline(gtts, ledger);
    const silent = this.#orders.baseline(book, ledger, new Set(triggered.flatMap((gtt) => gtt.order_ids)));
    // Open orders no flow was told of count as told as they stand now: what they do while
    // Node-RED is down is then reported at the next start.
    ledger?.baselined(silent);
    ledger?.gttsKnown(this.#gtts.all());
    // Placements an earlier run sent that Kite's book does not list: looked for from now on, and
    // those whose outcome nobody heard (cut off by a close) reported NETWORK once if still absent.
    if (ledger !== undefined) {
      const lost = [];
      for (const clientId of ledger.placings()) {
        if (this.#orders.orderIdOf(clientId) !== undefined) continue;
        if (this.#orders.endedOrderIdOf(clientId) !== undefined) continue;
        lost.push({ clientId, tell: !ledger.wasToldUnknown(clientId) });
      }
      this.#desk.resume(lost);
    }
    this.#baselined = true;
    this.#gttDesk.schedulePoll();
  }

  /**
   * The reported ledger, opened on the first connect: after a broker of the same config that is
   * still closing (a redeploy) has let it go, and with the seq going on past the last run's.
   */
  async #openLedger(): Promise<ReportedLedger | undefined> {
    const dir = this.settings.cache_dir;
    if (this.#ledger !== undefined || dir === undefined) return this.#ledger;
    const options = {
      ...(this.settings.instance_id === undefined ? {} : { instance: this.settings.instance_id }),
      holder:
        this.settings.instance_id === undefined
          ? "a Kite broker with no instance_id"
          : `the Kite broker of config ${this.settings.instance_id}`,
    };
    await ledgerReleased(
      ledgerFile(dir, this.settings.api_key, options),
      this.#ledgerWaitMs,
      this.#closed.signal,
    );
    if (this.#closing !== undefined) throw new BrokerError("CLOSED", "Kite broker closed while connecting");
    this.#ledger = new ReportedLedger(dir, this.settings.api_key, options);
    this.#outbox.startAfter(this.#ledger.seqFloor);
    return this.#ledger;
  }

  /** Ends the ticker, the GTT poll and every REST socket; requests still waiting end CLOSED. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    unregisterLiveBroker(this.settings.api_key, this);
    this.#closed.abort();
    this.#gttDesk.stopPolling();
    // The ticker and the REST sockets go first: a connect() still waiting on either ends at once.
    await this.#ticker.close();
    this.#rest.destroy();
    await this.#connecting?.catch(() => undefined);
    await this.#feed.idle();
    await this.#desk.idle();
    await this.#gttDesk.close();
    await this.#confirming;
    // Events owed go out (without trades now: the REST client is closed).
    await this.#outbox.drained;
    this.#ledger?.close();
    this.#rest.destroy();
    this.#setState("disconnected", "closed");
  }

  /**
   * A new access token (after the daily login), switched over without a redeploy: REST uses it
   * at once, the ticker reconnects with it (and reconciles what happened meanwhile).
   */
  setAccessToken(token: string, session?: KiteSession): void {
    const wasExpired = this.#rest.expired !== undefined;
    this.#loginNeeded = undefined;
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
      this.#gttDesk.schedulePoll();
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
    const { session, accessToken } = await exchangeRequestToken(this.#rest, requestToken, apiSecret);
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
    return kiteLoginUrl(this.settings.login_url, this.settings.api_key, state);
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
    this.#gttDesk.stopPolling();
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
    const expired = this.#loginNeeded ?? this.#rest.expired;
    if (expired !== undefined) throw expired;
  }

  // #endregion

  // #region requests: each handled by its part in lib/kite/

  placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    return this.#desk.place(input);
  }

  modifyOrder(orderId: string, changes: OrderChanges): Promise<OrderSnapshot> {
    return this.#desk.modify(orderId, changes);
  }

  cancelOrder(orderId: string): Promise<OrderSnapshot> {
    return this.#desk.cancel(orderId);
  }

  getOrder(orderId: string): Promise<OrderSnapshot> {
    return this.#desk.get(orderId);
  }

  getOrderbook(): Promise<OrderSnapshot[]> {
    return this.#desk.book();
  }

  /**
   * An order's fills (executions) from Kite's trade book, oldest first: what ORDER_PARTIALLY_FILLED
   * and ORDER_FILLED events carry in `trades`, read on demand.
   */
  getOrderTrades(orderId: string): Promise<Trade[]> {
    return this.#desk.trades(orderId);
  }

  async getPositions(): Promise<Position[]> {
    this.#usable("positions request");
    return readPositions(this.#rest);
  }

  async getAccount(): Promise<Account> {
    this.#usable("margins request");
    return readAccount(this.#rest);
  }

  placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    return this.#gttDesk.place(input);
  }

  modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    return this.#gttDesk.modify(gttId, input);
  }

  deleteGtt(gttId: string): Promise<GttSnapshot> {
    return this.#gttDesk.delete(gttId);
  }

  getGtts(): Promise<GttSnapshot[]> {
    return this.#gttDesk.list();
  }

  subscribeQuotes(symbols: string[]): Promise<void> {
    return this.#quotes.subscribe(symbols, () => this.#usable("quote subscription"));
  }

  async unsubscribeQuotes(symbols: string[]): Promise<void> {
    this.#quotes.unsubscribe(symbols);
    return Promise.resolve();
  }

  /**
   * Historical candles for one instrument (Kite's historical API, 3 requests a second), oldest
   * first; `from`/`to` are ISO times and may span at most CANDLE_SPAN_DAYS[interval] days.
   */
  async getCandles(query: CandleQuery): Promise<Candle[]> {
    this.#usable("historical data request");
    return readCandles(this.#rest, this.#instruments, query);
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

  // #endregion
}
