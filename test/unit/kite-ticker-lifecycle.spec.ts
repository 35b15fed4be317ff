import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { KiteTickerClient } from "../../lib/kite/ticker-client";
import type { TickMode } from "../../lib/kite/ticker-parser";
import type { BrokerError } from "../../lib/protocol";
import { waitFor } from "../support/wait";

const TOKEN = "s3cret/access+token=4711 ~x";

interface Connection {
  readonly ws: WebSocket;
  readonly url: URL;
  readonly messages: { a: string; v: unknown }[];
  closedAt: number | undefined;
}

/**
 * A bare Kite-like ticker on 127.0.0.1: it records what each connection asked for, and the test
 * decides when it beats, goes silent or dies; nothing here plays by the client's rules.
 */
class BareTicker {
  readonly connections: Connection[] = [];
  readonly #server: WebSocketServer;
  #heartbeat: NodeJS.Timeout | undefined;
  silent = false;

  private constructor(server: WebSocketServer) {
    this.#server = server;
    server.on("connection", (ws, req) => {
      const connection: Connection = {
        ws,
        url: new URL(req.url ?? "/", "ws://127.0.0.1"),
        messages: [],
        closedAt: undefined,
      };
      this.connections.push(connection);
      ws.on("message", (data) =>
        connection.messages.push(JSON.parse((data as Buffer).toString("utf8")) as Connection["messages"][0]),
      );
      ws.on("close", () => (connection.closedAt = performance.now()));
    });
  }

