// The WebSocket broker's story (last seq, last state of each order and GTT reported) must outlive
// the Node-RED *process*, not only a redeploy: each Node-RED here is a child process (the node-red
// CLI with the demo settings, on 127.0.0.1) on one user dir, trading through a real gateway child
// process. Orders fill while it runs and while it is down (another client of the same account
// modifies its resting orders into fills and trades at market); each stop is a clean SIGTERM or a
// SIGKILL once the flow has been quiet. The oracle is the order-events node's output (a file node
// appends each event): every fill the account made reaches it exactly once, each order's in order.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AccountEvent, OrderEvent } from "../../lib/protocol";
import { saveStory, websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort, GatewayProcess } from "../support/gateway-process";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const TAB = "t1";
const CREDENTIAL_SECRET = "ws-story-restart-secret";
const FILLS = new Set(["ORDER_FILLED", "ORDER_PARTIALLY_FILLED"]);

function flow(url: string, eventsFile: string): object[] {
  return [
    { id: TAB, type: "tab", label: "restart" },
    {
      id: "b1",
      type: "trading-broker",
      name: "gateway",
      kind: "websocket",
      url,
      reconnect_initial_ms: "20",
      reconnect_factor: "2",
      reconnect_max_ms: "200",
      request_timeout_ms: "3000",
      heartbeat_ms: "1000",
    },
    { id: "in", type: "http in", z: TAB, url: "/place", method: "post", wires: [["p1"]] },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["ok"]] },
    {
      id: "ok",
      type: "function",
      z: TAB,
      func: "msg.payload = { ok: true, order: msg.payload }; return msg;",
      wires: [["out"]],
    },
    { id: "c1", type: "catch", z: TAB, scope: ["p1"], uncaught: false, wires: [["failed"]] },
    {
      id: "failed",
      type: "function",
      z: TAB,
      func: "msg.payload = { ok: false, code: msg.error.code, message: msg.error.message }; return msg;",
      wires: [["out"]],
    },
    { id: "out", type: "http response", z: TAB, statusCode: "200", wires: [] },
    { id: "e1", type: "trading-order-events", z: TAB, broker: "b1", wires: [["log"]] },
    {
      id: "log",
      type: "file",
      z: TAB,
      filename: eventsFile,
      filenameType: "str",
      appendNewline: true,
      createDir: true,
      overwriteFile: "false",
      encoding: "none",
      wires: [],
    },
  ];
}

/** flows_cred.json as Node-RED writes it under a credentialSecret (aes-256-ctr, iv in hex first). */
function encryptedCredentials(credentials: object): object {
  const key = createHash("sha256").update(CREDENTIAL_SECRET).digest();
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const body = cipher.update(JSON.stringify(credentials), "utf8", "base64") + cipher.final("base64");
  return { $: iv.toString("hex") + body };
}

interface Runtime {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<void>;
}

async function startNodeRed(userDir: string): Promise<Runtime> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      require.resolve("node-red/red.js"),
      "--settings",
      path.join(ROOT, "demo", "settings.js"),
      "--userDir",
      userDir,
      "--port",
      String(port),
    ],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TRADING_BROKER_CREDENTIAL_SECRET: CREDENTIAL_SECRET },
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/Started flows/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`Node-RED did not start (exit ${child.exitCode}):\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

async function stop(runtime: Runtime, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  runtime.child.kill(signal);
  const timer = setTimeout(() => runtime.child.kill("SIGKILL"), 20_000);
  await runtime.exited;
  clearTimeout(timer);
}

async function until(predicate: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Places through the flow; the broker may still be connecting when the process has just started. */
async function placeThroughFlow(runtime: Runtime, order: object): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${runtime.url}/place`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(order),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (body.ok === true || body.code !== "NOT_CONNECTED" || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function eventsOnFlow(file: string): AccountEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  // A line being appended right now may be incomplete: only whole lines count.
  const lines = text.split("\n");
  lines.pop();
  return lines.map((line) => JSON.parse(line) as AccountEvent);
}

const fillKey = (event: OrderEvent): string =>
  `${event.type} ${event.order.order_id} ${event.order.filled_quantity}`;

function fillsOf(events: readonly AccountEvent[]): OrderEvent[] {
  return events.filter((event): event is OrderEvent => "order" in event && FILLS.has(event.type));
}

function perOrder(fills: readonly OrderEvent[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const event of fills)
    map.set(event.order.order_id, [...(map.get(event.order.order_id) ?? []), fillKey(event)]);
  return map;
}

