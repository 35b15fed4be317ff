import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";

/** "up": client → server; "down": server → client. */
export type Direction = "up" | "down";

/** One proxied connection: both WebSockets, and a way to cut it the way a crash would. */
export interface ProxiedConnection {
  /** 1-based, counted over the proxy's life. */
  readonly index: number;
  readonly client: WebSocket;
  readonly upstream: WebSocket;
  /** Destroys the client's socket without a close frame; the upstream side is closed politely. */
  cut(): void;
}

/**
 * Decides the fate of one text frame: return undefined to forward it as it is, a string to
 * forward that instead, or null to swallow it.
 */
export type Tap = (
  direction: Direction,
  text: string,
  connection: ProxiedConnection,
) => string | null | undefined;

export interface Seen {
  readonly direction: Direction;
  readonly connection: number;
  /** The frame's messages (an array frame is flattened), as parsed JSON; unparseable frames are skipped. */
  readonly messages: Record<string, unknown>[];
}

/**
 * A WebSocket-level man in the middle on 127.0.0.1: it terminates the client's WebSocket and opens
 * its own to the upstream server (offering the same subprotocol), forwarding text frames both
 * ways through an optional tap. Tests use it to lose one answer, inject a malformed push or count
 * what actually crossed the wire.
 */
export class WsTamperProxy {
  tap: Tap | undefined;
  /** Added one-way delay for every frame, both ways; frames keep their order. */
  delayMs = 0;
  /** Every frame forwarded or swallowed, in order. */
  readonly seen: Seen[] = [];
  connections = 0;
  readonly #upstreamUrl: string;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #open = new Set<ProxiedConnection>();

  private constructor(upstreamUrl: string) {
    this.#upstreamUrl = upstreamUrl;
    this.#http = http.createServer();
    this.#wss = new WebSocketServer({
      server: this.#http,
      perMessageDeflate: false,
      handleProtocols: (protocols) => protocols.values().next().value ?? false,
    });
    this.#wss.on("connection", (client) => this.#onConnection(client));
  }

  static async start(upstreamUrl: string): Promise<WsTamperProxy> {
    const proxy = new WsTamperProxy(upstreamUrl);
    await new Promise<void>((resolve, reject) => {
      proxy.#http.once("error", reject);
      proxy.#http.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/v1`;
  }

  /** Connections with both sides still open. */
  get open(): number {
    return this.#open.size;
  }

  /** Messages of a type that crossed in a direction (swallowed ones included). */
  messages(direction: Direction, type?: string): Record<string, unknown>[] {
    return this.seen
      .filter((s) => s.direction === direction)
      .flatMap((s) => s.messages)
      .filter((m) => type === undefined || m.type === type);
  }

  /** Sends a raw text frame to every connected client, as if the server had sent it. */
  inject(text: string): void {
    for (const connection of this.#open) {
      if (connection.client.readyState === WebSocket.OPEN) connection.client.send(text);
    }
  }

  /** Cuts every open connection as a crash would (see ProxiedConnection.cut). */
  cutAll(): void {
    for (const connection of this.#open) connection.cut();
  }

  async close(): Promise<void> {
    for (const connection of this.#open) {
      connection.client.terminate();
      connection.upstream.terminate();
    }
    this.#open.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #onConnection(client: WebSocket): void {
    this.connections += 1;
    const upstream = new WebSocket(this.#upstreamUrl, client.protocol === "" ? [] : [client.protocol], {
      perMessageDeflate: false,
    });
    const connection: ProxiedConnection = {
      index: this.connections,
      client,
      upstream,
      cut: () => {
        client.terminate();
        if (upstream.readyState === WebSocket.OPEN) upstream.close(1000, "proxy cut the client");
        else upstream.terminate();
      },
    };
    this.#open.add(connection);
    const early: string[] = [];
    const pass = (direction: Direction, text: string): void => {
      const replaced = this.tap?.(direction, text, connection);
      this.seen.push({ direction, connection: connection.index, messages: parseMessages(text) });
      if (replaced === null) return;
      const to = direction === "up" ? upstream : client;
      const forward = (): void => {
        if (to.readyState === WebSocket.OPEN) to.send(replaced ?? text);
      };
      // Timers of one delay fire in the order they were set, so frames stay in order.
      if (this.delayMs > 0) setTimeout(forward, this.delayMs);
      else forward();
    };
    client.on("message", (data) => {
      const text = rawText(data);
      if (upstream.readyState === WebSocket.CONNECTING) early.push(text);
      else pass("up", text);
    });
    upstream.on("open", () => {
      for (const text of early.splice(0)) pass("up", text);
    });
    upstream.on("message", (data) => pass("down", rawText(data)));
    const end = (): void => {
      this.#open.delete(connection);
      if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) {
        client.terminate();
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000, "proxy: client gone");
      else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  }
}

function parseMessages(text: string): Record<string, unknown>[] {
  try {
    const parsed: unknown = JSON.parse(text);
    const list = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
    return list.filter((m): m is Record<string, unknown> => typeof m === "object" && m !== null);
  } catch {
    return [];
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

/**
 * A frame with every account event taken out, pushed (EVENT, EVENT_DELTA) or riding in an answer
 * (v1.1 RESULT.events): null when nothing is left, undefined when there was none (forward as is).
 */
export function withoutEvents(text: string): string | null | undefined {
  if (!text.includes('"type":"EVENT') && !text.includes('"events":[')) return undefined;
  const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
  const kept: Record<string, unknown>[] = [];
  for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
    if (message.type === "EVENT" || message.type === "EVENT_DELTA") continue;
    if (message.type === "RESULT" && "events" in message) {
      const { events: _events, ...answer } = message;
      kept.push(answer);
    } else kept.push(message);
  }
  return kept.length === 0 ? null : JSON.stringify(kept.length === 1 ? kept[0] : kept);
}
