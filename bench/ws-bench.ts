import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { WebSocketBroker } from "../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../lib/brokers/websocket-settings";
import { signAuth } from "../lib/gateway/auth";
import { SUBPROTOCOL, SUBPROTOCOL_V1_1 } from "../lib/protocol/wire";
import type { Child } from "./child";
import { startChild } from "./child";
import { fsyncVariants } from "./fsync-variants";
import { fmt, row, summarize } from "./stats";

const KEY = "bench-key";
const SECRET = "bench-secret";
const DIST = path.join(__dirname, "..");

/** A PLACE_ORDER frame as the broker sends it: the raw echo uses a frame of the same size. */
function orderFrame(i: number): string {
  return JSON.stringify({
    type: "PLACE_ORDER",
    id: `r${i}`,
    order: {
      symbol: "INFY",
      exchange: "NSE",
      side: i % 2 === 0 ? "BUY" : "SELL",
      quantity: 1,
      order_type: "MARKET",
      product: "MIS",
      validity: "DAY",
      client_order_id: `b${String(i).padStart(12, "0")}`,
    },
  });
}

async function openRaw(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

/**
 * The sample buffers are allocated before the timed loop: a growing array of doubles copies its
 * backing store into the heap while orders are being timed, which the broker's rows paid for and
 * the raw echo's fewer, shorter runs less.
 */
async function rawEchoLatency(port: number, count: number): Promise<number[]> {
  const ws = await openRaw(port);
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i += 1) {
    const frame = orderFrame(i);
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      ws.once("message", (data) => {
        JSON.parse((data as Buffer).toString("utf8"));
        resolve();
      });
      ws.send(frame);
    });
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  ws.close();
  return Array.from(samples);
}

/** Raw pipelined echo: `window` frames in flight, replies counted (and parsed) for `seconds`. */
async function rawPipelined(port: number, window: number, seconds: number): Promise<number> {
  const ws = await openRaw(port);
  let sent = 0;
  let received = 0;
  const end = Date.now() + seconds * 1000;
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    ws.on("message", (data) => {
      JSON.parse((data as Buffer).toString("utf8"));
      received += 1;
      if (Date.now() < end) {
        ws.send(orderFrame(sent));
        sent += 1;
      } else if (received === sent) {
        ws.close();
        resolve(received / (Number(process.hrtime.bigint() - start) / 1e9));
      }
    });
    for (; sent < window; sent += 1) ws.send(orderFrame(sent));
  });
}

/** v1.1: every event pushed; v1.1 skip: the events an answer stands for ride in it (the default). */
type Protocol = "v1" | "v1.1" | "v1.1 skip";
const PROTOCOLS: readonly Protocol[] = ["v1", "v1.1", "v1.1 skip"];

function brokerFor(
  port: number,
  overrides: Record<string, unknown> = {},
  protocol: Protocol = "v1.1 skip",
): WebSocketBroker {
  return new WebSocketBroker(
    WebSocketSettings.parse({
      url: `ws://127.0.0.1:${port}/v1`,
      api_key: KEY,
      api_secret: SECRET,
      rate_limit: { per_second: 1e9, burst: 1e6 },
      queue: { max: 100_000, ttl_ms: 30_000 },
      request_timeout_ms: 30_000,
      ...overrides,
    }),
    protocol === "v1.1 skip"
      ? { protocol: "v1.1", answeredEvents: "skip" }
      : { protocol, answeredEvents: "send" },
  );
}

/** µs of a process.cpuUsage() difference, user + system. */
function cpuUsOf(used: NodeJS.CpuUsage): number {
  return used.user + used.system;
}

/** CPU time (user + system, ms) a process has used, from /proc; NaN where there is none. */
function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime, fields 14 and 15 of stat (11 and 12 after the name), in 1/100 s ticks.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

interface Pipelined {
  rate: number;
  /** CPU µs per acknowledged order, in this process (the client) and in the gateway. */
  clientCpuUs: number;
  gatewayCpuUs: number;
}

