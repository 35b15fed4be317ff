// Sockets that never become WebSocket connections. Node's HTTP server keeps a TCP socket that sends
// nothing for ever (no idle timeout by default), gives a half-sent upgrade request 60 s, and the
// gateway's per-IP cap counted only upgraded connections: 3,000 silent sockets (from a separate
// process) were all still open 20 s later, on their way to the process's fd limit, where the
// gateway can accept no one and its journal can open no file. And a peer retrying at the per-IP
// cap got a log line per attempt: 3,000 attempts, 3,001 lines. Now a socket has authTimeoutMs to
// send its upgrade, one address holds at most twice maxConnectionsPerIp sockets, and refusals are
// logged once a second with a count; the whole gateway holds at most maxConnections sockets from
// all addresses (before it, 300 silent sockets from 10 addresses were all kept with a cap of 50).
// A good client's PING latency and the RSS are printed.
import assert from "node:assert/strict";
import net from "node:net";
import { WebSocket } from "ws";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import { waitFor } from "../support/wait";

/** Opens `count` TCP sockets to the gateway from `address`; `closed` counts those the gateway ended. */
async function rawSockets(
  made: PaperGateway,
  count: number,
  address: (i: number) => string,
): Promise<{ sockets: net.Socket[]; closed: () => number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  let connected: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 100 === 0) {
      // In bursts of 100: a thousand at once overflow the listen backlog (511), and a socket whose
      // last handshake ACK the kernel dropped is accepted only when its SYN-ACK is resent, seconds on.
      await Promise.all(connected);
      await new Promise((resolve) => setTimeout(resolve, 5));
      connected = [];
    }
    const socket = net.connect({ port: made.gateway.port, host: "127.0.0.1", localAddress: address(i) });
    socket.on("error", () => undefined);
    socket.on("close", () => (closed += 1));
    // Flowing, so the gateway's FIN is read and the socket closes (a paused one sits in CLOSE_WAIT).
    socket.resume();
    connected.push(
      new Promise<void>((resolve) => {
        socket.once("connect", () => resolve());
        socket.once("close", () => resolve());
      }),
    );
    sockets.push(socket);
  }
  await Promise.all(connected);
  return { sockets, closed: () => closed };
}

