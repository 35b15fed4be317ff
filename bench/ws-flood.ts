import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WebSocketBroker } from "../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../lib/brokers/websocket-settings";
import { startChild } from "./child";
import { fmt, row, summarize } from "./stats";

const KEY = "bench-key";
const SECRET = "bench-secret";
const DIST = path.join(__dirname, "..");

/** CPU time (user + system, ms) a process has used, from /proc; NaN where there is none. */
function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** The gateway's CPU ms per second of wall time while `run` runs: what the phase made it do. */
async function gatewayLoad<T>(
  pid: number | undefined,
  run: () => Promise<T>,
): Promise<{ value: T; load: number }> {
  const cpu = cpuMsOf(pid);
  const start = performance.now();
  const value = await run();
  return { value, load: ((cpuMsOf(pid) - cpu) * 1000) / (performance.now() - start) };
}

async function placeLatency(broker: WebSocketBroker, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const start = process.hrtime.bigint();
    await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

function startFlood(port: number, sockets: number, kind: "junk" | "batch"): ChildProcess {
  return spawn(
    process.execPath,
    [path.join(DIST, "bench/ws-flood-child.js"), String(port), String(sockets), kind],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
}

async function stopFlood(child: ChildProcess): Promise<string> {
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
  return out.trim();
}

/**
 * Another client's place→ack latency while unauthenticated sockets flood the gateway, as a ratio
 * to its latency with the gateway idle, measured in the same run (target: p99 within 5×).
 */
export async function runFloodBench(options: { quick: boolean }): Promise<string[]> {
  const n = options.quick ? 500 : 3000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-flood-"));
  const gateway = await startChild(
    path.join(DIST, "lib/gateway/cli.js"),
    [
      "--port",
      "0",
      "--journal",
      path.join(dir, "j.jsonl"),
      "--volatility",
      "0",
      "--fast-acks",
      "--rate",
      "100000",
    ],
    { TRADING_GATEWAY_API_KEY: KEY, TRADING_GATEWAY_API_SECRET: SECRET },
  );
  const broker = new WebSocketBroker(
    WebSocketSettings.parse({
      url: `ws://127.0.0.1:${gateway.port}/v1`,
      api_key: KEY,
      api_secret: SECRET,
      rate_limit: { per_second: 1e9, burst: 1e6 },
      request_timeout_ms: 30_000,
    }),
  );
  const lines = [
    "### Place→ack under an unauthenticated flood (another client's latency, µs)",
    "",
    row(["case", "p50", "p99", "max", "p99 ÷ idle p99", "gateway CPU ms/s"]),
    row(["---", "---", "---", "---", "---", "---"]),
  ];
  try {
    await broker.connect();
    await placeLatency(broker, n / 4);
    const pid = gateway.process.pid;
    const idleRun = await gatewayLoad(pid, () => placeLatency(broker, n));
    const idle = summarize(idleRun.value);
    lines.push(
      row(["idle", fmt(idle.p50, 0), fmt(idle.p99, 0), fmt(idle.max, 0), "1.00", fmt(idleRun.load, 0)]),
    );
    for (const [kind, sockets] of [
      ["junk", 2],
      ["junk", 16],
      ["batch", 2],
    ] as const) {
      const flood = startFlood(gateway.port, sockets, kind);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const underRun = await gatewayLoad(pid, () => placeLatency(broker, n));
      const under = summarize(underRun.value);
      const sent = await stopFlood(flood);
      lines.push(
        row([
          `${sockets} sockets, ${kind === "junk" ? "9-byte invalid frames" : "64 KB over-long batches"} (${sent})`,
          fmt(under.p50, 0),
          fmt(under.p99, 0),
          fmt(under.max, 0),
          fmt(under.p99 / idle.p99),
          fmt(underRun.load, 0),
        ]),
      );
    }
  } finally {
    await broker.close();
    await gateway.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