async function measurePipelined(
  broker: WebSocketBroker,
  gatewayPid: number | undefined,
  window: number,
  seconds: number,
): Promise<Pipelined> {
  const client = process.cpuUsage();
  const gateway = cpuMsOf(gatewayPid);
  const { rate, done } = await placePipelined(broker, window, seconds);
  const clientUsed = process.cpuUsage(client);
  return {
    rate,
    clientCpuUs: (clientUsed.user + clientUsed.system) / done,
    gatewayCpuUs: ((cpuMsOf(gatewayPid) - gateway) * 1000) / done,
  };
}

async function placeLatency(broker: WebSocketBroker, count: number): Promise<number[]> {
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i += 1) {
    const start = process.hrtime.bigint();
    await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return Array.from(samples);
}

async function placePipelined(
  broker: WebSocketBroker,
  window: number,
  seconds: number,
): Promise<{ rate: number; done: number }> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const start = process.hrtime.bigint();
  const worker = async (w: number) => {
    for (let i = w; Date.now() < end; i += window) {
      await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: window }, (_, w) => worker(w)));
  return { rate: done / (Number(process.hrtime.bigint() - start) / 1e9), done };
}

/**
 * The gateway's CPU per order under a load that does not depend on the machine: a bare ws client
 * (pre-built frames, no WebSocketBroker) keeps `inFlight` array frames of `perFrame` MARKET
 * PLACE_ORDERs outstanding, so every run hands the gateway the same frames whatever the load
 * average. The pipelined rows above batch as fast as the client keeps up, which moves with the
 * load and moves the gateway's cost per order with it.
 */
async function fixedLoadGatewayCpu(
  port: number,
  gatewayPid: number | undefined,
  protocol: Protocol,
  orders: number,
): Promise<{ rate: number; gatewayCpuUs: number }> {
  const perFrame = 100;
  const inFlight = 3;
  const ws = new WebSocket(
    `ws://127.0.0.1:${port}/v1`,
    protocol === "v1" ? [SUBPROTOCOL] : [SUBPROTOCOL_V1_1, SUBPROTOCOL],
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const timestamp = Date.now();
  const nonce = `fixed-load-${timestamp}`;
  const auth: Record<string, unknown> = {
    type: "AUTH",
    id: "auth",
    api_key: KEY,
    timestamp,
    nonce,
    signature: signAuth(SECRET, KEY, timestamp, nonce),
  };
  if (protocol !== "v1") {
    auth.options =
      protocol === "v1.1 skip"
        ? { event_format: "delta", answered_events: "skip" }
        : { event_format: "delta" };
  }
  ws.send(JSON.stringify(auth));
  await new Promise((resolve) => ws.once("message", resolve));
  // Unique per call: the same gateway serves one call per protocol, and a repeated id is a retry.
  const prefix = `fx${PROTOCOLS.indexOf(protocol)}${Math.random().toString(36).slice(2, 8)}`;
  let next = 0;
  const frame = (): string => {
    const parts: string[] = [];
    for (let k = 0; k < perFrame; k++, next++) {
      const side = next % 2 === 0 ? "BUY" : "SELL";
      parts.push(
        `{"type":"PLACE_ORDER","id":"f${next}","order":{"symbol":"INFY","exchange":"NSE","side":"${side}","quantity":1,"order_type":"MARKET","product":"MIS","validity":"DAY","client_order_id":"${idFor(prefix, next)}"}}`,
      );
    }
    return `[${parts.join(",")}]`;
  };
  const warmUp = Math.min(10_000, Math.floor(orders / 10));
  const total = orders + warmUp;
  let answered = 0;
  let sent = 0;
  let startCpu = Number.NaN;
  let start = 0n;
  await new Promise<void>((resolve) => {
    ws.on("message", (data) => {
      const text = (data as Buffer).toString("utf8");
      for (let at = text.indexOf('"type":"RESULT"'); at >= 0; at = text.indexOf('"type":"RESULT"', at + 1)) {
        answered++;
      }
      if (start === 0n && answered >= warmUp) {
        startCpu = cpuMsOf(gatewayPid);
        start = process.hrtime.bigint();
      }
      while (sent - answered < inFlight * perFrame && sent < total) {
        ws.send(frame());
        sent += perFrame;
      }
      if (answered >= total) resolve();
    });
    for (let k = 0; k < inFlight; k++) {
      ws.send(frame());
      sent += perFrame;
    }
  });
  const measured = answered - warmUp;
  const gatewayCpuUs = ((cpuMsOf(gatewayPid) - startCpu) * 1000) / measured;
  const rate = measured / (Number(process.hrtime.bigint() - start) / 1e9);
  ws.close();
  return { rate, gatewayCpuUs };
}

/** A client_order_id of at most 20 letters and digits, unique per run and order. */
function idFor(prefix: string, n: number): string {
  const suffix = n.toString(36);
  return `${prefix.slice(0, 19 - suffix.length)}x${suffix}`;
}

function gatewayArgs(journal: string, extra: string[] = []): string[] {
  return [
    "--port",
    "0",
    "--journal",
    journal,
    "--volatility",
    "0",
    "--rate",
    "100000000",
    "--starting-cash",
    "1e13",
    ...extra,
  ];
}

async function reconnectTimes(
  dir: string,
  cycles: number,
): Promise<{ samples: number[]; backoffCapMs: number }> {
  const backoffCapMs = 100;
  const journal = path.join(dir, "reconnect.jsonl");
  let gateway: Child = await startChild(path.join(DIST, "lib/gateway/cli.js"), gatewayArgs(journal), env());
  const port = gateway.port;
  const broker = brokerFor(port, {
    reconnect: { initial_ms: 50, factor: 2, max_ms: backoffCapMs },
    heartbeat_ms: 1000,
  });
  await broker.connect();
  const samples: number[] = [];
  for (let c = 0; c < cycles; c += 1) {
    await gateway.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 150));
    const reconnected = new Promise<void>((resolve) => {
      const onState = (state: string) => {
        if (state !== "connected") return;
        broker.off("state", onState);
        resolve();
      };
      broker.on("state", onState);
    });
    const args = gatewayArgs(journal);
    args[1] = String(port);
    gateway = await startChild(path.join(DIST, "lib/gateway/cli.js"), args, env());
    const listening = process.hrtime.bigint();
    await reconnected;
    samples.push(Number(process.hrtime.bigint() - listening) / 1e6);
  }
  await broker.close();
  await gateway.stop();
  return { samples, backoffCapMs };
}

