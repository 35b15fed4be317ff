import { EventEmitter } from "node:events";
import { BrokerError } from "../protocol/errors";
import type { BackoffOptions } from "../ws/backoff";
import { ReconnectingSocket } from "../ws/reconnecting-socket";
import type { SocketState } from "../ws/reconnecting-socket";
import type { Tick, TickMode } from "./ticker-parser";
import { TickerFrameError, isHeartbeat, parseTickerFrame } from "./ticker-parser";

export type TickerState = SocketState;

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
 * again after every reconnect. The connection lifecycle is the shared ReconnectingSocket's; this
 * class holds what is Kite's: the URL with its credentials, the subscriptions and the frames.
 */
export class KiteTickerClient extends EventEmitter<TickerEvents> {
  readonly #url: string;
  readonly #apiKey: string;
  #accessToken: string;
  readonly #socket: ReconnectingSocket;
  /** What we want subscribed, by token; sent again after every reconnect. */
  readonly #subscriptions = new Map<number, TickMode>();
  #closed = false;

  constructor(options: KiteTickerOptions) {
    super();
    const parsed = new URL(options.url);
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new RangeError(`ticker url must be ws:// or wss://, got ${parsed.protocol}//`);
    }
    this.#url = options.url;
    this.#apiKey = options.apiKey;
    this.#accessToken = options.accessToken;
    this.#socket = new ReconnectingSocket({
      url: () => this.#connectUrl(),
      secrets: () => [this.#accessToken],
      label: "ticker",
      headers: { "X-Kite-Version": "3" },
      readTimeoutMs: options.readTimeoutMs ?? DEFAULTS.readTimeoutMs,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      stableAfterMs: options.stableAfterMs ?? DEFAULTS.stableAfterMs,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
      fatal: refusedToken,
      restore: () => this.#resubscribe(),
    });
    this.#socket.on("state", (state, reason) => this.emit("state", state, reason));
    this.#socket.on("open", (reconnect) => this.emit("open", reconnect));
    this.#socket.on("frame", (data, isBinary) => this.#onFrame(data, isBinary));
    // The error goes before the "disconnected" state: whoever listens may want to check the session first.
    this.#socket.on("fatal", (error) => this.#report(error));
  }

  get state(): TickerState {
    return this.#socket.state;
  }

  /** Successful connections so far (the first one included). */
  get connects(): number {
    return this.#socket.connects;
  }

  get subscriptions(): ReadonlyMap<number, TickMode> {
    return this.#subscriptions;
  }

  /** Connects, and keeps reconnecting until stop() or close(). Does nothing while running. */
  start(): void {
    if (this.#closed) throw new BrokerError("CLOSED", "ticker client is closed");
    this.#socket.start();
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
    this.#socket.redial("reconnecting with a new access token");
  }

  /** Disconnects and stops reconnecting; start() may run it again. */
  stop(reason = "stopped"): Promise<void> {
    return this.#socket.stop(reason);
  }

  /** Ends for good: no socket and no timer is left once this resolves. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#socket.close("closed by client");
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

  #connectUrl(): string {
    const url = new URL(this.#url);
    url.searchParams.set("api_key", this.#apiKey);
    url.searchParams.set("access_token", this.#accessToken);
    return url.toString();
  }

  /** Kite forgets subscriptions with the connection. */
  #resubscribe(): void {
    const byMode = new Map<TickMode, number[]>();
    for (const [token, mode] of this.#subscriptions) {
      const list = byMode.get(mode) ?? [];
      list.push(token);
      byMode.set(mode, list);
    }
    for (const [mode, tokens] of byMode) this.#sendSubscriptions(tokens, mode);
  }

  // ---- frames -----------------------------------------------------------------------------------

  #onFrame(buffer: Buffer, isBinary: boolean): void {
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
    this.#socket.send(JSON.stringify(message));
  }

  #report(error: BrokerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else process.emitWarning(error.message, { type: "BrokerError", code: error.code });
  }
}

/** Kite refuses the handshake with 403 when the access token is no longer valid: only a new one helps. */
function refusedToken(reason: string): BrokerError | undefined {
  const refused = /Unexpected server response: (\d+)/.exec(reason);
  if (refused?.[1] !== "403") return undefined;
  return new BrokerError("AUTH", "the Kite ticker refused the access token (HTTP 403)");
}
