import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { Clock } from "../../lib/paper/clock";
import type {
  Exchange,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEvent,
  OrderRequestInput,
  OrderSnapshot,
} from "../../lib/protocol";
import { BrokerError } from "../../lib/protocol/errors";
import { parseInstrument } from "../../lib/protocol/instrument";
import type { TickMode } from "../../lib/kite/ticker-parser";
import { SEGMENT } from "../../lib/kite/ticker-parser";
import { formatKiteTimestamp } from "../../lib/kite/time";
import { encodeFrame, encodePacket } from "./ticker-encoder";

/**
 * A fake Zerodha Kite Connect v3 on 127.0.0.1, following Kite's documented wire format (KITE.md):
 * a REST server (Kite's envelope, header and token checks, form-encoded bodies, error bodies and
 * codes, instruments as CSV) and a ticker WebSocket server (auth from the query string, 1-byte
 * heartbeats, binary ticks in the requested mode, JSON order postbacks). Behind it a PaperBroker
 * (no spread, no slippage, no random walk) is the exchange, so orders really fill and postbacks
 * really follow. Fault injection: failNext, failAfter (the request takes effect, then a 5xx or an
 * HTML page answers), delayNext, dropNextResponse, dropNextRequest, stallTicker, closeTicker,
 * refuseTicker, expireSession; Kite's per-second limits as a sliding window answering 429
 * (`rateLimits`); and the daily login: a login page that redirects to the app's redirect URL with a
 * one-time request_token, and the session exchange that checks its checksum.
 */

export interface FakeKiteOptions {
  apiKey?: string;
  accessToken?: string;
  heartbeatMs?: number;
  /** Content-Type of the instrument CSV (Kite: exactly text/csv). */
  csvContentType?: string;
  /** Send no postback for these Kite statuses (e.g. OPEN: Kite's docs do not promise one). */
  skipPostbackStatuses?: string[];
  /** The exchange fills at most this much of an order per price move (0 = all), for partial fills. */
  maxFillPerQuote?: number;
  /** Extra instruments: "EXCHANGE:SYMBOL" (NSE when no exchange) or with a fixed token, lot and tick. */
  instruments?: (string | { key: string; token?: number; lot_size?: number; tick_size?: number })[];
  /**
   * Kite's limits, enforced as a sliding 1 s window per kind (order = POST/PUT/DELETE on
   * /orders, quote = /quote*, other = the rest); a request over its limit gets HTTP 429.
   */
  rateLimits?: { order?: number; quote?: number; other?: number };
  /** The app's registered redirect URL: where the login page sends the browser. */
  redirectUrl?: string;
  apiSecret?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  body: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** performance.now() when the request arrived. */
  at: number;
}

