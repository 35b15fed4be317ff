import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { RawData } from "ws";
import { WebSocket, WebSocketServer } from "ws";
import type { BrokerInterface } from "../brokers/interface";
import type { BrokerLogger } from "../brokers/logger";
import { silentLogger } from "../brokers/logger";
import { parseInstrument } from "../protocol/instrument";
import type { ErrorCode } from "../protocol/errors";
import { BrokerError } from "../protocol/errors";
import type { AccountEvent } from "../protocol/events";
import type { GttEvent, OrderEvent } from "../protocol/events";
import type { OrderSnapshot } from "../protocol/orders";
import type { Quote } from "../protocol/quotes";
import { formatIssues } from "../protocol/validate";
import type { AuthResult, RequestType, ResumeResult, WireRequest, WireRequestOf } from "../protocol/wire";
import { CLOSE_CODES, REQUEST_SCHEMAS, REQUEST_TYPES, SUBPROTOCOL, WIRE_LIMITS } from "../protocol/wire";
import { TokenBucket } from "../ws/token-bucket";
import type { CredentialSource } from "./auth";
import { AuthVerifier } from "./auth";
import type { BufferedEvent } from "./replay-buffer";
import { IdempotencyIndex, orderHash } from "./idempotency-index";
import { ReplayBuffer } from "./replay-buffer";

export interface GatewayOptions {
  /** Served as it is; connected at start when it is not yet. The gateway never closes it. */
  broker: BrokerInterface;
  /** Default 127.0.0.1: a gateway is reachable from elsewhere only when asked. */
  host?: string;
  /** 0 (the default) picks a free port; read it back from `.port`. */
  port?: number;
  credentials: CredentialSource;
  /** Serve wss:// with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Default "/v1". Clients may also connect on "/" offering the `trading-broker.v1` subprotocol. */
  path?: string;
  /** A socket that has not authenticated by then is closed with 4002. Default 5000. */
  authTimeoutMs?: number;
  /** ± how far an AUTH timestamp may be from the server clock. Default (and most) 30 s. */
  authWindowMs?: number;
  /** Soft limit: larger frames get FRAME_TOO_LARGE unparsed and the connection stays open. */
  maxFrameBytes?: number;
  /** Hard limit where ws itself closes the connection with 1009. Default 16 × maxFrameBytes. */
  maxPayloadBytes?: number;
  /** Most messages in one batched frame. Default (and most) 100. */
  maxBatch?: number;
  /** Per-connection request rate (every message counts, AUTH too). Default 500/s, burst 1000. */
  rate?: { perSecond?: number; burst?: number };
  /** Request rate per api key, over all its connections. Default: the same as `rate`. */
  keyRate?: { perSecond?: number; burst?: number };
  /** Open connections from one IP address; more are refused with HTTP 429. Default 256. */
  maxConnectionsPerIp?: number;
  /** Authenticated connections per api key; more get AUTH_RETRY and close 1013. Default 64. */
  maxConnectionsPerKey?: number;
  /**
   * Frames in a row a connection may send over its rate (or refused whole: too large, batch too
   * long) before it is closed with 1008. Default 10.
   */
  maxStrikes?: number;
  /** Ping every intervalMs; terminate after maxMissedPongs unanswered. intervalMs 0 turns it off. */
  heartbeat?: { intervalMs?: number; maxMissedPongs?: number };
  /** A client that has sent PING and then nothing for this long is terminated (at the next heartbeat). Default 10,000. */
  pingIdleMs?: number;
  /** Account events kept for RESUME. Default 10,000. */
  replayBuffer?: number;
  /** A connection whose unsent bytes exceed this is a slow consumer and is terminated. Default 8 MiB. */
  maxBufferedBytes?: number;
  /**
   * Where client_order_ids are kept for idempotent PLACE_ORDER beyond the broker's own retention,
   * for their IST trading day and the next (lib/gateway/idempotency-index.ts). Without it they are
   * kept in memory only and a restart forgets them.
   */
  idempotencyFile?: string;
  /**
   * Soft cap on one answer frame: a batch's answers are split into array frames of about this
   * size, and wait for the socket to drain before the next goes out. Default 1 MiB.
   */
  maxAnswerFrameBytes?: number;
  /** How long close() waits for a client's close handshake before terminating it. Default 1000. */
  closeTimeoutMs?: number;
  /** The account name AUTH reports when the credential names none. Default: the broker's, or "default". */
  account?: string;
  log?: BrokerLogger;
  /** Wall clock in ms (AUTH timestamps, nonce expiry, server_time). Default Date.now. */
  now?: () => number;
  /**
   * Awaited before answering a request that changed the account and before pushing events, e.g.
   * the paper broker's journal flush: whatever a client was told then survives the gateway being
   * killed. Concurrent requests share one flush.
   */
  durable?: () => Promise<void>;
}

/** Requests whose answer announces a change to the account. */
const MUTATING = new Set([
  "PLACE_ORDER",
  "MODIFY_ORDER",
  "CANCEL_ORDER",
  "PLACE_GTT",
  "MODIFY_GTT",
  "DELETE_GTT",
]);

interface Client {
  readonly id: number;
  readonly ws: WebSocket;
  readonly remote: string;
  readonly bucket: TokenBucket;
  authenticated: boolean;
  account: string;
  /** Set by a failed AUTH: nothing more is executed and the socket closes after the reply. */
  closeCode: number | undefined;
  authTimer: NodeJS.Timeout | undefined;
  missedPongs: number;
  /** Quote subscriptions as "EXCHANGE:SYMBOL". */
  readonly symbols: Set<string>;
  /** Pushes waiting for this tick's flush. */
  outbox: Outgoing[];
  /** Highest event seq sent, so a replay and the live flush never send one event twice in a row. */
  sentSeq: number;
  /** performance.now() of the last frame received. */
  lastFrameAt: number;
  /** Set by its first PING: from then on a silence past pingIdleMs means a dead link. */
  pings: boolean;
  readonly ip: string;
  /** The api key it authenticated with ("" before). */
  apiKey: string;
  /** Frames received before AUTH succeeded. */
  unauthenticatedFrames: number;
  /** Frames in a row refused for being over a limit. */
  strikes: number;
  /** Ids of its requests being executed: a second request with one of them is refused. */
  readonly inFlight: Set<string>;
}

interface Outgoing {
  seq?: number;
  frame: string;
}

interface QuoteSubscription {
  readonly clients: Set<Client>;
  /** Settles when the broker has (or has failed to) subscribe(d). */
  ready: Promise<void>;
}

