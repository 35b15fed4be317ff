import assert from "node:assert/strict";
import type { Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import { ReconnectingClient } from "../../lib/ws/reconnecting-client";
import { nextEvent } from "../support/wait";

/**
 * A gateway pushes a request's events right behind its answer, and on loopback both usually come
 * in one read. The caller of the answered request should get to send its next request before the
 * client spends time on those pushes (the answer is what it waits for; the pushes are not), and
 * the pushes must still be handled once each, in order, and before the link is dropped or closed.
 */
describe("ReconnectingClient: frames behind the answer that leaves a link idle", function () {
  this.timeout(10_000);
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async function () {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /**
   * A server that answers each request and, in the same TCP write (the socket is corked around
   * both sends, so they reach the client in one read), pushes `pushes` frames after it.
   */
  async function answerThenPush(pushes: number): Promise<{ url: string; got: string[] }> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    const got: string[] = [];
    wss.on("connection", (ws: WebSocket, request) => {
      const tcp: Socket = request.socket;
      ws.on("message", (data) => {
        const message = JSON.parse((data as Buffer).toString("utf8")) as { id: string; n: number };
        got.push(`request ${message.n}`);
        tcp.cork();
        ws.send(JSON.stringify({ type: "RESULT", id: message.id, result: { n: message.n } }));
        for (let k = 0; k < pushes; k++) ws.send(JSON.stringify({ type: "EVENT", n: message.n, k }));
        tcp.uncork();
      });
    });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const ws of wss.clients) ws.terminate();
          wss.close(() => resolve());
        }),
    );
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, got };
  }

  async function connect(url: string): Promise<ReconnectingClient> {
    const client = new ReconnectingClient({ url, heartbeat: { intervalMs: 5000 } });
    client.on("error", () => undefined);
    cleanups.push(() => client.close());
    const connected = nextEvent(client, "state", (state) => state === "connected", 2000);
    client.start();
    await connected;
    return client;
  }

  it("sends the caller's next request before it handles the pushes that came behind the answer", async function () {
    const { url } = await answerThenPush(2);
    const client = await connect(url);
    /** For each push: its request's number, and how many requests had been written by then. */
    const seen: { n: number; sent: number }[] = [];
    client.on("message", (message) =>
      seen.push({ n: (message as { n: number }).n, sent: client.stats.sent }),
    );
    const rounds = 60;
    for (let n = 0; n < rounds; n++) await client.request({ type: "PING", n });
    client.flushInbound();
    assert.equal(seen.length, 2 * rounds);
    // Request n+1 goes out from request n's continuation, as a sequential caller's does: by the
    // time request n's pushes are handled, n + 2 requests should have been written.
    const late = seen.filter(({ n, sent }) => n + 1 < rounds && sent < n + 2);
    assert.deepEqual(late, [], "pushes handled before the next request went out");
  });

  it("handles the pushes once each and in order over many sequential requests", async function () {
    const { url, got } = await answerThenPush(3);
    const client = await connect(url);
    const pushes: string[] = [];
    client.on("message", (message) => {
      const m = message as { n: number; k: number };
      pushes.push(`${m.n}.${m.k}`);
    });
    const rounds = 200;
    for (let n = 0; n < rounds; n++) await client.request({ type: "PING", n });
    // The last answer's pushes may still wait for the check phase; flushInbound hands them over.
    client.flushInbound();
    const expected: string[] = [];
    for (let n = 0; n < rounds; n++) for (let k = 0; k < 3; k++) expected.push(`${n}.${k}`);
    assert.deepEqual(pushes, expected);
    assert.equal(got.length, rounds);
  });

  it("hands over the pushes that came behind an answer before close() ends the client", async function () {
    for (let round = 0; round < 20; round++) {
      const { url } = await answerThenPush(2);
      const client = await connect(url);
      const pushes: number[] = [];
      client.on("message", (message) => pushes.push((message as { k: number }).k));
      await client.request({ type: "PING", n: round });
      // Closed in the answer's continuation: the pushes arrived before, and are not lost.
      await client.close();
      assert.deepEqual(pushes, [0, 1], `round ${round}`);
    }
  });
});
