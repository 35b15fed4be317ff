import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { BrokerError, toBrokerError } from "../protocol/errors";
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
  /** Subprotocols offered in the upgrade. */
  protocols?: string[];
  /** Extra trusted CA for wss://. The server certificate is always verified. */
  ca?: string | Buffer;
  /** Largest inbound frame (ws maxPayload); a bigger one closes the link with 1009. */
  maxPayload?: number;
  /** From dialling to "open" (TCP, TLS and the upgrade). */
  handshakeTimeoutMs: number;
  /**
   * An up link that delivers no frame for this long is presumed dead and dropped: only silence
   * shows a link that died without a FIN (NAT timeout, a stalled server that still answers pings).
   */
  readTimeoutMs?: number;
  /**
   * A WebSocket ping every intervalMs from "open"; a link that leaves maxMissedPongs of them
   * unanswered (no pong, ping or frame since) is destroyed. TCP alone would keep a link that died
   * without a FIN or RST "open" for many minutes.
   */
  heartbeat?: { intervalMs: number; maxMissedPongs: number };
  /** A connection that stays up this long resets the backoff. */
  stableAfterMs: number;
  /** How long a hang-up waits for the peer's closing handshake before destroying the socket. */
  closeTimeoutMs: number;
  backoff: BackoffOptions;
  /**
   * Asked with the reason a link ended or its session failed, and what caused it (the link's first
   * socket error, or the session's error); an error back means retrying cannot help (a refused
   * credential or certificate), so the socket reports it and stops until start() is called again.
   */
  fatal?: (reason: string, cause: unknown) => BrokerError | undefined;
  /**
   * Runs on every open link before it counts as up (an authentication handshake, a resume); the
   * link is up once the returned promise resolves (at once when it returns nothing). A rejection
   * or an overrun of sessionTimeoutMs drops the link and redials, unless fatal() says otherwise.
   */
  session?: (link: OpenLink) => Promise<void> | undefined;
  /** How long session() may take; required with session. */
  sessionTimeoutMs?: number;
  /**
   * Runs on every new link before the state turns "connected": a server that forgets everything
   * with the connection (subscriptions) gets it sent again here, so nobody sees "connected" without it.
   */
  restore?: () => void;
}

/** An open link, as session() sees it. */
export interface OpenLink {
  readonly ws: WebSocket;
  /** Aborted as soon as this link is being hung up or has closed. */
  readonly signal: AbortSignal;
}

export type SocketEvents = {
  /** Every change, and every new reason while reconnecting (each retry says why and when). */
  state: [state: SocketState, reason?: string];
  /** A link is open and restored; `reconnect` is false only for the first one since construction. */
  open: [reconnect: boolean];
  frame: [data: Buffer, isBinary: boolean];
  /** Retrying stopped: what fatal() returned. Emitted before the "disconnected" state. */
  fatal: [error: BrokerError];
  /** A session failed or overran, so its link is dropped and redialled; worth telling the user. */
  failure: [error: BrokerError];
  /** A link handed to session() has closed: whatever was tied to it is over. */
  down: [link: OpenLink];
};

/** One socket and the timers that live and die with it. */
interface Link extends OpenLink {
  readonly closed: Promise<void>;
  readonly abort: AbortController;
  /** Dials so far when this one started: a session's fatal news counts only from the newest. */
  readonly generation: number;
  phase: "dialling" | "session" | "up";
  /** Why the link ended, when we know better than the close code. */
  reason: string | undefined;
  /** The first socket error, for fatal(). */
  error: Error | undefined;
  /** Hung up by us: start() may dial a new link without waiting for this one to finish closing. */
  hungUp: boolean;
  openedAt: number | undefined;
  missedPongs: number;
  handshakeTimer: NodeJS.Timeout | undefined;
  sessionTimer: NodeJS.Timeout | undefined;
  readTimer: NodeJS.Timeout | undefined;
  /** When the read timer was last (re)armed: a frame, or a period judged void (stalled). */
  readArmedAt: number;
  /** A read timeout's verdict, waiting one poll phase for frames already in the socket. */
  readCheck: NodeJS.Immediate | undefined;
  /** Frames read on the link so far. */
  frames: number;
  /** Read periods and heartbeats in a row not judged because our own loop was stalled (STALL_PASSES). */
  stalls: number;
  heartbeat: NodeJS.Timeout | undefined;
  /** When the heartbeat last ticked. */
  beatAt: number;
  killTimer: NodeJS.Timeout | undefined;
}

/**
 * Silence is judged only over time this process could read. A timer that fires this late (a
 * quarter of its period, at most 100 ms) ran after our own event loop was held (GC, a long parse,
 * a loaded machine, a gateway in the same process sorting 30,000 GTTs): frames may be waiting
 * unread in the socket, since timers run before the poll phase that reads them. Such a period is
 * not counted, at most STALL_PASSES times in a row, so a dead link under a loop that is always late
 * is still dropped within STALL_PASSES + 1 periods.
 */
