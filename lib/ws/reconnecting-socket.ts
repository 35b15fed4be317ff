import { EventEmitter } from "node:events";
import WebSocket from "ws";
import type { BrokerError } from "../protocol/errors";
import { messageOf } from "../common/error-message";
import { Backoff } from "./backoff";
import type { BackoffOptions } from "./backoff";

export type SocketState = "connecting" | "connected" | "reconnecting" | "disconnected";

export interface ReconnectingSocketOptions {
  /** Asked before every dial, so credentials carried in the URL can change between connections. */
  url: () => string;
  /**
   * The credentials in that URL: blanked out of every reason, since ws quotes the URL in some errors
   * and a server may echo it in a close reason.
   */
  secrets?: () => readonly string[];
  /** What the socket is, in reasons: "ticker" gives "ticker closed (1006)". */
  label: string;
  headers?: Record<string, string>;
  /** From dialling to "open". */
  handshakeTimeoutMs: number;
  /**
   * An open link that delivers no frame for this long is presumed dead and dropped: only silence
   * shows a link that died without a FIN (NAT timeout, a stalled server that still answers pings).
   */
  readTimeoutMs: number;
  /** A connection that stays up this long resets the backoff. */
  stableAfterMs: number;
  /** How long a hang-up waits for the peer's closing handshake before destroying the socket. */
  closeTimeoutMs: number;
  backoff: BackoffOptions;
  /**
   * Asked with the reason a link ended; an error means retrying cannot help (a refused credential),
   * so the socket reports it and stops until start() is called again.
   */
  fatal?: (reason: string) => BrokerError | undefined;
  /**
   * Runs on every new link before the state turns "connected": a server that forgets everything
   * with the connection (subscriptions) gets it sent again here, so nobody sees "connected" without it.
   */
  restore?: () => void;
}

export type SocketEvents = {
  /** Every change, and every new reason while reconnecting (each retry says why and when). */
  state: [state: SocketState, reason?: string];
  /** A link is open and restored; `reconnect` is false only for the first one since construction. */
  open: [reconnect: boolean];
  frame: [data: Buffer, isBinary: boolean];
  /** Retrying stopped: what fatal() returned. Emitted before the "disconnected" state. */
  fatal: [error: BrokerError];
};

/** One socket and the timers that live and die with it. */
interface Link {
  readonly ws: WebSocket;
  readonly closed: Promise<void>;
  /** Why the link ended, when we know better than the close code. */
  reason: string | undefined;
  /** Hung up by us: start() may dial a new link without waiting for this one to finish closing. */
  hungUp: boolean;
  openedAt: number | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  readTimer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
}

/**
 * The connection lifecycle of a long-lived WebSocket, without any message protocol: dial with a
 * handshake deadline, drop a silent link, redial with full-jitter backoff for as long as it runs,
 * and hang up politely (destroying a peer that does not answer the close). stop() and close()
 * resolve only once the socket is gone, with no timer left behind. What a frame means, and what to
 * send after a (re)connect, belongs to whoever listens.
 */
