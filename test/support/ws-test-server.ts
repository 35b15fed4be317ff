import { EventEmitter } from "node:events";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { WebSocket } from "ws";
import { WebSocketServer } from "ws";

export type WireMessage = Record<string, unknown> & { type: string; id?: string };

export interface Received {
  readonly message: WireMessage;
  /** Index of the frame it arrived in (server-wide, over restarts). */
  readonly frame: number;
  /** Which connection (1-based, over restarts) it arrived on. */
  readonly connection: number;
}

/** Decides what the server does with one request; `reply` sends one message (or array) as a frame. */
export type Responder = (message: WireMessage, reply: (frame: unknown) => void, socket: WebSocket) => void;

/** RESULT echoing the request, the default answer. */
export const echo: Responder = (message, reply) => {
  reply({ type: "RESULT", id: message.id, result: { echo: message } });
};

export const silent: Responder = () => undefined;

export interface TestServerOptions {
  respond?: Responder;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Serve wss:// with this certificate. */
  tls?: { cert: string; key: string };
}

/**
 * A real `ws` server on 127.0.0.1 that logs every frame and message it receives (the tests'
 * evidence of what reached the wire) and can be stopped and restarted on the same port.
 */
export class TestServer extends EventEmitter {
  readonly frames: string[] = [];
  readonly received: Received[] = [];
  readonly sockets = new Set<WebSocket>();
  respond: Responder;
  connections = 0;
  readonly #tls: { cert: string; key: string } | undefined;
  #port: number;
  #http: http.Server | undefined;
  #wss: WebSocketServer | undefined;

  private constructor(options: TestServerOptions) {
    super();
    this.#port = options.port ?? 0;
    this.#tls = options.tls;
    this.respond = options.respond ?? echo;
  }

  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const server = new TestServer(options);
    await server.listen();
    return server;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `${this.#tls === undefined ? "ws" : "wss"}://127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    return this.#http !== undefined;
  }

  /** The messages received so far, in arrival order. */
  get messages(): WireMessage[] {
    return this.received.map((entry) => entry.message);
  }

  async listen(): Promise<void> {
    const server = this.#tls === undefined ? http.createServer() : https.createServer(this.#tls);
    const wss = new WebSocketServer({ server });
    wss.on("connection", (socket) => this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, "127.0.0.1", () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#http = server;
    this.#wss = wss;
  }

  /** Sends a raw frame (a string as is, anything else as JSON) to every connected client. */
  broadcast(frame: unknown): void {
    const text = typeof frame === "string" ? frame : JSON.stringify(frame);
    for (const socket of this.sockets) socket.send(text);
  }

  /** Cuts every connection without a close frame (as a crash would). */
  dropAll(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  /** Stops listening and cuts every connection; listen() starts it again on the same port. */
  async stop(): Promise<void> {
    const server = this.#http;
    const wss = this.#wss;
    this.#http = undefined;
    this.#wss = undefined;
    if (server === undefined || wss === undefined) return;
    this.dropAll();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await waitClosed(this.sockets);
  }

  #onConnection(socket: WebSocket): void {
    this.connections += 1;
    const connection = this.connections;
    this.sockets.add(socket);
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.emit("disconnect", connection);
    });
    socket.on("message", (data) => {
      const text = (data as Buffer).toString("utf8");
      const frame = this.frames.push(text) - 1;
      this.emit("frame", text);
      const parsed = JSON.parse(text) as WireMessage | WireMessage[];
      for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
        this.received.push({ message, frame, connection });
        this.emit("message", message);
        this.respond(message, (reply) => socket.send(JSON.stringify(reply)), socket);
      }
    });
    this.emit("connection", connection);
  }
}

async function waitClosed(sockets: Set<WebSocket>): Promise<void> {
  const deadline = performance.now() + 2000;
  while (sockets.size > 0 && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 2));
}

/**
 * Accepts TCP connections and never answers: a WebSocket handshake to it hangs until the client gives
 * up. It closes its side as soon as the client does, so it leaves no socket behind.
 */
export class MuteServer {
  readonly #server: net.Server;
  readonly sockets = new Set<net.Socket>();
  connections = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(): Promise<MuteServer> {
    const server = net.createServer();
    const mute = new MuteServer(server);
    server.on("connection", (socket) => {
      mute.connections += 1;
      mute.sockets.add(socket);
      // Reading is what lets the client's FIN arrive as 'end' (and close this side with it).
      socket.resume();
      socket.on("error", () => socket.destroy());
      socket.on("close", () => mute.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return mute;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