/**
 * A gateway child; WS_BENCH_GATEWAY_FLAGS passes node flags to it alone (`--cpu-prof
 * --cpu-prof-dir=DIR`, `--trace-gc`: NODE_OPTIONS refuses --cpu-prof, and would profile this
 * process too).
 */
function startGateway(args: string[]): Promise<Child> {
  const flags = (process.env.WS_BENCH_GATEWAY_FLAGS ?? "").split(" ").filter((flag) => flag !== "");
  const cli = path.join(DIST, "lib/gateway/cli.js");
  // startChild runs `node <script> <args>`: flags go where the script would, the script after them.
  const [first, ...rest] = [...flags, cli, ...args];
  return startChild(first as string, rest, env());
}

function env(): NodeJS.ProcessEnv {
  return { TRADING_GATEWAY_API_KEY: KEY, TRADING_GATEWAY_API_SECRET: SECRET };
}

/**
 * The floor a durable acknowledgement cannot beat here: each sample is one raw echo of an order
 * frame, then one small record written and fdatasync'd in `dir` (where the journal lives), as the
 * idempotency index and the paper journal do it (writeSync into the page cache, fdatasync on the
 * threadpool). With `twoFiles`, what a durable placement cannot avoid while the index and the
 * journal are two files: a second record in a second file, both fdatasyncs side by side.
 */
