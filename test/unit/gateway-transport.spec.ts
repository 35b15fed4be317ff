import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Gateway } from "../../lib/gateway/gateway";
import { CLOSE_CODES, SUBPROTOCOL } from "../../lib/protocol/wire";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, TEST_KEY, TEST_SECRET, order, startPaperGateway } from "../support/gateway-client";

function harness() {
  let gateways: PaperGateway[] = [];
  let clients: GatewayClient[] = [];
  afterEach(async function () {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(gateways.map((g) => g.close()));
    gateways = [];
    clients = [];
  });
  return {
    async start(options: Parameters<typeof startPaperGateway>[0] = {}) {
      const made = await startPaperGateway(options);
      gateways.push(made);
      return made;
    },
    track(client: GatewayClient) {
      clients.push(client);
      return client;
    },
  };
}

function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 5);
    };
    check();
  });
}

describe("Gateway: path and subprotocol", function () {
  const h = harness();

  it("serves /v1, and / when the client offers trading-broker.v1", async function () {
    const { gateway } = await h.start();
    const onPath = h.track(await GatewayClient.connect(gateway.url));
    assert.equal((await onPath.auth()).type, "RESULT");
    const base = `ws://127.0.0.1:${gateway.port}`;
    const bySubprotocol = h.track(await GatewayClient.connect(`${base}/`, { protocols: [SUBPROTOCOL] }));
    assert.equal(bySubprotocol.ws.protocol, SUBPROTOCOL);
    assert.equal((await bySubprotocol.auth()).type, "RESULT");
    const both = h.track(await GatewayClient.connect(gateway.url, { protocols: ["other", SUBPROTOCOL] }));
    assert.equal(both.ws.protocol, SUBPROTOCOL);
  });

  it("refuses other paths with 404 at the upgrade", async function () {
    const { gateway } = await h.start();
    const base = `ws://127.0.0.1:${gateway.port}`;
    for (const url of [`${base}/v2`, `${base}/`, `${base}/v1/extra`]) {
      await assert.rejects(GatewayClient.connect(url), /Unexpected server response: 404/, url);
    }
    await assert.rejects(
      GatewayClient.connect(`${base}/other`, { protocols: [SUBPROTOCOL] }),
      /Unexpected server response: 404/,
    );
  });

  it("answers a plain HTTP request on the path with 426", async function () {
    const { gateway } = await h.start();
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${gateway.port}/v1`, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on("error", reject);
    });
    assert.equal(status, 426);
  });
});

describe("Gateway: liveness and backpressure", function () {
  const h = harness();

  it("terminates a client that stops answering pings and keeps one that answers", async function () {
    const { url, gateway, logs } = await h.start({ heartbeat: { intervalMs: 40, maxMissedPongs: 2 } });
    const deaf = h.track(await GatewayClient.connect(url, { autoPong: false }));
    assert.equal((await deaf.auth()).type, "RESULT");
    const alive = h.track(await GatewayClient.open(url));
    const closed = await deaf.closed;
    assert.equal(closed.code, 1006, "terminated, no close frame");
    assert.ok(logs.some((l) => /missed 2 pongs/.test(l.message)));
    await GatewayClient.pause(150);
    assert.equal(alive.ws.readyState, alive.ws.OPEN);
    assert.equal(gateway.connections, 1);
  });

  it("terminates a slow consumer once its unsent bytes pass maxBufferedBytes", async function () {
    this.timeout(20_000);
    const { url, broker, gateway, logs } = await h.start({ maxBufferedBytes: 256 * 1024 });
    const slow = h.track(await GatewayClient.open(url));
    const healthy = h.track(await GatewayClient.open(url));
    assert.equal((await slow.request({ type: "SUBSCRIBE", symbols: ["INFY"] })).type, "RESULT");
    slow.ws.pause(); // stops reading: the kernel buffers fill, then the gateway's queue grows
    let price = 100;
    for (let round = 0; round < 400 && gateway.connections > 1; round++) {
      for (let i = 0; i < 1000; i++) broker.setPrice("INFY", (price = price === 100 ? 100.05 : 100));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(gateway.connections, 1, "the slow consumer was terminated");
    assert.ok(logs.some((l) => l.level === "warn" && /slow consumer/.test(l.message)));
    assert.equal((await healthy.request({ type: "GET_ACCOUNT" })).type, "RESULT");
  });
});

describe("Gateway: TLS", function () {
  const h = harness();
  let dir: string;
  let key: Buffer;
  let cert: Buffer;

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-tls-"));
    try {
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          path.join(dir, "key.pem"),
          "-out",
          path.join(dir, "cert.pem"),
          "-days",
          "2",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        { stdio: "pipe" },
      );
    } catch (error) {
      // Node cannot write an X.509 certificate by itself; without the openssl CLI there is none.
      this.skip();
      void error;
    }
    key = fs.readFileSync(path.join(dir, "key.pem"));
    cert = fs.readFileSync(path.join(dir, "cert.pem"));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves wss:// to a client that trusts the certificate", async function () {
    const { gateway, broker } = await h.start({ tls: { key, cert } });
    assert.match(gateway.url, /^wss:\/\/127\.0\.0\.1:\d+\/v1$/);
    const client = h.track(await GatewayClient.open(gateway.url, {}, { ca: cert }));
    assert.equal((await client.request({ type: "PLACE_ORDER", order: order() })).type, "RESULT");
    assert.equal((await broker.getOrderbook()).length, 1);
  });

  it("is refused by a client that verifies certificates and lacks the CA", async function () {
    const { gateway } = await h.start({ tls: { key, cert } });
    await assert.rejects(GatewayClient.connect(gateway.url), (error: NodeJS.ErrnoException) => {
      assert.match(`${error.code} ${error.message}`, /SELF_SIGNED|self[- ]signed/i);
      return true;
    });
  });
});

describe("Gateway: close()", function () {
  function resources(): string[] {
    return process.getActiveResourcesInfo().sort();
  }

  it("closes clients with 1001, leaves the broker open without its listeners, and leaves no handles", async function () {
    // Mocha arms the test's own timeout timer after the test function's first synchronous run.
    await new Promise((resolve) => setImmediate(resolve));
    const before = resources();
    const made = await startPaperGateway({ heartbeat: { intervalMs: 1000 } });
    const listening = made.broker.listenerCount("order");
    const authed = await GatewayClient.open(made.url);
    assert.equal((await authed.request({ type: "SUBSCRIBE", symbols: ["INFY"] })).type, "RESULT");
    const idle = await GatewayClient.connect(made.url); // holds an auth timer
    assert.notDeepEqual(resources(), before);
    await made.gateway.close();
    assert.equal((await authed.closed).code, CLOSE_CODES.goingAway);
    assert.equal((await idle.closed).code, CLOSE_CODES.goingAway);
    assert.equal(made.broker.state, "connected", "the gateway does not close the broker it was given");
    assert.equal(listening, 1);
    for (const event of ["order", "gtt", "quote", "error"] as const) {
      assert.equal(made.broker.listenerCount(event), 0, `${event} listener left on the broker`);
    }
    await made.gateway.close(); // twice is fine
    await made.broker.close();
    await until(() => resources().join() === before.join(), 1000, "handles to be released").catch(() => {
      assert.deepEqual(resources(), before);
    });
  });

  it("fails to start on a port in use and leaves the broker as it was", async function () {
    const first = await startPaperGateway();
    try {
      await assert.rejects(
        Gateway.start({ broker: first.broker, port: first.gateway.port, credentials: new Map() }),
        /EADDRINUSE/,
      );
      assert.equal(first.broker.listenerCount("order"), 1, "only the first gateway's listener");
    } finally {
      await first.close();
    }
  });

  it("terminates a client that does not answer the close handshake within closeTimeoutMs", async function () {
    const made = await startPaperGateway({ closeTimeoutMs: 100 });
    const stuck = await GatewayClient.open(made.url);
    stuck.ws.pause();
    const started = Date.now();
    await made.close();
    assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started} ms`);
    stuck.ws.resume();
    await stuck.closed;
  });
});