export class ReconnectingSocket extends EventEmitter<SocketEvents> {
  readonly #options: ReconnectingSocketOptions;
  readonly #backoff: Backoff;
  /** The current link, which alone may report. */
  #link: Link | undefined;
  /** Every socket not yet closed, the current one and any still hanging up: stop() waits for all. */
  readonly #links = new Set<Link>();
  #state: SocketState = "disconnected";
  #running = false;
  #closed = false;
  #everOpened = false;
  #connects = 0;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: ReconnectingSocketOptions) {
    super();
    this.#options = options;
    this.#backoff = new Backoff(options.backoff);
  }

  get state(): SocketState {
    return this.#state;
  }

  /** Links opened so far (the first one included). */
  get connects(): number {
    return this.#connects;
  }

  /** Connects, and keeps reconnecting until stop() or close(). Does nothing while running. */
  start(): void {
    if (this.#closed || this.#running) return;
    this.#running = true;
    this.#setState(this.#everOpened ? "reconnecting" : "connecting");
    if (this.#retryTimer === undefined && (this.#link === undefined || this.#link.hungUp)) this.#dial();
  }

  /** While running, drops the link; the next one follows after the usual backoff. */
  redial(reason: string): void {
    if (this.#closed || !this.#running || this.#link === undefined) return;
    this.#hangUp(this.#link, reason);
  }

  /** Disconnects and stops reconnecting; start() may run it again. */
  async stop(reason = "stopped"): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const links = [...this.#links];
    for (const link of links) this.#hangUp(link, reason);
    await Promise.all(links.map((link) => link.closed));
    // A start() while we waited wins: it has already said "connecting".
    if (!this.#running) this.#setState("disconnected", reason);
  }

  /** Ends for good: no socket and no timer is left once this resolves. */
  async close(reason = "closed by client"): Promise<void> {
    this.#closed = true;
    await this.stop(reason);
  }

  /** Sends on the open link; false when there is none (the caller restores its state on "open"). */
  send(data: string | Buffer): boolean {
    const ws = this.#link?.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data);
    return true;
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  #dial(): void {
    this.#retryTimer = undefined;
    if (!this.#running) return;
    const url = this.#options.url();
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        ...(this.#options.headers === undefined ? {} : { headers: this.#options.headers }),
        perMessageDeflate: false,
        followRedirects: false,
      });
    } catch (error) {
      // ws names the whole URL in some of its errors.
      this.#scheduleRetry(`cannot open the ${this.#options.label}: ${this.#redact(messageOf(error))}`);
      return;
    }
    let markClosed = (): void => undefined;
    const link: Link = {
      ws,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
      reason: undefined,
      hungUp: false,
      openedAt: undefined,
      handshakeTimer: undefined,
      readTimer: undefined,
      killTimer: undefined,
    };
    this.#link = link;
    this.#links.add(link);
    link.handshakeTimer = setTimeout(() => {
      link.reason = `${this.#options.label} handshake did not complete within ${this.#options.handshakeTimeoutMs} ms`;
      ws.terminate();
    }, this.#options.handshakeTimeoutMs);
    ws.binaryType = "nodebuffer";
    ws.on("open", () => this.#onOpen(link));
    ws.on("message", (data, isBinary) => this.#onFrame(link, data, isBinary));
    ws.on("error", (error) => {
      link.reason ??= error.message;
    });
    ws.on("close", (code, reason) => {
      this.#onClose(link, code, reason.toString());
      markClosed();
    });
  }

  #onOpen(link: Link): void {
    if (link !== this.#link) return;
    clearTimeout(link.handshakeTimer);
    link.handshakeTimer = undefined;
    link.openedAt = performance.now();
    this.#connects += 1;
    link.readTimer = setTimeout(() => this.#onReadTimeout(link), this.#options.readTimeoutMs);
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    this.#options.restore?.();
    this.#setState("connected");
    this.emit("open", reconnect);
  }

  #onFrame(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    if (link !== this.#link) return;
    link.readTimer?.refresh();
    const buffer = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data);
    this.emit("frame", buffer, isBinary);
  }

  #onReadTimeout(link: Link): void {
    link.readTimer = undefined;
    if (link !== this.#link) return;
    link.reason = `no data from the ${this.#options.label} for ${this.#options.readTimeoutMs} ms; link presumed dead`;
    link.ws.terminate();
  }

  #onClose(link: Link, code: number, closeReason: string): void {
    clearLinkTimers(link);
    link.ws.removeAllListeners();
    // ws can emit one late error after close; keep a listener so it never goes unhandled.
    link.ws.on("error", () => undefined);
    this.#links.delete(link);
    if (link !== this.#link) return;
    this.#link = undefined;
    if (!this.#running) return;
    const why = this.#redact(
      link.reason ??
        (closeReason === ""
          ? `${this.#options.label} closed (${code})`
          : `${this.#options.label} closed (${code} ${closeReason})`),
    );
    const fatal = this.#options.fatal?.(why);
    if (fatal !== undefined) {
      this.#running = false;
      this.emit("fatal", fatal);
      this.#setState("disconnected", fatal.message);
      return;
    }
    if (link.openedAt !== undefined && performance.now() - link.openedAt >= this.#options.stableAfterMs)
      this.#backoff.reset();
    this.#scheduleRetry(why);
  }

  #scheduleRetry(why: string): void {
    const delay = this.#backoff.next();
    this.#retryTimer = setTimeout(() => this.#dial(), delay);
    this.#setState("reconnecting", `${why}; retrying in ${Math.round(delay)} ms`);
  }

  /** Closes politely; a peer that does not answer the close gets its socket destroyed. */
  #hangUp(link: Link, reason: string): void {
    if (link.hungUp) return;
    link.hungUp = true;
    clearLinkTimers(link);
    link.reason ??= reason;
    if (link.ws.readyState === WebSocket.CONNECTING) {
      link.ws.terminate();
      return;
    }
    if (link.ws.readyState === WebSocket.OPEN) link.ws.close(1000, "client closing");
    link.killTimer = setTimeout(() => link.ws.terminate(), this.#options.closeTimeoutMs);
  }

  #redact(text: string): string {
    let redacted = text;
    for (const secret of this.#options.secrets?.() ?? []) {
      if (secret.length === 0) continue;
      // As sent in the query string, and as a server may quote it back decoded.
      for (const form of new Set([
        encodeURIComponent(secret),
        new URLSearchParams({ s: secret }).toString().slice(2),
        secret,
      ]))
        redacted = redacted.split(form).join("***");
    }
    return redacted;
  }

  #setState(state: SocketState, reason?: string): void {
    if (state === this.#state && reason === undefined) return;
    this.#state = state;
    this.emit("state", state, reason);
  }
}

function clearLinkTimers(link: Link): void {
  clearTimeout(link.handshakeTimer);
  clearTimeout(link.readTimer);
  clearTimeout(link.killTimer);
  link.handshakeTimer = undefined;
  link.readTimer = undefined;
  link.killTimer = undefined;
}