async function durableFloor(port: number, dir: string, count: number, twoFiles = false): Promise<number[]> {
  const ws = await openRaw(port);
  const file = path.join(dir, "floor.jsonl");
  const fd = fs.openSync(file, "a");
  const secondFd = twoFiles ? fs.openSync(path.join(dir, "floor-journal.jsonl"), "a") : undefined;
  const record = Buffer.from(
    `${JSON.stringify(["i", "default\u0000b000000000000", "0".repeat(24), "2026-12-04", "P000000000"])}\n`,
  );
  const journalRecord = Buffer.from(`{"r":${JSON.stringify({ o: "x".repeat(260) })},"k":"00000000"}\n`);
  const datasync = (target: number) =>
    new Promise<void>((resolve, reject) =>
      fs.fdatasync(target, (error) => (error === null ? resolve() : reject(error))),
    );
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i += 1) {
      const frame = orderFrame(i);
      const start = process.hrtime.bigint();
      await new Promise<void>((resolve) => {
        ws.once("message", (data) => {
          JSON.parse((data as Buffer).toString("utf8"));
          resolve();
        });
        ws.send(frame);
      });
      fs.writeSync(fd, record);
      const synced = datasync(fd);
      if (secondFd !== undefined) {
        fs.writeSync(secondFd, journalRecord);
        await datasync(secondFd);
      }
      await synced;
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  } finally {
    fs.closeSync(fd);
    if (secondFd !== undefined) fs.closeSync(secondFd);
    ws.close();
  }
  return samples;
}

/** The floor's row and the durable acknowledgement's ratios to it and to the raw echo. */
function floorRows(
  raw: ReturnType<typeof summarize>,
  floor: ReturnType<typeof summarize>,
  durable: ReturnType<typeof summarize>,
  twoFiles?: ReturnType<typeof summarize>,
): string[] {
  const twoRow =
    twoFiles === undefined
      ? []
      : [
          row([
            "floor with two files: raw ws echo + two small records in two files, fdatasync'd side by side",
            fmt(twoFiles.p50, 1),
            fmt(twoFiles.p99, 1),
            fmt(twoFiles.p50 / raw.p50),
            fmt(twoFiles.p99 / raw.p99),
            "—",
          ]),
        ];
  const twoNote =
    twoFiles === undefined
      ? ""
      : ` The two-file floor (index intent + journal record, as placed today) is ${fmt(twoFiles.p50 / floor.p50)}× the one-file floor; durable acks p50 = ${fmt(durable.p50 / twoFiles.p50)}× it.`;
  return [
    row([
      "floor: raw ws echo + one fdatasync of a small record in the journal's directory",
      fmt(floor.p50, 1),
      fmt(floor.p99, 1),
      fmt(floor.p50 / raw.p50),
      fmt(floor.p99 / raw.p99),
      "—",
    ]),
    ...twoRow,
    "",
    `Durable acks p50 = ${fmt(durable.p50 / raw.p50)}× raw echo = ${fmt(durable.p50 / floor.p50)}× the floor (raw echo + one fdatasync, same run); p99 ${fmt(durable.p99 / floor.p99)}× the floor's p99.${twoNote}`,
  ];
}

/**
 * `--only=durable`: just the figures issue 11's durable target is about (raw echo, the floor and
 * durable place → ack, sequential, v1.1 skip), alternating floor and durable samples in rounds so a
 * noisy machine weighs on both alike.
 */
