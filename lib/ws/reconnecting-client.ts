import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { BrokerError, ERROR_CODES, toBrokerError } from "../protocol/errors";
import type { ErrorCode } from "../protocol/errors";
import type { ConnectionState } from "../protocol/events";
import { WIRE_LIMITS } from "../protocol/wire";
import { Backoff } from "./backoff";
import type { BackoffOptions } from "./backoff";
import { SendQueue } from "./send-queue";
import type { TokenBucket } from "./token-bucket";
import { messageOf } from "../common/error-message";
import { isRecord } from "../common/is-record";

/** What request() sends: any JSON object with a `type`; the client adds the `id`. */
export interface OutboundMessage {
  type: string;
  [key: string]: unknown;
}

export interface RequestOptions {
  /** How long to wait for the answer once the request is on the wire. */
  timeoutMs?: number;
  /** How long the request may wait to be written (queue and rate limit) before it ends EXPIRED. */
  ttlMs?: number;
}

/** One connection, handed to openSession before the client reports "connected". */
export interface Session {
  /**
   * Sends on this connection at once, ahead of everything queued and outside the rate limit (a
   * fresh connection's server-side budget is full). Rejects NETWORK if the connection drops, and
   * NOT_CONNECTED once openSession has returned: after that, use the client's request().
   */
  request<T = unknown>(message: OutboundMessage, options?: { timeoutMs?: number }): Promise<T>;
  /** Aborted when this connection ends, so openSession can abandon other work tied to it. */
  readonly signal: AbortSignal;
  /** The subprotocol the server picked ("" when none). */
  readonly protocol: string;
}

export interface ReconnectingClientOptions {
  /** ws:// or wss:// */
  url: string;
  protocols?: string[];
  /** Extra trusted CA for wss://. The server certificate is always verified. */
  ca?: string | Buffer;
  /** TCP + TLS + upgrade, from dialling to "open". */
  handshakeTimeoutMs?: number;
  /** How long openSession may take before the connection is dropped and retried. */
  sessionTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** A connection that stays up this long resets the backoff. */
  stableAfterMs?: number;
  heartbeat?: { intervalMs?: number; maxMissedPongs?: number };
  requestTimeoutMs?: number;
  queue?: { max?: number; ttlMs?: number };
  /** Most messages in one outbound frame (the server's published max batch). */
  maxBatch?: number;
  /** Largest outbound frame in bytes (the server's published limit); batches are split to fit. */
  maxFrameBytes?: number;
  /** Largest inbound frame (ws maxPayload); a bigger one closes the connection with 1009. */
  maxInboundFrameBytes?: number;
  /** Outbound requests wait for a token; one that would wait past its TTL fails RATE_LIMITED. */
  rateLimit?: TokenBucket;
  /** How long close() waits for the peer to complete the closing handshake before destroying the socket. */
  closeTimeoutMs?: number;
  /** Runs after every (re)connect, before "connected": authenticate, resume, reconcile. */
  openSession?: (session: Session) => Promise<void>;
  /**
   * Application-level ping on a ready link: `message` is sent every heartbeat.intervalMs / 2 and
   * its RESULT handed to `onResult`. A ready link that has carried no message for
   * heartbeat.intervalMs is presumed dead and dropped (noticed within 1.25 × intervalMs): a relay
   * that drops data frames still answers WebSocket pings, so those alone cannot tell.
   */
  appPing?: { message: () => OutboundMessage; onResult: (result: unknown) => void };
}

export interface ClientStats {
  /** Connections re-established (openSession succeeded) after the first one. */
  readonly reconnects: number;
  /** Requests written to a socket (openSession's included). */
  readonly sent: number;
  /** Messages received (a batched frame counts each message). */
  readonly received: number;
  /** Requests that got no answer within their timeout. */
  readonly timeouts: number;
  /** Requests waiting to be written right now. */
  readonly queued: number;
}

export type ClientEvents = {
  state: [state: ConnectionState, reason?: string];
  message: [message: unknown];
  error: [error: BrokerError];
};

interface Pending {
  readonly id: string;
  readonly type: string;
  /** The message serialized once, at request(): its size decides batching and it cannot change later. */
  readonly json: string;
  readonly bytes: number;
  readonly timeoutMs: number;
  /** performance.now() by which the answer must have come; set when written. */
  deadline: number;
  settled: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: BrokerError) => void;
}

type LinkPhase = "handshake" | "session" | "ready" | "closing" | "closed";

