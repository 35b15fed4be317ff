// The reconnecting socket judged a link dead by its own stalled event loop. Timers run before the
// poll phase that reads sockets, so after the process was held past the read timeout (GC, a long
// parse, a loaded machine, a gateway in the same process sorting 30,000 GTTs) the read timer fired
// while the peer's frames sat unread in the socket, and a live link was cut: gateway-bounded-lists'
// "30,000 active GTTs" failed that way under load ("connection lost before GET_GTTS … was answered",
// "no data from the connection for 500 ms"). A stall must not cost a live link; a silent peer must
// still be dropped.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import type WebSocket from "ws";
import { seededRandom } from "../../lib/paper/random";
import { ReconnectingSocket } from "../../lib/ws/reconnecting-socket";
import { waitFor } from "../support/wait";

/** Holds this process's event loop, as a loaded machine or a long synchronous task does. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: nothing else in this process runs
  }
}

describe("ReconnectingSocket: a stall of its own event loop is not a dead link", function () {
  this.timeout(20_000);
  let server: WebSocketServer | undefined;
  let socket: ReconnectingSocket | undefined;
  const timers: NodeJS.Timeout[] = [];

  afterEach(async () => {
    for (const timer of timers.splice(0)) clearInterval(timer);
    await socket?.close();
    socket = undefined;
    for (const ws of server?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });

  /** A peer that sends a frame every 20 ms on every connection; `peers` gets each server-side socket. */
  async function chattyPeer(peers: WebSocket[]): Promise<string> {
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server!.once("listening", resolve));
    server.on("connection", (ws) => {
      peers.push(ws);
      ws.on("error", () => undefined);
      const tick = setInterval(() => {
        if (ws.readyState === ws.OPEN) ws.send("tick");
      }, 20);
      timers.push(tick);
    });
    return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  function open(url: string): ReconnectingSocket {
    socket = new ReconnectingSocket({
      url: () => url,
      label: "peer",
      handshakeTimeoutMs: 2_000,
      stableAfterMs: 60_000,
      closeTimeoutMs: 200,
      backoff: { initialMs: 5, factor: 2, maxMs: 40, random: seededRandom(3) },
      readTimeoutMs: 300,
      heartbeat: { intervalMs: 300, maxMissedPongs: 1 },
    });
    socket.start();
    return socket;
  }

  it("stalls of over twice the read timeout, 5 in a row: the link to a peer that kept talking stays up", async function () {
    const url = await chattyPeer([]);
    const link = open(url);
    const reasons: string[] = [];
    link.on("state", (state, reason) => {
      if (state !== "connected") reasons.push(`${state}: ${reason ?? ""}`);
    });
    await waitFor(() => link.state === "connected", "connected", 5000);
    let frames = 0;
    link.on("frame", () => (frames += 1));
    for (let round = 0; round < 5; round++) {
      const before = frames;
      stall(700);
      // What the peer sent meanwhile is read once the loop runs again.
      await waitFor(() => frames > before, `round ${round}: a frame after the stall`, 5000);
      assert.equal(link.connects, 1, `round ${round}: ${reasons.join(" | ")}`);
      assert.equal(link.state, "connected", `round ${round}: ${reasons.join(" | ")}`);
    }
    assert.deepEqual(reasons, []);
  });

  it("a peer that goes silent (reads nothing, answers no ping) is still dropped, and said why", async function () {
    const peers: WebSocket[] = [];
    const url = await chattyPeer(peers);
    const link = open(url);
    const reasons: string[] = [];
    link.on("state", (state, reason) => {
      if (state === "reconnecting") reasons.push(reason ?? "");
    });
    await waitFor(() => link.state === "connected" && peers.length === 1, "connected", 5000);
    // Silent from now on: no frames, and its socket is not read, so no pong either.
    for (const timer of timers.splice(0)) clearInterval(timer);
    (peers[0] as unknown as { _socket: { pause(): void } })._socket.pause();
    const silentAt = performance.now();
    await waitFor(() => reasons.length > 0, "the silent link dropped", 10_000);
    console.log(
      `      silent link dropped after ${Math.round(performance.now() - silentAt)} ms (read timeout 300 ms)`,
    );
    assert.match(reasons[0]!, /presumed dead/);
  });
});
