import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { BrokerError } from "../protocol/errors";
import { Backoff } from "../ws/backoff";
import type { BackoffOptions } from "../ws/backoff";
import type { Tick, TickMode } from "./ticker-parser";
import { TickerFrameError, isHeartbeat, parseTickerFrame } from "./ticker-parser";

export type TickerState = "connecting" | "connected" | "reconnecting" | "disconnected";

export interface KiteTickerOptions {
  /** ws:// or wss:// root (Kite: wss://ws.kite.trade); the credentials go in its query string. */
  url: string;
  apiKey: string;
  accessToken: string;
  backoff?: Partial<BackoffOptions>;
  /** No frame (Kite sends a heartbeat every second) for this long: the link is presumed dead. */
  readTimeoutMs?: number;
  /** From dialling to "open". */
  handshakeTimeoutMs?: number;
  /** A connection that stays up this long resets the backoff. */
  stableAfterMs?: number;
  /** How long close() waits for the server's closing handshake before destroying the socket. */
  closeTimeoutMs?: number;
}

export type TickerEvents = {
  state: [state: TickerState, reason?: string];
  /** After every successful (re)connect, once the subscriptions have been sent again. */
  open: [reconnect: boolean];
  ticks: [ticks: Tick[]];
  /** A `{type:"order", data}` postback: data as Kite sent it. */
  order: [data: unknown];
  error: [error: BrokerError];
};

const DEFAULTS = {
  readTimeoutMs: 5000,
  handshakeTimeoutMs: 5000,
  stableAfterMs: 5000,
  closeTimeoutMs: 1000,
  backoff: { initialMs: 250, factor: 2, maxMs: 10_000 },
} as const;

/** Kite allows 3000 instruments per connection. */
export const MAX_TOKENS = 3000;

/**
 * Our own client for Kite's ticker WebSocket (KITE.md §7-8, §11.1-3): kiteconnect's KiteTicker keeps
 * its socket and handlers in module-global state and calls process.exit(1) when it gives up, which
 * would take Node-RED down. This one is an instance per broker, never exits anything, reconnects
 * with full-jitter backoff for as long as it runs (except after a 403: the token is dead, and only
 * a new one helps), treats silence longer than the read timeout as a dead link, and subscribes
 * again after every reconnect.
 */
export class KiteTickerClient extends EventEmitter<TickerEvents> {
  readonly #url: string;
  readonly #apiKey: string;
  #accessToken: string;
  readonly #readTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #stableAfterMs: number;
  readonly #closeTimeoutMs: number;
  readonly #backoff: Backoff;
  /** What we want subscribed, by token; sent again after every reconnect. */
  readonly #subscriptions = new Map<number, TickMode>();

  #ws: WebSocket | undefined;
  #wsClosed: Promise<void> = Promise.resolve();
  #state: TickerState = "disconnected";
  #running = false;
  #closed = false;
  #everOpened = false;
  #openedAt = 0;
  #reason: string | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #readTimer: NodeJS.Timeout | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #connects = 0;