/** A reply that is ready now, or once the broker answers. */
type Reply = string | Promise<string>;

const DEFAULTS = {
  host: "127.0.0.1",
  port: 0,
  path: "/v1",
  authTimeoutMs: 5000,
  ratePerSecond: 500,
  burst: 1000,
  heartbeatIntervalMs: 10_000,
  maxMissedPongs: 2,
  pingIdleMs: 10_000,
  maxConnectionsPerIp: 256,
  maxConnectionsPerKey: 64,
  maxStrikes: 10,
  replayBuffer: 10_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  closeTimeoutMs: 1000,
  maxAnswerFrameBytes: 1024 * 1024,
} as const;

const REQUEST_TYPE_SET: ReadonlySet<string> = new Set(REQUEST_TYPES);

/**
 * Frames a connection may send before AUTH succeeds: AUTH and a few a client pipelined around it.
 * A socket that keeps talking without authenticating is cut off unparsed: each frame it sends
 * would otherwise cost parsing and an answer, which is how two sockets stalled everyone.
 */
const MAX_UNAUTHENTICATED_FRAMES = 4;
/** An AUTH is a few hundred bytes: a larger frame before it is not worth parsing. */
const MAX_UNAUTHENTICATED_FRAME_BYTES = 8 * 1024;

/** Requests one connection may have executing at once (a stalled broker must not pile up work). */
const MAX_IN_FLIGHT = 1000;

/** Quote subscriptions one connection may hold: each costs the broker a tracked symbol. */
export const MAX_SYMBOLS_PER_CONNECTION = 3000;

/**
 * The v1 protocol server: exposes any BrokerInterface to WebSocket clients (docs/PROTOCOL.md).
 * Every request gets exactly one RESULT or ERROR with its id; account events are pushed to every
 * authenticated connection and kept in a bounded buffer for RESUME.
 */
export class Gateway {
  readonly host: string;
  readonly path: string;
  readonly maxFrameBytes: number;
  readonly maxBatch: number;
  readonly ratePerSecond: number;
  readonly burst: number;

  readonly #broker: BrokerInterface;
  readonly #durable: (() => Promise<void>) | undefined;
  readonly #log: BrokerLogger;
  readonly #now: () => number;
  readonly #tls: boolean;
  readonly #requestedPort: number;
  readonly #authTimeoutMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #maxMissedPongs: number;
  readonly #pingIdleMs: number;
  readonly #keyRate: { perSecond: number; burst: number };
  readonly #maxConnectionsPerIp: number;
  readonly #maxConnectionsPerKey: number;
  readonly #maxStrikes: number;
  /** Open connections per remote address (counted from the upgrade to the close). */
  readonly #perIp = new Map<string, number>();
  /** Per api key: its shared rate bucket and its authenticated connections. */
  readonly #perKey = new Map<string, { bucket: TokenBucket; connections: number }>();
  readonly #maxBufferedBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #maxAnswerFrameBytes: number;
  readonly #account: string;
  readonly #verifier: AuthVerifier;
  readonly #replay: ReplayBuffer;
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;

  readonly #clients = new Set<Client>();
  #nextClientId = 1;
  #port = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #flushing: NodeJS.Immediate | undefined;
  readonly #dirty = new Set<Client>();
  /** The last event seq made durable, held for RESUME and pushed: what AUTH, PING and RESUME report. */
  #pushedSeq = 0;
  /** Account events emitted since the last flush, waiting for `durable`. */
  #unflushed: BufferedEvent[] = [];
  #publishing: Promise<void> = Promise.resolve();
  /** client_order_id → the placement in flight and its parameters' hash. */
  readonly #placing = new Map<string, { hash: string; placed: Promise<OrderSnapshot> }>();
  /** Set by start() before the first connection. */
  #index!: IdempotencyIndex;
  /** An order-book scan in progress, shared by the client_order_id lookups waiting on it. */
  #bookScan: Promise<Map<string, OrderSnapshot>> | undefined;
  /** The order book sorted by order_id, shared by the GET_ORDERBOOK pages asked for in one turn. */
  #sortedScan: Promise<OrderSnapshot[]> | undefined;
  readonly #quotes = new Map<string, QuoteSubscription>();
  /** Broker subscribe/unsubscribe calls run one after another, so they reach it in the order made. */
  #quoteOps: Promise<void> = Promise.resolve();