/** One socket and everything that lives and dies with it. */
interface Link {
  readonly ws: WebSocket;
  readonly generation: number;
  /** Written, unanswered requests: their outcome becomes unknown if the socket goes. */
  readonly inFlight: Map<string, Pending>;
  readonly abort: AbortController;
  readonly closed: Promise<void>;
  readonly markClosed: () => void;
  phase: LinkPhase;
  connectedAt: number | undefined;
  missedPongs: number;
  /** Why the link ended, when we know better than the close code. */
  reason: string | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  sessionTimer: NodeJS.Timeout | undefined;
  heartbeat: NodeJS.Timeout | undefined;
  appPing: NodeJS.Timeout | undefined;
  /** performance.now() of the last message received, or of the link becoming ready. */
  lastMessageAt: number;
  lastPingAt: number;
  pingInFlight: boolean;
  killTimer: NodeJS.Timeout | undefined;
  /**
   * One timer for every in-flight request's deadline, armed for the earliest (at deadlineAt): a
   * timer per request costs more than the request's own bookkeeping at pipelined rates.
   */
  deadlineTimer: NodeJS.Timeout | undefined;
  deadlineAt: number;
  /** Set when TLS refused the server's certificate: retrying cannot help. */
  certificateError: BrokerError | undefined;
}

const DEFAULTS = {
  handshakeTimeoutMs: 5000,
  sessionTimeoutMs: 10_000,
  stableAfterMs: 5000,
  requestTimeoutMs: 5000,
  backoff: { initialMs: 100, factor: 2, maxMs: 5000 },
  heartbeat: { intervalMs: 5000, maxMissedPongs: 2 },
  queue: { max: 1000, ttlMs: 5000 },
  closeTimeoutMs: 2000,
} as const;

/**
 * A WebSocket client that keeps one connection alive and correlates requests with answers. It knows
 * frames, ids and requests, not orders: it never retries a request by itself, because only the
 * broker layer can tell (after reconciling) whether a request whose answer was lost took effect.
 *
 * Every request settles exactly once: RESULT, ERROR, TIMEOUT, NETWORK (written, answer lost),
 * EXPIRED (never written in time), QUEUE_FULL, RATE_LIMITED or CLOSED.
 */
export class ReconnectingClient extends EventEmitter<ClientEvents> {
  readonly url: string;
  readonly #protocols: string[] | undefined;
  readonly #ca: string | Buffer | undefined;
  readonly #handshakeTimeoutMs: number;
  readonly #sessionTimeoutMs: number;
  readonly #stableAfterMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #maxMissedPongs: number;
  readonly #requestTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #maxInboundFrameBytes: number | undefined;
  readonly #rateLimit: TokenBucket | undefined;
  readonly #openSession: ((session: Session) => Promise<void>) | undefined;
  readonly #appPing: ReconnectingClientOptions["appPing"];
  readonly #backoff: Backoff;
  readonly #queue: SendQueue<Pending>;
  #maxBatch: number;
  #maxFrameBytes: number;

  /** Ids from two clients in one process (or one reconnecting gateway) never collide. */
  readonly #idPrefix = randomBytes(4).toString("hex");
  #idCounter = 0;

  #state: ConnectionState = "disconnected";
  #link: Link | undefined;
  #generation = 0;
  #everConnected = false;
  /** Set when openSession failed with AUTH: retrying the same credentials would only fail again. */
  #fatal: BrokerError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  #retryTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  /** A flush is queued as a microtask (it cannot be cancelled: #flush checks the link itself). */
  #flushQueued = false;
  #rateTimer: NodeJS.Timeout | undefined;

  #sent = 0;
  #received = 0;
  #timeouts = 0;
  #reconnects = 0;