/** A client opened once the gateway has seen enough sockets close to let it in (polled, 5 s at most). */
async function openWhenAble(url: string): Promise<GatewayClient> {
  const until = performance.now() + 5_000;
  for (;;) {
    try {
      return await GatewayClient.open(url);
    } catch (error) {
      if (performance.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** PING round trips of a good client, as "p50 / p99 / max ms". */
async function pingFigures(client: GatewayClient, count: number): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await client.call({ type: "PING" });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const at = (q: number): string =>
    times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
  return `p50 ${at(0.5)} / p99 ${at(0.99)} / max ${at(1)} ms`;
}

const MB = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

describe("Gateway: sockets that never upgrade are bounded", function () {
  this.timeout(30_000);
  let made: PaperGateway | undefined;
  const open: net.Socket[] = [];
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    for (const socket of open.splice(0)) socket.destroy();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await made?.close();
    made = undefined;
  });

  it("1,000 silent sockets from 20 addresses are closed after authTimeoutMs; a client keeps being served", async function () {
    made = await startPaperGateway({ authTimeoutMs: 800 });
    const good = await GatewayClient.open(made.url);
    clients.push(good);
    const rss = process.memoryUsage().rss;
    for (let round = 0; round < 2; round++) {
      const { sockets, closed } = await rawSockets(made, 1000, (i) => `127.0.${round + 1}.${2 + (i % 20)}`);
      open.push(...sockets);
      const during = await pingFigures(good, 50);
      await waitFor(
        () => closed() === sockets.length,
        `round ${round}: the gateway closing 1,000 silent sockets (${closed()} closed)`,
        10_000,
      );
      console.log(
        `      round ${round}: 1,000 silent sockets all closed; good client's PING meanwhile ${during}; RSS ${MB(rss)} -> ${MB(process.memoryUsage().rss)}`,
      );
    }
    assert.equal((await good.call({ type: "PING" })).seq, 0);
  });

  it("200 sockets sending their upgrade a byte every 50 ms are closed before it is whole, never upgraded", async function () {
    made = await startPaperGateway({ authTimeoutMs: 800 });
    const good = await GatewayClient.open(made.url);
    clients.push(good);
    const request =
      "GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: trading-broker.v1\r\n\r\n";
    const { sockets, closed } = await rawSockets(made, 200, (i) => `127.0.3.${2 + (i % 10)}`);
    open.push(...sockets);
    let answered = 0;
    for (const socket of sockets) socket.once("data", () => (answered += 1));
    let sent = 0;
    const drip = setInterval(() => {
      for (const socket of sockets) if (!socket.destroyed) socket.write(request[sent]!);
      sent += 1;
      if (sent === request.length) clearInterval(drip);
    }, 50);
    try {
      await waitFor(
        () => closed() === sockets.length,
        `the gateway closing 200 slow upgrades (${closed()} closed)`,
        10_000,
      );
    } finally {
      clearInterval(drip);
    }
    console.log(`      200 slow upgrades closed after ${sent} of ${request.length} bytes each`);
    assert.ok(
      sent < request.length,
      `the whole upgrade was sent (${sent} bytes) before the gateway closed them`,
    );
    assert.equal(made.gateway.connections, 1, "only the good client is connected");
    // An HTTP 408 at most, never a 101.
    assert.ok(answered <= sockets.length);
    assert.equal((await good.call({ type: "PING" })).seq, 0);
  });

  it("one address holds at most 2 x maxConnectionsPerIp sockets: 1,000 silent ones, the rest are cut at once", async function () {
    made = await startPaperGateway({ authTimeoutMs: 20_000, maxConnectionsPerIp: 50 });
    const good = await GatewayClient.open(made.url, {});
    clients.push(good);
    const { sockets, closed } = await rawSockets(made, 1000, () => "127.0.4.2");
    open.push(...sockets);
    // Long before authTimeoutMs: only the cap can be closing them.
    await waitFor(() => closed() >= 900, `sockets over the cap cut (${closed()} closed)`, 5_000);
    assert.equal(closed(), 900, "exactly the sockets over 2 x 50 are cut");
    const refusals = made.logs.filter((line) =>
      /refused a connection from 127\.0\.4\.2: 100 sockets already open/.test(line.message),
    );
    console.log(`      ${closed()} of 1,000 cut at once; ${refusals.length} log line(s) about it`);
    assert.ok(refusals.length >= 1 && refusals.length <= 6, `${refusals.length} lines`);
    assert.equal((await good.call({ type: "PING" })).seq, 0);
  });

  it("the gateway holds at most maxConnections sockets from all addresses: the rest are cut at once, and it recovers", async function () {
    made = await startPaperGateway({ authTimeoutMs: 20_000, maxConnections: 50 });
    const good = await GatewayClient.open(made.url);
    clients.push(good);
    for (let round = 0; round < 3; round++) {
      // The last round's sockets all seen closed, so exactly 49 fit again.
      await waitFor(
        () => made!.gateway.sockets === 1,
        `round ${round}: ${made.gateway.sockets} sockets left`,
        5_000,
      );
      // 300 silent sockets from 10 addresses, 30 each: far under the per-IP cap (2 x 256), so only
      // the gateway-wide cap can cut them; 49 fit beside the good client.
      const { sockets, closed } = await rawSockets(made, 300, (i) => `127.0.5.${2 + (i % 10)}`);
      open.push(...sockets);
      // Long before authTimeoutMs: only the cap can be closing them.
      await waitFor(
        () => closed() >= 251,
        `round ${round}: sockets over the cap cut (${closed()} closed)`,
        5_000,
      );
      assert.equal(closed(), 251, `round ${round}: exactly the sockets over 50 are cut`);
      assert.equal(made.gateway.sockets, 50, `round ${round}: the gateway holds its cap`);
      assert.equal((await good.call({ type: "PING" })).seq, 0, `round ${round}: the good client is served`);
      // A newcomer is refused while the gateway is full.
      await assert.rejects(
        GatewayClient.open(made.url),
        `round ${round}: a client connected to a full gateway`,
      );
      // Once the flood closes, a new client connects.
      for (const socket of sockets) socket.destroy();
      const fresh = await openWhenAble(made.url);
      assert.equal((await fresh.call({ type: "PING" })).seq, 0);
      await fresh.close();
    }
    const lines = made.logs.filter((line) =>
      /refused a connection from 127\.0\.5\.\d+: 50 sockets already open on the gateway \(maxConnections\)/.test(
        line.message,
      ),
    );
    console.log(`      3 x 251 of 300 sockets cut at once; ${lines.length} log line(s) about it`);
    assert.ok(lines.length >= 1 && lines.length <= 10, `${lines.length} lines`);
  });

  it("3 x 300 upgrades refused at the per-IP cap are logged at most once a second, with the count", async function () {
    made = await startPaperGateway({ maxConnectionsPerIp: 5 });
    for (let i = 0; i < 5; i++) clients.push(await GatewayClient.open(made.url));
    const start = performance.now();
    let refused = 0;
    for (let round = 0; round < 3; round++) {
      const attempts = Array.from({ length: 300 }, () => {
        const ws = new WebSocket(made!.url, "trading-broker.v1");
        return new Promise<void>((resolve) => {
          ws.once("unexpected-response", (_request, response) => {
            if (response.statusCode === 429) refused += 1;
            ws.terminate();
            resolve();
          });
          ws.once("error", () => resolve());
          ws.once("open", () => {
            ws.terminate();
            resolve();
          });
        });
      });
      await Promise.all(attempts);
    }
    const seconds = (performance.now() - start) / 1000;
    const lines = made.logs.filter((line) =>
      /refused a connection from 127\.0\.0\.1: .*already open/.test(line.message),
    );
    console.log(
      `      ${refused} upgrades refused 429 in ${seconds.toFixed(1)} s: ${lines.length} log line(s)`,
    );
    assert.equal(refused, 900);
    assert.ok(
      lines.length <= Math.ceil(seconds) + 1,
      `${lines.length} lines for ${refused} refusals in ${seconds.toFixed(1)} s`,
    );
    assert.equal((await clients[0]!.call({ type: "PING" })).seq, 0);
  });
});
