import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { paperConfig } from "../nodes/paper-config";
import { freePort } from "../support/free-port";

/**
 * The trading state must outlive the operating-system process, not only a runtime restarted in
 * the same process: each Node-RED here is a child process (the node-red CLI with the demo
 * settings, on 127.0.0.1), halted through the admin endpoint and then SIGKILLed at a random moment
 * after the halt was answered; the next one, on the same user dir, must be HALTED and refuse.
 */

const ROOT = path.resolve(__dirname, "..", "..", "..");
const TAB = "t1";

/** A paper broker, and an HTTP endpoint that places the posted order and answers the outcome. */
const FLOW = [
  { id: TAB, type: "tab", label: "restart" },
  paperConfig("b1", { account: "restart" }),
  { id: "k1", type: "trading-kill-switch", z: TAB, name: "panic", broker: "b1", wires: [[]] },
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
];

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
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
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

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function state(runtime: Runtime): Promise<string> {
  const res = await fetch(`${runtime.url}/trading-broker/b1/state`);
  return ((await res.json()) as { state: string }).state;
}

/** The broker comes up with the first request that needs it; a placement may find it connecting. */
async function place(runtime: Runtime): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { body } = await post(`${runtime.url}/place`, { symbol: "INFY", side: "BUY", quantity: 1 });
    if (body.ok === true || body.code !== "NOT_CONNECTED" || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function sigkill(runtime: Runtime): Promise<void> {
  runtime.child.kill("SIGKILL");
  await runtime.exited;
}

describe("RiskGuard: HALTED survives a SIGKILL of the Node-RED process", function () {
  this.timeout(600_000);
  let userDir: string;
  let runtime: Runtime | undefined;

  beforeEach(function () {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-restart-"));
    fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(FLOW));
  });

  afterEach(async function () {
    if (runtime !== undefined) await sigkill(runtime);
    runtime = undefined;
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("halt, SIGKILL at a random moment after the answer (5 trials): the next process is HALTED and refuses; resume trades", async function () {
    // The first kill comes the instant the halt is answered; the others a little later.
    const delays = [0, ...Array.from({ length: 4 }, () => Math.floor(Math.random() * 300))];
    runtime = await startNodeRed(userDir);
    const first = await place(runtime);
    assert.equal(first.ok, true, `a placement before any halt: ${JSON.stringify(first)}`);
    for (const [trial, delay] of delays.entries()) {
      const label = `trial ${trial} (kill ${delay} ms after the halt was answered)`;
      const halted = await post(`${runtime.url}/trading-broker/b1/state`, {
        command: "halt",
        reason: `restart trial ${trial}`,
      });
      assert.equal(halted.status, 200, `${label}: ${JSON.stringify(halted.body)}`);
      assert.equal(halted.body.state, "HALTED", label);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      await sigkill(runtime);
      runtime = undefined;

      runtime = await startNodeRed(userDir);
      assert.equal(await state(runtime), "HALTED", `${label}: the new process reports HALTED`);
      const refused = await place(runtime);
      assert.equal(refused.ok, false, `${label}: ${JSON.stringify(refused)}`);
      assert.equal(refused.code, "RISK", `${label}: ${JSON.stringify(refused)}`);
      assert.match(String(refused.message), new RegExp(`trading is HALTED \\(restart trial ${trial}\\)`));
      const resumed = await post(`${runtime.url}/trading-broker/b1/state`, { command: "resume" });
      assert.equal(resumed.body.state, "ACTIVE", label);
      const placed = await place(runtime);
      assert.equal(placed.ok, true, `${label}: after resume ${JSON.stringify(placed)}`);
    }
  });
});
