import { createHmac, randomBytes } from "node:crypto";
import type { ClientOptions } from "ws";
import WebSocket from "ws";
import type { BrokerLogger } from "../../lib/brokers/logger";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { GatewayOptions } from "../../lib/gateway/gateway";
import { Gateway } from "../../lib/gateway/gateway";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { AccountEvent, Quote } from "../../lib/protocol";
import type { RequestType, WireResultOf } from "../../lib/protocol/wire";
import { authPayload, RESULT_SCHEMAS, SUBPROTOCOL } from "../../lib/protocol/wire";

/** A message the gateway sent, as received: tests check `result` through `call()` or a schema. */
export type Received = {
  type: string;
  id?: string | null;
  result?: unknown;
  error?: { code: string; message: string; retry_after_ms?: number };
  event?: AccountEvent;
  quote?: Quote;
};

export interface AuthFields {
  apiKey?: string;
  secret?: string;
  timestamp?: number;
  nonce?: string;
  id?: string;
}

export const TEST_KEY = "test-key";
export const TEST_SECRET = "test-secret-0123456789";

/** The signature a client sends, computed here from the spec's authPayload (not the gateway's code). */
export function sign(secret: string, apiKey: string, timestamp: number, nonce: string): string {
  return createHmac("sha256", secret)
    .update(authPayload(apiKey, timestamp, nonce))
    .digest("hex");
}

export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

/** A timed-out wait shows at most this many of the latest messages, in at most this many characters. */
const SUMMARY_MESSAGES = 20;
const SUMMARY_CHARS = 4_000;

/**
 * A deliberately small raw protocol client for gateway tests: it keeps every message received,
 * flattening array frames, and lets a test wait for the next one that matches.
 */