  constructor(options: ReconnectingClientOptions) {
    super();
    this.url = checkUrl(options.url);
    if (options.ca !== undefined && !this.url.startsWith("wss:")) {
      throw new RangeError("ca only applies to wss:// URLs; a ws:// connection is not encrypted");
    }
    this.#protocols = options.protocols;
    this.#ca = options.ca;
    this.#handshakeTimeoutMs = positive(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      DEFAULTS.handshakeTimeoutMs,
    );
    this.#sessionTimeoutMs = positive(
      "sessionTimeoutMs",
      options.sessionTimeoutMs,
      DEFAULTS.sessionTimeoutMs,
    );
    this.#stableAfterMs = positive("stableAfterMs", options.stableAfterMs, DEFAULTS.stableAfterMs);
    this.#heartbeatIntervalMs = positive(
      "heartbeat.intervalMs",
      options.heartbeat?.intervalMs,
      DEFAULTS.heartbeat.intervalMs,
    );
    this.#maxMissedPongs = positiveInteger(
      "heartbeat.maxMissedPongs",
      options.heartbeat?.maxMissedPongs,
      DEFAULTS.heartbeat.maxMissedPongs,
    );
    this.#requestTimeoutMs = positive(
      "requestTimeoutMs",
      options.requestTimeoutMs,
      DEFAULTS.requestTimeoutMs,
    );
    this.#closeTimeoutMs = positive("closeTimeoutMs", options.closeTimeoutMs, DEFAULTS.closeTimeoutMs);
    this.#maxBatch = positiveInteger("maxBatch", options.maxBatch, WIRE_LIMITS.maxBatch);
    this.#maxFrameBytes = positiveInteger("maxFrameBytes", options.maxFrameBytes, WIRE_LIMITS.maxFrameBytes);
    this.#maxInboundFrameBytes =
      options.maxInboundFrameBytes === undefined
        ? undefined
        : positiveInteger("maxInboundFrameBytes", options.maxInboundFrameBytes, 0);
    this.#rateLimit = options.rateLimit;
    this.#openSession = options.openSession;
    this.#appPing = options.appPing;
    this.#backoff = new Backoff({ ...DEFAULTS.backoff, ...options.backoff });
    this.#queue = new SendQueue<Pending>({
      max: options.queue?.max ?? DEFAULTS.queue.max,
      ttlMs: options.queue?.ttlMs ?? DEFAULTS.queue.ttlMs,
      labelOf: label,
      onExpire: settleReject,
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get stats(): ClientStats {
    return {
      reconnects: this.#reconnects,
      sent: this.#sent,
      received: this.#received,
      timeouts: this.#timeouts,
      queued: this.#queue.length,
    };
  }

  /**
   * Tightens the outbound limits, e.g. to what the server published in its AUTH result (a gateway
   * may be configured below WIRE_LIMITS). Applies from the next frame.
   */
  setLimits(limits: { maxBatch?: number; maxFrameBytes?: number }): void {
    this.#maxBatch = positiveInteger("maxBatch", limits.maxBatch, this.#maxBatch);
    this.#maxFrameBytes = positiveInteger("maxFrameBytes", limits.maxFrameBytes, this.#maxFrameBytes);
  }

  /**
   * Connects, and keeps reconnecting until close(). Also restarts a client that stopped on an
   * AUTH failure (after the credentials were fixed). Does nothing while already running.
   */
  start(): void {
    if (this.#closed) throw new BrokerError("CLOSED", "client is closed; create a new one to connect again");
    const stopped = this.#state === "disconnected";
    // A link still closing after an AUTH failure reconnects from #onClose once #fatal is cleared.
    this.#fatal = undefined;
    if (stopped) this.#setState(this.#everConnected ? "reconnecting" : "connecting");
    if (!this.#closed && this.#link === undefined && this.#retryTimer === undefined) this.#connect();
  }

  /**
   * Sends `message` with a fresh `id` (any `id` it carries is replaced) and settles exactly once.
   * While not connected the request waits in the bounded queue; it is written only after openSession
   * has finished on a new connection, and never twice.
   */
  request<T = unknown>(message: OutboundMessage, options?: RequestOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#submit(message, options, resolve as (value: unknown) => void, reject);
    });
  }

  /**
   * Ends every request (CLOSED), clears every timer and closes the socket with 1000, destroying it
   * if the peer has not completed the close within closeTimeoutMs (2 s). Resolves once the socket is
   * closed.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const link = this.#link;
    // Assigned before teardown so that a close() from a state listener gets this same promise.
    this.#closing = link === undefined ? Promise.resolve() : link.closed;
    this.#closed = true;
    this.#clearClientTimers();
    for (const pending of this.#queue.clear()) {
      settleReject(pending, new BrokerError("CLOSED", `client closed; ${label(pending)} never sent`));
    }
    if (link !== undefined) {
      this.#rejectInFlight(
        link,
        (pending) =>
          new BrokerError("CLOSED", `client closed before ${label(pending)} was answered; outcome unknown`),
      );
      this.#hangUp(link, 1000, "client closing");
    }
    this.#setState("disconnected", "closed by client");
    return this.#closing;
  }

  // ---- requests ---------------------------------------------------------------------------------

  #submit(
    message: OutboundMessage,
    options: RequestOptions | undefined,
    resolve: (value: unknown) => void,
    reject: (error: BrokerError) => void,
  ): void {
    const type = typeof message?.type === "string" ? message.type : undefined;
    if (type === undefined) {
      reject(new BrokerError("VALIDATION", "request message needs a string type"));
      return;
    }
    if (this.#closed) {
      reject(new BrokerError("CLOSED", `client is closed; ${type} not sent`));
      return;
    }
    if (this.#fatal !== undefined) {
      reject(new BrokerError(this.#fatal.code, `${this.#fatal.message}; ${type} not sent`));
      return;
    }
    const timeoutMs = positive("timeoutMs", options?.timeoutMs, this.#requestTimeoutMs);
    const ttlMs = positive("ttlMs", options?.ttlMs, this.#queue.ttlMs);
    const pending = this.#newPending(message, type, timeoutMs, resolve, reject);
    if (pending === undefined) return;

    const linkReady = this.#link?.phase === "ready";
    if (linkReady && this.#rateLimit !== undefined) {
      // Everything already waiting goes first, so this request needs their tokens plus its own.
      const wait = tokenWait(this.#rateLimit, this.#queue.length + 1);
      if (wait > ttlMs) {
        reject(
          new BrokerError(
            "RATE_LIMITED",
            `${label(pending)} would wait ${wait} ms for the rate limit, longer than its ${ttlMs} ms time-to-live; never sent`,
            { retryAfterMs: wait },
          ),
        );
        return;
      }
    }
    try {
      this.#queue.push(pending, ttlMs);
    } catch (error) {
      reject(toBrokerError(error));
      return;
    }
    if (linkReady) this.#scheduleFlush();
  }

  #newPending(
    message: OutboundMessage,
    type: string,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (error: BrokerError) => void,
  ): Pending | undefined {
    const id = `${this.#idPrefix}-${(this.#idCounter++).toString(36)}`;
    if (message.id !== undefined) {
      reject(new BrokerError("VALIDATION", `${type}: the client assigns request ids; do not set one`));
      return undefined;
    }
    let json: string;
    try {
      // The id goes in front by string: `{ ...message, id }` takes a slow path in V8 (~10 µs).
      json = `{"id":"${id}",${JSON.stringify(message).slice(1)}`;
    } catch (error) {
      reject(
        new BrokerError("VALIDATION", `${type} cannot be sent as JSON: ${messageOf(error)}`, {
          cause: error,
        }),
      );
      return undefined;
    }
    const bytes = Buffer.byteLength(json);
    const pending: Pending = {
      id,
      type,
      json,
      bytes,
      timeoutMs,
      deadline: Infinity,
      settled: false,
      resolve,
      reject,
    };
    if (bytes > this.#maxFrameBytes) {
      reject(this.#tooLarge(pending));
      return undefined;
    }
    return pending;
  }

  #tooLarge(pending: Pending): BrokerError {
    return new BrokerError(
      "FRAME_TOO_LARGE",
      `${label(pending)} is ${pending.bytes} bytes, over the ${this.#maxFrameBytes}-byte frame limit; never sent`,
    );
  }

  /**
   * Batches what is requested together into as few frames as allowed. On a link with answers
   * outstanding, that is everything requested in this turn of the event loop (the answers to come
   * will set off more). On an idle link the batch is what the current job requests synchronously:
   * it goes out in a microtask instead of waiting for the check phase, since nothing is in flight
   * to batch with and a lone order's round trip is what an idle link is judged by.
   */
  #scheduleFlush(): void {
    if (this.#flushImmediate !== undefined || this.#flushQueued) return;
    if (this.#link !== undefined && this.#link.inFlight.size === 0) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushFromMicrotask);
    } else this.#flushImmediate = setImmediate(this.#flushFromImmediate);
  }

  readonly #flushFromMicrotask = (): void => {
    this.#flushQueued = false;
    this.#flush();
  };

  readonly #flushFromImmediate = (): void => {
    this.#flushImmediate = undefined;
    this.#flush();
  };

  #flush(): void {
    const link = this.#link;
    if (link === undefined || link.phase !== "ready" || link.ws.readyState !== WebSocket.OPEN) return;
    let batch: Pending[] = [];
    let batchBytes = 0;
    for (let next = this.#queue.peek(); next !== undefined; next = this.#queue.peek()) {
      if (next.bytes > this.#maxFrameBytes) {
        this.#queue.shift();
        settleReject(next, this.#tooLarge(next));
        continue;
      }
      const wait = this.#rateLimit?.take(1) ?? 0;
      if (wait > 0) {
        this.#flushAfter(wait);
        break;
      }
      this.#queue.shift();
      // Adding to an array frame costs a comma, and the frame needs "[" and "]" around it all.
      if (
        batch.length > 0 &&
        (batch.length >= this.#maxBatch || batchBytes + 1 + next.bytes + 2 > this.#maxFrameBytes)
      ) {
        this.#write(link, batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(next);
      batchBytes += next.bytes + (batch.length > 1 ? 1 : 0);
    }
    if (batch.length > 0) this.#write(link, batch);
  }

  #flushAfter(ms: number): void {
    this.#rateTimer ??= setTimeout(() => {
      this.#rateTimer = undefined;
      this.#flush();
    }, ms);
  }

  #write(link: Link, batch: Pending[]): void {
    const frame = batch.length === 1 ? batch[0]!.json : `[${batch.map((pending) => pending.json).join(",")}]`;
    const now = performance.now();
    let earliest = Infinity;
    for (const pending of batch) {
      link.inFlight.set(pending.id, pending);
      pending.deadline = now + pending.timeoutMs;
      if (pending.deadline < earliest) earliest = pending.deadline;
    }
    if (earliest < link.deadlineAt) this.#armDeadline(link, earliest, now);
    link.ws.send(frame);
    this.#sent += batch.length;
  }

  /**
   * The timer stays armed when its request is answered: it fires at most once per timeout period
   * with nothing due, which costs far less than clearing and re-arming it on every answer.
   */
  #armDeadline(link: Link, at: number, now: number): void {
    clearTimeout(link.deadlineTimer);
    link.deadlineAt = at;
    // +1: setTimeout counts whole milliseconds and may fire a fraction early against performance.now().
    link.deadlineTimer = setTimeout(() => this.#onDeadline(link), Math.max(1, Math.ceil(at - now) + 1));
    // Requests in flight need an open socket, which keeps the process up; the timer itself may
    // outlive the last answer by up to a timeout, and must not hold anything open meanwhile.
    link.deadlineTimer.unref();
  }

  #onDeadline(link: Link): void {
    link.deadlineTimer = undefined;
    link.deadlineAt = Infinity;
    const now = performance.now();
    const due: Pending[] = [];
    let earliest = Infinity;
    for (const pending of link.inFlight.values()) {
      if (pending.deadline <= now) due.push(pending);
      else if (pending.deadline < earliest) earliest = pending.deadline;
    }
    if (earliest !== Infinity) this.#armDeadline(link, earliest, now);
    // Settled only once the table is consistent: a rejection handler may send or close re-entrantly.
    for (const pending of due) link.inFlight.delete(pending.id);
    for (const pending of due) {
      this.#timeouts += 1;
      settleReject(
        pending,
        new BrokerError(
          "TIMEOUT",
          `no response to ${label(pending)} within ${pending.timeoutMs} ms; outcome unknown`,
        ),
      );
    }
  }

  #rejectInFlight(link: Link, reason: (pending: Pending) => BrokerError): void {
    clearTimeout(link.deadlineTimer);
    link.deadlineTimer = undefined;
    link.deadlineAt = Infinity;
    const pendings = [...link.inFlight.values()];
    link.inFlight.clear();
    for (const pending of pendings) settleReject(pending, reason(pending));
  }

  // ---- connection lifecycle ---------------------------------------------------------------------

  #connect(): void {
    this.#retryTimer = undefined;
    const generation = ++this.#generation;
    let markClosed = (): void => undefined;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, this.#protocols, {
        // Compression costs latency on small order frames and zlib memory per connection.
        perMessageDeflate: false,
        followRedirects: false,
        ...(this.#ca === undefined ? {} : { ca: this.#ca }),
        ...(this.#maxInboundFrameBytes === undefined ? {} : { maxPayload: this.#maxInboundFrameBytes }),
      });
    } catch (error) {
      this.#scheduleRetry(`cannot open ${this.url}: ${messageOf(error)}`);
      return;
    }
    const link: Link = {
      ws,
      generation,
      inFlight: new Map(),
      abort: new AbortController(),
      closed,
      markClosed,
      phase: "handshake",
      connectedAt: undefined,
      missedPongs: 0,
      reason: undefined,
      handshakeTimer: undefined,
      sessionTimer: undefined,
      heartbeat: undefined,
      appPing: undefined,
      lastMessageAt: performance.now(),
      lastPingAt: 0,
      pingInFlight: false,
      killTimer: undefined,
      deadlineTimer: undefined,
      deadlineAt: Infinity,
      certificateError: undefined,
    };
    this.#link = link;
    // ws's own handshakeTimeout is an idle timeout on the HTTP request; this one bounds the whole dial.
    link.handshakeTimer = setTimeout(() => {
      link.reason = `handshake did not complete within ${this.#handshakeTimeoutMs} ms`;
      ws.terminate();
    }, this.#handshakeTimeoutMs);
    ws.on("open", () => this.#onOpen(link));
    ws.on("message", (data, isBinary) => this.#onFrame(link, data, isBinary));
    ws.on("pong", () => this.#onAlive(link));
    ws.on("ping", () => this.#onAlive(link));
    ws.on("error", (error) => this.#onSocketError(link, error));
    ws.on("close", (code, reason) => this.#onClose(link, code, reason.toString()));
  }

  #onAlive(link: Link): void {
    link.missedPongs = 0;
  }

  /** ws follows every error with 'close', which does the work; the first error is the best reason. */
  #onSocketError(link: Link, error: Error): void {
    link.reason ??= error.message;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && CERTIFICATE_ERRORS.has(code)) {
      // The same certificate will be refused on every attempt: a configuration error, not a
      // network one, so it is reported once and not retried forever.
      link.certificateError = new BrokerError(
        "CONFIG",
        `the server's TLS certificate was refused (${code}: ${error.message}); check the URL, or configure the CA that signed it`,
        { cause: error },
      );
    }
  }

  #onOpen(link: Link): void {
    clearTimeout(link.handshakeTimer);
    link.handshakeTimer = undefined;
    this.#startHeartbeat(link);
    const openSession = this.#openSession;
    if (openSession === undefined) {
      this.#onSessionReady(link);
      return;
    }
    link.phase = "session";
    link.sessionTimer = setTimeout(() => this.#onSessionTimeout(link), this.#sessionTimeoutMs);
    // An openSession that throws synchronously is the same failure as one that rejects.
    const setup = new Promise<void>((resolve) => resolve(openSession(this.#session(link))));
    void setup.then(
      () => this.#onSessionReady(link),
      (error: unknown) => this.#onSessionFailed(link, toBrokerError(error)),
    );
  }

  #session(link: Link): Session {
    return {
      signal: link.abort.signal,
      protocol: link.ws.protocol,
      request: <T>(message: OutboundMessage, options?: { timeoutMs?: number }) =>
        new Promise<T>((resolve, reject) => {
          this.#sessionRequest(link, message, options, resolve as (value: unknown) => void, reject);
        }),
    };
  }

  #sessionRequest(
    link: Link,
    message: OutboundMessage,
    options: { timeoutMs?: number } | undefined,
    resolve: (value: unknown) => void,
    reject: (error: BrokerError) => void,
  ): void {
    const type = typeof message?.type === "string" ? message.type : "request";
    if (link.phase === "ready") {
      reject(
        new BrokerError(
          "NOT_CONNECTED",
          `session over (openSession has returned; use request()); ${type} not sent`,
        ),
      );
      return;
    }
    // ws drops a send on a closing socket without a word; say so instead of waiting for a reply.
    if (link.phase !== "session" || link.ws.readyState !== WebSocket.OPEN) {
      reject(new BrokerError("NETWORK", `session over (its connection is gone); ${type} not sent`));
      return;
    }
    const timeoutMs = positive("timeoutMs", options?.timeoutMs, this.#requestTimeoutMs);
    const pending = this.#newPending(message, type, timeoutMs, resolve, reject);
    if (pending !== undefined) this.#write(link, [pending]);
  }

  #onSessionReady(link: Link): void {
    if (link.phase !== "handshake" && link.phase !== "session") return;
    clearTimeout(link.sessionTimer);
    link.sessionTimer = undefined;
    link.phase = "ready";
    link.connectedAt = performance.now();
    link.lastMessageAt = link.connectedAt;
    this.#startAppPing(link);
    if (this.#everConnected) this.#reconnects += 1;
    this.#everConnected = true;
    // Queued requests go out only now, after the broker has authenticated and reconciled.
    this.#scheduleFlush();
    this.#setState("connected");
  }

  #onSessionFailed(link: Link, error: BrokerError): void {
    if (this.#closed) return;
    if (error.code === "AUTH") {
      // Even if the socket is already gone: only a newer attempt can have newer news.
      if (link.generation === this.#generation) this.#stopOnAuthFailure(link, error);
      return;
    }
    if (link.phase !== "session") return;
    link.reason = `session setup failed: ${error.message}`;
    this.#report(new BrokerError(error.code, link.reason, { cause: error }));
    this.#hangUp(link, 1000, "session setup failed");
  }

  #onSessionTimeout(link: Link): void {
    link.sessionTimer = undefined;
    if (link.phase !== "session") return;
    link.reason = `session setup did not finish within ${this.#sessionTimeoutMs} ms`;
    this.#report(new BrokerError("TIMEOUT", link.reason));
    this.#hangUp(link, 1000, "session setup timed out");
  }

  #stopOnAuthFailure(link: Link, error: BrokerError): void {
    this.#stop(
      link,
      new BrokerError("AUTH", `authentication failed: ${error.message}`, { cause: error }),
      "fix the credentials and deploy again",
    );
  }

  /** Stops reconnecting: retrying cannot help until someone changes the configuration. */
  #stop(link: Link, fatal: BrokerError, advice: string): void {
    this.#fatal = fatal;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const pending of this.#queue.clear()) {
      settleReject(pending, new BrokerError(fatal.code, `${fatal.message}; ${label(pending)} never sent`));
    }
    if (link.phase !== "closed" && link.phase !== "closing")
      this.#hangUp(link, 1000, fatal.code.toLowerCase());
    this.#setState("disconnected", `${fatal.message}; not reconnecting: ${advice}`);
  }

  /** The error that stopped the client (AUTH or CONFIG), until start() tries again. */
  get fatalError(): BrokerError | undefined {
    return this.#fatal;
  }

  /**
   * A ping every interval; a socket that has let maxMissedPongs pings go unanswered is destroyed.
   * Only this catches a link that died without a FIN or RST (NAT timeout, pulled cable): TCP alone
   * would keep the socket "open" for many minutes.
   */
  #startHeartbeat(link: Link): void {
    link.heartbeat = setInterval(() => {
      if (link.missedPongs >= this.#maxMissedPongs) {
        link.reason = `no pong to ${link.missedPongs} pings sent ${this.#heartbeatIntervalMs} ms apart; link presumed dead`;
        link.ws.terminate();
        return;
      }
      link.missedPongs += 1;
      link.ws.ping();
    }, this.#heartbeatIntervalMs);
  }

  #startAppPing(link: Link): void {
    const appPing = this.#appPing;
    if (appPing === undefined) return;
    const interval = this.#heartbeatIntervalMs;
    link.appPing = setInterval(
      () => {
        const now = performance.now();
        if (now - link.lastMessageAt > interval) {
          link.reason = `no message for ${Math.round(now - link.lastMessageAt)} ms although pinged every ${Math.round(interval / 2)} ms; link presumed dead`;
          link.ws.terminate();
          return;
        }
        if (link.pingInFlight || now - link.lastPingAt < interval / 2) return;
        if (link.phase !== "ready" || link.ws.readyState !== WebSocket.OPEN) return;
        link.pingInFlight = true;
        link.lastPingAt = now;
        const done = (): void => {
          link.pingInFlight = false;
        };
        const pending = this.#newPending(
          appPing.message(),
          "PING",
          interval,
          (result) => {
            done();
            appPing.onResult(result);
          },
          done,
        );
        if (pending !== undefined) this.#write(link, [pending]);
      },
      Math.max(1, interval / 4),
    );
  }

  /** Closes politely; a peer that does not answer the close gets its socket destroyed. */
  #hangUp(link: Link, code: number, reason: string): void {
    if (link.phase === "closing" || link.phase === "closed") return;
    link.phase = "closing";
    link.abort.abort();
    clearLinkTimers(link);
    if (link.ws.readyState === WebSocket.CONNECTING) {
      link.ws.terminate();
      return;
    }
    link.ws.close(code, reason);
    link.killTimer = setTimeout(() => link.ws.terminate(), this.#closeTimeoutMs);
  }

  #onClose(link: Link, code: number, closeReason: string): void {
    link.phase = "closed";
    link.abort.abort();
    clearLinkTimers(link);
    clearTimeout(link.killTimer);
    link.killTimer = undefined;
    // The closures hold the client; dropping them lets a dead socket be collected at once.
    link.ws.removeAllListeners();
    if (this.#link === link) this.#link = undefined;
    clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;

    const why = link.reason ?? describeClose(code, closeReason);
    this.#rejectInFlight(
      link,
      (pending) =>
        new BrokerError("NETWORK", `connection lost before ${label(pending)} was answered; outcome unknown`),
    );
    link.markClosed();
    if (this.#closed || this.#fatal !== undefined) return;
    if (link.certificateError !== undefined) {
      this.#report(link.certificateError);
      this.#stop(link, link.certificateError, "fix the certificate or the CA and deploy again");
      return;
    }
    if (link.connectedAt !== undefined && performance.now() - link.connectedAt >= this.#stableAfterMs) {
      this.#backoff.reset();
    }
    this.#scheduleRetry(why);
  }

  #scheduleRetry(why: string): void {
    const delay = this.#backoff.next();
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#setState("reconnecting", `${why}; retrying in ${Math.round(delay)} ms`);
  }

  // ---- inbound ----------------------------------------------------------------------------------

  #onFrame(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
    this.#onAlive(link);
    link.lastMessageAt = performance.now();
    if (isBinary) {
      this.#report(
        new BrokerError("BAD_FRAME", "binary frame from server; the protocol uses JSON text frames"),
      );
      return;
    }
    const text = rawText(data);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      this.#report(
        new BrokerError("BAD_FRAME", `frame from server is not JSON (${messageOf(error)}): ${excerpt(text)}`),
      );
      return;
    }
    if (!Array.isArray(parsed)) {
      this.#dispatch(link, parsed);
      return;
    }
    if (parsed.length === 0) this.#report(new BrokerError("BAD_FRAME", "empty batch frame from server"));
    for (const message of parsed) this.#dispatch(link, message);
  }

  #dispatch(link: Link, message: unknown): void {
    // A listener may have closed the client in the middle of a batch: nobody wants the rest.
    if (this.#closed) return;
    if (!isRecord(message) || typeof message.type !== "string") {
      this.#report(
        new BrokerError("BAD_FRAME", `message without a string type: ${excerpt(JSON.stringify(message))}`),
      );
      return;
    }
    this.#received += 1;
    const { type, id } = message;
    // The protocol says null; a missing id is read the same way: no request to pin the error on.
    if (type === "ERROR" && (id === null || id === undefined)) {
      this.#report(wireError(message.error) ?? malformedError(message));
      return;
    }
    const pending =
      (type === "RESULT" || type === "ERROR") && typeof id === "string" ? link.inFlight.get(id) : undefined;
    if (pending === undefined) {
      // Events, quotes and answers nobody waits for any more (late, after a timeout) go to the broker.
      this.emit("message", message);
      return;
    }
    link.inFlight.delete(pending.id);
    // v1.1: events that ride in an answer belong to the event stream at this frame's place in it.
    if (type === "RESULT" && message.events !== undefined) this.emit("message", message);
    if (type === "RESULT") settleResolve(pending, message.result);
    else settleReject(pending, wireError(message.error) ?? malformedError(message));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  #setState(state: ConnectionState, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit("state", state, reason);
  }

  /** An unhandled 'error' event would throw inside a socket callback and take Node-RED down with it. */
  #report(error: BrokerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else process.emitWarning(error.message, { type: "BrokerError", code: error.code });
  }

  #clearClientTimers(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = undefined;
  }
}