export async function runDurableBench(options: { quick: boolean }): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-bench-durable-"));
  const rounds = options.quick ? 2 : 5;
  const per = options.quick ? 250 : 400;
  try {
    const echo = await startChild(path.join(DIST, "bench/ws-echo-server.js"), []);
    const durable = await startChild(
      path.join(DIST, "lib/gateway/cli.js"),
      gatewayArgs(path.join(dir, "durable.jsonl")),
      env(),
    );
    const broker = brokerFor(durable.port);
    await broker.connect();
    await rawEchoLatency(echo.port, per);
    await placeLatency(broker, 200);
    const rawSamples: number[] = [];
    const floorSamples: number[] = [];
    const twoFileSamples: number[] = [];
    const durableSamples: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      rawSamples.push(...(await rawEchoLatency(echo.port, per)));
      floorSamples.push(...(await durableFloor(echo.port, dir, per)));
      twoFileSamples.push(...(await durableFloor(echo.port, dir, per, true)));
      durableSamples.push(...(await placeLatency(broker, per)));
    }
    await broker.close();
    await durable.stop();
    await echo.stop();
    const raw = summarize(rawSamples);
    const floor = summarize(floorSamples);
    const placed = summarize(durableSamples);
    const variants = await fsyncVariants(dir, options.quick ? 200 : 1000);
    return [
      "### Durable acknowledgements against their floor (sequential, client here, servers in child processes)",
      "",
      row(["what", "p50 µs", "p99 µs", "p50 ratio", "p99 ratio", "target"]),
      row(["---", "---:", "---:", "---:", "---:", "---"]),
      row([
        `raw ws echo of a ${orderFrame(0).length}-byte frame (baseline)`,
        fmt(raw.p50, 1),
        fmt(raw.p99, 1),
        "1.00",
        "1.00",
        "—",
      ]),
      row([
        "place → ack, durable acks (journal and index intent fsync'd side by side), v1.1 skip",
        fmt(placed.p50, 1),
        fmt(placed.p99, 1),
        fmt(placed.p50 / raw.p50),
        fmt(placed.p99 / raw.p99),
        "p50 ≤ 3×",
      ]),
      ...floorRows(raw, floor, placed, summarize(twoFileSamples)),
      "",
      ...variants,
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One server measured by sequential round trips: `take(count)` runs that many, one sample each. */
interface SequentialTarget {
  readonly pid: number | undefined;
  take(count: number): Promise<number[]>;
}

interface Interleaved {
  summary: ReturnType<typeof summarize>;
  /** The server's CPU µs per round trip, over its own blocks only. */
  serverCpuUs: number;
  /** This process's CPU µs per round trip (user + system), over the same blocks. */
  clientCpuUs: number;
}

/**
 * Sequential latency of every target, `count` samples each, taken in `rounds` blocks that take
 * turns (the order rotates every round, after a warm-up of count / 4 each). Measured one after
 * the other, each row met a different moment of a shared machine (a neighbour's build, this
 * process's heap) and its ratio to the raw echo moved by up to 0.9× between runs of one build;
 * taking turns spreads every such moment over all rows alike. Every sample is kept.
 */
async function interleavedLatency(
  targets: readonly SequentialTarget[],
  count: number,
  rounds: number,
): Promise<Interleaved[]> {
  for (const target of targets) await target.take(Math.floor(count / 4));
  const samples = targets.map((): number[] => []);
  const serverMs = targets.map(() => 0);
  const clientUs = targets.map(() => 0);
  for (let round = 0; round < rounds; round++) {
    const block = Math.floor(count / rounds) + (round < count % rounds ? 1 : 0);
    for (let k = 0; k < targets.length; k++) {
      const at = (round + k) % targets.length;
      const target = targets[at] as SequentialTarget;
      const server = cpuMsOf(target.pid);
      const client = process.cpuUsage();
      const taken = await target.take(block);
      clientUs[at] = (clientUs[at] as number) + cpuUsOf(process.cpuUsage(client));
      serverMs[at] = (serverMs[at] as number) + cpuMsOf(target.pid) - server;
      for (const sample of taken) (samples[at] as number[]).push(sample);
    }
  }
  return targets.map((_, at) => ({
    summary: summarize(samples[at] as number[]),
    serverCpuUs: ((serverMs[at] as number) * 1000) / count,
    clientCpuUs: (clientUs[at] as number) / count,
  }));
}

export async function runWsBench(options: { quick: boolean }): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-bench-"));
  const n = options.quick ? 2000 : 20_000;
  const seconds = options.quick ? 1 : 4;
  const window = 256;
  try {
    const echo = await startChild(path.join(DIST, "bench/ws-echo-server.js"), []);
    // The floor of any JS gateway: the same frames parsed and answered with a canned answer of the
    // gateway's size, no other work (ws-echo-server.ts --canned-answers).
    const cannedServer = await startChild(path.join(DIST, "bench/ws-echo-server.js"), ["--canned-answers"]);
    // A fresh gateway per protocol: with --fast-acks every client_order_id stays in memory, and a
    // gateway that had already taken the earlier protocols' ~200,000 orders charged the later
    // rows for its larger heap (v1.1 skip, measured last, came out slowest for that reason).
    const gateways = {} as Record<Protocol, { child: Child; broker: WebSocketBroker }>;
    for (const protocol of PROTOCOLS) {
      const child = await startGateway(
        gatewayArgs(path.join(dir, `fast-${PROTOCOLS.indexOf(protocol)}.jsonl`), ["--fast-acks"]),
      );
      const broker = brokerFor(child.port, {}, protocol);
      await broker.connect();
      gateways[protocol] = { child, broker };
    }
    const sequential = await interleavedLatency(
      [
        { pid: echo.process.pid, take: (count) => rawEchoLatency(echo.port, count) },
        { pid: cannedServer.process.pid, take: (count) => rawEchoLatency(cannedServer.port, count) },
        ...PROTOCOLS.map((protocol): SequentialTarget => ({
          pid: gateways[protocol].child.process.pid,
          take: (count) => placeLatency(gateways[protocol].broker, count),
        })),
      ],
      n,
      options.quick ? 4 : 10,
    );
    const [rawRun, cannedRun, ...protocolRuns] = sequential as [Interleaved, Interleaved, ...Interleaved[]];
    const raw = rawRun.summary;
    // This process's CPU per raw echo: what the WebSocketBroker's per-order CPU compares with.
    const rawClientCpuUs = rawRun.clientCpuUs;
    // The echo server's CPU per sequential message: what the gateway's per-order CPU compares with.
    const echoCpuUs = rawRun.serverCpuUs;
    const cannedPlace = cannedRun.summary;
    const cannedCpuUs = cannedRun.serverCpuUs;

    const rawRate = await rawPipelined(echo.port, window, seconds);
    const floor = summarize(await durableFloor(echo.port, dir, options.quick ? 500 : 2000));
    await echo.stop();
    const cannedFixed = await fixedLoadGatewayCpu(
      cannedServer.port,
      cannedServer.process.pid,
      "v1.1 skip",
      options.quick ? 20_000 : 100_000,
    );
    await cannedServer.stop();

    const fastRuns: Record<
      Protocol,
      {
        place: ReturnType<typeof summarize>;
        /** Gateway CPU µs per sequential order. */
        placeCpuUs: number;
        /** This process's (the client's) CPU µs per sequential order. */
        clientPlaceCpuUs: number;
        pipelined: Pipelined;
        fixed: { rate: number; gatewayCpuUs: number };
      }
    > = Object.create(null);
    for (const [i, protocol] of PROTOCOLS.entries()) {
      const { child, broker } = gateways[protocol];
      const run = protocolRuns[i] as Interleaved;
      const pipelined = await measurePipelined(broker, child.process.pid, window, seconds);
      await broker.close();
      const fixed = await fixedLoadGatewayCpu(
        child.port,
        child.process.pid,
        protocol,
        options.quick ? 20_000 : 100_000,
      );
      await child.stop();
      fastRuns[protocol] = {
        place: run.summary,
        placeCpuUs: run.serverCpuUs,
        clientPlaceCpuUs: run.clientCpuUs,
        pipelined,
        fixed,
      };
    }

    const durable = await startGateway(gatewayArgs(path.join(dir, "durable.jsonl")));
    const durableBroker = brokerFor(durable.port);
    await durableBroker.connect();
    await placeLatency(durableBroker, 200);
    const placeDurable = summarize(await placeLatency(durableBroker, options.quick ? 500 : 2000));
    const durableRun = await measurePipelined(durableBroker, durable.process.pid, window, seconds);
    await durableBroker.close();
    await durable.stop();

    const reconnect = await reconnectTimes(dir, options.quick ? 3 : 10);
    const rc = summarize(reconnect.samples);
    return [
      "### WebSocket order entry (client in this process, server in a child process, 127.0.0.1)",
      "",
      row(["what", "p50 µs", "p99 µs", "p50 ratio", "p99 ratio", "target"]),
      row(["---", "---:", "---:", "---:", "---:", "---"]),
      row([
        `raw ws echo of a ${orderFrame(0).length}-byte frame (baseline)`,
        fmt(raw.p50, 1),
        fmt(raw.p99, 1),
        "1.00",
        "1.00",
        "—",
      ]),
      ...PROTOCOLS.map((protocol) => {
        const { place } = fastRuns[protocol];
        return row([
          `place → ack, WebSocketBroker + gateway, acks from memory, ${protocol}`,
          fmt(place.p50, 1),
          fmt(place.p99, 1),
          fmt(place.p50 / raw.p50),
          fmt(place.p99 / raw.p99),
          "p50 ≤ 1.5×, p99 ≤ 2×",
        ]);
      }),
      row([
        "floor: a canned v1.1 skip answer to each order frame (no gateway work)",
        fmt(cannedPlace.p50, 1),
        fmt(cannedPlace.p99, 1),
        fmt(cannedPlace.p50 / raw.p50),
        fmt(cannedPlace.p99 / raw.p99),
        "—",
      ]),
      row([
        "place → ack, durable acks (journal fsync before the answer), v1.1 skip",
        fmt(placeDurable.p50, 1),
        fmt(placeDurable.p99, 1),
        fmt(placeDurable.p50 / raw.p50),
        fmt(placeDurable.p99 / raw.p99),
        "p50 ≤ 3×",
      ]),
      ...floorRows(raw, floor, placeDurable),
      "",
      "Gateway CPU per sequential order (the place → ack rows above, acks from memory): " +
        PROTOCOLS.map((protocol) => `${protocol} ${fmt(fastRuns[protocol].placeCpuUs, 1)} µs`).join(", ") +
        `; the echo server's per sequential message: ${fmt(echoCpuUs, 1)} µs; the canned-answer floor's: ${fmt(cannedCpuUs, 1)} µs.`,
      "",
      "Client CPU per sequential order (this process, the same rows; user + system, so the kernel's loopback send is in it): " +
        PROTOCOLS.map(
          (protocol) =>
            `${protocol} ${fmt(fastRuns[protocol].clientPlaceCpuUs, 1)} µs (${fmt(fastRuns[protocol].clientPlaceCpuUs / rawClientCpuUs)}× the raw echo client's)`,
        ).join(", ") +
        `; the raw echo client's per message: ${fmt(rawClientCpuUs, 1)} µs.`,
      "",
      row([
        "pipelined, one connection, window " + window,
        "per second",
        "ratio to raw",
        "client CPU µs/order",
        "gateway CPU µs/order",
        "target",
      ]),
      row(["---", "---:", "---:", "---:", "---:", "---"]),
      row(["raw ws echo messages (baseline)", fmt(rawRate, 0), "1.00", "—", "—", "—"]),
      ...PROTOCOLS.map((protocol) => {
        const { pipelined } = fastRuns[protocol];
        return row([
          `orders acknowledged, acks from memory, ${protocol}`,
          fmt(pipelined.rate, 0),
          fmt(pipelined.rate / rawRate),
          fmt(pipelined.clientCpuUs, 1),
          fmt(pipelined.gatewayCpuUs, 1),
          "≥ 0.50 and ≥ 50,000/s",
        ]);
      }),
      ...PROTOCOLS.map((protocol) => {
        const { fixed } = fastRuns[protocol];
        return row([
          `fixed load: bare client, 3 frames of 100 orders in flight, ${protocol}`,
          fmt(fixed.rate, 0),
          fmt(fixed.rate / rawRate),
          "—",
          fmt(fixed.gatewayCpuUs, 1),
          "gateway CPU ≲ 18 µs",
        ]);
      }),
      row([
        "floor: the same fixed load answered with canned v1.1 skip answers (no gateway work)",
        fmt(cannedFixed.rate, 0),
        fmt(cannedFixed.rate / rawRate),
        "—",
        fmt(cannedFixed.gatewayCpuUs, 1),
        "—",
      ]),
      row([
        "orders acknowledged, durable acks, v1.1 skip",
        fmt(durableRun.rate, 0),
        fmt(durableRun.rate / rawRate),
        fmt(durableRun.clientCpuUs, 1),
        fmt(durableRun.gatewayCpuUs, 1),
        "—",
      ]),
      "",
      `Reconnect after SIGKILL and restart of the gateway, from its "listening" line to the client connected (auth + resume included), ${rc.n} cycles: ` +
        `p50 ${fmt(rc.p50, 1)} ms, max ${fmt(rc.max, 1)} ms, with the backoff capped at ${reconnect.backoffCapMs} ms (target: p50 < 300 ms beyond the backoff delay).`,
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
