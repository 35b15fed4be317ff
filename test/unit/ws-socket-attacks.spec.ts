// Attacks on the reconnecting socket core (lib/ws/reconnecting-socket.ts) by misbehaving peers: a
// link with 200 ms of added latency each way, a peer that answers the upgrade and then never sends
// a byte (no pong either), one that sends a 10 MiB frame, one that closes with every close code a
// server can send (and drops without one, 1006), and a peer restarted ten times in a row. Always:
// the state machine ends connected or says why, never two sockets at the peer at once, and after
// close() no timer and no socket is left.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import type WebSocket from "ws";
import { seededRandom } from "../../lib/paper/random";
import { ReconnectingSocket } from "../../lib/ws/reconnecting-socket";
import type { ReconnectingSocketOptions, SocketState } from "../../lib/ws/reconnecting-socket";
import { JitterProxy } from "../support/jitter-proxy";
import { waitFor } from "../support/wait";

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

/** A ws server on 127.0.0.1 that counts the sockets open at once and lets a test script each one. */
class Peer {
  readonly server: WebSocketServer;
  open = 0;
  mostOpen = 0;
  accepted = 0;
  onConnection: (ws: WebSocket, n: number) => void = () => undefined;

  private constructor(server: WebSocketServer) {
    this.server = server;
    server.on("connection", (ws) => {
      this.open += 1;
      this.accepted += 1;
      this.mostOpen = Math.max(this.mostOpen, this.open);
      ws.on("close", () => (this.open -= 1));
      ws.on("error", () => undefined);
      this.onConnection(ws, this.accepted);
    });
  }