/** Node's codes for a server certificate that failed verification (as opposed to a network fault). */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function clearLinkTimers(link: Link): void {
  clearTimeout(link.handshakeTimer);
  clearTimeout(link.sessionTimer);
  clearInterval(link.heartbeat);
  clearInterval(link.appPing);
  link.appPing = undefined;
  link.handshakeTimer = undefined;
  link.sessionTimer = undefined;
  link.heartbeat = undefined;
}

function settleResolve(pending: Pending, value: unknown): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.resolve(value);
}

function settleReject(pending: Pending, error: BrokerError): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.reject(error);
}

function label(pending: Pending): string {
  return `${pending.type} ${pending.id}`;
}

/** Milliseconds until `count` tokens will have accrued, assuming each is taken as soon as it exists. */
function tokenWait(bucket: TokenBucket, count: number): number {
  const missing = count - bucket.available;
  return missing <= 0 ? 0 : Math.ceil((missing * 1000) / bucket.ratePerSecond);
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

function wireError(value: unknown): BrokerError | undefined {
  if (!isRecord(value) || typeof value.code !== "string" || typeof value.message !== "string")
    return undefined;
  const retryAfter = value.retry_after_ms;
  const options = typeof retryAfter === "number" ? { retryAfterMs: retryAfter } : undefined;
  // A newer server may use a code this client does not know; keep it visible in the message.
  if (KNOWN_CODES.has(value.code)) return new BrokerError(value.code as ErrorCode, value.message, options);
  return new BrokerError("INTERNAL", `${value.code}: ${value.message}`, options);
}

function malformedError(message: Record<string, unknown>): BrokerError {
  return new BrokerError(
    "BAD_FRAME",
    `ERROR message without a valid error object: ${excerpt(JSON.stringify(message))}`,
  );
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

function excerpt(text: string | undefined): string {
  if (text === undefined) return String(text);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function describeClose(code: number, reason: string): string {
  return reason === "" ? `connection closed (${code})` : `connection closed (${code} ${reason})`;
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RangeError("url must be a ws:// or wss:// URL");
  }
  // The message names only the scheme: a URL may carry a token in its query.
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new RangeError(`url must be a ws:// or wss:// URL, got ${parsed.protocol}//`);
  }
  return url;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number greater than 0, got ${value}`);
  }
  return value;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be an integer of at least 1, got ${value}`);
  return value;
}