describe("gateway CLI", function () {
  const cli = path.join(__dirname, "..", "..", "lib", "gateway", "cli.js");
  let dir: string;
  let child: ChildProcessWithoutNullStreams | undefined;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-cli-"));
  });
  afterEach(function () {
    if (child !== undefined && child.exitCode === null) child.kill("SIGKILL");
    child = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string> = {}) {
    const proc = spawn(process.execPath, [cli, ...args], { cwd: dir, env: { ...process.env, ...env } });
    child = proc;
    const output = { stdout: "", stderr: "" };
    proc.stdout.on("data", (d: Buffer) => (output.stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (output.stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    return { proc, output, exited };
  }

  it("serves a paper broker, prints its url, and exits 0 on SIGTERM", async function () {
    const { proc, output, exited } = run(["--port", "0", "--seed", "1", "--starting-cash", "50000"], {
      TRADING_GATEWAY_API_KEY: TEST_KEY,
      TRADING_GATEWAY_API_SECRET: TEST_SECRET,
    });
    await until(() => /\n/.test(output.stdout) || proc.exitCode !== null, 8000, "the listening line");
    const match = /^gateway listening on (ws:\/\/127\.0\.0\.1:(\d+)\/v1)\n$/.exec(output.stdout);
    assert.ok(match, `stdout: ${output.stdout} stderr: ${output.stderr}`);
    assert.notEqual(Number(match[2]), 0, "the real port, not 0");
    const client = await GatewayClient.open(match[1]!);
    const placed = await client.call({ type: "PLACE_ORDER", order: order({ quantity: 10 }) });
    assert.equal(placed.status, "FILLED");
    const account = await client.call({ type: "GET_ACCOUNT" });
    assert.ok(account.cash < 50_000 && account.cash > 48_000, `cash ${account.cash}`);
    proc.kill("SIGTERM");
    assert.equal(await exited, 0, output.stderr);
    assert.equal((await client.closed).code, CLOSE_CODES.goingAway);
    assert.ok(fs.existsSync(path.join(dir, ".gateway", "paper-default.jsonl")), "journal in ./.gateway");
    assert.ok(!`${output.stdout}${output.stderr}`.includes(TEST_SECRET), "the secret is never printed");
  });

  it("exits 2 with a usage message when no credentials are given", async function () {
    const env = { TRADING_GATEWAY_API_KEY: "", TRADING_GATEWAY_API_SECRET: "" };
    const { output, exited } = run(["--port", "0"], env);
    assert.equal(await exited, 2);
    assert.match(output.stderr, /api key and secret are required/);
    assert.equal(output.stdout, "");
  });
});