describe("WebSocket broker: every fill once and in order across Node-RED process restarts", function () {
  this.timeout(180_000);
  let dir: string;
  let userDir: string;
  let eventsFile: string;
  let gateway: GatewayProcess | undefined;
  let runtime: Runtime | undefined;
  let side: GatewayClient | undefined;

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-story-restart-"));
    userDir = path.join(dir, "user");
    fs.mkdirSync(userDir);
    eventsFile = path.join(dir, "events.jsonl");
    gateway = await GatewayProcess.start({
      port: await freePort(),
      journal: path.join(dir, "gateway.jsonl"),
      apiKey: TEST_KEY,
      apiSecret: TEST_SECRET,
      args: ["--volatility", "0", "--rate", "100000"],
    });
    fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flow(gateway.url, eventsFile)));
    fs.writeFileSync(
      path.join(userDir, "flows_cred.json"),
      JSON.stringify(encryptedCredentials({ b1: { apiKey: TEST_KEY, apiSecret: TEST_SECRET } })),
    );
    // Another client of the same account: it sees every event the account makes (the oracle), and
    // is the market that fills the flow's resting orders while Node-RED is down.
    side = await GatewayClient.open(gateway.url);
  });

  afterEach(async function () {
    if (runtime !== undefined) await stop(runtime, "SIGKILL");
    runtime = undefined;
    await side?.close();
    side = undefined;
    await gateway?.kill();
    gateway = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function madeFills(): OrderEvent[] {
    return fillsOf(side!.all("EVENT").map((m) => m.event!));
  }

  /** Waits until the flow has every fill the account made so far, then checks each came once. */
  async function flowCaughtUp(label: string): Promise<void> {
    await until(
      () => fillsOf(eventsOnFlow(eventsFile)).length >= madeFills().length,
      () => {
        const seen = new Set(fillsOf(eventsOnFlow(eventsFile)).map(fillKey));
        const missing = madeFills().filter((event) => !seen.has(fillKey(event)));
        return `${label}: ${missing.length} of ${madeFills().length} fills never reached the flow: ${missing
          .map((event) => `${fillKey(event)} (seq ${event.seq})`)
          .join("; ")}\n${runtime?.output().slice(-2000) ?? ""}`;
      },
    );
  }

  it("5 restarts (SIGTERM and SIGKILL when quiet), fills while up and while down: each once, in order; a foreign and a corrupt story file are reported and not used", async function () {
    const rounds = 5;
    const file = websocketStoryFile(userDir, "b1", gateway!.url);
    // At the first start the file is another gateway's story, far ahead of this account's seq.
    await saveStory(file, {
      url: "ws://127.0.0.1:9/v1",
      api_key: TEST_KEY,
      account: "default",
      last_seq: 999,
      synced_at: Date.now(),
      orders: [],
      gtts: [],
    });
    runtime = await startNodeRed(userDir);
    for (let round = 0; round < rounds; round++) {
      // While up: a fill at market, and two sells resting far above the market.
      const market = await placeThroughFlow(runtime, { symbol: "INFY", side: "BUY", quantity: 2 });
      assert.equal(market.ok, true, `round ${round}: ${JSON.stringify(market)}`);
      const resting: string[] = [];
      for (let i = 0; i < 2; i++) {
        const placed = await placeThroughFlow(runtime, {
          symbol: "INFY",
          side: "SELL",
          quantity: 1,
          order_type: "LIMIT",
          price: 100_000,
        });
        assert.equal(placed.ok, true, `round ${round}: ${JSON.stringify(placed)}`);
        resting.push((placed.order as { order_id: string }).order_id);
      }
      await flowCaughtUp(`round ${round}, while up`);
      if (round === 0) assert.match(runtime.output(), /is the story of another gateway URL; it is not used/);

      const signal = round % 2 === 0 ? "SIGTERM" : "SIGKILL";
      if (signal === "SIGKILL") {
        // Quiet: the story on disk has caught up with what the flow was sent.
        const lastSeq = Math.max(...side!.all("EVENT").map((m) => m.event!.seq));
        await until(
          () => {
            try {
              return (JSON.parse(fs.readFileSync(file, "utf8")) as { last_seq: number }).last_seq >= lastSeq;
            } catch {
              return false;
            }
          },
          () => `round ${round}: the story at ${file} never reached seq ${lastSeq}`,
        );
      }
      await stop(runtime, signal);
      runtime = undefined;

      // While down: the resting sells fill (modified into the market), and a trade at market.
      for (const orderId of resting) {
        await side!.call({ type: "MODIFY_ORDER", order_id: orderId, changes: { price: 1 } });
      }
      await side!.call({
        type: "PLACE_ORDER",
        order: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `side${round}` },
      });
      runtime = await startNodeRed(userDir);
      // The flow's orders filled while it was down; the side's own trade is the account's news too.
      await flowCaughtUp(`round ${round}, after the ${signal} restart`);
    }

    // A corrupt story: reported, and the flow trades on (what filled while down is then not news).
    await stop(runtime, "SIGTERM");
    fs.writeFileSync(file, '{"version":1,"last_se');
    runtime = await startNodeRed(userDir);
    const market = await placeThroughFlow(runtime, { symbol: "INFY", side: "BUY", quantity: 3 });
    assert.equal(market.ok, true, JSON.stringify(market));
    await flowCaughtUp("after a restart on a corrupt story");
    assert.match(runtime.output(), /is not JSON .*; it is not used/);

    await new Promise((resolve) => setTimeout(resolve, 500));
    const seen = fillsOf(eventsOnFlow(eventsFile));
    const made = madeFills();
    assert.ok(made.length >= rounds * 4, `fills made: ${made.length}`);
    assert.deepEqual(seen.map(fillKey).sort(), made.map(fillKey).sort(), "each fill once");
    assert.deepEqual(perOrder(seen), perOrder(made), "each order's fills in order");
  });
});