  readonly #onOrder = (event: OrderEvent): void => this.#onAccountEvent(event);
  readonly #onGtt = (event: GttEvent): void => this.#onAccountEvent(event);
  readonly #onQuote = (quote: Quote): void => this.#pushQuote(quote);
  readonly #onBrokerError = (error: BrokerError): void => {
    this.#log.warn(`gateway: broker reported ${error.code}: ${error.message}`);
  };

  private constructor(options: GatewayOptions) {
    const limit = (name: string, value: number | undefined, fallback: number, max?: number): number => {
      const chosen = value ?? fallback;
      if (!Number.isFinite(chosen) || chosen < 0 || (max !== undefined && chosen > max)) {
        throw new RangeError(
          `gateway option ${name} must be a number from 0${max === undefined ? "" : ` to ${max}`}, got ${chosen}`,
        );
      }
      return chosen;
    };
    this.#broker = options.broker;
    this.#log = options.log ?? silentLogger;
    this.#durable = options.durable;
    this.#now = options.now ?? Date.now;
    this.host = options.host ?? DEFAULTS.host;
    this.#requestedPort = limit("port", options.port, DEFAULTS.port, 65535);
    this.path = options.path ?? DEFAULTS.path;
    if (!this.path.startsWith("/"))
      throw new RangeError(`gateway option path must start with "/", got ${this.path}`);
    this.#authTimeoutMs = limit("authTimeoutMs", options.authTimeoutMs, DEFAULTS.authTimeoutMs);
    const authWindowMs = limit(
      "authWindowMs",
      options.authWindowMs,
      WIRE_LIMITS.authWindowMs,
      WIRE_LIMITS.authWindowMs,
    );
    this.maxFrameBytes = limit(
      "maxFrameBytes",
      options.maxFrameBytes,
      WIRE_LIMITS.maxFrameBytes,
      WIRE_LIMITS.maxFrameBytes,
    );
    const maxPayload = limit("maxPayloadBytes", options.maxPayloadBytes, this.maxFrameBytes * 16);
    this.maxBatch = Math.max(
      1,
      limit("maxBatch", options.maxBatch, WIRE_LIMITS.maxBatch, WIRE_LIMITS.maxBatch),
    );
    this.ratePerSecond = limit("rate.perSecond", options.rate?.perSecond, DEFAULTS.ratePerSecond);
    if (this.ratePerSecond <= 0) throw new RangeError("gateway option rate.perSecond must be greater than 0");
    this.burst = Math.max(1, Math.floor(limit("rate.burst", options.rate?.burst, DEFAULTS.burst)));
    this.#heartbeatIntervalMs = limit(
      "heartbeat.intervalMs",
      options.heartbeat?.intervalMs,
      DEFAULTS.heartbeatIntervalMs,
    );
    this.#maxMissedPongs = limit(
      "heartbeat.maxMissedPongs",
      options.heartbeat?.maxMissedPongs,
      DEFAULTS.maxMissedPongs,
    );
    this.#pingIdleMs = limit("pingIdleMs", options.pingIdleMs, DEFAULTS.pingIdleMs);
    const keyPerSecond = limit("keyRate.perSecond", options.keyRate?.perSecond, this.ratePerSecond);
    if (keyPerSecond <= 0) throw new RangeError("gateway option keyRate.perSecond must be greater than 0");
    this.#keyRate = {
      perSecond: keyPerSecond,
      burst: Math.max(1, Math.floor(limit("keyRate.burst", options.keyRate?.burst, this.burst))),
    };
    this.#maxConnectionsPerIp = limit(
      "maxConnectionsPerIp",
      options.maxConnectionsPerIp,
      DEFAULTS.maxConnectionsPerIp,
    );
    this.#maxConnectionsPerKey = limit(
      "maxConnectionsPerKey",
      options.maxConnectionsPerKey,
      DEFAULTS.maxConnectionsPerKey,
    );
    this.#maxStrikes = limit("maxStrikes", options.maxStrikes, DEFAULTS.maxStrikes);
    this.#maxBufferedBytes = limit("maxBufferedBytes", options.maxBufferedBytes, DEFAULTS.maxBufferedBytes);
    this.#closeTimeoutMs = limit("closeTimeoutMs", options.closeTimeoutMs, DEFAULTS.closeTimeoutMs);
    this.#maxAnswerFrameBytes = Math.max(
      1,
      limit("maxAnswerFrameBytes", options.maxAnswerFrameBytes, DEFAULTS.maxAnswerFrameBytes),
    );
    this.#account = options.account ?? brokerAccount(options.broker) ?? "default";
    this.#verifier = new AuthVerifier({
      credentials: options.credentials,
      windowMs: authWindowMs,
      now: this.#now,
      defaultAccount: this.#account,
    });
    this.#replay = new ReplayBuffer(limit("replayBuffer", options.replayBuffer, DEFAULTS.replayBuffer));

    this.#tls = options.tls !== undefined;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const status = requestPath(req) === this.path ? 426 : 404;
      res.writeHead(status, { "content-type": "text/plain", connection: "close" });
      res.end(status === 426 ? "this endpoint speaks WebSocket only\n" : "not found\n");
    };
    this.#server =
      options.tls === undefined
        ? http.createServer(onRequest)
        : https.createServer({ key: options.tls.key, cert: options.tls.cert }, onRequest);
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: maxPayload,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.#server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
  }

  /** Connects the broker if needed, listens, and resolves once clients can connect. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const gateway = new Gateway(options);
    gateway.#index = await IdempotencyIndex.open({
      ...(options.idempotencyFile === undefined ? {} : { file: options.idempotencyFile }),
      now: gateway.#now,
    });
    if (options.broker.state !== "connected") await options.broker.connect();
    // Orders placed before a crash cut the index's write short are still known by their ids.
    for (const order of await options.broker.getOrderbook()) {
      gateway.#index.seed(gateway.#account, order.client_order_id, order.order_id);
    }
    await gateway.#listen();
    return gateway;
  }

  get port(): number {
    return this.#port;
  }

  /** Where clients connect, e.g. ws://127.0.0.1:8787/v1. */
  get url(): string {
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `${this.#tls ? "wss" : "ws"}://${host}:${this.#port}${this.path}`;
  }

  /** Connections open now, authenticated or not. */
  get connections(): number {
    return this.#clients.size;
  }

  /** The last account event seq made durable and pushed (the broker's own at start). */
  get seq(): number {
    return this.#pushedSeq;
  }

  async #listen(): Promise<void> {
    this.#broker.on("order", this.#onOrder);
    this.#broker.on("gtt", this.#onGtt);
    this.#broker.on("quote", this.#onQuote);
    this.#broker.on("error", this.#onBrokerError);
    // What the broker holds at start was loaded from (or is) its journal: durable already.
    this.#pushedSeq = brokerLastSeq(this.#broker);
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once("error", reject);
        this.#server.listen(this.#requestedPort, this.host, () => {
          this.#server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      this.#detachBroker();
      this.#wss.close();
      throw error;
    }
    this.#server.on("error", (error) => this.#log.error(`gateway: server error: ${error.message}`));
    this.#port = (this.#server.address() as AddressInfo).port;
    if (this.#heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatIntervalMs);
    }
    this.#log.info(`gateway listening on ${this.url}`);
  }

  /**
   * Stops accepting, closes every client with 1001 (terminating those that do not answer within
   * closeTimeoutMs), clears every timer and leaves the broker as it was given: open, without the
   * gateway's listeners or quote subscriptions.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    this.#dirty.clear();
    this.#detachBroker();
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
    this.#server.closeIdleConnections();
    await Promise.all(Array.from(this.#clients, (client) => this.#closeClient(client)));
    this.#server.closeAllConnections();
    this.#wss.close();
    await serverClosed;
    await this.#quoteOps;
    await this.#index.flush();
  }

  #closeClient(client: Client): Promise<void> {
    const ws = client.ws;
    if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => ws.terminate(), this.#closeTimeoutMs);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_CODES.goingAway, "gateway shutting down");
    });
  }

  #detachBroker(): void {
    this.#broker.off("order", this.#onOrder);
    this.#broker.off("gtt", this.#onGtt);
    this.#broker.off("quote", this.#onQuote);
    this.#broker.off("error", this.#onBrokerError);
  }

  // #region connections

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = requestPath(req);
    const offersV1 = (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .some((protocol) => protocol.trim() === SUBPROTOCOL);
    if (this.#closing) {
      refuseUpgrade(socket, "503 Service Unavailable");
      return;
    }
    if (path !== this.path && !(path === "/" && offersV1)) {
      refuseUpgrade(socket, "404 Not Found");
      return;
    }
    const ip = req.socket.remoteAddress ?? "?";
    if ((this.#perIp.get(ip) ?? 0) >= this.#maxConnectionsPerIp) {
      this.#log.warn(`gateway: refused a connection from ${ip}: ${this.#maxConnectionsPerIp} already open`);
      refuseUpgrade(socket, "429 Too Many Requests");
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req));
  }

  #onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    if (this.#closing) {
      ws.close(CLOSE_CODES.goingAway, "gateway shutting down");
      return;
    }
    const client: Client = {
      id: this.#nextClientId++,
      ws,
      remote: `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`,
      bucket: new TokenBucket(this.ratePerSecond, this.burst),
      authenticated: false,
      account: "",
      closeCode: undefined,
      authTimer: undefined,
      missedPongs: 0,
      symbols: new Set(),
      outbox: [],
      sentSeq: 0,
      lastFrameAt: performance.now(),
      pings: false,
      ip: req.socket.remoteAddress ?? "?",
      apiKey: "",
      unauthenticatedFrames: 0,
      strikes: 0,
      inFlight: new Set(),
    };
    this.#clients.add(client);
    this.#perIp.set(client.ip, (this.#perIp.get(client.ip) ?? 0) + 1);
    client.authTimer = setTimeout(() => {
      client.authTimer = undefined;
      this.#log.warn(`gateway: connection ${client.id} (${client.remote}) did not authenticate in time`);
      ws.close(CLOSE_CODES.authTimeout, "authentication timeout");
    }, this.#authTimeoutMs);
    ws.on("message", (data, isBinary) => this.#onMessage(client, data, isBinary));
    ws.on("pong", () => {
      client.missedPongs = 0;
    });
    ws.on("error", (error) => {
      this.#log.warn(`gateway: connection ${client.id} (${client.remote}): ${error.message}`);
    });
    ws.once("close", (code) => {
      if (client.authenticated) this.#log.info(`gateway: connection ${client.id} closed (${code})`);
      this.#onClose(client);
    });
  }

  #onClose(client: Client): void {
    if (!this.#clients.delete(client)) return;
    const fromIp = (this.#perIp.get(client.ip) ?? 1) - 1;
    if (fromIp <= 0) this.#perIp.delete(client.ip);
    else this.#perIp.set(client.ip, fromIp);
    const key = this.#perKey.get(client.apiKey);
    if (client.authenticated && key !== undefined) key.connections -= 1;
    this.#dirty.delete(client);
    client.outbox = [];
    if (client.authTimer !== undefined) clearTimeout(client.authTimer);
    client.authTimer = undefined;
    const gone: string[] = [];
    for (const key of Array.from(client.symbols)) {
      if (this.#release(client, key)) gone.push(key);
    }
    if (gone.length > 0) {
      this.#quoteOp(() => this.#broker.unsubscribeQuotes(gone)).catch((error: unknown) => {
        this.#log.warn(`gateway: unsubscribing ${gone.join(", ")} failed: ${describe(error)}`);
      });
    }
  }

  /**
   * One ping per interval; a client that missed maxMissedPongs in a row is dead and is terminated.
   * So is a client that sends application PINGs and has fallen silent for pingIdleMs: a relay that
   * drops data frames still answers WebSocket pings.
   */
  #beat(): void {
    const now = performance.now();
    for (const client of this.#clients) {
      if (client.pings && now - client.lastFrameAt > this.#pingIdleMs) {
        this.#log.warn(
          `gateway: connection ${client.id} (${client.remote}) sent PINGs, then nothing for ${Math.round(now - client.lastFrameAt)} ms; terminating it`,
        );
        client.ws.terminate();
        continue;
      }
      if (client.missedPongs >= this.#maxMissedPongs) {
        this.#log.warn(
          `gateway: connection ${client.id} (${client.remote}) missed ${client.missedPongs} pongs; terminating it`,
        );
        client.ws.terminate();
        continue;
      }
      client.missedPongs++;
      client.ws.ping();
    }
  }

  /** `written`, when given, is called once the frame is on the socket or can never be (always once). */
  #send(client: Client, frame: string, written?: () => void): void {
    const ws = client.ws;
    if (ws.readyState !== WebSocket.OPEN) {
      written?.();
      return;
    }
    if (written === undefined) ws.send(frame);
    else ws.send(frame, () => written());
    if (ws.bufferedAmount > this.#maxBufferedBytes) {
      this.#log.warn(
        `gateway: connection ${client.id} (${client.remote}) has ${ws.bufferedAmount} bytes unsent (limit ${this.#maxBufferedBytes}); terminating the slow consumer`,
      );
      ws.terminate();
    }
  }

  // #endregion

  // #region frames and requests

  #onMessage(client: Client, data: RawData, isBinary: boolean): void {
    client.lastFrameAt = performance.now();
    if (client.closeCode !== undefined || client.ws.readyState !== WebSocket.OPEN) return;
    // Budget first: no frame is parsed, or answered, beyond what the connection may spend.
    if (!client.authenticated) {
      client.unauthenticatedFrames += 1;
      if (client.unauthenticatedFrames > MAX_UNAUTHENTICATED_FRAMES) {
        this.#cutOff(client, `${MAX_UNAUTHENTICATED_FRAMES} frames and still not authenticated`);
        return;
      }
      const size = rawSize(data);
      if (size > MAX_UNAUTHENTICATED_FRAME_BYTES) {
        this.#cutOff(client, `a frame of ${size} bytes before authenticating`);
        return;
      }
    }
    if (client.bucket.available < 1) {
      this.#strike(client, `over the rate limit of ${this.ratePerSecond} requests/s`);
      // Answered once (unparsed, id null); the frames after it in the same run are not.
      if (client.strikes === 1) {
        const waitMs = Math.max(1, Math.ceil(((1 - client.bucket.available) * 1000) / this.ratePerSecond));
        this.#reply(client, [this.#rateLimited(null, waitMs)], false);
      }
      return;
    }
    if (isBinary) {
      this.#refuseFrame(
        client,
        [null],
        "BAD_FRAME",
        "binary frames are not supported; send JSON text",
        false,
      );
      return;
    }
    const bytes = rawBytes(data);
    if (bytes.length > this.maxFrameBytes) {
      this.#strike(client, "frames over the size limit");
      const message = `frame of ${bytes.length} bytes exceeds the limit of ${this.maxFrameBytes} bytes; it was not read`;
      this.#refuseFrame(client, [null], "FRAME_TOO_LARGE", message, false);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch {
      this.#refuseFrame(client, [null], "BAD_FRAME", "frame is not valid JSON", false);
      return;
    }
    if (!Array.isArray(parsed)) {
      client.strikes = 0;
      this.#reply(client, [this.#handle(client, parsed)], false);
      return;
    }
    const batch = parsed as unknown[];
    if (batch.length === 0) {
      this.#refuseFrame(client, [null], "BAD_FRAME", "a batch must hold at least one message", false);
      return;
    }
    if (batch.length > this.maxBatch) {
      // Nothing runs, and the batch is answered once (id null): one answer per request would
      // let a frame of tiny requests buy many times its size in answers.
      this.#strike(client, "batches over the length limit");
      const message = `batch of ${batch.length} messages exceeds the limit of ${this.maxBatch}; nothing in it was executed and its requests get no other answer`;
      this.#refuseFrame(client, [null], "BATCH_TOO_LARGE", message, false);
      return;
    }
    client.strikes = 0;
    this.#reply(
      client,
      batch.map((message) => this.#handle(client, message)),
      true,
    );
  }

  /** Answers a frame refused whole. It costs one token, so a flood of bad frames is limited too. */
  #refuseFrame(
    client: Client,
    ids: (string | null)[],
    code: ErrorCode,
    message: string,
    batch: boolean,
  ): void {
    const waitMs = client.bucket.take();
    const frames = ids.map((id) =>
      waitMs > 0 ? this.#rateLimited(id, waitMs) : errorFrame(id, code, message),
    );
    this.#reply(client, frames, batch);
  }

  /** Counts a frame refused for a limit; past maxStrikes in a row the connection is cut off. */
  #strike(client: Client, what: string): void {
    client.strikes += 1;
    if (client.strikes > this.#maxStrikes) this.#cutOff(client, `${client.strikes} ${what} in a row`);
  }

  /** Closes a connection that keeps breaking the rules (1008), without answering it further. */
  #cutOff(client: Client, why: string): void {
    if (client.closeCode !== undefined) return;
    client.closeCode = CLOSE_CODES.policy;
    this.#log.warn(`gateway: closing connection ${client.id} (${client.remote}): ${why}`);
    client.ws.close(CLOSE_CODES.policy, why.slice(0, 120));
    // Whatever it keeps sending meanwhile is still read off the socket: give it 100 ms, not the
    // polite closeTimeoutMs.
    setTimeout(() => client.ws.terminate(), 100).unref();
  }

  #rateLimited(id: string | null, waitMs: number): string {
    return errorFrame(
      id,
      "RATE_LIMITED",
      `over the rate limit of ${this.ratePerSecond} requests/s (burst ${this.burst}); not executed, retry after ${waitMs} ms`,
      waitMs,
    );
  }

  /**
   * Sends one frame's replies (array frames for a batch), then closes if AUTH failed. Every path
   * ends in a handler: a fault here is logged, never an unhandled rejection that ends the process.
   */
  #reply(client: Client, replies: Reply[], batch: boolean): void {
    const failed = (error: unknown): void => {
      this.#log.error(`gateway: reply to connection ${client.id} failed: ${describe(error)}`);
    };
    if (replies.every((reply): reply is string => typeof reply === "string")) {
      this.#deliver(client, replies, batch).catch(failed);
      return;
    }
    Promise.all(replies.map(async (reply) => reply))
      .then((frames) => this.#deliver(client, frames, batch))
      .catch(failed);
  }

  /**
   * Answers go out in array frames of about maxAnswerFrameBytes, never one string of a whole batch
   * (100 pages of a large book would pass V8's string limit). Past half the slow-consumer limit
   * the next frame waits until the socket has taken the last one, so big answers to a reader that
   * keeps up are paced rather than cut off.
   */
  async #deliver(client: Client, frames: string[], batch: boolean): Promise<void> {
    const ws = client.ws;
    if (!batch) {
      this.#send(client, frames[0] ?? "");
    } else {
      let start = 0;
      let written: Promise<void> = Promise.resolve();
      while (start < frames.length) {
        let end = start;
        let bytes = 2;
        do {
          bytes += (frames[end]?.length ?? 0) + 1;
          end++;
        } while (end < frames.length && bytes + (frames[end]?.length ?? 0) <= this.#maxAnswerFrameBytes);
        const chunk = frames.slice(start, end);
        start = end;
        if (ws.readyState !== WebSocket.OPEN) return;
        if (ws.bufferedAmount > this.#maxBufferedBytes / 2) await written;
        if (ws.readyState !== WebSocket.OPEN) return;
        written = new Promise<void>((resolve) => this.#send(client, `[${chunk.join(",")}]`, resolve));
      }
    }
    if (client.closeCode !== undefined && ws.readyState === WebSocket.OPEN) {
      ws.close(
        client.closeCode,
        client.closeCode === CLOSE_CODES.tryAgainLater ? "try again later" : "authentication failed",
      );
    }
  }

  /** One message: rate, shape, type, authentication, schema, then the broker. */
  #handle(client: Client, message: unknown): Reply {
    const id = readableId(message);
    const waitMs = client.bucket.take();
    if (waitMs > 0) return this.#rateLimited(id, waitMs);
    if (!isObject(message) || typeof message.type !== "string") {
      return errorFrame(id, "BAD_FRAME", "a message must be a JSON object with a string type");
    }
    const type = message.type;
    if (!REQUEST_TYPE_SET.has(type)) {
      return errorFrame(id, "UNKNOWN_TYPE", `unknown message type ${JSON.stringify(type.slice(0, 64))}`);
    }
    if (client.closeCode !== undefined) {
      return errorFrame(id, "UNAUTHENTICATED", `AUTH failed on this connection; ${type} was not executed`);
    }
    if (type !== "AUTH" && !client.authenticated) {
      return errorFrame(id, "UNAUTHENTICATED", `send AUTH first; ${type} was not executed`);
    }
    if (type === "AUTH" && client.authenticated) {
      return errorFrame(
        id,
        "VALIDATION",
        "AUTH: this connection is already authenticated; a second AUTH is refused",
      );
    }
    if (client.authenticated) {
      const keyWaitMs = this.#perKey.get(client.apiKey)?.bucket.take() ?? 0;
      if (keyWaitMs > 0) {
        return errorFrame(
          id,
          "RATE_LIMITED",
          `over the api key's rate limit of ${this.#keyRate.perSecond} requests/s over all its connections; not executed, retry after ${keyWaitMs} ms`,
          keyWaitMs,
        );
      }
    }
    const parsed = parseRequest(type as RequestType, message);
    if (typeof parsed === "string") return errorFrame(id, "VALIDATION", `invalid ${type}: ${parsed}`);
    if (parsed.type === "AUTH") return this.#authenticate(client, parsed);
    if (client.inFlight.has(parsed.id)) {
      return errorFrame(
        parsed.id,
        "VALIDATION",
        `id: a request with id ${parsed.id} is still in flight on this connection; ids must be unique among requests in flight, so this ${type} was not executed`,
      );
    }
    if (client.inFlight.size >= MAX_IN_FLIGHT) {
      return errorFrame(
        parsed.id,
        "RATE_LIMITED",
        `${MAX_IN_FLIGHT} requests are in flight on this connection; not executed, retry after 100 ms`,
        100,
      );
    }
    client.inFlight.add(parsed.id);
    return this.#execute(client, parsed).finally(() => client.inFlight.delete(parsed.id));
  }

  #authenticate(client: Client, request: WireRequestOf<"AUTH">): string {
    const outcome = this.#verifier.verify(request);
    if (!outcome.ok) {
      this.#log.warn(
        `gateway: AUTH refused on connection ${client.id} (${client.remote}): ${outcome.message}`,
      );
      if (outcome.retryAfterMs !== undefined) {
        // Not the credentials' fault: the client may try again later, with a new AUTH.
        client.closeCode = CLOSE_CODES.tryAgainLater;
        return errorFrame(request.id, "AUTH_RETRY", outcome.message, outcome.retryAfterMs);
      }
      client.closeCode = CLOSE_CODES.authFailed;
      return errorFrame(request.id, "AUTH", outcome.message);
    }
    let key = this.#perKey.get(outcome.apiKey);
    if (key === undefined) {
      key = { bucket: new TokenBucket(this.#keyRate.perSecond, this.#keyRate.burst), connections: 0 };
      this.#perKey.set(outcome.apiKey, key);
    }
    if (key.connections >= this.#maxConnectionsPerKey) {
      client.closeCode = CLOSE_CODES.tryAgainLater;
      const message = `api key already has ${key.connections} connections (the most allowed); retry later`;
      this.#log.warn(`gateway: AUTH refused on connection ${client.id} (${client.remote}): ${message}`);
      return errorFrame(request.id, "AUTH_RETRY", message, 1000);
    }
    key.connections += 1;
    client.apiKey = outcome.apiKey;
    client.authenticated = true;
    client.account = outcome.account;
    this.#log.info(
      `gateway: connection ${client.id} (${client.remote}) authenticated for ${outcome.account}`,
    );
    if (client.authTimer !== undefined) clearTimeout(client.authTimer);
    client.authTimer = undefined;
    const result: AuthResult = {
      account: outcome.account,
      seq: this.seq,
      server_time: new Date(this.#now()).toISOString(),
      limits: {
        max_frame_bytes: this.maxFrameBytes,
        max_batch: this.maxBatch,
        rate_per_second: this.ratePerSecond,
        burst: this.burst,
      },
    };
    return resultFrame(request.id, result);
  }

  async #execute(client: Client, request: Exclude<WireRequest, { type: "AUTH" }>): Promise<string> {
    try {
      const result = await this.#dispatch(client, request);
      if (MUTATING.has(request.type)) {
        // The journal and the idempotency index are written side by side, not one after the other.
        await Promise.all([
          this.#durable?.(),
          request.type === "PLACE_ORDER" ? this.#index.flush() : undefined,
        ]);
      }
      return resultFrame(request.id, result);
    } catch (error) {
      if (error instanceof BrokerError) {
        return errorFrame(request.id, error.code, error.message, error.retryAfterMs);
      }
      this.#log.error(
        `gateway: ${request.type} ${request.id} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      return errorFrame(request.id, "INTERNAL", `${request.type} failed on the gateway; see its log`);
    }
  }

  /** Runs a request against the broker. Anything before its first await runs in the caller's turn. */
  async #dispatch(client: Client, request: Exclude<WireRequest, { type: "AUTH" }>): Promise<unknown> {
    const broker = this.#broker;
    switch (request.type) {
      case "PLACE_ORDER":
        return this.#placeOrder(request.order);
      case "MODIFY_ORDER":
        return broker.modifyOrder(request.order_id, request.changes);
      case "CANCEL_ORDER":
        return broker.cancelOrder(request.order_id);
      case "GET_ORDER":
        return "order_id" in request
          ? broker.getOrder(request.order_id)
          : this.#orderByClientId(request.client_order_id);
      case "GET_ORDERBOOK":
        return this.#orderbookPage(request.limit, request.after);
      case "PLACE_GTT":
        return broker.placeGtt(request.gtt);
      case "MODIFY_GTT":
        return broker.modifyGtt(request.gtt_id, request.gtt);
      case "DELETE_GTT":
        return broker.deleteGtt(request.gtt_id);
      case "GET_GTTS":
        return broker.getGtts();
      case "GET_POSITIONS":
        return broker.getPositions();
      case "GET_ACCOUNT":
        return broker.getAccount();
      case "SUBSCRIBE":
        return { symbols: await this.#subscribe(client, request.symbols) };
      case "UNSUBSCRIBE":
        return { symbols: await this.#unsubscribe(client, request.symbols) };
      case "RESUME":
        return this.#resume(client, request.from_seq);
      case "PING":
        client.pings = true;
        return { seq: this.seq, server_time: new Date(this.#now()).toISOString() };
    }
  }

  // #endregion

  // #region orders

  /**
   * Idempotent on client_order_id on top of the broker's own, for the whole trading day and across
   * restarts: a retry while the first placement is in flight gets that placement's answer; a later
   * one the original order as it is now. The answer waits until the id is durably indexed. A
   * retry with different parameters is refused with IDEMPOTENCY_MISMATCH.
   */
  async #placeOrder(order: WireRequestOf<"PLACE_ORDER">["order"]): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    const hash = orderHash(order);
    const inFlight = this.#placing.get(clientOrderId);
    if (inFlight !== undefined) {
      if (inFlight.hash !== hash) throw mismatch(clientOrderId, "an order in flight");
      return inFlight.placed;
    }
    const known = this.#index.get(this.#account, clientOrderId);
    if (known !== undefined) {
      if (known.hash !== "" && known.hash !== hash) throw mismatch(clientOrderId, `order ${known.orderId}`);
      return this.#originalOrder(clientOrderId, known.orderId);
    }
    const placed = (async () => {
      const snapshot = await this.#broker.placeOrder(order);
      // Durable before the answer goes out: #execute awaits the index's flush with the journal's.
      this.#index.record(this.#account, clientOrderId, snapshot.order_id, hash);
      return snapshot;
    })();
    const entry = { hash, placed };
    this.#placing.set(clientOrderId, entry);
    try {
      return await placed;
    } finally {
      // Placed: the index answers from now on. Failed: nothing was placed, a retry may try again.
      if (this.#placing.get(clientOrderId) === entry) this.#placing.delete(clientOrderId);
    }
  }

  /** The order an id made; when the broker no longer holds it, PLACE_ORDER and GET_ORDER say so alike. */
  async #originalOrder(clientOrderId: string, orderId: string): Promise<OrderSnapshot> {
    try {
      return await this.#broker.getOrder(orderId);
    } catch (error) {
      if (error instanceof BrokerError && error.code === "NOT_FOUND") {
        throw new BrokerError(
          "DUPLICATE_ORDER",
          `client_order_id ${clientOrderId} was already used today for order ${orderId}, which the broker no longer holds; no new order was placed`,
        );
      }
      throw error;
    }
  }

  /** One page of the order book by order_id (docs/PROTOCOL.md, GET_ORDERBOOK). */
  async #orderbookPage(limit: number | undefined, after: string | undefined): Promise<OrderSnapshot[]> {
    const book = await this.#sortedBook();
    let start = 0;
    if (after !== undefined) {
      let high = book.length;
      while (start < high) {
        const mid = (start + high) >>> 1;
        if ((book[mid]?.order_id ?? "") > after) high = mid;
        else start = mid + 1;
      }
    }
    const remaining = book.length - start;
    if (limit === undefined && remaining > WIRE_LIMITS.maxPage) {
      throw new BrokerError(
        "VALIDATION",
        `invalid GET_ORDERBOOK: limit: is required when more than ${WIRE_LIMITS.maxPage} orders would be answered (${remaining} would); page with limit and after`,
      );
    }
    return book.slice(start, start + (limit ?? WIRE_LIMITS.maxPage));
  }

  #sortedBook(): Promise<OrderSnapshot[]> {
    this.#sortedScan ??= this.#broker
      .getOrderbook()
      .then((book) => book.sort((a, b) => (a.order_id < b.order_id ? -1 : a.order_id > b.order_id ? 1 : 0)))
      .finally(() => {
        this.#sortedScan = undefined;
      });
    return this.#sortedScan;
  }

  /**
   * The order book indexed by client_order_id. Lookups that arrive while a scan is running share
   * it: after a restart every client settling lost placements asks at once, and a scan of the
   * whole book per lookup (O(book) each) would starve the gateway just when it is busiest.
   */
  #scanBook(): Promise<Map<string, OrderSnapshot>> {
    this.#bookScan ??= this.#broker
      .getOrderbook()
      .then((book) => new Map(book.map((order) => [order.client_order_id, order])))
      .finally(() => {
        this.#bookScan = undefined;
      });
    return this.#bookScan;
  }

  async #orderByClientId(clientOrderId: string): Promise<OrderSnapshot> {
    const inFlight = this.#placing.get(clientOrderId);
    if (inFlight !== undefined) {
      const placed = await inFlight.placed.catch(() => undefined);
      if (placed !== undefined) return this.#broker.getOrder(placed.order_id);
    }
    const known = this.#index.get(this.#account, clientOrderId);
    if (known !== undefined) return this.#originalOrder(clientOrderId, known.orderId);
    const found = (await this.#scanBook()).get(clientOrderId);
    if (found === undefined)
      throw new BrokerError("NOT_FOUND", `no order with client_order_id ${clientOrderId}`);
    return found;
  }

  // #endregion

  // #region quotes

  #quoteOp(operation: () => Promise<void>): Promise<void> {
    const run = this.#quoteOps.then(operation);
    this.#quoteOps = run.catch(() => undefined);
    return run;
  }

  /** Adds symbols to the client's set; the broker is asked only for ones no client had. */
  async #subscribe(client: Client, symbols: string[]): Promise<string[]> {
    const keys = symbols.map(symbolKey);
    const adding = new Set(keys.filter((key) => !client.symbols.has(key))).size;
    if (client.symbols.size + adding > MAX_SYMBOLS_PER_CONNECTION) {
      throw new BrokerError(
        "VALIDATION",
        `symbols: a connection may hold at most ${MAX_SYMBOLS_PER_CONNECTION} subscriptions (it holds ${client.symbols.size}, this adds ${adding}); unsubscribe some first`,
      );
    }
    const added: string[] = [];
    const fresh: string[] = [];
    for (const key of keys) {
      if (client.symbols.has(key)) continue;
      let subscription = this.#quotes.get(key);
      if (subscription === undefined) {
        subscription = { clients: new Set(), ready: Promise.resolve() };
        this.#quotes.set(key, subscription);
        fresh.push(key);
      }
      subscription.clients.add(client);
      client.symbols.add(key);
      added.push(key);
    }
    if (fresh.length > 0) {
      const ready = this.#quoteOp(() => this.#broker.subscribeQuotes(fresh));
      for (const key of fresh) {
        const subscription = this.#quotes.get(key);
        if (subscription !== undefined) subscription.ready = ready;
      }
    }
    const waits = added.map((key) => this.#quotes.get(key)?.ready ?? Promise.resolve());
    try {
      await Promise.all(waits);
    } catch (error) {
      // The broker refused: the client is not subscribed to what this request added.
      for (const key of added) this.#release(client, key);
      throw error;
    }
    return Array.from(client.symbols);
  }

  async #unsubscribe(client: Client, symbols: string[]): Promise<string[]> {
    const gone = symbols.map(symbolKey).filter((key) => this.#release(client, key));
    if (gone.length > 0) {
      // The client gets no more quotes for these either way; a broker failure is the gateway's to log.
      await this.#quoteOp(() => this.#broker.unsubscribeQuotes(gone)).catch((error: unknown) => {
        this.#log.warn(`gateway: unsubscribing ${gone.join(", ")} failed: ${describe(error)}`);
      });
    }
    return Array.from(client.symbols);
  }

  /** Drops one client's interest in a symbol; true when it was the last one (unsubscribe the broker). */
  #release(client: Client, key: string): boolean {
    client.symbols.delete(key);
    const subscription = this.#quotes.get(key);
    if (subscription === undefined || !subscription.clients.delete(client)) return false;
    if (subscription.clients.size > 0) return false;
    this.#quotes.delete(key);
    return true;
  }

  #pushQuote(quote: Quote): void {
    const subscription = this.#quotes.get(`${quote.exchange}:${quote.symbol}`);
    if (subscription === undefined) return;
    const item: Outgoing = { frame: JSON.stringify({ type: "QUOTE", quote }) };
    for (const client of subscription.clients) this.#enqueue(client, item);
  }

  // #endregion

  // #region events

  /**
   * An account event is held back until `durable` has run: only then does it enter the replay
   * buffer and go to connections, so neither a push nor a RESUME hands out an event that a kill -9
   * could still take back.
   */
  #onAccountEvent(event: AccountEvent): void {
    this.#unflushed.push({ seq: event.seq, frame: JSON.stringify({ type: "EVENT", event }) });
    this.#flushing ??= setImmediate(this.#flush);
  }

  #enqueue(client: Client, item: Outgoing): void {
    client.outbox.push(item);
    this.#dirty.add(client);
    this.#flushing ??= setImmediate(this.#flush);
  }

  /** Sends each client's pushes of this tick, several in one array frame (after `durable`, if set). */
  readonly #flush = (): void => {
    this.#flushing = undefined;
    const events = this.#unflushed;
    this.#unflushed = [];
    const batch = Array.from(this.#dirty, (client) => {
      const items = client.outbox;
      client.outbox = [];
      return { client, items };
    });
    this.#dirty.clear();
    const publish = (): void => {
      this.#publishEvents(events);
      this.#sendPushes(batch);
    };
    if (this.#durable === undefined) {
      publish();
      return;
    }
    const durable = this.#durable;
    // Chained, so events enter the replay buffer in seq order even if flushes finish out of order.
    this.#publishing = this.#publishing
      .then(durable)
      .then(publish, (error: unknown) => {
        // The account in memory has changed either way; say the journal failed and tell clients.
        this.#log.error(`gateway: journal flush failed before pushing events: ${describe(error)}`);
        publish();
      })
      .catch((error: unknown) => this.#log.error(`gateway: pushing events failed: ${describe(error)}`));
  };

  /** Events now durable: held for RESUME and sent to every authenticated connection. */
  #publishEvents(events: BufferedEvent[]): void {
    if (events.length === 0) return;
    for (const item of events) {
      this.#replay.push(item);
      if (item.seq > this.#pushedSeq) this.#pushedSeq = item.seq;
    }
    for (const client of this.#clients) {
      if (!client.authenticated || client.closeCode !== undefined) continue;
      const frames: string[] = [];
      for (const item of events) {
        if (item.seq <= client.sentSeq) continue;
        client.sentSeq = item.seq;
        frames.push(item.frame);
      }
      this.#sendChunked(client, frames);
    }
  }

  #sendPushes(batch: { client: Client; items: Outgoing[] }[]): void {
    for (const { client, items } of batch) {
      if (client.closeCode !== undefined && client.ws.readyState !== WebSocket.OPEN) continue;
      const frames: string[] = [];
      for (const item of items) {
        if (item.seq !== undefined) {
          if (item.seq <= client.sentSeq) continue;
          client.sentSeq = item.seq;
        }
        frames.push(item.frame);
      }
      this.#sendChunked(client, frames);
    }
  }

  #sendChunked(client: Client, frames: string[]): void {
    for (let start = 0; start < frames.length; start += this.maxBatch) {
      const chunk = frames.slice(start, start + this.maxBatch);
      this.#send(client, chunk.length === 1 ? (chunk[0] ?? "") : `[${chunk.join(",")}]`);
    }
  }

  /** Sends the held events after fromSeq now (before the RESULT), and says whether any are missing. */
  #resume(client: Client, fromSeq: number): ResumeResult {
    const seq = this.seq;
    const events = this.#replay.after(fromSeq);
    this.#sendChunked(
      client,
      events.map((event) => event.frame),
    );
    const last = events[events.length - 1];
    if (last !== undefined && last.seq > client.sentSeq) client.sentSeq = last.seq;
    // A client ahead of the server (a wiped account, another server) must reconcile as well.
    const gap = fromSeq > seq || (fromSeq < seq && !this.#replay.has(fromSeq + 1));
    return { replayed: events.length, gap, seq };
  }

  // #endregion
}

function parseRequest(type: RequestType, message: Record<string, unknown>): WireRequest | string {
  const result = REQUEST_SCHEMAS[type].safeParse(message);
  if (result.success) return result.data;
  if (type === "GET_ORDER" && result.error.issues.some((issue) => issue.code === "invalid_union")) {
    const hasOrderId = "order_id" in message;
    const hasClientId = "client_order_id" in message;
    if (hasOrderId === hasClientId) {
      return "order_id, client_order_id: give exactly one of order_id or client_order_id";
    }
    // Name the rule of the branch the client meant rather than zod's "Invalid input".
    const branch = REQUEST_SCHEMAS.GET_ORDER.options[hasOrderId ? 0 : 1].safeParse(message);
    if (!branch.success) return formatIssues(branch.error.issues);
  }
  return formatIssues(result.error.issues);
}

function resultFrame(id: string, result: unknown): string {
  return JSON.stringify({ type: "RESULT", id, result });
}

function errorFrame(id: string | null, code: ErrorCode, message: string, retryAfterMs?: number): string {
  const error =
    retryAfterMs === undefined ? { code, message } : { code, message, retry_after_ms: retryAfterMs };
  return JSON.stringify({ type: "ERROR", id, error });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The message's id when it is a usable RequestId, so even a refused message is answered by id. */
function readableId(message: unknown): string | null {
  if (!isObject(message)) return null;
  const id = message.id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : null;
}

function rawSize(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data.byteLength;
}

function rawBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** "INFY" and "NSE:INFY" name one instrument: subscriptions are counted by "EXCHANGE:SYMBOL". */
function symbolKey(text: string): string {
  const { exchange, symbol } = parseInstrument(text);
  return `${exchange}:${symbol}`;
}

function requestPath(req: http.IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

function refuseUpgrade(socket: Duplex, status: string): void {
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** The seq a broker reports having issued (the paper broker's `lastSeq`), or 0. */
function brokerLastSeq(broker: BrokerInterface): number {
  const value: unknown = (broker as { lastSeq?: unknown }).lastSeq;
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function brokerAccount(broker: BrokerInterface): string | undefined {
  const settings: unknown = (broker as { settings?: unknown }).settings;
  if (!isObject(settings)) return undefined;
  return typeof settings.account === "string" ? settings.account : undefined;
}

function mismatch(clientOrderId: string, what: string): BrokerError {
  return new BrokerError(
    "IDEMPOTENCY_MISMATCH",
    `client_order_id ${clientOrderId} was already used for ${what} with different parameters; a retry must repeat the order exactly, a new order needs a new client_order_id`,
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