  static async start(heartbeatMs = 40): Promise<BareTicker> {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", resolve));
    const ticker = new BareTicker(server);
    ticker.#heartbeat = setInterval(() => {
      if (ticker.silent) return;
      for (const client of server.clients)
        if (client.readyState === WebSocket.OPEN) client.send(Buffer.from([0]));
    }, heartbeatMs);
    return ticker;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get last(): Connection {
    return this.connections.at(-1)!;
  }

  /** Subscriptions one connection holds, as Kite would compute them from what it was sent. */
  static held(connection: Connection): Map<number, TickMode> {
    const held = new Map<number, TickMode>();
    for (const { a, v } of connection.messages) {
      if (a === "subscribe") for (const token of v as number[]) held.set(token, "quote");
      else if (a === "mode") {
        const [mode, tokens] = v as [TickMode, number[]];
        for (const token of tokens) held.set(token, mode);
      } else if (a === "unsubscribe") for (const token of v as number[]) held.delete(token);
    }
    return held;
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

describe("Kite ticker client on the reconnecting socket", function () {
  let server: BareTicker;
  let client: KiteTickerClient;
  const states: string[] = [];
  const errors: BrokerError[] = [];

  function newClient(
    url: string,
    overrides: Partial<ConstructorParameters<typeof KiteTickerClient>[0]> = {},
  ) {
    client = new KiteTickerClient({
      url,
      apiKey: "key",
      accessToken: TOKEN,
      readTimeoutMs: 300,
      handshakeTimeoutMs: 2000,
      backoff: { initialMs: 5, maxMs: 20 },
      ...overrides,
    });
    client.on("state", (state, reason) => states.push(`${state}: ${reason ?? ""}`));
    client.on("error", (error) => errors.push(error));
    return client;
  }

  beforeEach(async function () {
    states.length = 0;
    errors.length = 0;
    server = await BareTicker.start();
  });
  afterEach(async function () {
    await client?.close();
    await server.close();
  });

  it("10 server kills in a row: every new link gets every token back in its mode", async function () {
    // A fixed 60 ms wait before each redial, so the test can change subscriptions while the link is down.
    newClient(server.url, { backoff: { initialMs: 60, maxMs: 60, random: () => 1 } });
    const want = new Map<number, TickMode>([
      [408065, "full"],
      [2953217, "ltp"],
      [738561, "quote"],
    ]);
    client.subscribe([408065], "full");
    client.subscribe([2953217], "ltp");
    client.subscribe([738561], "quote");
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    for (let kill = 1; kill <= 10; kill++) {
      const before = server.connections.length;
      // Abrupt: no closing handshake, as a crashed server leaves it.
      server.last.ws.terminate();
      // Changes while the link is down must be in what the next link gets.
      await waitFor(() => client.state !== "connected", `reconnecting after kill ${kill}`);
      assert.equal(server.connections.length, before);
      const token = 1_000_000 + kill;
      const mode: TickMode = kill % 2 === 0 ? "ltp" : "full";
      client.subscribe([token], mode);
      want.set(token, mode);
      if (kill % 3 === 0) {
        client.unsubscribe([1_000_000 + kill - 1]);
        want.delete(1_000_000 + kill - 1);
      }
      await waitFor(
        () => server.connections.length === before + 1 && client.state === "connected",
        `reconnected after kill ${kill}`,
      );
      await waitFor(() => BareTicker.held(server.last).size === want.size, `resubscribed after kill ${kill}`);
      assert.deepEqual(
        [...BareTicker.held(server.last)].sort(([a], [b]) => a - b),
        [...want].sort(([a], [b]) => a - b),
        `subscriptions after kill ${kill}`,
      );
    }
    assert.equal(client.connects, 11);
    assert.equal(server.connections.length, 11);
    // Nobody is left talking to a dead link: every earlier connection is closed.
    assert.ok(server.connections.slice(0, -1).every((c) => c.closedAt !== undefined));
    assert.deepEqual(errors, []);
  });

  it("a link that goes silent without closing is dropped and redialled, three times over", async function () {
    newClient(server.url);
    client.subscribe([408065], "ltp");
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    for (let stall = 1; stall <= 3; stall++) {
      const stale = server.last;
      // Heartbeats alone keep it up past several read timeouts.
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(stale.closedAt, undefined, "a beating link was dropped");
      server.silent = true;
      // The server never closes it: only the client can notice, and it must close the stale socket.
      await waitFor(() => stale.closedAt !== undefined, `stale link ${stall} closed by the client`, 3000);
      server.silent = false;
      await waitFor(() => server.last !== stale && client.state === "connected", `redialled ${stall}`);
      await waitFor(() => BareTicker.held(server.last).get(408065) === "ltp", `resubscribed ${stall}`);
    }
    assert.equal(states.filter((s) => /no data from the ticker for 300 ms/.test(s)).length, 3);
  });

  it("close() during a dial resolves once the socket is gone and leaves no timer, 10 times", async function () {
    // Accepts TCP and never answers the upgrade: the dial hangs until the handshake deadline.
    const sockets = new Set<net.Socket>();
    const hanging = net.createServer((socket) => {
      sockets.add(socket);
      // Read, or the end of the stream is never noticed.
      socket.resume();
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    try {
      const url = `ws://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      // Mocha arms its own per-test Timeout once this function returns its promise.
      await new Promise((r) => setImmediate(r));
      const baseline = timeouts();
      for (let i = 0; i < 10; i++) {
        newClient(url, { handshakeTimeoutMs: 10_000 });
        client.start();
        await waitFor(() => sockets.size === 1, `dial ${i} reached the server`);
        assert.ok(timeouts() > baseline, "a dial in progress has its handshake deadline armed");
        await client.close();
        assert.equal(client.state, "disconnected");
        assert.equal(timeouts(), baseline, `timers left after close ${i}`);
        await waitFor(() => sockets.size === 0, `server saw dial ${i} end`);
        assert.throws(() => client.start(), /closed/);
      }
      // Also while waiting to retry: the retry timer goes with close().
      newClient(url, { handshakeTimeoutMs: 20, backoff: { initialMs: 5_000, maxMs: 5_000 } });
      client.start();
      await waitFor(() => client.state === "reconnecting", "waiting to retry");
      await client.close();
      assert.equal(timeouts(), baseline, "retry timer left after close");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });

  it("the access token never shows in a state reason or an error, whatever the server says", async function () {
    newClient(server.url);
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    assert.equal(server.last.url.searchParams.get("access_token"), TOKEN);
    // A hostile or buggy server echoes the query string in its close reason.
    server.last.ws.close(4000, `bad request ${server.last.url.search}`);
    await waitFor(() => states.some((s) => s.startsWith("reconnecting: ticker closed (4000")), "closed");
    await waitFor(() => client.state === "connected", "back");
    const text = `${states.join("\n")}\n${errors.map((e) => e.message).join("\n")}`;
    assert.match(text, /ticker closed \(4000 bad request \?api_key=key&access_token=\*\*\*\)/);
    assert.ok(!text.includes(TOKEN), text);
  });

  it("a new token is dialled with after redial(), and the old one is not used again", async function () {
    newClient(server.url);
    client.subscribe([408065], "full");
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    for (let i = 1; i <= 5; i++) {
      const old = server.last;
      client.setAccessToken(`token-${i}`);
      client.redial();
      await waitFor(() => server.last !== old && client.state === "connected", `redial ${i}`);
      assert.equal(server.last.url.searchParams.get("access_token"), `token-${i}`);
      await waitFor(() => BareTicker.held(server.last).get(408065) === "full", `resubscribed ${i}`);
      await waitFor(() => old.closedAt !== undefined, `old link ${i} closed`);
    }
    assert.equal(server.connections.length, 6);
  });
  it("stop() and start() back to back, 20 times: one live link at the end, every other one closed", async function () {
    newClient(server.url);
    client.subscribe([408065], "quote");
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    for (let i = 0; i < 20; i++) {
      // A new login does this without awaiting the stop (the old link may still be closing).
      const stopped = client.stop(i % 2 === 0 ? "session expired" : "stopped");
      client.start();
      await stopped;
      if (i % 4 === 0) await waitFor(() => client.state === "connected", `connected ${i}`);
    }
    await waitFor(() => client.state === "connected", "connected at the end");
    await waitFor(
      () => server.connections.filter((c) => c.closedAt === undefined).length === 1,
      "only one link left open",
    );
    await waitFor(() => BareTicker.held(server.last).get(408065) === "quote", "resubscribed");
  });
});