  constructor(options: KiteTickerOptions) {
    super();
    const parsed = new URL(options.url);
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new RangeError(`ticker url must be ws:// or wss://, got ${parsed.protocol}//`);
    }
    this.#url = options.url;
    this.#apiKey = options.apiKey;
    this.#accessToken = options.accessToken;
    this.#readTimeoutMs = options.readTimeoutMs ?? DEFAULTS.readTimeoutMs;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs;
    this.#stableAfterMs = options.stableAfterMs ?? DEFAULTS.stableAfterMs;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    this.#backoff = new Backoff({ ...DEFAULTS.backoff, ...options.backoff });
  }

  get state(): TickerState {
    return this.#state;
  }

  /** Successful connections so far (the first one included). */
  get connects(): number {
    return this.#connects;
  }

  get subscriptions(): ReadonlyMap<number, TickMode> {
    return this.#subscriptions;
  }

  /** Connects, and keeps reconnecting until stop() or close(). Does nothing while running. */
  start(): void {
    if (this.#closed) throw new BrokerError("CLOSED", "ticker client is closed");
    if (this.#running) return;
    this.#running = true;
    this.#setState(this.#everOpened ? "reconnecting" : "connecting");
    this.#dial();
  }

  /** Takes effect from the next connection (after a new login). */
  setAccessToken(token: string): void {
    this.#accessToken = token;
  }

  /**
   * While running, drops the connection so the next one carries the current token (a new login
   * switches over without waiting for the old token to die); subscriptions follow as after any
   * reconnect.
   */
  redial(): void {
    if (this.#closed || !this.#running) return;
    this.#hangUp("reconnecting with a new access token");
  }

  /** Disconnects and stops reconnecting; start() may run it again. */
  async stop(reason = "stopped"): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#hangUp(reason);
    await this.#wsClosed;
    this.#setState("disconnected", reason);
  }

  /** Ends for good: no socket and no timer is left once this resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop("closed by client");
  }

  subscribe(tokens: readonly number[], mode: TickMode): void {
    const fresh = tokens.filter((t) => !this.#subscriptions.has(t));
    if (this.#subscriptions.size + fresh.length > MAX_TOKENS) {
      throw new BrokerError(
        "VALIDATION",
        `Kite allows ${MAX_TOKENS} instruments per ticker connection; ${this.#subscriptions.size} are subscribed and ${fresh.length} more were asked for`,
      );
    }
    for (const token of tokens) this.#subscriptions.set(token, mode);
    if (tokens.length > 0) this.#sendSubscriptions(tokens, mode);
  }

  unsubscribe(tokens: readonly number[]): void {
    const gone = tokens.filter((t) => this.#subscriptions.delete(t));
    if (gone.length > 0) this.#send({ a: "unsubscribe", v: gone });
  }

  // ---- connection -------------------------------------------------------------------------------

  #connectUrl(): string {
    const url = new URL(this.#url);
    url.searchParams.set("api_key", this.#apiKey);
    url.searchParams.set("access_token", this.#accessToken);
    return url.toString();
  }

  #dial(): void {
    this.#retryTimer = undefined;
    if (!this.#running) return;
    this.#reason = undefined;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#connectUrl(), {
        headers: { "X-Kite-Version": "3" },
        perMessageDeflate: false,
        followRedirects: false,
      });
    } catch (error) {
      // The URL carries the access token: keep it out of the message.
      const text = (error as Error).message.split(this.#accessToken).join("***");
      this.#scheduleRetry(`cannot open the ticker: ${text}`);
      return;
    }
    this.#ws = ws;
    let markClosed = (): void => undefined;
    this.#wsClosed = new Promise<void>((resolve) => (markClosed = resolve));
    this.#handshakeTimer = setTimeout(() => {
      this.#reason = `ticker handshake did not complete within ${this.#handshakeTimeoutMs} ms`;
      ws.terminate();
    }, this.#handshakeTimeoutMs);
    ws.binaryType = "nodebuffer";
    ws.on("open", () => this.#onOpen(ws));
    ws.on("message", (data, isBinary) => this.#onFrame(ws, data, isBinary));
    ws.on("error", (error) => {
      this.#reason ??= error.message;
    });
    ws.on("close", (code, reason) => {
      this.#onClose(ws, code, reason.toString());
      markClosed();
    });
  }

  #onOpen(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#openedAt = performance.now();
    this.#connects += 1;
    this.#readTimer = setTimeout(() => this.#onReadTimeout(ws), this.#readTimeoutMs);
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    // Kite forgets subscriptions with the connection.
    const byMode = new Map<TickMode, number[]>();
    for (const [token, mode] of this.#subscriptions) {
      const list = byMode.get(mode) ?? [];
      list.push(token);
      byMode.set(mode, list);
    }
    for (const [mode, tokens] of byMode) this.#sendSubscriptions(tokens, mode);
    this.#setState("connected");
    this.emit("open", reconnect);
  }

  #onReadTimeout(ws: WebSocket): void {
    this.#readTimer = undefined;
    if (ws !== this.#ws) return;
    this.#reason = `no data from the ticker for ${this.#readTimeoutMs} ms; link presumed dead`;
    ws.terminate();
  }

  #onClose(ws: WebSocket, code: number, closeReason: string): void {
    ws.removeAllListeners();
    // ws can emit one late error after close; keep a listener so it never goes unhandled.
    ws.on("error", () => undefined);
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    this.#clearLinkTimers();
    const why =
      this.#reason ??
      (closeReason === "" ? `ticker closed (${code})` : `ticker closed (${code} ${closeReason})`);
    if (!this.#running) return;
    const refused = /Unexpected server response: (\d+)/.exec(why);
    if (refused?.[1] === "403") {
      // Kite refuses the handshake with 403 when the access token is no longer valid.
      this.#running = false;
      // The error goes first: whoever listens may want to check the session before showing the state.
      const error = new BrokerError("AUTH", "the Kite ticker refused the access token (HTTP 403)");
      this.#report(error);
      this.#setState("disconnected", error.message);
      return;
    }
    if (this.#openedAt > 0 && performance.now() - this.#openedAt >= this.#stableAfterMs)
      this.#backoff.reset();
    this.#openedAt = 0;
    this.#scheduleRetry(why);
  }

  #scheduleRetry(why: string): void {
    const delay = this.#backoff.next();
    this.#retryTimer = setTimeout(() => this.#dial(), delay);
    this.#setState("reconnecting", `${why}; retrying in ${Math.round(delay)} ms`);
  }

  #hangUp(reason: string): void {
    const ws = this.#ws;
    this.#clearLinkTimers();
    if (ws === undefined) return;
    this.#reason ??= reason;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, "client closing");
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => ws.terminate(), this.#closeTimeoutMs);
  }

  #clearLinkTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#readTimer);
    clearTimeout(this.#killTimer);
    this.#handshakeTimer = undefined;
    this.#readTimer = undefined;
    this.#killTimer = undefined;
  }

  // ---- frames -----------------------------------------------------------------------------------

  #onFrame(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws !== this.#ws) return;
    this.#readTimer?.refresh();
    const buffer = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data);
    if (isBinary) {
      if (isHeartbeat(buffer)) return;
      let ticks: Tick[];
      try {
        ticks = parseTickerFrame(buffer);
      } catch (error) {
        const message = error instanceof TickerFrameError ? error.message : String(error);
        this.#report(new BrokerError("BAD_FRAME", message));
        return;
      }
      if (ticks.length > 0) this.emit("ticks", ticks);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(buffer.toString("utf8"));
    } catch {
      // kiteconnect ignores non-JSON text too.
      return;
    }
    if (typeof message !== "object" || message === null) return;
    const { type, data: payload } = message as { type?: unknown; data?: unknown };
    if (type === "order") this.emit("order", payload);
    else if (type === "error") {
      this.#report(new BrokerError("INTERNAL", `Kite ticker error: ${String(payload)}`));
    }
    // "message" and unknown types carry nothing a broker acts on.
  }

  #sendSubscriptions(tokens: readonly number[], mode: TickMode): void {
    this.#send({ a: "subscribe", v: tokens });
    this.#send({ a: "mode", v: [mode, tokens] });
  }

  #send(message: unknown): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(message));
  }

  #setState(state: TickerState, reason?: string): void {
    if (state === this.#state && reason === undefined) return;
    this.#state = state;
    this.emit("state", state, reason);
  }

  #report(error: BrokerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else process.emitWarning(error.message, { type: "BrokerError", code: error.code });
  }
}
