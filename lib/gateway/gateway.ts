import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { RawData } from "ws";
import { WebSocket, WebSocketServer } from "ws";
import type { BrokerInterface } from "../brokers/interface";
import type { BrokerError } from "../protocol/errors";
import type { AccountEvent, GttEvent, OrderEvent } from "../protocol/events";
import type { Quote } from "../protocol/quotes";
import { CLOSE_CODES, SUBPROTOCOL, SUBPROTOCOL_V1_1 } from "../protocol/wire";
import { TokenBucket } from "../ws/token-bucket";
import { AuthVerifier } from "./auth";
import { Client } from "./client";
import type { KeyUsage } from "./dispatch";
import { AnswerBatch } from "./answer-batch";
import { Dispatcher } from "./dispatch";
import { FrameBudget, MAX_UNAUTHENTICATED_FRAME_BYTES } from "./frame-budget";
import { messageOf } from "../common/error-message";
import { IdempotencyIndex } from "./idempotency-index";
import type { GatewayOptions, GatewaySettings } from "./options";
import { parseGatewayOptions } from "./options";
import { Placements } from "./placements";
import { Pushes } from "./pushes";
import { RefusalLog } from "./refusal-log";
import { DurableBacklog, pauseReading } from "./durable-backlog";
import { QuoteSubscriptions } from "../common/quote-subscriptions";
import { setReceiveLimit } from "./receive-limit";

export type { GatewayOptions, GatewaySettings } from "./options";
/** Quote subscriptions one connection may hold: each costs the broker a tracked symbol. */
export const MAX_SYMBOLS_PER_CONNECTION = 3000;

/**
 * The v1 protocol server: exposes any BrokerInterface to WebSocket clients (docs/PROTOCOL.md).
 * Every request gets exactly one RESULT or ERROR with its id; account events are pushed to every
 * authenticated connection and kept in a bounded buffer for RESUME.
 *
 * This file is the server and its connections' lifecycle; the parts it wires together are
 * options.ts (settings), frame-budget.ts (what a frame may cost), dispatch.ts (a message to its
 * answer), placements.ts (idempotent orders), quote-subscriptions.ts and pushes.ts.
 */
export class Gateway {
  readonly host: string;
  readonly path: string;
  readonly maxFrameBytes: number;
  readonly maxBatch: number;
  readonly ratePerSecond: number;
  readonly burst: number;

  readonly #settings: GatewaySettings;
  readonly #broker: BrokerInterface;
  readonly #budget: FrameBudget;
  readonly #verifier: AuthVerifier;
  readonly #quotes: QuoteSubscriptions<Client>;
  readonly #pushes: Pushes;
  readonly #backlog: DurableBacklog;
  /** Set by start() once the idempotency index is open, before the first connection. */
  #dispatcher!: Dispatcher;
  #index!: IdempotencyIndex;
  #placements!: Placements;
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;

  readonly #clients = new Set<Client>();
  /** Open connections per remote address (counted from the upgrade to the close). */
  readonly #perIp = new Map<string, number>();
  readonly #perKey = new Map<string, KeyUsage>();
  /**
   * Per IP, connections that ended without authenticating in the current second. A socket that
   * is cut off for flooding comes straight back; refusing its next upgrades before the WebSocket
   * handshake turns that churn from handshakes into a 429 line each.
   */
  readonly #unauthenticatedCloses = new Map<string, { since: number; count: number }>();
  /**
   * TCP sockets open per remote address, from accept to close: upgraded or not. Node's HTTP server
   * keeps a socket that never sends a byte for ever, and #perIp counts only upgraded ones: 3,000
   * such sockets from one address were all still open 20 s later, on their way to the fd limit.
   */
  readonly #socketsPerIp = new Map<string, number>();
  /** TCP sockets open on the whole gateway, from accept to close: at most maxConnections. */
  #sockets = 0;
  /** Sockets not yet upgraded, each with the deadline for its upgrade request. */
  readonly #handshakes = new WeakMap<Duplex, NodeJS.Timeout>();
  #handshakeMs = 0;
  /** Warnings a peer causes at will (refused sockets, upgrades, AUTHs): at most one a second. */
  readonly #refusals: RefusalLog;
  #nextClientId = 1;
  #port = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** When the heartbeat last ran, and how many late ones in a row it let pass (#beat). */
  #beatAt = 0;
  #lateBeats = 0;