interface Fault {
  method: string | undefined;
  path: string;
  kind: "fail" | "fail-after" | "delay" | "drop-response" | "drop-request" | "hang";
  status?: number;
  delayMs?: number;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

interface TickerConnection {
  ws: WebSocket;
  subs: Map<number, TickMode>;
  stalled: boolean;
}

interface Instrument {
  token: number;
  exchangeToken: number;
  exchange: Exchange;
  /** Kite's segment column: the exchange, NFO-FUT and the like, or INDICES. */
  segment: string;
  symbol: string;
  lotSize: number;
  tickSize: number;
}

const SEGMENT_OF: Record<string, number> = {
  NSE: SEGMENT.NSE,
  NFO: SEGMENT.NFO,
  CDS: SEGMENT.CDS,
  BSE: SEGMENT.BSE,
  BFO: SEGMENT.BFO,
  BCD: SEGMENT.BCD,
  MCX: SEGMENT.MCX,
  INDICES: SEGMENT.INDICES,
};

/** Real time for timestamps, but no timers: the paper exchange never moves prices by itself. */
const stillClock: Clock = {
  now: () => Date.now(),
  setTimeout: () => ({ id: 0 }),
  clearTimeout: () => undefined,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

const TAG = /^[A-Za-z0-9]{1,20}$/;
/** The varieties the fake takes (Kite also has co and auction, which this project never sends). */
const VARIETIES: ReadonlySet<string> = new Set(["regular", "amo", "iceberg"]);

export class FakeKite {
  readonly apiKey: string;
  readonly apiSecret: string;
  accessToken: string;
  /** Where the login page redirects (the app's registered redirect URL). */
  redirectUrl: string;
  /** Requests answered 429 by the rate limits. */
  rateLimited = 0;
  /** Session exchanges (POST /session/token) that succeeded. */
  sessions = 0;
  readonly paper: PaperBroker;
  readonly requests: RecordedRequest[] = [];
  /** Text frames the ticker received from clients, parsed. */
  readonly tickerMessages: unknown[] = [];
  /** Ticker handshakes accepted so far. */
  tickerConnects = 0;
  /** Ticker handshakes refused so far. */
  tickerRefusals = 0;

  readonly #options: FakeKiteOptions;
  readonly #rest: http.Server;
  readonly #tickerHttp: http.Server;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<TickerConnection>();
  readonly #faults: Fault[] = [];
  readonly #instruments = new Map<string, Instrument>();
  readonly #byToken = new Map<number, Instrument>();
  readonly #prices = new Map<number, number>();
  readonly #kiteIdOf = new Map<string, string>();
  readonly #paperIdOf = new Map<string, string>();
  /** Each order's variety, as placed: Kite changes and cancels it only under that variety's path. */
  readonly #varietyOf = new Map<string, string>();
  readonly #history = new Map<string, Record<string, unknown>[]>();
  readonly #triggerIdOf = new Map<string, number>();
  readonly #paperGttOf = new Map<number, string>();
  #nextOrder = 1;
  #nextTrigger = 100_001;
  #nextExchangeToken = 1000;
  #sessionValid = true;
  #refuseTicker = 0;
  #refuseStatus = 503;
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #requestTokens = new Set<string>();
  /** Kite's trade book, in fill order; `#heldTrades` are fills the book does not list yet. */
  readonly #trades: Record<string, unknown>[] = [];
  readonly #heldTrades: Record<string, unknown>[] = [];
  #holdingTrades = false;
  #nextTrade = 10_000_001;
  readonly #windows = new Map<string, number[]>();
  /** Left out of the order book for this many more reads (Kite lists a new order late). */
  readonly #unlisted = new Map<string, number>();
  #unlistNext = 0;

  private constructor(options: FakeKiteOptions) {
    this.#options = options;
    this.apiKey = options.apiKey ?? "kitekey";
    this.apiSecret = options.apiSecret ?? "kitesecret";
    this.accessToken = options.accessToken ?? "kitetoken";
    this.redirectUrl = options.redirectUrl ?? "http://127.0.0.1:1/callback";
    this.paper = new PaperBroker(
      {
        starting_cash: 1e10,
        slippage_bps: 0,
        spread_bps: 0,
        volatility: 0,
        seed: 1,
        retention: 100_000,
        max_fill_per_quote: options.maxFillPerQuote ?? 0,
      },
      { clock: stillClock },
    );
    this.paper.on("order", (event) => this.#onPaperOrder(event));
    this.#rest = http.createServer((req, res) => this.#onRequest(req, res));
    this.#tickerHttp = http.createServer((_req, res) => {
      res.writeHead(426).end();
    });
    this.#wss = new WebSocketServer({ noServer: true });
    this.#tickerHttp.on("upgrade", (req, socket, head) => this.#onUpgrade(req, socket, head));
    this.#addInstrument("NSE", "INFY", 408065);
    this.#addInstrument("NSE", "TCS", 2953217);
    this.#addInstrument("NSE", "RELIANCE", 738561);
    this.#addInstrument("CDS", "USDINR24JUNFUT");
    this.#addInstrument("BCD", "USDINR24JUNBFUT");
    // Kite lists indices under their exchange with segment INDICES; their tokens are segment 9.
    this.#addInstrument("NSE", "NIFTY 50", 256265, { segment: "INDICES", lotSize: 0, tickSize: 0 });
    this.#addInstrument("NSE", "NIFTY BANK", 260105, { segment: "INDICES", lotSize: 0, tickSize: 0 });
    this.#addInstrument("NSE", "INDIA VIX", 264969, { segment: "INDICES", lotSize: 0, tickSize: 0 });
    this.#addInstrument("NFO", "NIFTY26DECFUT", undefined, {
      segment: "NFO-FUT",
      lotSize: 75,
      tickSize: 0.1,
    });
    for (const entry of options.instruments ?? []) {
      const key = typeof entry === "string" ? entry : entry.key;
      const { exchange, symbol } = parseInstrument(key);
      if (typeof entry === "string") this.#addInstrument(exchange, symbol);
      else {
        this.#addInstrument(exchange, symbol, entry.token, {
          ...(entry.lot_size === undefined ? {} : { lotSize: entry.lot_size }),
          ...(entry.tick_size === undefined ? {} : { tickSize: entry.tick_size }),
        });
      }
    }
  }

  static async start(options: FakeKiteOptions = {}): Promise<FakeKite> {
    const fake = new FakeKite(options);
    await fake.paper.connect();
    await Promise.all([listen(fake.#rest), listen(fake.#tickerHttp)]);
    fake.#heartbeat = setInterval(() => fake.#broadcast(Buffer.from([0])), options.heartbeatMs ?? 1000);
    return fake;
  }

  get restUrl(): string {
    return `http://127.0.0.1:${(this.#rest.address() as AddressInfo).port}`;
  }

  get tickerUrl(): string {
    return `ws://127.0.0.1:${(this.#tickerHttp.address() as AddressInfo).port}`;
  }

  /** Ticker connections open right now. */
  get tickerConnections(): number {
    return this.#connections.size;
  }

  tokenOf(instrument: string): number {
    const { exchange, symbol } = parseInstrument(instrument);
    const found = this.#instruments.get(`${exchange}:${symbol}`);
    if (found === undefined) throw new Error(`fake Kite: no instrument ${instrument}`);
    return found.token;
  }

  /** Orders the exchange holds (each placement that reached it is one). */
  async orderCount(filter: (order: OrderSnapshot) => boolean = () => true): Promise<number> {
    return (await this.paper.getOrderbook()).filter(filter).length;
  }

  /** Moves the last price: resting orders and GTTs match, subscribed ticker clients get a tick. */
  setPrice(instrument: string, price: number): void {
    const { exchange, symbol } = parseInstrument(instrument);
    const instr = this.#instruments.get(`${exchange}:${symbol}`) ?? this.#addInstrument(exchange, symbol);
    this.#prices.set(instr.token, price);
    this.paper.setPrice(`${exchange}:${symbol}`, price);
    this.#sendTicks(instr.token);
  }

  // ---- fault injection --------------------------------------------------------------------------

  /** The next request to `path` ("POST /orders/regular" or just "/orders/regular") gets this reply. */
  failNext(
    path: string,
    status: number,
    body?: unknown,
    contentType?: string,
    headers?: Record<string, string>,
  ): void {
    this.#faults.push({ ...splitRule(path), kind: "fail", status, body, contentType, headers });
  }

  /**
   * The next request to `path` is carried out, then answered with `status` and `body` anyway (a
   * 500 or an HTML page from a proxy after the order was placed).
   */
  failAfter(path: string, status: number, body?: unknown, contentType?: string): void {
    this.#faults.push({ ...splitRule(path), kind: "fail-after", status, body, contentType });
  }

  /** The next request to `path` is carried out at once and answered `ms` later. */
  delayNext(path: string, ms: number): void {
    this.#faults.push({ ...splitRule(path), kind: "delay", delayMs: ms });
  }

  /** The next request to `path` is carried out, then its socket destroyed before any reply. */
  dropNextResponse(path: string): void {
    this.#faults.push({ ...splitRule(path), kind: "drop-response" });
  }

  /** The next request to `path` is dropped unread: it never takes effect. */
  dropNextRequest(path: string): void {
    this.#faults.push({ ...splitRule(path), kind: "drop-request" });
  }

  /**
   * Fills from now on stay out of the trade book (GET /trades, GET /orders/{id}/trades) until
   * releaseTrades(), as Kite's trade book may lag its order book.
   */
  holdTrades(): void {
    this.#holdingTrades = true;
  }

  releaseTrades(): void {
    this.#holdingTrades = false;
    this.#trades.push(...this.#heldTrades.splice(0));
  }

  /** Every trade the exchange has made so far (held ones too), as Kite's trade book writes them. */
  allTrades(): Record<string, unknown>[] {
    return [...this.#trades, ...this.#heldTrades].map((t) => ({ ...t }));
  }

  /** The next order placed is left out of the next `reads` order book answers (listed late). */
  listNextPlacementLate(reads: number): void {
    this.#unlistNext = reads;
  }

  /** Orders held back by listNextPlacementLate are listed from the next read on. */
  listLateOrdersNow(): void {
    this.#unlisted.clear();
  }

  /** Whether the order book lists this order now; each read it is left out of counts down. */
  #listed(kiteId: string): boolean {
    const left = this.#unlisted.get(kiteId);
    if (left === undefined) return true;
    if (left <= 1) this.#unlisted.delete(kiteId);
    else this.#unlisted.set(kiteId, left - 1);
    return false;
  }

  /** Sends a raw frame (binary Buffer or text) to every ticker connection. */
  sendTickerFrame(data: Buffer | string): void {
    this.#broadcast(data);
  }

  /** The next request to `path` is never answered (until close). */
  hangNext(path: string): void {
    this.#faults.push({ ...splitRule(path), kind: "hang" });
  }

  /** Connections open now go silent (no heartbeat, tick or postback) but stay open. */
  stallTicker(): void {
    for (const connection of this.#connections) connection.stalled = true;
  }

  /** Closes every ticker connection (as a server restart would). */
  closeTicker(code = 1001): void {
    for (const connection of this.#connections) connection.ws.close(code, "going away");
  }

  /** Refuses the next `count` ticker handshakes with `status`. */
  refuseTicker(count = Number.POSITIVE_INFINITY, status = 503): void {
    this.#refuseTicker = count;
    this.#refuseStatus = status;
  }

  acceptTicker(): void {
    this.#refuseTicker = 0;
  }

  /**
   * Closes every kept-alive REST connection that is idle, as a server does when its keep-alive
   * timeout runs out: a client that sends on one before it has read the close gets a reset.
   */
  closeIdleConnections(): void {
    this.#rest.closeIdleConnections();
  }

  /** The access token stops working: REST answers 403 TokenException, the ticker drops and refuses. */
  expireSession(): void {
    this.#sessionValid = false;
    for (const connection of this.#connections) connection.ws.terminate();
  }

  /** A new login: `token` is accepted from now on. */
  renewSession(token: string): void {
    this.accessToken = token;
    this.#sessionValid = true;
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const connection of this.#connections) connection.ws.terminate();
    this.#connections.clear();
    this.#wss.close();
    this.#rest.closeAllConnections();
    this.#tickerHttp.closeAllConnections();
    await Promise.all([closeServer(this.#rest), closeServer(this.#tickerHttp)]);
    await this.paper.close();
  }

  // ---- instruments ------------------------------------------------------------------------------

  #addInstrument(
    exchange: Exchange,
    symbol: string,
    token?: number,
    extra: Partial<Pick<Instrument, "segment" | "lotSize" | "tickSize">> = {},
  ): Instrument {
    const segment = extra.segment ?? exchange;
    const exchangeToken = token === undefined ? this.#nextExchangeToken++ : token >>> 8;
    const instr: Instrument = {
      token: token ?? exchangeToken * 256 + (SEGMENT_OF[segment] ?? SEGMENT_OF[exchange] ?? 1),
      exchangeToken,
      exchange,
      segment,
      symbol,
      lotSize: extra.lotSize ?? 1,
      tickSize: extra.tickSize ?? 0.05,
    };
    this.#instruments.set(`${exchange}:${symbol}`, instr);
    this.#byToken.set(instr.token, instr);
    return instr;
  }

  #instrumentsCsv(exchange: string | undefined): string {
    const header =
      "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange";
    const rows = Array.from(this.#instruments.values())
      .filter((i) => exchange === undefined || i.exchange === exchange)
      .map((i) => {
        const name = i.symbol.includes(" ") || i.symbol.includes(",") ? `"${i.symbol}"` : i.symbol;
        const type = i.segment === "NFO-FUT" ? "FUT" : "EQ";
        const expiry = i.segment === "NFO-FUT" ? "2026-12-29" : "";
        return `${i.token},${i.exchangeToken},${name},"${i.symbol}, Ltd",${this.#prices.get(i.token) ?? 0},${expiry},0,${i.tickSize},${i.lotSize},${type},${i.segment},${i.exchange}`;
      });
    // Kite's dump ends with a newline (kiteconnect's parser makes an empty last row of it).
    return `${header}\n${rows.join("\n")}\n`;
  }

  // ---- REST -------------------------------------------------------------------------------------

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      void this.#handle(req, res, Buffer.concat(chunks).toString("utf8"));
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse, rawBody: string): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    const query: Record<string, string | string[]> = {};
    for (const key of new Set(url.searchParams.keys())) {
      const all = url.searchParams.getAll(key);
      query[key] = all.length === 1 ? all[0]! : all;
    }
    const body =
      method === "POST" || method === "PUT" ? Object.fromEntries(new URLSearchParams(rawBody)) : {};
    const at = performance.now();
    this.requests.push({ method, path: url.pathname, query, body, headers: req.headers, at });
    if (method === "GET" && url.pathname === "/connect/login") {
      this.#loginPage(url, res);
      return;
    }
    if (this.#overLimit(method, url.pathname, at)) {
      this.rateLimited += 1;
      res.writeHead(429, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          status: "error",
          message: "Too many requests",
          data: null,
          error_type: "NetworkException",
        }),
      );
      return;
    }

    const faultIndex = this.#faults.findIndex(
      (f) => f.path === url.pathname && (f.method === undefined || f.method === method),
    );
    const fault = faultIndex < 0 ? undefined : this.#faults.splice(faultIndex, 1)[0];
    if (fault?.kind === "hang") return;
    if (fault?.kind === "drop-request") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "fail") {
      const payload = fault.body ?? {
        status: "error",
        message: "injected failure",
        error_type: "GeneralException",
      };
      const isText = typeof payload === "string";
      res.writeHead(fault.status ?? 500, {
        "Content-Type": fault.contentType ?? (isText ? "text/plain" : "application/json"),
        ...fault.headers,
      });
      res.end(isText ? payload : JSON.stringify(payload));
      return;
    }

    let status = 200;
    let reply: { json?: unknown; csv?: string };
    try {
      if (method === "POST" && url.pathname === "/session/token") reply = { json: this.#exchange(body) };
      else {
        this.#checkAuth(req);
        reply = await this.#route(method, url.pathname, query, body, req);
      }
    } catch (error) {
      const err = toHttpError(error);
      status = err.status;
      reply = { json: { status: "error", message: err.message, data: null, error_type: err.errorType } };
    }
    if (fault?.kind === "drop-response") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "fail-after") {
      const isText = typeof fault.body === "string";
      res.writeHead(fault.status ?? 500, {
        "Content-Type": fault.contentType ?? (isText ? "text/html" : "application/json"),
      });
      res.end(
        isText
          ? (fault.body as string)
          : JSON.stringify(
              fault.body ?? { status: "error", message: "injected failure", error_type: "GeneralException" },
            ),
      );
      return;
    }
    // Unref'd: a long delay (an answer 30 s late) does not keep a test process alive after close().
    if (fault?.kind === "delay") await new Promise((resolve) => setTimeout(resolve, fault.delayMs).unref());
    if (reply.csv !== undefined) {
      res.writeHead(status, { "Content-Type": this.#options.csvContentType ?? "text/csv" });
      res.end(reply.csv);
      return;
    }
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(status === 200 ? { status: "success", data: reply.json } : reply.json));
  }

  #overLimit(method: string, path: string, at: number): boolean {
    const limits = this.#options.rateLimits;
    if (limits === undefined) return false;
    const kind =
      method !== "GET" && path.startsWith("/orders/")
        ? "order"
        : path.startsWith("/quote")
          ? "quote"
          : "other";
    const limit = limits[kind];
    if (limit === undefined) return false;
    const window = (this.#windows.get(kind) ?? []).filter((t) => at - t < 1000);
    this.#windows.set(kind, window);
    if (window.length >= limit) return true;
    window.push(at);
    return false;
  }

  /**
   * Kite's login page, already logged in: straight to the app's redirect URL with a one-time
   * request_token, and the app's own `redirect_params` appended (where a CSRF state travels).
   */
  #loginPage(url: URL, res: http.ServerResponse): void {
    if (url.searchParams.get("api_key") !== this.apiKey || url.searchParams.get("v") !== "3") {
      res.writeHead(400, { "Content-Type": "text/html" }).end("<h1>Invalid api_key</h1>");
      return;
    }
    const token = randomBytes(16).toString("hex");
    this.#requestTokens.add(token);
    const target = new URL(this.redirectUrl);
    const extra = new URLSearchParams(url.searchParams.get("redirect_params") ?? "");
    for (const [key, value] of extra) target.searchParams.append(key, value);
    target.searchParams.set("action", "login");
    target.searchParams.set("type", "login");
    target.searchParams.set("status", "success");
    target.searchParams.set("request_token", token);
    res.writeHead(302, { Location: target.toString() }).end();
  }

  /** POST /session/token: a request_token is good once, with the checksum Kite documents. */
  #exchange(body: Record<string, string>): Record<string, unknown> {
    const token = body.request_token ?? "";
    const expected = createHash("sha256").update(`${this.apiKey}${token}${this.apiSecret}`).digest("hex");
    if (body.api_key !== this.apiKey || body.checksum !== expected || !this.#requestTokens.delete(token)) {
      throw new HttpError(403, "TokenException", "Token is invalid or has expired.");
    }
    this.sessions += 1;
    const access = `tok${randomBytes(12).toString("hex")}`;
    this.renewSession(access);
    return {
      user_type: "individual",
      email: "trader@example.invalid",
      user_name: "Test Trader",
      user_shortname: "Trader",
      broker: "ZERODHA",
      exchanges: ["NSE", "BSE", "NFO"],
      products: ["CNC", "NRML", "MIS"],
      order_types: ["MARKET", "LIMIT", "SL", "SL-M"],
      avatar_url: null,
      user_id: "AB1234",
      api_key: this.apiKey,
      access_token: access,
      public_token: `pub${randomBytes(8).toString("hex")}`,
      refresh_token: "",
      enctoken: "",
      login_time: formatKiteTimestamp(Date.now()),
      meta: { demat_consent: "physical" },
    };
  }

  /**
   * Candles every `interval` from `from` to `to` (IST wall clock, as Kite takes them), timestamps
   * as Kite writes them ("2026-12-04T09:15:00+0530"); candle i closes at 100 + i.
   */
  #candles(token: number, interval: string, query: Record<string, string | string[]>): unknown[][] {
    if (!this.#byToken.has(token)) throw new HttpError(400, "InputException", "invalid token");
    const minutes: Record<string, number> = {
      minute: 1,
      "3minute": 3,
      "5minute": 5,
      "15minute": 15,
      day: 1440,
    };
    const step = minutes[interval];
    if (step === undefined) throw new HttpError(400, "InputException", "invalid interval");
    const parse = (text: unknown): number => {
      const t = typeof text === "string" ? Date.parse(`${text.replace(" ", "T")}+05:30`) : Number.NaN;
      if (Number.isNaN(t)) throw new HttpError(400, "InputException", "invalid from or to");
      return t;
    };
    const from = parse(query.from);
    const to = parse(query.to);
    const rows: unknown[][] = [];
    for (let t = from, i = 0; t <= to && i < 5000; t += step * 60_000, i++) {
      const ist = new Date(t + 330 * 60_000).toISOString().slice(0, 19);
      const close = 100 + i;
      rows.push([`${ist}+0530`, close - 0.5, close + 1, close - 1, close, 1000 + i]);
    }
    return rows;
  }

  #checkAuth(req: http.IncomingMessage): void {
    const version = req.headers["x-kite-version"];
    const auth = req.headers.authorization;
    if (version !== "3" || !this.#sessionValid || auth !== `token ${this.apiKey}:${this.accessToken}`) {
      throw new HttpError(403, "TokenException", "Incorrect `api_key` or `access_token`.");
    }
  }

  async #route(
    method: string,
    path: string,
    query: Record<string, string | string[]>,
    body: Record<string, string>,
    req: http.IncomingMessage,
  ): Promise<{ json?: unknown; csv?: string }> {
    if (
      (method === "POST" || method === "PUT") &&
      !/^application\/x-www-form-urlencoded/.test(req.headers["content-type"] ?? "")
    ) {
      throw new HttpError(400, "InputException", "Body must be form-encoded.");
    }
    let m: RegExpExecArray | null;
    if (method === "GET" && path === "/orders") {
      const book = (await this.paper.getOrderbook()).filter((o) => this.#listed(this.#kiteId(o.order_id)));
      return { json: book.map((o) => this.#kiteOrder(o, this.#bookStatus(o))) };
    }
    if ((m = /^\/orders\/([^/]+)$/.exec(path)) !== null) {
      const [, second] = m as unknown as [string, string];
      if (method === "POST") return { json: await this.#placeOrder(second, body) };
      if (method === "GET") {
        const history = this.#history.get(second);
        if (history === undefined)
          throw new HttpError(400, "InputException", "Couldn't find that `order_id`.");
        return { json: history };
      }
    }
    if (method === "GET" && path === "/trades") return { json: this.#trades.map((t) => ({ ...t })) };
    if (method === "GET" && (m = /^\/orders\/([^/]+)\/trades$/.exec(path)) !== null) {
      const kiteId = m[1]!;
      if (!this.#paperIdOf.has(kiteId))
        throw new HttpError(400, "InputException", "Couldn't find that `order_id`.");
      return { json: this.#trades.filter((t) => t.order_id === kiteId).map((t) => ({ ...t })) };
    }
    if ((m = /^\/orders\/([^/]+)\/([^/]+)$/.exec(path)) !== null) {
      const [, variety, kiteId] = m as unknown as [string, string, string];
      if (!VARIETIES.has(variety)) throw new HttpError(400, "InputException", "Invalid `variety`.");
      const placedAs = this.#varietyOf.get(kiteId);
      if (placedAs !== undefined && placedAs !== variety) {
        throw new HttpError(
          400,
          "InputException",
          `Invalid \`variety\`: order ${kiteId} is a ${placedAs} order, not ${variety}.`,
        );
      }
      if (method === "PUT") return { json: await this.#modifyOrder(kiteId, body) };
      if (method === "DELETE") return { json: await this.#cancelOrder(kiteId) };
    }
    if (method === "GET" && path === "/user/profile") {
      return {
        json: { user_id: "AB1234", user_name: "Test Trader", user_shortname: "Trader", broker: "ZERODHA" },
      };
    }
    if (method === "GET" && path === "/portfolio/positions") {
      const positions = (await this.paper.getPositions()).map((p) => ({
        tradingsymbol: p.symbol,
        exchange: p.exchange,
        instrument_token: this.#instruments.get(`${p.exchange}:${p.symbol}`)?.token ?? 0,
        product: p.product,
        quantity: p.quantity,
        overnight_quantity: 0,
        multiplier: 1,
        average_price: p.average_price,
        close_price: 0,
        last_price: p.last_price,
        value: -p.quantity * p.average_price,
        pnl: p.realized_pnl + p.unrealized_pnl,
        m2m: p.realized_pnl + p.unrealized_pnl,
        unrealised: p.unrealized_pnl,
        realised: p.realized_pnl,
      }));
      return { json: { net: positions, day: positions } };
    }
    if (method === "GET" && (path === "/user/margins" || path === "/user/margins/equity")) {
      const account = await this.paper.getAccount();
      const equity = {
        enabled: true,
        net: account.equity,
        available: {
          adhoc_margin: 0,
          cash: account.cash,
          opening_balance: account.cash,
          live_balance: account.cash,
        },
        utilised: {
          debits: 0,
          exposure: 0,
          m2m_realised: account.realized_pnl,
          m2m_unrealised: account.unrealized_pnl,
        },
      };
      return { json: path === "/user/margins" ? { equity, commodity: equity } : equity };
    }
    if (method === "GET" && (m = /^\/instruments\/historical\/(\d+)\/([a-z0-9]+)$/.exec(path)) !== null) {
      return { json: { candles: this.#candles(Number(m[1]), m[2]!, query) } };
    }
    if (method === "GET" && (m = /^\/instruments(?:\/([A-Z]+))?$/.exec(path)) !== null) {
      return { csv: this.#instrumentsCsv(m[1]) };
    }
    if (method === "GET" && path === "/quote/ltp") {
      const wanted = query.i === undefined ? [] : Array.isArray(query.i) ? query.i : [query.i];
      const data: Record<string, unknown> = {};
      for (const key of wanted) {
        const instr = this.#instruments.get(key);
        const price = instr === undefined ? undefined : this.#prices.get(instr.token);
        if (instr !== undefined && price !== undefined)
          data[key] = { instrument_token: instr.token, last_price: price };
      }
      return { json: data };
    }
    if (path === "/gtt/triggers") {
      if (method === "GET") return { json: await this.#triggers() };
      if (method === "POST") return { json: { trigger_id: await this.#placeGtt(body) } };
    }
    if ((m = /^\/gtt\/triggers\/(\d+)$/.exec(path)) !== null) {
      const id = Number(m[1]);
      const paperId = this.#paperGttOf.get(id);
      if (paperId === undefined) throw new HttpError(404, "GeneralException", "Trigger not found.");
      if (method === "GET") {
        const found = (await this.#triggers()).find((t) => t.id === id);
        if (found === undefined) throw new HttpError(404, "GeneralException", "Trigger not found.");
        return { json: found };
      }
      if (method === "PUT") {
        await this.paper.modifyGtt(paperId, this.#gttRequest(body)).catch(gttError);
        return { json: { trigger_id: id } };
      }
      if (method === "DELETE") {
        await this.paper.deleteGtt(paperId).catch(gttError);
        return { json: { trigger_id: id } };
      }
    }
    throw new HttpError(404, "GeneralException", `Route not found: ${method} ${path}`);
  }

  async #placeOrder(variety: string, body: Record<string, string>): Promise<{ order_id: string }> {
    if (!VARIETIES.has(variety)) throw new HttpError(400, "InputException", "Invalid `variety`.");
    // Kite's place endpoint takes the variety from the path; kiteconnect also sends it in the body.
    if (body.variety !== undefined && body.variety !== variety) {
      throw new HttpError(400, "InputException", "Invalid `variety`: the path and the body disagree.");
    }
    if (body.tag !== undefined && !TAG.test(body.tag)) {
      throw new HttpError(400, "InputException", "Invalid `tag`: alphanumeric, at most 20 characters.");
    }
    const orderType = body.order_type;
    if (orderType === "MARKET" || orderType === "SL-M") {
      const protection = Number(body.market_protection ?? "0");
      if (!(protection === -1 || (protection >= 1 && protection <= 100))) {
        throw new HttpError(
          400,
          "InputException",
          "Market orders without market protection are not allowed. Set `market_protection`.",
        );
      }
    }
    const request: Record<string, unknown> = {
      symbol: body.tradingsymbol,
      exchange: body.exchange,
      side: body.transaction_type,
      quantity: Number(body.quantity),
      order_type: orderType,
      product: body.product,
      validity: body.validity,
    };
    if (body.price !== undefined && Number(body.price) > 0) request.price = Number(body.price);
    if (body.trigger_price !== undefined && Number(body.trigger_price) > 0) {
      request.trigger_price = Number(body.trigger_price);
    }
    if (body.tag !== undefined) request.tag = body.tag;
    if (variety !== "regular") request.variety = variety;
    // Kite's whole-number options; the exchange (the paper broker) applies their rules.
    for (const key of ["validity_ttl", "disclosed_quantity", "iceberg_legs", "iceberg_quantity"] as const) {
      if (body[key] !== undefined && Number(body[key]) !== 0) request[key] = Number(body[key]);
    }
    const order = await this.paper.placeOrder(request as OrderRequestInput).catch(orderError("placed"));
    const kiteId = this.#kiteId(order.order_id);
    this.#varietyOf.set(kiteId, variety);
    if (this.#unlistNext > 0) {
      this.#unlisted.set(kiteId, this.#unlistNext);
      this.#unlistNext = 0;
    }
    return { order_id: kiteId };
  }

  async #modifyOrder(kiteId: string, body: Record<string, string>): Promise<{ order_id: string }> {
    const paperId = this.#paperIdOf.get(kiteId);
    if (paperId === undefined) throw new HttpError(400, "InputException", "Couldn't find that `order_id`.");
    const changes: Record<string, unknown> = {};
    for (const key of ["quantity", "price", "trigger_price", "disclosed_quantity"] as const) {
      if (body[key] !== undefined) changes[key] = Number(body[key]);
    }
    for (const key of ["order_type", "validity"] as const)
      if (body[key] !== undefined) changes[key] = body[key];
    await this.paper.modifyOrder(paperId, changes as OrderChanges).catch(orderError("modified"));
    return { order_id: kiteId };
  }

  async #cancelOrder(kiteId: string): Promise<{ order_id: string }> {
    const paperId = this.#paperIdOf.get(kiteId);
    if (paperId === undefined) throw new HttpError(400, "InputException", "Couldn't find that `order_id`.");
    await this.paper.cancelOrder(paperId).catch(orderError("cancelled"));
    return { order_id: kiteId };
  }

  #kiteId(paperId: string): string {
    let id = this.#kiteIdOf.get(paperId);
    if (id === undefined) {
      id = String(250_612_000_000_000 + this.#nextOrder++);
      this.#kiteIdOf.set(paperId, id);
      this.#paperIdOf.set(id, paperId);
    }
    return id;
  }

  #bookStatus(order: OrderSnapshot): string {
    switch (order.status) {
      case "PENDING":
        return "OPEN PENDING";
      case "OPEN":
      case "PARTIALLY_FILLED":
        return "OPEN";
      case "TRIGGER_PENDING":
        return "TRIGGER PENDING";
      case "FILLED":
        return "COMPLETE";
      case "CANCELLED":
      case "EXPIRED":
        return "CANCELLED";
      case "REJECTED":
        return "REJECTED";
    }
  }

  /** An order as Kite's order book, history and postbacks write it. */
  #kiteOrder(order: OrderSnapshot, status: string): Record<string, unknown> {
    const kiteId = this.#kiteId(order.order_id);
    const placed = formatKiteTimestamp(Date.parse(order.placed_at));
    const updated = formatKiteTimestamp(Date.parse(order.timestamp));
    const cancelled =
      order.status === "CANCELLED" || order.status === "EXPIRED" ? order.quantity - order.filled_quantity : 0;
    return {
      placed_by: "AB1234",
      order_id: kiteId,
      exchange_order_id: order.status === "REJECTED" ? null : `1100000${kiteId.slice(-9)}`,
      parent_order_id: null,
      status,
      status_message: order.status_message ?? null,
      status_message_raw: order.status_message ?? null,
      order_timestamp: placed,
      exchange_update_timestamp: updated,
      exchange_timestamp: order.status === "REJECTED" ? null : updated,
      variety: order.variety ?? "regular",
      modified: false,
      exchange: order.exchange,
      tradingsymbol: order.symbol,
      instrument_token: this.#instruments.get(`${order.exchange}:${order.symbol}`)?.token ?? 0,
      order_type: order.order_type,
      transaction_type: order.side,
      validity: order.validity,
      validity_ttl: order.validity_ttl ?? 0,
      product: order.product,
      quantity: order.quantity,
      disclosed_quantity: order.disclosed_quantity ?? 0,
      price: order.price ?? 0,
      trigger_price: order.trigger_price ?? 0,
      average_price: order.average_price,
      filled_quantity: order.filled_quantity,
      pending_quantity:
        order.status === "OPEN" || order.status === "PARTIALLY_FILLED" || order.status === "TRIGGER_PENDING"
          ? order.quantity - order.filled_quantity
          : 0,
      cancelled_quantity: cancelled,
      market_protection: 0,
      meta:
        order.variety === "iceberg" &&
        order.iceberg_legs !== undefined &&
        order.iceberg_quantity !== undefined
          ? {
              iceberg: {
                leg: Math.min(
                  order.iceberg_legs,
                  Math.floor(order.filled_quantity / order.iceberg_quantity) + 1,
                ),
                legs: order.iceberg_legs,
                leg_quantity: order.iceberg_quantity,
                total_quantity: order.quantity,
                remaining_quantity: order.quantity - order.filled_quantity,
              },
            }
          : {},
      tag: order.tag ?? null,
      tags: order.tag === undefined ? [] : [order.tag],
      guid: `guid${kiteId}`,
    };
  }

  #onPaperOrder(event: OrderEvent): void {
    const bookStatus = this.#bookStatus(event.order);
    const entry = this.#kiteOrder(event.order, bookStatus);
    const kiteId = entry.order_id as string;
    const history = this.#history.get(kiteId) ?? [];
    history.push(entry);
    this.#history.set(kiteId, history);
    for (const trade of event.trades ?? []) {
      const at = formatKiteTimestamp(Date.parse(trade.timestamp));
      const row = {
        trade_id: String(this.#nextTrade++),
        order_id: kiteId,
        exchange: event.order.exchange,
        tradingsymbol: event.order.symbol,
        instrument_token: entry.instrument_token,
        product: event.order.product,
        average_price: trade.price,
        quantity: trade.quantity,
        exchange_order_id: entry.exchange_order_id,
        transaction_type: event.order.side,
        fill_timestamp: at,
        order_timestamp: entry.order_timestamp,
        exchange_timestamp: at,
      };
      (this.#holdingTrades ? this.#heldTrades : this.#trades).push(row);
    }
    const postbackStatus =
      event.type === "ORDER_MODIFIED" || event.type === "ORDER_PARTIALLY_FILLED" ? "UPDATE" : bookStatus;
    if (this.#options.skipPostbackStatuses?.includes(postbackStatus)) return;
    const data = {
      ...entry,
      status: postbackStatus,
      user_id: "AB1234",
      app_id: 1234,
      unfilled_quantity: event.order.quantity - event.order.filled_quantity,
      checksum: "0".repeat(64),
    };
    this.#broadcast(JSON.stringify({ type: "order", data }));
  }

  // ---- GTTs -------------------------------------------------------------------------------------

  #gttRequest(body: Record<string, string>): GttRequestInput {
    let condition: {
      exchange: Exchange;
      tradingsymbol: string;
      trigger_values: number[];
      last_price?: number;
    };
    let orders: {
      transaction_type: "BUY" | "SELL";
      quantity: number;
      price: number;
      product: "CNC" | "MIS" | "NRML";
      order_type: string;
    }[];
    try {
      condition = JSON.parse(body.condition ?? "");
      orders = JSON.parse(body.orders ?? "");
    } catch {
      throw new HttpError(400, "InputException", "Invalid `condition` or `orders`.");
    }
    return {
      type: body.type as "single",
      symbol: condition.tradingsymbol,
      exchange: condition.exchange,
      ...(condition.last_price === undefined ? {} : { last_price: condition.last_price }),
      trigger_values: condition.trigger_values as [number],
      orders: orders.map((o) => ({
        side: o.transaction_type,
        quantity: o.quantity,
        price: o.price,
        product: o.product,
        order_type: o.order_type as "LIMIT",
      })) as unknown as [{ side: "BUY"; quantity: number; price: number }],
    };
  }

  async #placeGtt(body: Record<string, string>): Promise<number> {
    const gtt = await this.paper.placeGtt(this.#gttRequest(body)).catch(gttError);
    const id = this.#nextTrigger++;
    this.#triggerIdOf.set(gtt.gtt_id, id);
    this.#paperGttOf.set(id, gtt.gtt_id);
    return id;
  }

  async #triggers(): Promise<Record<string, unknown>[]> {
    const gtts = await this.paper.getGtts();
    return gtts
      .filter((g) => this.#triggerIdOf.has(g.gtt_id))
      .map((g) => this.#kiteTrigger(g, this.#triggerIdOf.get(g.gtt_id)!));
  }

  #kiteTrigger(gtt: GttSnapshot, id: number): Record<string, unknown> {
    const created = Date.parse(gtt.created_at);
    return {
      id,
      user_id: "AB1234",
      parent_trigger: null,
      type: gtt.type,
      created_at: formatKiteTimestamp(created),
      updated_at: formatKiteTimestamp(Date.parse(gtt.updated_at)),
      expires_at: formatKiteTimestamp(created + 365 * 86_400_000),
      status: gtt.status,
      condition: {
        exchange: gtt.exchange,
        last_price: gtt.last_price ?? 0,
        tradingsymbol: gtt.symbol,
        trigger_values: gtt.trigger_values,
        instrument_token: this.#instruments.get(`${gtt.exchange}:${gtt.symbol}`)?.token ?? 0,
      },
      orders: gtt.orders.map((o, leg) => ({
        exchange: gtt.exchange,
        tradingsymbol: gtt.symbol,
        product: o.product,
        order_type: o.order_type,
        transaction_type: o.side,
        quantity: o.quantity,
        price: o.price,
        result:
          gtt.triggered_leg === leg
            ? {
                account_id: "AB1234",
                exchange: gtt.exchange,
                tradingsymbol: gtt.symbol,
                validity: "DAY",
                price: o.price,
                quantity: o.quantity,
                timestamp: formatKiteTimestamp(Date.parse(gtt.updated_at)),
                triggered_at: o.price,
                order_result: {
                  status: "success",
                  order_id: gtt.order_ids[0] === undefined ? "" : this.#kiteId(gtt.order_ids[0]),
                  rejection_reason: "",
                },
                order_type: o.order_type,
                transaction_type: o.side,
                product: o.product,
                meta: null,
              }
            : null,
      })),
      meta: null,
    };
  }

  // ---- ticker -----------------------------------------------------------------------------------

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const refuse = (status: number, text: string): void => {
      this.tickerRefusals += 1;
      // The HTTP server no longer listens for this socket's errors: a client resetting it after
      // the refusal (the broker's ticker does) would be an uncaught ECONNRESET in whatever test runs.
      socket.on("error", () => socket.destroy());
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (
      !this.#sessionValid ||
      url.searchParams.get("api_key") !== this.apiKey ||
      url.searchParams.get("access_token") !== this.accessToken
    ) {
      refuse(403, "Forbidden");
      return;
    }
    if (this.#refuseTicker > 0) {
      this.#refuseTicker -= 1;
      refuse(this.#refuseStatus, "Service Unavailable");
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws));
  }

  #onConnection(ws: WebSocket): void {
    this.tickerConnects += 1;
    const connection: TickerConnection = { ws, subs: new Map(), stalled: false };
    this.#connections.add(connection);
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let message: { a?: unknown; v?: unknown };
      try {
        message = JSON.parse((data as Buffer).toString("utf8"));
      } catch {
        return;
      }
      this.tickerMessages.push(message);
      this.#onTickerMessage(connection, message);
    });
    ws.on("close", () => this.#connections.delete(connection));
    ws.on("error", () => undefined);
  }

  #onTickerMessage(connection: TickerConnection, message: { a?: unknown; v?: unknown }): void {
    if (message.a === "subscribe" && Array.isArray(message.v)) {
      const tokens = message.v.filter((t): t is number => typeof t === "number");
      for (const token of tokens) if (!connection.subs.has(token)) connection.subs.set(token, "quote");
      this.#snapshot(connection, tokens);
    } else if (message.a === "unsubscribe" && Array.isArray(message.v)) {
      for (const token of message.v) if (typeof token === "number") connection.subs.delete(token);
    } else if (message.a === "mode" && Array.isArray(message.v)) {
      const [mode, tokens] = message.v as [unknown, unknown];
      if ((mode === "ltp" || mode === "quote" || mode === "full") && Array.isArray(tokens)) {
        const list = tokens.filter((t): t is number => typeof t === "number");
        for (const token of list) connection.subs.set(token, mode);
        this.#snapshot(connection, list);
      }
    }
  }

  /** Kite sends the current state of instruments as they are subscribed. */
  #snapshot(connection: TickerConnection, tokens: number[]): void {
    const packets: Buffer[] = [];
    for (const token of tokens) {
      const packet = this.#packet(token, connection.subs.get(token) ?? "quote");
      if (packet !== undefined) packets.push(packet);
    }
    if (packets.length > 0 && !connection.stalled) connection.ws.send(encodeFrame(packets));
  }

  #packet(token: number, mode: TickMode): Buffer | undefined {
    const price = this.#prices.get(token);
    if (price === undefined) return undefined;
    const now = Math.floor(Date.now() / 1000);
    return encodePacket(
      {
        token,
        last_price: price,
        last_traded_quantity: 1,
        volume: 1000,
        last_trade_time: now,
        exchange_timestamp: now,
        bids: [{ quantity: 10, price, orders: 1 }],
        asks: [{ quantity: 10, price, orders: 1 }],
      },
      mode,
    );
  }

  #sendTicks(token: number): void {
    for (const connection of this.#connections) {
      const mode = connection.subs.get(token);
      if (mode === undefined || connection.stalled || connection.ws.readyState !== WebSocket.OPEN) continue;
      const packet = this.#packet(token, mode);
      if (packet !== undefined) connection.ws.send(encodeFrame([packet]));
    }
  }

  #broadcast(data: Buffer | string): void {
    for (const connection of this.#connections) {
      if (!connection.stalled && connection.ws.readyState === WebSocket.OPEN) connection.ws.send(data);
    }
  }
}

function splitRule(rule: string): { method: string | undefined; path: string } {
  const space = rule.indexOf(" ");
  return space < 0
    ? { method: undefined, path: rule }
    : { method: rule.slice(0, space), path: rule.slice(space + 1) };
}

function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(500, "GeneralException", message);
}

function orderError(verb: string): (error: unknown) => never {
  return (error: unknown) => {
    if (error instanceof BrokerError) {
      if (error.code === "VALIDATION") throw new HttpError(400, "InputException", error.message);
      if (error.code === "NOT_FOUND")
        throw new HttpError(400, "InputException", "Couldn't find that `order_id`.");
      if (error.code === "ORDER_TERMINAL") {
        throw new HttpError(400, "InputException", `Order cannot be ${verb}: ${error.message}`);
      }
    }
    throw error;
  };
}

function gttError(error: unknown): never {
  if (error instanceof BrokerError) {
    if (error.code === "VALIDATION" || error.code === "NO_QUOTE")
      throw new HttpError(400, "InputException", error.message);
    if (error.code === "NOT_FOUND") throw new HttpError(404, "GeneralException", "Trigger not found.");
    if (error.code === "ORDER_TERMINAL")
      throw new HttpError(400, "InputException", `Trigger is not active: ${error.message}`);
  }
  throw error;
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