export class GatewayClient {
  readonly ws: WebSocket;
  /** Every message received, in order. */
  readonly received: Received[] = [];
  /** Every frame received, parsed: an array frame stays an array. */
  readonly frames: unknown[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #taken = new Set<Received>();
  #waiters: { predicate: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data) => {
      const parsed: unknown = JSON.parse(rawText(data));
      this.frames.push(parsed);
      for (const message of (Array.isArray(parsed) ? parsed : [parsed]) as Received[]) {
        this.received.push(message);
        this.#offer(message);
      }
    });
    this.closed = new Promise((resolve) => {
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** Opens a connection (path /v1 unless the url says otherwise) and waits until it is open. */
  static async connect(
    url: string,
    options: ClientOptions & { protocols?: string[] } = {},
  ): Promise<GatewayClient> {
    const { protocols, ...wsOptions } = options;
    const ws = new WebSocket(url, protocols ?? [], wsOptions);
    const client = new GatewayClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.on("error", () => undefined);
    return client;
  }

  /** Connects and authenticates with the test key; fails the test if AUTH is refused. */
  static async open(url: string, auth: AuthFields = {}, options: ClientOptions = {}): Promise<GatewayClient> {
    const client = await GatewayClient.connect(url, options);
    const reply = await client.auth(auth);
    if (reply.type !== "RESULT") throw new Error(`AUTH refused: ${JSON.stringify(reply.error)}`);
    return client;
  }

  static readonly subprotocol = SUBPROTOCOL;

  newId(): string {
    return `r${this.#nextId++}`;
  }

  /** Builds a signed AUTH message; fields given override the valid defaults. */
  authMessage(fields: AuthFields = {}): Record<string, unknown> {
    const apiKey = fields.apiKey ?? TEST_KEY;
    const timestamp = fields.timestamp ?? Date.now();
    const nonce = fields.nonce ?? newNonce();
    return {
      type: "AUTH",
      id: fields.id ?? this.newId(),
      api_key: apiKey,
      timestamp,
      nonce,
      signature: sign(fields.secret ?? TEST_SECRET, apiKey, timestamp, nonce),
    };
  }

  auth(fields: AuthFields = {}): Promise<Received> {
    return this.request(this.authMessage(fields));
  }

  /** Sends one message or an array (a batch) as one JSON text frame, or a string exactly as given. */
  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Sends a request (an id is added when it has none) and waits for its RESULT or ERROR. */
  request(message: Record<string, unknown>): Promise<Received> {
    const id = typeof message.id === "string" ? message.id : this.newId();
    const reply = this.reply(id);
    this.send({ ...message, id });
    return reply;
  }

  /** Sends a request that must succeed; returns its result, checked against the type's result schema. */
  async call<T extends RequestType>(
    message: { type: T } & Record<string, unknown>,
  ): Promise<WireResultOf<T>> {
    const reply = await this.request(message);
    if (reply.type !== "RESULT") throw new Error(`${message.type} failed: ${JSON.stringify(reply)}`);
    const checked = RESULT_SCHEMAS[message.type].safeParse(reply.result);
    if (!checked.success) {
      throw new Error(`${message.type} result does not match its schema: ${JSON.stringify(reply.result)}`);
    }
    return checked.data as WireResultOf<T>;
  }

  /** The whole order book, read a page at a time as the protocol requires of a large book. */
  async wholeBook(pageSize = 1000): Promise<WireResultOf<"GET_ORDERBOOK">> {
    const book: WireResultOf<"GET_ORDERBOOK"> = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.call({
        type: "GET_ORDERBOOK",
        limit: pageSize,
        ...(after === undefined ? {} : { after }),
      });
      book.push(...page);
      const last = page[page.length - 1];
      if (page.length < pageSize || last === undefined) return book;
      after = last.order_id;
    }
  }

  /** Waits for the RESULT or ERROR that answers `id`. */
  reply(id: string, timeoutMs?: number): Promise<Received> {
    return this.next((m) => (m.type === "RESULT" || m.type === "ERROR") && m.id === id, timeoutMs);
  }

  /** The first message not yet taken that matches, waiting for one if none has arrived. */
  next(predicate: (m: Received) => boolean, timeoutMs = 2000): Promise<Received> {
    const found = this.received.find((m) => !this.#taken.has(m) && predicate(m));
    if (found !== undefined) {
      this.#taken.add(found);
      return Promise.resolve(found);
    }
    return new Promise<Received>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (m: Received) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching message within ${timeoutMs} ms; received ${this.#receivedSummary()}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /**
   * How many messages came and the last few, bounded: a burst's thousands of waiters all time out
   * together when a test goes wrong, and each naming every message received stringified gigabytes
   * (the suite hung for minutes instead of reporting the failure).
   */
  #receivedSummary(): string {
    const last = this.received.slice(-SUMMARY_MESSAGES);
    let shown = JSON.stringify(last);
    if (shown.length > SUMMARY_CHARS) shown = `...${shown.slice(-SUMMARY_CHARS)}`;
    return `${this.received.length} messages; the last ${last.length}: ${shown}`;
  }

  /** Messages of a type received so far (taken or not). */
  all(type: string): Received[] {
    return this.received.filter((m) => m.type === type);
  }

  /** Resolves after `ms` so a test can check that nothing more arrives. */
  static pause(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 1000);
    await this.closed;
    clearTimeout(timer);
  }

  #offer(message: Received): void {
    const index = this.#waiters.findIndex((w) => w.predicate(message));
    if (index < 0) return;
    const [waiter] = this.#waiters.splice(index, 1);
    this.#taken.add(message);
    waiter?.resolve(message);
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

/** A gateway over a deterministic paper broker: no drift, spread or slippage; INFY at 100. */
export interface PaperGateway {
  broker: PaperBroker;
  gateway: Gateway;
  url: string;
  logs: { level: "info" | "warn" | "error"; message: string }[];
  close(): Promise<void>;
}

export async function startPaperGateway(
  options: Partial<GatewayOptions> = {},
  paper: { journalFile?: string; settings?: PaperSettingsInput } = {},
): Promise<PaperGateway> {
  const broker = new PaperBroker(
    { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, interval_ms: 60_000, ...paper.settings },
    paper.journalFile === undefined ? {} : { journalFile: paper.journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  const logs: PaperGateway["logs"] = [];
  const log: BrokerLogger = {
    info: (message) => logs.push({ level: "info", message }),
    warn: (message) => logs.push({ level: "warn", message }),
    error: (message) => logs.push({ level: "error", message }),
  };
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({
      broker,
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      log,
      ...options,
    });
  } catch (error) {
    await broker.close();
    throw error;
  }
  return {
    broker,
    gateway,
    url: gateway.url,
    logs,
    async close() {
      await gateway.close();
      await broker.close();
    },
  };
}

/** A valid wire order; fields given override. */
export function order(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: newClientId(), ...fields };
}

let clientIds = 0;
export function newClientId(): string {
  clientIds += 1;
  return `T${process.pid}x${clientIds}`;
}