  static async start(port = 0): Promise<Peer> {
    const server = new WebSocketServer({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    return new Peer(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  async close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A TCP server that completes the WebSocket upgrade by hand and then sends nothing at all: no
 * frame, no pong, no close. Counts the sockets it holds open at once.
 */
class SilentPeer {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Sockets whose client sent its close frame: being hung up, no longer in use. */
  readonly #hungUp = new Set<net.Socket>();
  readonly #measures = new Set<NodeJS.Timeout>();
  mostOpen = 0;
  /** Most sockets open at once that the client had not hung up. */
  mostLive = 0;
  accepted = 0;

  private constructor(server: net.Server) {
    this.#server = server;
    server.on("connection", (socket) => {
      this.accepted += 1;
      this.#sockets.add(socket);
      this.mostOpen = Math.max(this.mostOpen, this.#sockets.size);
      // Measured a moment later: the FIN of a socket the client just destroyed may be read after
      // the next socket's connection, though it was sent first.
      const measure = setTimeout(() => {
        this.#measures.delete(measure);
        this.mostLive = Math.max(this.mostLive, this.#sockets.size - this.#hungUp.size);
      }, 20);
      this.#measures.add(measure);
      socket.on("end", () => this.#hungUp.add(socket));
      socket.on("close", () => {
        this.#sockets.delete(socket);
        this.#hungUp.delete(socket);
      });
      socket.on("error", () => undefined);
      let head = "";
      socket.on("data", (chunk) => {
        if (head.includes("\r\n\r\n")) {
          // Frames are swallowed (no pong), but a close frame marks the socket hung up by the client.
          if (hasCloseFrame(chunk)) this.#hungUp.add(socket);
          return;
        }
        head += chunk.toString("latin1");
        const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1];
        if (!head.includes("\r\n\r\n") || key === undefined) return;
        const accept = crypto
          .createHash("sha1")
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest("base64");
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
      });
    });
  }

  static async start(): Promise<SilentPeer> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new SilentPeer(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}/`;
  }

  get open(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const measure of this.#measures) clearTimeout(measure);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Whether a chunk of client frames (masked) holds a close frame (opcode 8). */
function hasCloseFrame(chunk: Buffer): boolean {
  let at = 0;
  while (at + 2 <= chunk.length) {
    const opcode = chunk[at]! & 0x0f;
    let length = chunk[at + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      length = chunk.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) return opcode === 8;
    if (opcode === 8) return true;
    at += header + 4 + length;
  }
  return false;
}

describe("reconnecting socket under misbehaving peers", function () {
  this.timeout(20_000);
  let socket: ReconnectingSocket | undefined;
  const states: { state: SocketState; reason: string | undefined }[] = [];
  const stops: (() => Promise<void>)[] = [];
  let timersBefore = 0;

  function newSocket(url: string, overrides: Partial<ReconnectingSocketOptions> = {}): ReconnectingSocket {
    // Counted inside the test: mocha's own timeout timer for it is running by now.
    timersBefore = timeouts();
    socket = new ReconnectingSocket({
      url: () => url,
      label: "attack",
      handshakeTimeoutMs: 1_000,
      stableAfterMs: 5_000,
      closeTimeoutMs: 200,
      backoff: { initialMs: 5, factor: 2, maxMs: 40, random: seededRandom(11) },
      heartbeat: { intervalMs: 100, maxMissedPongs: 2 },
      ...overrides,
    });
    socket.on("state", (state, reason) => states.push({ state, reason }));
    return socket;
  }

  /** Every state but "connected" after the first dial says why. */
  function assertReasons(): void {
    for (const [i, { state, reason }] of states.entries()) {
      if (i === 0 || state === "connected" || state === "connecting") continue;
      assert.ok(
        reason !== undefined && reason !== "",
        `state ${i} "${state}" says why: ${JSON.stringify(states)}`,
      );
    }
  }

  beforeEach(() => {
    states.length = 0;
  });

  afterEach(async function () {
    await socket?.close();
    socket = undefined;
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  /**
   * close() leaves nothing behind: the peer sees the socket gone, and once the test's own servers
   * are down too (a ws server keeps a timer per closing socket), no timer is left.
   */
  async function closeClean(peerOpen: () => number): Promise<void> {
    await socket!.close();
    assert.equal(socket!.state, "disconnected");
    await waitFor(() => peerOpen() === 0, "the peer sees no socket left", 3_000);
    for (const stop of stops.splice(0).reverse()) await stop();
    assert.ok(timeouts() <= timersBefore, `timers left: ${timeouts()} > ${timersBefore}`);
    socket = undefined;
  }

  it("200 ms of added latency each way: connects, stays up through heartbeats, one socket", async function () {
    const peer = await Peer.start();
    stops.push(() => peer.close());
    const proxy = await JitterProxy.start(peer.port, { minMs: 200, maxMs: 200, random: seededRandom(3) });
    stops.push(() => proxy.close());
    // A heartbeat that tolerates the 400 ms round trip: 300 ms × 3 misses.
    const s = newSocket(proxy.url, {
      heartbeat: { intervalMs: 300, maxMissedPongs: 3 },
      handshakeTimeoutMs: 3_000,
    });
    s.start();
    await waitFor(() => s.state === "connected", "connected through the slow link", 5_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(s.state, "connected", JSON.stringify(states));
    assert.equal(s.connects, 1, "no redial on a slow but live link");
    assert.equal(peer.mostOpen, 1);
    await closeClean(() => peer.open);
  });

  it("a peer that completes the upgrade then never sends a byte is dropped by the heartbeat and redialled", async function () {
    const peer = await SilentPeer.start();
    stops.push(() => peer.close());
    const s = newSocket(peer.url);
    s.start();
    await waitFor(() => peer.accepted >= 4, "redialled after each silent link", 8_000);
    assert.equal(peer.mostOpen, 1, "never two sockets at the peer");
    const reasons = states.filter((e) => e.state === "reconnecting").map((e) => e.reason ?? "");
    assert.ok(
      reasons.some((r) => /pong|silent|heartbeat/i.test(r)),
      `reasons: ${reasons.join(" | ")}`,
    );
    assertReasons();
    await closeClean(() => peer.open);
  });

  it("a 10 MiB frame over maxPayload closes the link (1009), says why, and redials", async function () {
    const peer = await Peer.start();
    stops.push(() => peer.close());
    const big = Buffer.alloc(10 * 1024 * 1024, 0x61);
    peer.onConnection = (ws, n) => {
      if (n <= 3) ws.send(big);
    };
    const s = newSocket(peer.url, { maxPayload: 1024 * 1024 });
    const frames: number[] = [];
    s.on("frame", (data) => frames.push(data.length));
    s.start();
    await waitFor(
      () => peer.accepted >= 4 && s.state === "connected",
      "connected after three 10 MiB frames",
      10_000,
    );
    assert.deepEqual(frames, [], "no oversize frame delivered");
    const reasons = states
      .filter((e) => e.state === "reconnecting" && e.reason !== undefined)
      .map((e) => e.reason!);
    assert.ok(
      reasons.some((r) => /1009|max payload/i.test(r)),
      `reasons: ${reasons.join(" | ")}`,
    );
    assert.equal(peer.mostOpen, 1);
    assertReasons();
    await closeClean(() => peer.open);
  });

  it("closed by the peer with every close code a server can send, and dropped without one (1006)", async function () {
    const codes = [
      1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4001, 4002, 4401,
      4999,
    ];
    const peer = await Peer.start();
    stops.push(() => peer.close());
    const script = [...codes, 1006];
    peer.onConnection = (ws, n) => {
      const code = script[n - 1];
      if (code === undefined) return; // the last one stays
      if (code === 1006) ws.terminate();
      else ws.close(code, `bye ${code}`);
    };
    const s = newSocket(peer.url);
    s.start();
    await waitFor(
      () => peer.accepted > script.length && s.state === "connected",
      "connected after every close code",
      10_000,
    );
    const reasons = states.map((e) => e.reason ?? "").join(" | ");
    for (const code of script)
      assert.ok(reasons.includes(String(code)), `a reason names ${code}: ${reasons}`);
    assert.equal(peer.mostOpen, 1);
    assertReasons();
    await closeClean(() => peer.open);
  });

  it("ten restarts of the peer in a row: reconnects each time, ends connected, one socket at a time", async function () {
    let peer = await Peer.start();
    const port = peer.port;
    const s = newSocket(peer.url);
    s.start();
    await waitFor(() => s.state === "connected", "first connect", 3_000);
    let most = 1;
    for (let restart = 0; restart < 10; restart++) {
      const before = s.connects;
      await peer.close();
      // Down for a moment: dials meet a refused port, each retry says why.
      await new Promise((resolve) => setTimeout(resolve, 30 + restart * 5));
      peer = await Peer.start(port);
      await waitFor(
        () => s.connects > before && s.state === "connected",
        `reconnected after restart ${restart}`,
        5_000,
      );
      most = Math.max(most, peer.mostOpen);
    }
    const last = peer;
    stops.push(() => last.close());
    assert.equal(most, 1, "never two sockets at the peer");
    assert.equal(s.connects, 11);
    assertReasons();
    await closeClean(() => peer.open);
  });

  it("stop() and start() interleaved with a silent peer ×20: one socket, nothing left after close", async function () {
    const peer = await SilentPeer.start();
    stops.push(() => peer.close());
    const s = newSocket(peer.url);
    const random = seededRandom(21);
    for (let round = 0; round < 20; round++) {
      s.start();
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 60)));
      if (random() < 0.5) await s.stop(`round ${round}`);
      else void s.stop(`round ${round}`);
      // A start() right after an unawaited stop() may dial while old links are still hanging up (by
      // design: their close frame is sent, nothing more goes on them, and a peer that does not answer
      // is cut after closeTimeoutMs); two in use at once, never.
      assert.ok(peer.mostLive <= 1, `round ${round}: ${peer.mostLive} sockets in use at once`);
    }
    await closeClean(() => peer.open);
  });
});