const STALL_PASSES = 4;
function lateBy(periodMs: number): number {
  return Math.min(periodMs / 4, 100);
}

/**
 * The connection lifecycle of a long-lived WebSocket, without any message protocol: dial with a
 * handshake deadline, run the user's session step (login, resume) under its own deadline before the
 * link counts as up, drop a silent link (no frame, or no pong), redial with full-jitter backoff for
 * as long as it runs unless fatal() says retrying cannot help, and hang up politely (destroying a
 * peer that does not answer the close). stop() and close() resolve only once the socket is gone,
 * with no timer left behind. What a frame means, and what to send after a (re)connect, belongs to
 * whoever listens. Used by the Kite ticker client and the order-entry ReconnectingClient.
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
  #generation = 0;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: ReconnectingSocketOptions) {
    super();
    if (options.session !== undefined && options.sessionTimeoutMs === undefined)
      throw new RangeError("sessionTimeoutMs is required with session");
    this.#options = options;
    this.#backoff = new Backoff(options.backoff);
  }

  get state(): SocketState {
    return this.#state;
  }

  /** Links up so far (opened, session done), the first one included. */
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
    const { url, protocols, headers, ca, maxPayload } = this.#options;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url(), protocols, {
        ...(headers === undefined ? {} : { headers }),
        // Compression costs latency on small frames and zlib memory per connection.
        perMessageDeflate: false,
        followRedirects: false,
        ...(ca === undefined ? {} : { ca }),
        ...(maxPayload === undefined ? {} : { maxPayload }),
      });
    } catch (error) {
      // ws names the whole URL in some of its errors.
      this.#scheduleRetry(`cannot open the ${this.#options.label}: ${this.#redact(messageOf(error))}`);
      return;
    }
    let markClosed = (): void => undefined;
    const abort = new AbortController();
    const link: Link = {
      ws,
      signal: abort.signal,
      abort,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
      generation: ++this.#generation,
      phase: "dialling",
      reason: undefined,
      error: undefined,
      hungUp: false,
      openedAt: undefined,
      missedPongs: 0,
      handshakeTimer: undefined,
      sessionTimer: undefined,
      readTimer: undefined,
      readArmedAt: 0,
      readCheck: undefined,
      frames: 0,
      stalls: 0,
      heartbeat: undefined,
      beatAt: 0,
      killTimer: undefined,
    };
    this.#link = link;
    this.#links.add(link);
    // ws's own handshakeTimeout is an idle timeout on the HTTP request; this one bounds the whole dial.
    link.handshakeTimer = setTimeout(() => {
      link.reason = `handshake did not complete within ${this.#options.handshakeTimeoutMs} ms`;
      ws.terminate();
    }, this.#options.handshakeTimeoutMs);
    ws.binaryType = "nodebuffer";
    ws.on("open", () => this.#onOpen(link));
    ws.on("message", (data, isBinary) => this.#onFrame(link, data, isBinary));
    ws.on("pong", () => (link.missedPongs = 0));
    ws.on("ping", () => (link.missedPongs = 0));
    ws.on("error", (error) => {
      // ws follows every error with 'close', which does the work; the first error is the best reason.
      link.reason ??= error.message;
      link.error ??= error;
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
    this.#startHeartbeat(link);
    const session = this.#options.session;
    if (session === undefined) {
      this.#onUp(link);
      return;
    }
    link.phase = "session";
    let setup: Promise<void> | undefined;
    try {
      setup = session(link);
    } catch (error) {
      // A session that throws at once is the same failure as one that rejects.
      this.#onSessionFailed(link, toBrokerError(error));
      return;
    }
    if (setup === undefined) {
      this.#onUp(link);
      return;
    }
    const timeoutMs = this.#options.sessionTimeoutMs ?? 0;
    link.sessionTimer = setTimeout(() => this.#onSessionTimeout(link, timeoutMs), timeoutMs);
    setup.then(
      () => this.#onUp(link),
      (error: unknown) => this.#onSessionFailed(link, toBrokerError(error)),
    );
  }

  /** Open, and its session (if any) done: only now does the link count as connected. */
  #onUp(link: Link): void {
    if (link !== this.#link || link.hungUp || link.phase === "up") return;
    clearTimeout(link.sessionTimer);
    link.sessionTimer = undefined;
    link.phase = "up";
    link.openedAt = performance.now();
    this.#connects += 1;
    const { readTimeoutMs } = this.#options;
    if (readTimeoutMs !== undefined) this.#armRead(link, readTimeoutMs);
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    this.#options.restore?.();
    this.#setState("connected");
    this.emit("open", reconnect);
  }

  #onSessionFailed(link: Link, error: BrokerError): void {
    if (this.#closed || !this.#running) return;
    const reason = `session setup failed: ${error.message}`;
    const fatal = this.#options.fatal?.(reason, error);
    if (fatal !== undefined) {
      // Even if the link is already gone: only a newer attempt can have newer news.
      if (link.generation === this.#generation) this.#halt(fatal);
      return;
    }
    if (link !== this.#link || link.hungUp || link.phase !== "session") return;
    link.reason = reason;
    this.emit("failure", new BrokerError(error.code, reason, { cause: error }));
    this.#hangUp(link, reason);
  }

  #onSessionTimeout(link: Link, timeoutMs: number): void {
    link.sessionTimer = undefined;
    if (link !== this.#link || link.hungUp || link.phase !== "session") return;
    link.reason = `session setup did not finish within ${timeoutMs} ms`;
    this.emit("failure", new BrokerError("TIMEOUT", link.reason));
    this.#hangUp(link, link.reason);
  }

  #startHeartbeat(link: Link): void {
    const heartbeat = this.#options.heartbeat;
    if (heartbeat === undefined) return;
    const { intervalMs, maxMissedPongs } = heartbeat;
    link.beatAt = performance.now();
    link.heartbeat = setInterval(() => {
      const now = performance.now();
      const late = now - link.beatAt - intervalMs > lateBy(intervalMs);
      link.beatAt = now;
      if (late && link.stalls < STALL_PASSES) {
        // Pongs may be waiting unread: this interval is not counted (see lateBy).
        link.stalls += 1;
        return;
      }
      if (link.missedPongs >= maxMissedPongs) {
        link.reason = `no pong to ${link.missedPongs} pings sent ${intervalMs} ms apart; link presumed dead`;
        link.ws.terminate();
        return;
      }
      link.missedPongs += 1;
      link.ws.ping();
    }, intervalMs);
  }

  #onFrame(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    if (link !== this.#link) return;
    link.missedPongs = 0;
    link.frames += 1;
    link.stalls = 0;
    if (link.readTimer !== undefined) {
      link.readTimer.refresh();
      link.readArmedAt = performance.now();
    }
    const buffer = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data);
    this.emit("frame", buffer, isBinary);
  }

  #armRead(link: Link, readTimeoutMs: number): void {
    link.readArmedAt = performance.now();
    link.readTimer = setTimeout(() => this.#onReadTimeout(link, readTimeoutMs), readTimeoutMs);
  }

  #onReadTimeout(link: Link, readTimeoutMs: number): void {
    link.readTimer = undefined;
    if (link !== this.#link) return;
    const late = performance.now() - link.readArmedAt - readTimeoutMs > lateBy(readTimeoutMs);
    if (late && link.stalls < STALL_PASSES) {
      link.stalls += 1;
      this.#armRead(link, readTimeoutMs);
      return;
    }
    // On time: frames that reached the socket meanwhile are read in the poll phase before an
    // immediate runs; any of them clears the link.
    const seen = link.frames;
    link.readCheck = setImmediate(() => {
      link.readCheck = undefined;
      if (link !== this.#link) return;
      if (link.frames !== seen) this.#armRead(link, readTimeoutMs);
      else this.#readTimedOut(link, readTimeoutMs);
    });
  }

  #readTimedOut(link: Link, readTimeoutMs: number): void {
    link.reason = `no data from the ${this.#options.label} for ${readTimeoutMs} ms; link presumed dead`;
    link.ws.terminate();
  }

  #onClose(link: Link, code: number, closeReason: string): void {
    clearLinkTimers(link);
    link.abort.abort();
    // The closures hold the socket's owner; dropping them lets a dead socket be collected at once.
    link.ws.removeAllListeners();
    // ws can emit one late error after close; keep a listener so it never goes unhandled.
    link.ws.on("error", () => undefined);
    this.#links.delete(link);
    if (link.phase !== "dialling") this.emit("down", link);
    if (link !== this.#link) return;
    this.#link = undefined;
    if (!this.#running) return;
    const why = this.#redact(
      link.reason ??
        (closeReason === ""
          ? `${this.#options.label} closed (${code})`
          : `${this.#options.label} closed (${code} ${closeReason})`),
    );
    const fatal = this.#options.fatal?.(why, link.error);
    if (fatal !== undefined) {
      this.#halt(fatal);
      return;
    }
    if (link.openedAt !== undefined && performance.now() - link.openedAt >= this.#options.stableAfterMs)
      this.#backoff.reset();
    this.#scheduleRetry(why);
  }

  /** Stops retrying: retrying cannot help until someone changes the configuration. */
  #halt(fatal: BrokerError): void {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const link of this.#links) this.#hangUp(link, fatal.message);
    this.emit("fatal", fatal);
    this.#setState("disconnected", fatal.message);
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
    link.abort.abort();
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
  clearTimeout(link.sessionTimer);
  clearTimeout(link.readTimer);
  clearImmediate(link.readCheck);
  clearInterval(link.heartbeat);
  clearTimeout(link.killTimer);
  link.handshakeTimer = undefined;
  link.sessionTimer = undefined;
  link.readTimer = undefined;
  link.readCheck = undefined;
  link.heartbeat = undefined;
  link.killTimer = undefined;
}