  readonly #onOrder = (event: OrderEvent): void => {
    this.#placements.bookChanged();
    this.#pushes.event(event);
  };
  readonly #onGtt = (event: GttEvent): void => {
    this.#dispatcher.gttsChanged();
    this.#pushes.event(event);
  };
  readonly #onQuote = (quote: Quote): void => this.#pushQuote(quote);
  readonly #onBrokerError = (error: BrokerError): void => {
    this.#settings.log.warn(`gateway: broker reported ${error.code}: ${error.message}`);
  };

  private constructor(settings: GatewaySettings) {
    this.#settings = settings;
    this.#refusals = new RefusalLog(settings.log);
    this.#broker = settings.broker;
    this.host = settings.host;
    this.path = settings.path;
    this.maxFrameBytes = settings.maxFrameBytes;
    this.maxBatch = settings.maxBatch;
    this.ratePerSecond = settings.rate.perSecond;
    this.burst = settings.rate.burst;
    this.#budget = new FrameBudget({
      ratePerSecond: this.ratePerSecond,
      burst: this.burst,
      maxFrameBytes: this.maxFrameBytes,
      maxBatch: this.maxBatch,
      maxStrikes: settings.maxStrikes,
    });
    this.#verifier = new AuthVerifier({
      credentials: settings.credentials,
      windowMs: settings.authWindowMs,
      now: settings.now,
      defaultAccount: settings.account,
    });
    this.#quotes = new QuoteSubscriptions({
      source: settings.broker,
      cap: { max: MAX_SYMBOLS_PER_CONNECTION, holder: "a connection" },
      groupCap: {
        max: settings.maxSymbolsPerKey,
        holder: "this connection's api key (over all its connections)",
        groupOf: (client) => client.apiKey,
      },
      totalCap: {
        max: settings.maxSymbolsPerGateway,
        holder: "this gateway (over all its api keys and connections)",
      },
      onUnsubscribeFailed: (keys, error) =>
        settings.log.warn(`gateway: unsubscribing ${keys.join(", ")} failed: ${messageOf(error)}`),
    });
    this.#backlog = new DurableBacklog(
      settings.maxHeldEvents,
      pauseReading(this.#clients, settings.log, settings.maxHeldEvents),
    );
    this.#pushes = new Pushes({
      clients: this.#clients,
      durable: settings.durable,
      log: settings.log,
      replayBuffer: settings.replayBuffer,
      maxAnswerFrameBytes: settings.maxAnswerFrameBytes,
      backlog: this.#backlog,
    });

    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const status = requestPath(req) === this.path ? 426 : 404;
      res.writeHead(status, { "content-type": "text/plain", connection: "close" });
      res.end(status === 426 ? "this endpoint speaks WebSocket only\n" : "not found\n");
    };
    // A socket gets authTimeoutMs to send its whole upgrade request (#armHandshake); Node's own
    // deadlines bound a half-sent request too, and a plain HTTP request's.
    // (Node wants whole milliseconds, a non-zero check interval, and timers under 2^31 ms.)
    const handshakeMs = Math.min(2 ** 31 - 1, Math.max(100, Math.ceil(settings.authTimeoutMs)));
    const deadlines = {
      headersTimeout: handshakeMs,
      requestTimeout: handshakeMs,
      connectionsCheckingInterval: Math.min(1000, handshakeMs),
    };
    this.#server =
      settings.tls === undefined
        ? http.createServer(deadlines, onRequest)
        : https.createServer(
            {
              key: settings.tls.key,
              cert: settings.tls.cert,
              handshakeTimeout: handshakeMs,
              ...deadlines,
            },
            onRequest,
          );
    this.#handshakeMs = handshakeMs;
    this.#server.on("connection", (socket: Socket) => {
      if (this.#onSocket(socket) && settings.tls === undefined) this.#armHandshake(socket);
    });
    // Over TLS the raw socket has handshakeTimeout; the upgrade arrives on the TLS socket.
    this.#server.on("secureConnection", (socket: Socket) => this.#armHandshake(socket));
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: settings.maxPayloadBytes,
      perMessageDeflate: false,
      // The newest both sides know: a v1.1 client offers v1.1 first and v1 too.
      handleProtocols: (protocols) =>
        settings.protocolVersion === "v1.1" && protocols.has(SUBPROTOCOL_V1_1)
          ? SUBPROTOCOL_V1_1
          : protocols.has(SUBPROTOCOL)
            ? SUBPROTOCOL
            : false,
    });
    this.#server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
  }

  /** Connects the broker if needed, listens, and resolves once clients can connect. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const gateway = new Gateway(parseGatewayOptions(options));
    const settings = gateway.#settings;
    const index = await IdempotencyIndex.open({
      ...(settings.idempotencyFile === undefined ? {} : { file: settings.idempotencyFile }),
      now: settings.now,
    });
    gateway.#index = index;
    const placements = new Placements(settings.broker, index, settings.account);
    gateway.#placements = placements;
    gateway.#dispatcher = new Dispatcher({
      settings,
      verifier: gateway.#verifier,
      budget: gateway.#budget,
      placements,
      quotes: gateway.#quotes,
      pushes: gateway.#pushes,
      perKey: gateway.#perKey,
      refusals: gateway.#refusals,
    });
    // Heard from before connect(): a broker may report events while it connects (Kite: fills made
    // while it was down, from its ledger), and recover() may too. #listen takes them over.
    const early: AccountEvent[] = [];
    const hold = (event: AccountEvent): void => {
      early.push(event);
    };
    settings.broker.on("order", hold);
    settings.broker.on("gtt", hold);
    const stopHolding = (): void => {
      settings.broker.off("order", hold);
      settings.broker.off("gtt", hold);
    };
    try {
      if (settings.broker.state !== "connected") await settings.broker.connect();
      // Placements a crash cut short are settled before any client can retry them.
      await placements.recover();
      await gateway.#listen(early, stopHolding);
    } catch (error) {
      stopHolding();
      await index.close().catch(() => undefined);
      throw error;
    }
    return gateway;
  }

  get port(): number {
    return this.#port;
  }

  /** Where clients connect, e.g. ws://127.0.0.1:8787/v1. */
  get url(): string {
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `${this.#settings.tls === undefined ? "ws" : "wss"}://${host}:${this.#port}${this.path}`;
  }

  /** Connections open now, authenticated or not. */
  get connections(): number {
    return this.#clients.size;
  }

  /** TCP sockets open, upgraded or not (at most maxConnections). */
  get sockets(): number {
    return this.#sockets;
  }

  /** The last account event seq made durable and pushed (the broker's own at start). */
  get seq(): number {
    return this.#pushes.seq;
  }

  async #listen(early: AccountEvent[], stopHolding: () => void): Promise<void> {
    // In one turn: the held events handed over and the gateway's own listeners on, none missed.
    stopHolding();
    this.#broker.on("order", this.#onOrder);
    this.#broker.on("gtt", this.#onGtt);
    this.#broker.on("quote", this.#onQuote);
    this.#broker.on("error", this.#onBrokerError);
    // What the broker holds at start was loaded from (or is) its journal: durable already. Events
    // it emitted while connecting are pushed (and held for RESUME) like any later one.
    const firstEarly = early[0]?.seq;
    const lastSeq = brokerLastSeq(this.#broker);
    this.#pushes.startAt(firstEarly === undefined ? lastSeq : Math.min(lastSeq, firstEarly - 1));
    for (const event of early) {
      if ("gtt" in event) this.#onGtt(event);
      else this.#onOrder(event);
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once("error", reject);
        this.#server.listen(this.#settings.port, this.host, () => {
          this.#server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      this.#detachBroker();
      this.#wss.close();
      throw error;
    }
    this.#server.on("error", (error) => this.#settings.log.error(`gateway: server error: ${error.message}`));
    this.#port = (this.#server.address() as AddressInfo).port;
    const { intervalMs } = this.#settings.heartbeat;
    this.#beatAt = performance.now();
    if (intervalMs > 0) this.#heartbeat = setInterval(() => this.#beat(), intervalMs);
    this.#settings.log.info(`gateway listening on ${this.url}`);
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
    this.#pushes.stop();
    this.#detachBroker();
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
    this.#server.closeIdleConnections();
    const timeoutMs = this.#settings.closeTimeoutMs;
    await Promise.all(Array.from(this.#clients, (client) => client.shutDown(timeoutMs)));
    this.#server.closeAllConnections();
    this.#wss.close();
    await serverClosed;
    await this.#quotes.settled();
    this.#placements.recordPlaced();
    await this.#index.close();
  }

  #detachBroker(): void {
    this.#broker.off("order", this.#onOrder);
    this.#broker.off("gtt", this.#onGtt);
    this.#broker.off("quote", this.#onQuote);
    this.#broker.off("error", this.#onBrokerError);
  }

  // #region connections

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    clearTimeout(this.#handshakes.get(socket));
    this.#handshakes.delete(socket);
    const path = requestPath(req);
    const offersV1 = (req.headers["sec-websocket-protocol"] ?? "").split(",").some((protocol) => {
      const name = protocol.trim();
      return name === SUBPROTOCOL || (name === SUBPROTOCOL_V1_1 && this.#settings.protocolVersion === "v1.1");
    });
    if (this.#closing) {
      refuseUpgrade(socket, "503 Service Unavailable");
      return;
    }
    if (path !== this.path && !(path === "/" && offersV1)) {
      refuseUpgrade(socket, "404 Not Found");
      return;
    }
    const ip = req.socket.remoteAddress ?? "?";
    const closes = this.#unauthenticatedCloses.get(ip);
    const maxCloses = this.#settings.maxUnauthenticatedClosesPerIp;
    if (maxCloses > 0 && closes !== undefined && closes.count >= maxCloses) {
      if (performance.now() - closes.since < 1000) {
        if (closes.count === maxCloses) {
          closes.count += 1; // logged once per second, not once per refusal
          this.#refusals.warn(
            "unauthenticated",
            `gateway: refusing connections from ${ip} for the rest of the second: ${maxCloses} closed without authenticating`,
          );
        }
        refuseUpgrade(socket, "429 Too Many Requests");
        return;
      }
      this.#unauthenticatedCloses.delete(ip);
    }
    const maxPerIp = this.#settings.maxConnectionsPerIp;
    if ((this.#perIp.get(ip) ?? 0) >= maxPerIp) {
      // One line a second: a peer retrying at the cap in a tight loop wrote one per attempt.
      this.#refusals.warn(
        "upgrade",
        `gateway: refused a connection from ${ip}: ${maxPerIp} connections already open`,
      );
      refuseUpgrade(socket, "429 Too Many Requests");
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req));
  }

  /**
   * A socket gets authTimeoutMs to send its upgrade request, silent or a byte at a time (Node's
   * HTTP server has no idle timeout by default); the client's AUTH deadline starts at the upgrade.
   */
  #armHandshake(socket: Socket): void {
    const deadline = setTimeout(() => {
      this.#handshakes.delete(socket);
      socket.destroy();
    }, this.#handshakeMs);
    deadline.unref();
    this.#handshakes.set(socket, deadline);
    socket.once("close", () => clearTimeout(deadline));
  }

  /**
   * Whether the socket is let in. Every TCP socket, before any HTTP: the gateway holds at most
   * maxConnections of them, and one address at most twice maxConnectionsPerIp (its connections and
   * as many upgrades under way or being refused 429); more are destroyed at once.
   */
  #onSocket(socket: Socket): boolean {
    const ip = socket.remoteAddress ?? "?";
    const total = this.#settings.maxConnections;
    if (this.#sockets >= total) {
      this.#refusals.warn(
        "gateway-full",
        `gateway: refused a connection from ${ip}: ${total} sockets already open on the gateway (maxConnections)`,
      );
      socket.destroy();
      return false;
    }
    const open = (this.#socketsPerIp.get(ip) ?? 0) + 1;
    const most = 2 * this.#settings.maxConnectionsPerIp;
    if (open > most) {
      this.#refusals.warn("socket", `gateway: refused a connection from ${ip}: ${most} sockets already open`);
      socket.destroy();
      return false;
    }
    this.#socketsPerIp.set(ip, open);
    this.#sockets += 1;
    socket.once("close", () => {
      this.#sockets -= 1;
      const left = (this.#socketsPerIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#socketsPerIp.delete(ip);
      else this.#socketsPerIp.set(ip, left);
    });
    return true;
  }

  #onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    if (this.#closing) {
      ws.close(CLOSE_CODES.goingAway, "gateway shutting down");
      return;
    }
    const settings = this.#settings;
    const log = settings.log;
    const client = new Client(
      this.#nextClientId++,
      ws,
      req,
      new TokenBucket(this.ratePerSecond, this.burst),
      {
        log,
        maxBufferedBytes: settings.maxBufferedBytes,
        maxAnswerFrameBytes: settings.maxAnswerFrameBytes,
        maxBatch: this.maxBatch,
        // One whole replay being written and one more asked for; past it, replays pile up unread.
        maxReplayEvents: 2 * Math.max(1, settings.replayBuffer),
      },
    );
    this.#clients.add(client);
    if (this.#backlog.paused) client.pauseReading();
    this.#perIp.set(client.ip, (this.#perIp.get(client.ip) ?? 0) + 1);
    // Until AUTH succeeds (dispatch.ts raises it), a frame longer than an AUTH is refused from its
    // header: two sockets sending 64 KB frames cost the gateway their whole payloads otherwise.
    setReceiveLimit(ws, Math.min(MAX_UNAUTHENTICATED_FRAME_BYTES, settings.maxPayloadBytes));
    client.authTimer = setTimeout(() => {
      client.authTimer = undefined;
      this.#refusals.warn(
        "auth-timeout",
        `gateway: connection ${client.id} (${client.remote}) did not authenticate in time`,
      );
      ws.close(CLOSE_CODES.authTimeout, "authentication timeout");
    }, settings.authTimeoutMs);
    ws.on("message", (data, isBinary) => this.#onMessage(client, data, isBinary));
    ws.on("pong", () => {
      client.missedPongs = 0;
    });
    ws.on("error", (error) => {
      // Before AUTH any peer can cause one at will: those lines are thinned out.
      const line = `gateway: connection ${client.id} (${client.remote}): ${error.message}`;
      if (client.authenticated) log.warn(line);
      else this.#refusals.warn("frame", line);
      // ws has sent its close frame (1009 for a frame over the limit) and reads nothing more:
      // the socket need not wait out ws's 30 s close timeout for a peer that keeps sending.
      setTimeout(() => ws.terminate(), 100).unref();
    });
    ws.once("close", (code) => {
      if (client.authenticated) log.info(`gateway: connection ${client.id} closed (${code})`);
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
    this.#pushes.forget(client);
    if (!client.authenticated) this.#countUnauthenticatedClose(client.ip);
    if (client.authTimer !== undefined) clearTimeout(client.authTimer);
    client.authTimer = undefined;
    this.#quotes.releaseAll(client);
  }

  #countUnauthenticatedClose(ip: string): void {
    const now = performance.now();
    let entry = this.#unauthenticatedCloses.get(ip);
    if (entry === undefined || now - entry.since >= 1000) {
      if (this.#unauthenticatedCloses.size >= 10_000) {
        for (const [key, old] of this.#unauthenticatedCloses) {
          if (now - old.since >= 1000) this.#unauthenticatedCloses.delete(key);
        }
      }
      entry = { since: now, count: 0 };
      this.#unauthenticatedCloses.set(ip, entry);
    }
    entry.count += 1;
  }

  /**
   * One ping per interval; a client that missed maxMissedPongs in a row is dead and is terminated.
   * So is a client that sends application PINGs and has fallen silent for pingIdleMs: a relay that
   * drops data frames still answers WebSocket pings. A connection the gateway is not reading
   * (durable-backlog.ts) is neither pinged nor judged until it reads again.
   */
  #beat(): void {
    const now = performance.now();
    // A beat this late ran after the gateway's own loop was held (GC, a long sort, a loaded
    // machine): the pongs and PINGs its clients sent meanwhile are still unread in their sockets,
    // since timers run before the poll phase that reads them. It judges no one, at most 4 in a row.
    const { intervalMs } = this.#settings.heartbeat;
    const late = now - this.#beatAt - intervalMs > Math.min(intervalMs / 4, 100);
    this.#beatAt = now;
    if (late && this.#lateBeats < 4) {
      this.#lateBeats += 1;
      return;
    }
    this.#lateBeats = 0;
    const { log, pingIdleMs } = this.#settings;
    const { maxMissedPongs } = this.#settings.heartbeat;
    for (const client of this.#clients) {
      if (client.readingPaused) continue;
      if (client.pings && now - client.lastFrameAt > pingIdleMs) {
        log.warn(
          `gateway: connection ${client.id} (${client.remote}) sent PINGs, then nothing for ${Math.round(now - client.lastFrameAt)} ms; terminating it`,
        );
        client.ws.terminate();
        continue;
      }
      if (client.missedPongs >= maxMissedPongs) {
        log.warn(
          `gateway: connection ${client.id} (${client.remote}) missed ${client.missedPongs} pongs; terminating it`,
        );
        client.ws.terminate();
        continue;
      }
      client.missedPongs++;
      client.ws.ping();
    }
  }

  // #endregion

  // #region frames

  #onMessage(client: Client, data: RawData, isBinary: boolean): void {
    client.lastFrameAt = performance.now();
    if (client.closeCode !== undefined || client.ws.readyState !== WebSocket.OPEN) return;
    const admission = this.#budget.admit(client, data, isBinary);
    if (admission.kind === "drop") return;
    if (admission.kind === "answer") {
      this.#deliver(client, admission.frames, false);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(admission.bytes.toString("utf8"));
    } catch {
      const refused = this.#budget.refuse(client, "BAD_FRAME", "frame is not valid JSON");
      if (refused.kind === "answer") this.#deliver(client, refused.frames, false);
      return;
    }
    if (!Array.isArray(parsed)) {
      client.strikes = 0;
      const single = new AnswerBatch(client, 1, false, this.#writeAnswers);
      this.#dispatcher.handle(client, parsed, single, 0);
      single.seal();
      return;
    }
    const messages = parsed as unknown[];
    const refused = this.#budget.admitBatch(client, messages.length);
    if (refused !== undefined) {
      if (refused.kind === "answer") this.#deliver(client, refused.frames, false);
      return;
    }
    const batch = new AnswerBatch(client, messages.length, true, this.#writeAnswers);
    for (let i = 0; i < messages.length; i++) this.#dispatcher.handle(client, messages[i], batch, i);
    batch.seal();
  }

  /**
   * Writes one frame's answers (array frames for a batch), then closes if AUTH failed. Answers that
   * carry events are framed now, in the turn they are written (Pushes.answer). Runs at the end of
   * a request's execution: a fault here is logged, never thrown into it.
   */
  readonly #writeAnswers = (batch: AnswerBatch): void => {
    const { client, answers } = batch;
    // Handed to the socket now, where the slow-consumer limit bounds what waits.
    client.listedRows -= batch.listedRows;
    let frames: string[];
    if (answers.every((answer): answer is string => typeof answer === "string")) frames = answers;
    else {
      frames = [];
      try {
        for (const answer of answers) {
          if (typeof answer === "string") frames.push(answer);
          else this.#pushes.answer(client, answer.id, answer.order, frames);
        }
      } catch (error) {
        this.#replyFailed(client, error);
        return;
      }
    }
    this.#deliver(client, frames, batch.isBatch || frames.length > 1);
  };

  /** Sends one frame's replies, then closes if AUTH failed; a fault is logged, never thrown. */
  #deliver(client: Client, frames: string[], batch: boolean): void {
    try {
      client.deliver(frames, batch)?.catch((error: unknown) => this.#replyFailed(client, error));
    } catch (error) {
      this.#replyFailed(client, error);
    }
  }

  #replyFailed(client: Client, error: unknown): void {
    this.#settings.log.error(`gateway: reply to connection ${client.id} failed: ${messageOf(error)}`);
  }

  #pushQuote(quote: Quote): void {
    const subscribers = this.#quotes.subscribersOf(quote.exchange, quote.symbol);
    if (subscribers === undefined) return;
    const item = { frame: JSON.stringify({ type: "QUOTE", quote }) };
    for (const client of subscribers) this.#pushes.enqueue(client, item);
  }

  // #endregion
}

function requestPath(req: http.IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

function refuseUpgrade(socket: Duplex, status: string): void {
  // Node's HTTP server stopped listening for this socket's errors when it handed it to 'upgrade':
  // a peer that resets it while the refusal is written would otherwise be an uncaught exception.
  socket.on("error", () => socket.destroy());
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** The seq a broker reports having issued (the paper broker's `lastSeq`), or 0. */
function brokerLastSeq(broker: BrokerInterface): number {
  const value: unknown = (broker as { lastSeq?: unknown }).lastSeq;
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
