import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { BrokerError, ERROR_CODES, toBrokerError } from "../protocol/errors";
import type { ErrorCode } from "../protocol/errors";
import type { ConnectionState } from "../protocol/events";
import { WIRE_LIMITS } from "../protocol/wire";
import type { BackoffOptions } from "./backoff";
import { ReconnectingSocket } from "./reconnecting-socket";
import type { OpenLink } from "./reconnecting-socket";
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
   * heartbeat.intervalMs is presumed dead and dropped (the socket core's read timeout): a relay
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
  /** How long it may wait to be written; set when it is submitted. */
  ttlMs: number;
  /** performance.now() by which the answer must have come; set when written. */
  deadline: number;
  settled: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: BrokerError) => void;
}

/** Requests being gathered into one frame by #flush. */
interface Batch {
  readonly link: Link;
  list: Pending[];
  bytes: number;
}

/** One open connection and the requests that live and die with it. */
interface Link {
  readonly ws: WebSocket;
  /** The socket core's handle for this connection (its signal aborts when the connection goes). */
  readonly open: OpenLink;
  /** Written, unanswered requests: their outcome becomes unknown if the socket goes. */
  readonly inFlight: Map<string, Pending>;
  phase: "session" | "ready" | "closed";
  appPing: NodeJS.Timeout | undefined;
  lastPingAt: number;
  pingInFlight: boolean;
  /**
   * One timer for every in-flight request's deadline, armed for the earliest (at deadlineAt): a
   * timer per request costs more than the request's own bookkeeping at pipelined rates.
   */
  deadlineTimer: NodeJS.Timeout | undefined;
  deadlineAt: number;
  /** Frames that arrived behind the answer that left this link idle; see #onFrameOf. */
  deferred: { data: Buffer; isBinary: boolean }[] | undefined;
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
  readonly #heartbeatIntervalMs: number;
  readonly #requestTimeoutMs: number;
  readonly #rateLimit: TokenBucket | undefined;
  readonly #openSession: ((session: Session) => Promise<void>) | undefined;
  readonly #appPing: ReconnectingClientOptions["appPing"];
  readonly #socket: ReconnectingSocket;
  readonly #queue: SendQueue<Pending>;
  /**
   * Requests made on a ready link while nothing waits in the queue, oldest first: the flush already
   * scheduled for this turn writes them. They skip the queue, whose time-to-live timer would be
   * armed and cleared for each of them; one the flush cannot write (the link went, the rate limit)
   * moves to the queue then, ahead of anything newer. Never non-empty while the queue is not.
   */
  #outbox: Pending[] = [];
  #maxBatch: number;
  #maxFrameBytes: number;

  /** Ids from two clients in one process (or one reconnecting gateway) never collide. */
  readonly #idPrefix = randomBytes(4).toString("hex");
  #idCounter = 0;

  #state: ConnectionState = "disconnected";
  /** The connection requests go to: the newest one handed to openSession, until it closes. */
  #link: Link | undefined;
  /** Every connection not yet closed, by the core's handle: an older one may still be closing. */
  readonly #links = new Map<OpenLink, Link>();
  /** Set when openSession failed with AUTH: retrying the same credentials would only fail again. */
  #fatal: BrokerError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  #flushImmediate: NodeJS.Immediate | undefined;
  /** A flush is queued as a microtask (it cannot be cancelled: #flush checks the link itself). */
  #flushQueued = false;
  #rateTimer: NodeJS.Timeout | undefined;
  /** The link whose last outstanding request was answered in the current job (cleared by a microtask). */
  #answeredIdle: Link | undefined;
  #inboundImmediate: NodeJS.Immediate | undefined;

  #sent = 0;
  #received = 0;
  #timeouts = 0;

