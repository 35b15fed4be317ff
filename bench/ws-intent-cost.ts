import fs, { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../lib/brokers/paper-broker";
import { WebSocketBroker } from "../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../lib/brokers/websocket-settings";
import { websocketStoryFile } from "../lib/brokers/websocket-story-file";
import { Gateway } from "../lib/gateway/gateway";
import { fmt, row } from "./stats";

/**
 * What the intent mark costs (websocket-intent-file.ts): order events per second through a
 * WebSocket broker with a story file (mark on disk before each batch is reported) against the same
 * broker without one (no mark, no story), on one gateway and paper account, in the same run. The
 * sides take turns, one connected at a time, a burst of orders each (two events per order: placed
 * and filled); the figure is the ratio of the median rates. Also how many events shared a write.
 */
const KEY = "bench-key";
const SECRET = "bench-secret";

interface Side {
  name: string;
  /** One order at a time: µs from placing it to its fill event reaching the listener. */
  latencies: number[];
  storyFile: string | undefined;
  rates: number[];
  writes: number;
  events: number;
}

async function burst(
  paper: PaperBroker,
  url: string,
  side: Side,
  orders: number,
  trickle: number,
): Promise<void> {
  const broker = new WebSocketBroker(
    WebSocketSettings.parse({
      url,
      api_key: KEY,
      api_secret: SECRET,
      rate_limit: { per_second: 1e6, burst: 1e6 },
    }),
    side.storyFile === undefined ? {} : { storyFile: side.storyFile },
  );
  broker.on("error", () => undefined);
  await broker.connect();
  // A trickle first: one order at a time, each event waits for its own mark.
  for (let i = 0; i < trickle; i++) {
    const at = process.hrtime.bigint();
    const filled = new Promise<void>((resolve) => {
      const listener = (event: { type: string }): void => {
        if (event.type !== "ORDER_FILLED") return;
        broker.off("order", listener);
        resolve();
      };
      broker.on("order", listener);
    });
    await paper.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
    await filled;
    side.latencies.push(Number(process.hrtime.bigint() - at) / 1e3);
  }
  const target = paper.lastSeq + orders * 2;
  let seen = 0;
  const done = new Promise<void>((resolve) =>
    broker.on("order", (event) => {
      seen += 1;
      if (event.seq >= target) resolve();
    }),
  );
  const start = process.hrtime.bigint();
  for (let i = 0; i < orders; i += 200) {
    const chunk: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(orders, i + 200); j++) {
      chunk.push(paper.placeOrder({ symbol: "INFY", side: j % 2 === 0 ? "BUY" : "SELL", quantity: 1 }));
    }
    await Promise.all(chunk);
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  side.rates.push(seen / seconds);
  side.events += seen;
  await broker.close();
}

export async function runIntentBench(opts: { quick: boolean }): Promise<string[]> {
  const rounds = opts.quick ? 2 : 7;
  const orders = opts.quick ? 2_000 : 20_000;
  const trickle = opts.quick ? 20 : 100;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-intent-"));
  const paper = new PaperBroker({
    volatility: 0,
    spread_bps: 0,
    slippage_bps: 0,
    starting_cash: 1e13,
    retention: 10_000,
  });
  await paper.connect();
  paper.setPrice("INFY", 100);
  const gateway = await Gateway.start({
    credentials: new Map([[KEY, { secret: SECRET }]]),
    broker: paper,
    port: 0,
    host: "127.0.0.1",
  });
  const url = `ws://127.0.0.1:${gateway.port}/v1`;
  const withMark: Side = {
    name: "story file (intent mark, fdatasync per batch)",
    storyFile: websocketStoryFile(dir, "bench", url),
    rates: [],
    latencies: [],
    writes: 0,
    events: 0,
  };
  const without: Side = {
    name: "no story file (no mark)",
    storyFile: undefined,
    rates: [],
    latencies: [],
    writes: 0,
    events: 0,
  };
  const syncs = await countDatasyncs(dir);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const side of round % 2 === 0 ? [withMark, without] : [without, withMark]) {
        const before = syncs.count;
        await burst(paper, url, side, orders, trickle);
        side.writes += syncs.count - before;
      }
    }
  } finally {
    syncs.restore();
    await gateway.close();
    await paper.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const pct = (values: number[], q: number): number =>
    [...values].sort((x, y) => x - y)[Math.min(values.length - 1, Math.floor(values.length * q))]!;
  const median = (values: number[]): number =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const a = median(withMark.rates);
  const b = median(without.rates);
  return [
    `## WebSocket intent mark: order events/s through the broker (${rounds} rounds × ${orders} orders, ${os.tmpdir()})`,
    "",
    row([
      "side",
      "burst events/s (median)",
      "one order: place → fill event p50 µs",
      "p99 µs",
      "datasyncs",
      "events per datasync",
    ]),
    row(["---", "---", "---", "---", "---", "---"]),
    row([
      without.name,
      fmt(b),
      fmt(pct(without.latencies, 0.5), 0),
      fmt(pct(without.latencies, 0.99), 0),
      "0",
      "-",
    ]),
    row([
      withMark.name,
      fmt(a),
      fmt(pct(withMark.latencies, 0.5), 0),
      fmt(pct(withMark.latencies, 0.99), 0),
      String(withMark.writes),
      fmt(withMark.events / Math.max(1, withMark.writes)),
    ]),
    "",
    `burst ratio with/without: ${(a / b).toFixed(2)}; one-order latency p50 ratio: ${(pct(withMark.latencies, 0.5) / pct(without.latencies, 0.5)).toFixed(2)}`,
  ];
}

/** Counts FileHandle.datasync calls (the intent mark's one sync per write; the story uses sync). */
async function countDatasyncs(dir: string): Promise<{ count: number; restore: () => void }> {
  const handle = await fsp.open(path.join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(handle) as { datasync: () => Promise<void> };
  await handle.close();
  const original = proto.datasync;
  const counter = { count: 0, restore: () => void (proto.datasync = original) };
  proto.datasync = function (this: unknown): Promise<void> {
    counter.count += 1;
    return original.call(this);
  };
  return counter;
}

if (require.main === module) {
  runIntentBench({ quick: process.argv.includes("--quick") }).then(
    (lines) => console.log(lines.join("\n")),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