  constructor(options: ReconnectingClientOptions) {
    super();
    this.url = checkUrl(options.url);
    if (options.ca !== undefined && !this.url.startsWith("wss:")) {
      throw new RangeError("ca only applies to wss:// URLs; a ws:// connection is not encrypted");
    }
    const handshakeTimeoutMs = positive(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      DEFAULTS.handshakeTimeoutMs,
    );
    const sessionTimeoutMs = positive(
      "sessionTimeoutMs",
      options.sessionTimeoutMs,
      DEFAULTS.sessionTimeoutMs,
    );
    const stableAfterMs = positive("stableAfterMs", options.stableAfterMs, DEFAULTS.stableAfterMs);
    this.#heartbeatIntervalMs = positive(
      "heartbeat.intervalMs",
      options.heartbeat?.intervalMs,
      DEFAULTS.heartbeat.intervalMs,
    );
    const maxMissedPongs = positiveInteger(
      "heartbeat.maxMissedPongs",
      options.heartbeat?.maxMissedPongs,
      DEFAULTS.heartbeat.maxMissedPongs,
    );
    this.#requestTimeoutMs = positive(
      "requestTimeoutMs",
      options.requestTimeoutMs,
      DEFAULTS.requestTimeoutMs,
    );
    const closeTimeoutMs = positive("closeTimeoutMs", options.closeTimeoutMs, DEFAULTS.closeTimeoutMs);
    this.#maxBatch = positiveInteger("maxBatch", options.maxBatch, WIRE_LIMITS.maxBatch);
    this.#maxFrameBytes = positiveInteger("maxFrameBytes", options.maxFrameBytes, WIRE_LIMITS.maxFrameBytes);
    const maxPayload =
      options.maxInboundFrameBytes === undefined
        ? undefined
        : positiveInteger("maxInboundFrameBytes", options.maxInboundFrameBytes, 0);
    this.#rateLimit = options.rateLimit;
    this.#openSession = options.openSession;
    this.#appPing = options.appPing;
    this.#queue = new SendQueue<Pending>({
      max: options.queue?.max ?? DEFAULTS.queue.max,
      ttlMs: options.queue?.ttlMs ?? DEFAULTS.queue.ttlMs,
      labelOf: label,
      onExpire: settleReject,
    });
    this.#socket = new ReconnectingSocket({
      url: () => this.url,
      label: "connection",
      ...(options.protocols === undefined ? {} : { protocols: options.protocols }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(maxPayload === undefined ? {} : { maxPayload }),
      handshakeTimeoutMs,
      heartbeat: { intervalMs: this.#heartbeatIntervalMs, maxMissedPongs },
      // With the application ping, a ready link silent for a heartbeat is dead even if it answers
      // WebSocket pings (a relay that drops data frames).
      ...(this.#appPing === undefined ? {} : { readTimeoutMs: this.#heartbeatIntervalMs }),
      stableAfterMs,
      closeTimeoutMs,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
      session: (open) => this.#openLink(open),
      sessionTimeoutMs,
      fatal: (_reason, cause) => fatalCause(cause),
      restore: () => this.#onReady(),
    });
    this.#socket.on("state", (state, reason) => {
      if (!this.#closed) this.#setState(state, reason);
    });
    this.#socket.on("frame", (data, isBinary) => {
      // The core hands over frames of its current link only, which is the one openSession last saw.
      if (this.#link !== undefined) this.#onFrameOf(this.#link, data, isBinary);
    });
    this.#socket.on("failure", (error) => this.#report(error));
    this.#socket.on("fatal", (error) => this.#onFatal(error));
    this.#socket.on("down", (open) => this.#onDown(open));
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get stats(): ClientStats {
    return {
      reconnects: Math.max(0, this.#socket.connects - 1),
      sent: this.#sent,
      received: this.#received,
      timeouts: this.#timeouts,
      queued: this.#queue.length + this.#outbox.length,
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
   * Connects, and keeps reconnecting until stop() or close(). Also restarts a client that stopped
   * on an AUTH or certificate failure (after the configuration was fixed). Does nothing while
   * already running.
   */
  start(): void {
    if (this.#closed) throw new BrokerError("CLOSED", "client is closed; create a new one to connect again");
    this.#fatal = undefined;
    this.#socket.start();
  }

  /**
   * Disconnects and stops reconnecting until start(): requests in flight end NETWORK (outcome
   * unknown), queued ones wait for start() within their time-to-live. Resolves once the socket is
   * closed.
   */
  stop(reason = "stopped"): Promise<void> {
    if (this.#closed) return this.#closing ?? Promise.resolve();
    const stopped = this.#socket.stop(reason);
    this.#setState("disconnected", reason);
    return stopped;
  }

  /**
   * Sends `message` with a fresh `id` (any `id` it carries is replaced) and settles exactly once.
   * While not connected the request waits in the bounded queue; it is written only after openSession
   * has finished on a new connection, and never twice.
   */
  request<T = unknown>(message: OutboundMessage, options?: RequestOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#submit(message, options, resolve as (value: unknown) => void, reject, undefined);
    });
  }

  /**
   * request() without its promise, for a caller that settles a promise of its own: exactly one of
   * the two callbacks runs, once, with what request() would resolve or reject with. `onResult` runs
   * inside the frame's handling, so a caller resolving its own promise there saves the microtask
   * hops of awaiting one promise to resolve another. A refusal (closed, queue full, bad message)
   * calls `onError` at once.
   */
  send(
    message: OutboundMessage,
    options: RequestOptions | undefined,
    onResult: (value: unknown) => void,
    onError: (error: BrokerError) => void,
  ): void {
    this.#submit(message, options, onResult, onError, undefined);
  }

  /**
   * send() for a message its caller has already serialized: `jsonTail` is the JSON text of
   * `message` (an object with at least one field and no `id`) without its opening brace, and is
   * sent as it is with `{"id":"…",` put in front; `message` is only read for its `type`. For a
   * hot path that writes its message cheaper than JSON.stringify (without the brace, so that the
   * text is not copied to cut it off).
   */
  sendJson(
    message: OutboundMessage,
    jsonTail: string,
    options: RequestOptions | undefined,
    onResult: (value: unknown) => void,
    onError: (error: BrokerError) => void,
  ): void {
    this.#submit(message, options, onResult, onError, jsonTail);
  }

  /**
   * Ends every request (CLOSED), clears every timer and closes the socket with 1000, destroying it
   * if the peer has not completed the close within closeTimeoutMs (2 s). Resolves once the socket is
   * closed.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const link = this.#link;
    // Frames that arrived before close() are handled as they would have been without the deferral.
    if (link !== undefined) this.#drainDeferred(link);
    this.#closed = true;
    this.#clearClientTimers();
    for (const pending of this.#takeUnsent()) {
      settleReject(pending, new BrokerError("CLOSED", `client closed; ${label(pending)} never sent`));
    }
    if (link !== undefined) {
      this.#rejectInFlight(
        link,
        (pending) =>
          new BrokerError("CLOSED", `client closed before ${label(pending)} was answered; outcome unknown`),
      );
    }
    // Assigned before the state changes so that a close() from a state listener gets this same promise.
    this.#closing = this.#socket.close("closed by client");
    this.#setState("disconnected", "closed by client");
    return this.#closing;
  }

  // ---- requests ---------------------------------------------------------------------------------

  #submit(
    message: OutboundMessage,
    options: RequestOptions | undefined,
    resolve: (value: unknown) => void,
    reject: (error: BrokerError) => void,
    jsonTail: string | undefined,
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
    const pending = this.#newPending(message, type, timeoutMs, resolve, reject, jsonTail);
    if (pending === undefined) return;

    const linkReady = this.#link?.phase === "ready";
    if (linkReady && this.#rateLimit !== undefined) {
      // Everything already waiting goes first, so this request needs their tokens plus its own.
      const wait = tokenWait(this.#rateLimit, this.#queue.length + this.#outbox.length + 1);
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
    pending.ttlMs = ttlMs;
    if (linkReady && this.#queue.length === 0) {
      if (this.#outbox.length >= this.#queue.max) {
        reject(
          new BrokerError(
            "QUEUE_FULL",
            `send queue full (${this.#queue.max} waiting); ${label(pending)} not sent`,
          ),
        );
        return;
      }
      this.#outbox.push(pending);
      this.#scheduleFlush();
      return;
    }
    try {
      this.#queue.push(pending, ttlMs);
    } catch (error) {
      reject(toBrokerError(error));
      return;
    }
    if (linkReady) this.#scheduleFlush();
  }

  /** Moves the outbox to the (then empty) queue, oldest first, to wait for a link or a token. */
  #spillOutbox(): void {
    const outbox = this.#outbox;
    if (outbox.length === 0) return;
    this.#outbox = [];
    for (const pending of outbox) {
      try {
        this.#queue.push(pending, pending.ttlMs);
      } catch (error) {
        settleReject(pending, toBrokerError(error));
      }
    }
  }

  /** Every request not yet written (outbox and queue), oldest first, taken out. */
  #takeUnsent(): Pending[] {
    const outbox = this.#outbox;
    this.#outbox = [];
    const queued = this.#queue.clear();
    return outbox.length === 0 ? queued : outbox.concat(queued);
  }

  #newPending(
    message: OutboundMessage,
    type: string,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (error: BrokerError) => void,
    jsonTail?: string,
  ): Pending | undefined {
    const id = `${this.#idPrefix}-${(this.#idCounter++).toString(36)}`;
    if (message.id !== undefined) {
      reject(new BrokerError("VALIDATION", `${type}: the client assigns request ids; do not set one`));
      return undefined;
    }
    let json: string;
    try {
      // The id goes in front by string: `{ ...message, id }` takes a slow path in V8 (~10 µs).
      json = `{"id":"${id}",${jsonTail ?? JSON.stringify(message).slice(1)}`;
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
      ttlMs: 0,
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
    if (link === undefined || link.phase !== "ready" || link.ws.readyState !== WebSocket.OPEN) {
      this.#spillOutbox();
      return;
    }
    const batch: Batch = { link, list: [], bytes: 0 };
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
      this.#addToBatch(batch, next);
    }
    // The outbox fills only while the queue is empty, so nothing in the queue is newer than it.
    const outbox = this.#outbox;
    for (let i = 0; i < outbox.length; i++) {
      const next = outbox[i]!;
      // A rejection handler below may have closed the client, which ended everything unsent.
      if (next.settled) continue;
      if (next.bytes > this.#maxFrameBytes) {
        settleReject(next, this.#tooLarge(next));
        continue;
      }
      const wait = this.#rateLimit?.take(1) ?? 0;
      if (wait > 0) {
        // The rest waits in the queue for its tokens, in order and within its time-to-live.
        this.#outbox = outbox.slice(i);
        outbox.length = 0;
        this.#spillOutbox();
        this.#flushAfter(wait);
        break;
      }
      this.#addToBatch(batch, next);
    }
    outbox.length = 0;
    if (batch.list.length > 0 && !this.#closed) this.#write(link, batch.list);
  }

  #addToBatch(batch: Batch, next: Pending): void {
    // Adding to an array frame costs a comma, and the frame needs "[" and "]" around it all.
    if (
      batch.list.length > 0 &&
      (batch.list.length >= this.#maxBatch || batch.bytes + 1 + next.bytes + 2 > this.#maxFrameBytes)
    ) {
      this.#write(batch.link, batch.list);
      batch.list = [];
      batch.bytes = 0;
    }
    batch.list.push(next);
    batch.bytes += next.bytes + (batch.list.length > 1 ? 1 : 0);
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

  /** The core's session step: every open connection becomes a Link, then openSession runs on it. */
  #openLink(open: OpenLink): Promise<void> | undefined {
    // Whatever the last link left unwritten waits in the queue until this one is ready.
    this.#spillOutbox();
    const link: Link = {
      ws: open.ws,
      open,
      inFlight: new Map(),
      phase: "session",
      appPing: undefined,
      lastPingAt: 0,
      pingInFlight: false,
      deadlineTimer: undefined,
      deadlineAt: Infinity,
      deferred: undefined,
    };
    this.#links.set(open, link);
    this.#link = link;
    const openSession = this.#openSession;
    if (openSession === undefined) return undefined;
    return openSession(this.#session(link));
  }

  #session(link: Link): Session {
    return {
      signal: link.open.signal,
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

  /** The core's restore step: the link is up, so queued requests may go. */
  #onReady(): void {
    const link = this.#link;
    if (link === undefined) return;
    link.phase = "ready";
    this.#startAppPing(link);
    // Queued requests go out only now, after the broker has authenticated and reconciled.
    this.#scheduleFlush();
  }

  /** Stops reconnecting: retrying cannot help until someone changes the configuration. */
  #onFatal(fatal: BrokerError): void {
    if (this.#closed) return;
    // A refused certificate is news to whoever listens; a refused login the broker reads from fatalError.
    if (fatal.code !== "AUTH") this.#report(fatal);
    this.#fatal = fatal;
    for (const pending of this.#takeUnsent()) {
      settleReject(pending, new BrokerError(fatal.code, `${fatal.message}; ${label(pending)} never sent`));
    }
    const advice =
      fatal.code === "AUTH"
        ? "fix the credentials and deploy again"
        : "fix the certificate or the CA and deploy again";
    this.#setState("disconnected", `${fatal.message}; not reconnecting: ${advice}`);
  }

  /** The error that stopped the client (AUTH or CONFIG), until start() tries again. */
  get fatalError(): BrokerError | undefined {
    return this.#fatal;
  }

  #startAppPing(link: Link): void {
    const appPing = this.#appPing;
    if (appPing === undefined) return;
    const interval = this.#heartbeatIntervalMs;
    link.appPing = setInterval(
      () => {
        const now = performance.now();
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

  #onDown(open: OpenLink): void {
    const link = this.#links.get(open);
    if (link === undefined) return;
    // They arrived before the link went down, and are handled before its requests are failed.
    this.#drainDeferred(link);
    // Requests made on it but not yet written wait for the next link, ahead of newer ones.
    if (this.#link === link) this.#spillOutbox();
    this.#links.delete(open);
    link.phase = "closed";
    clearInterval(link.appPing);
    link.appPing = undefined;
    if (this.#link === link) this.#link = undefined;
    clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;
    this.#rejectInFlight(
      link,
      (pending) =>
        new BrokerError("NETWORK", `connection lost before ${label(pending)} was answered; outcome unknown`),
    );
  }

  // ---- inbound ----------------------------------------------------------------------------------

  /**
   * Handles every frame (in the order they came) this client has put off: see #onFrameOf. Whoever
   * reads state that such a frame may move on (the broker's last event seq) calls this first.
   */
  flushInbound(): void {
    if (this.#link !== undefined) this.#drainDeferred(this.#link);
  }

  /**
   * A ready link whose last outstanding request has just been answered is idle: whoever waited
   * for that answer will most likely send the next request as soon as its promise settles, which
   * is in a microtask after this job. Frames that came in the same read behind that answer (the
   * events a v1 or v1.1 "send" gateway pushes after it) are put off to the check phase, so the
   * next request goes out first, as it does when they come in a read of their own. They are
   * still handled in order and before any later frame, and before the link is dropped or closed.
   */
  #onFrameOf(link: Link, data: Buffer, isBinary: boolean): void {
    if (link.deferred !== undefined || this.#answeredIdle === link) {
      (link.deferred ??= []).push({ data, isBinary });
      this.#inboundImmediate ??= setImmediate(this.#flushInboundLater);
      return;
    }
    this.#onFrame(link, data, isBinary);
  }

  readonly #flushInboundLater = (): void => {
    this.#inboundImmediate = undefined;
    this.flushInbound();
  };

  readonly #endAnsweredIdle = (): void => {
    this.#answeredIdle = undefined;
  };

  #drainDeferred(link: Link): void {
    const frames = link.deferred;
    if (frames === undefined) return;
    link.deferred = undefined;
    for (const frame of frames) this.#onFrame(link, frame.data, frame.isBinary);
  }

  #onFrame(link: Link, data: WebSocket.RawData, isBinary: boolean): void {
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
    if (link.inFlight.size === 0 && link.phase === "ready" && this.#answeredIdle === undefined) {
      this.#answeredIdle = link;
      queueMicrotask(this.#endAnsweredIdle);
    }
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
    clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = undefined;
    if (this.#inboundImmediate !== undefined) clearImmediate(this.#inboundImmediate);
    this.#inboundImmediate = undefined;
  }
}

/**
 * What stops the reconnecting: a refused login (openSession's AUTH), or a server certificate TLS
 * refused, which the same certificate will be on every attempt (a configuration error, not a
 * network one).
 */
function fatalCause(cause: unknown): BrokerError | undefined {
  if (cause instanceof BrokerError && cause.code === "AUTH")
    return new BrokerError("AUTH", `authentication failed: ${cause.message}`, { cause });
  if (!(cause instanceof Error)) return undefined;
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === undefined || !CERTIFICATE_ERRORS.has(code)) return undefined;
  return new BrokerError(
    "CONFIG",
    `the server's TLS certificate was refused (${code}: ${cause.message}); check the URL, or configure the CA that signed it`,
    { cause },
  );
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
