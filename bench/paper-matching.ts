import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../lib/brokers/paper-broker";
import { Journal } from "../lib/paper/journal";
import { OrderRequest } from "../lib/protocol";
import { fmt, row } from "./stats";

/**
 * Paper broker throughput in-process: MARKET orders that fill at once, and LIMIT orders that rest
 * and are then filled by quotes. The baseline is validating the same requests with zod alone, so
 * the ratio says how much the engine (matching, positions, events, journal) costs on top of it.
 */
/**
 * MARKET orders that fill at once, `window` at a time. With a journal an order is answered only once
 * its record is fsync'd, so one at a time measures the disk; a window of many lets them share writes.
 */
async function marketOrders(count: number, journalFile?: string, window = 1): Promise<number> {
  const broker = new PaperBroker(
    { volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e12, retention: 10_000 },
    journalFile === undefined ? {} : { journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  let events = 0;
  broker.on("order", () => (events += 1));
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += window) {
    if (window === 1) {
      await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
      continue;
    }
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(count, i + window); k += 1) {
      batch.push(broker.placeOrder({ symbol: "INFY", side: k % 2 === 0 ? "BUY" : "SELL", quantity: 1 }));
    }
    await Promise.all(batch);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await broker.close();
  if (events !== count * 2) throw new Error(`expected ${count * 2} events, saw ${events}`);
  return count / seconds;
}

async function restingThenFilled(count: number): Promise<number> {
  const broker = new PaperBroker({
    volatility: 0,
    spread_bps: 0,
    slippage_bps: 0,
    starting_cash: 1e12,
    retention: count,
  });
  await broker.connect();
  broker.setPrice("INFY", 100);
  let filled = 0;
  broker.on("order", (e) => e.type === "ORDER_FILLED" && (filled += 1));
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 99 - (i % 50) * 0.01,
    });
  }
  broker.setPrice("INFY", 98);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await broker.close();
  if (filled !== count) throw new Error(`expected ${count} fills, saw ${filled}`);
  return count / seconds;
}

/**
 * The journal on its own: the record a filled MARKET order writes, appended `count` times and made
 * durable every `window` appends. What the broker's journaled rate could reach if nothing else cost.
 */
async function journalOnly(count: number, file: string, window: number): Promise<number> {
  const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
  const now = new Date().toISOString();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    journal.append({
      version: 2,
      seq: 2 * i + 2,
      cash: 99_999_999_990_000,
      next_order: i + 2,
      next_gtt: 1,
      orders: [
        {
          order_id: `P${String(i + 1).padStart(9, "0")}`,
          client_order_id: `66cdf0dd18${String(i + 1).padStart(10, "0")}`,
          symbol: "INFY",
          exchange: "NSE",
          side: i % 2 === 0 ? "BUY" : "SELL",
          quantity: 1,
          order_type: "MARKET",
          product: "MIS",
          validity: "DAY",
          status: "FILLED",
          filled_quantity: 1,
          average_price: 100,
          placed_at: now,
          timestamp: now,
          reserved: 0,
          filled_value: 10_000,
          client_id_given: false,
        },
      ],
      positions: [{ symbol: "INFY", exchange: "NSE", product: "MIS", quantity: i % 2, cost: 0, realized: 0 }],
      ended: [`P${String(i + 1).padStart(9, "0")}`],
    });
    if ((i + 1) % window === 0) await journal.flush();
  }
  await journal.flush();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await journal.close();
  return count / seconds;
}

function validationOnly(count: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    OrderRequest.parse({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

export async function memoryGrowth(
  count: number,
  journalFile: string,
): Promise<{ before: number; after: number; heapBefore: number; heapAfter: number; fileBytes: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const broker = new PaperBroker(
    { volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e12, retention: 10_000 },
    { journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  // Warm up to the retention bound so the baseline already holds a full order book.
  const place = async (from: number, to: number) => {
    // Answers wait for the fsync, so orders go in windows of 1,000, as a busy flow or gateway sends them.
    for (let i = from; i < to; i += 1000) {
      const batch: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(to, i + 1000); k += 1) {
        batch.push(broker.placeOrder({ symbol: "INFY", side: k % 2 === 0 ? "BUY" : "SELL", quantity: 1 }));
      }
      await Promise.all(batch);
    }
  };
  await place(0, 20_000);
  await new Promise((r) => setTimeout(r, 200));
  gc?.();
  const before = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  await place(0, count);
  await new Promise((r) => setTimeout(r, 200));
  gc?.();
  const after = process.memoryUsage().rss;
  const heapAfter = process.memoryUsage().heapUsed;
  await broker.close();
  return { before, after, heapBefore, heapAfter, fileBytes: fs.statSync(journalFile).size };
}

export async function runPaperBench(options: { quick: boolean }): Promise<string[]> {
  const n = options.quick ? 20_000 : 200_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-bench-"));
  try {
    validationOnly(n / 10);
    await marketOrders(n / 10);
    const baseline = validationOnly(n);
    const memory = await marketOrders(n);
    const durableOneByOne = await marketOrders(options.quick ? 200 : 2000, path.join(dir, "a.jsonl"));
    const journaled = await marketOrders(n, path.join(dir, "b.jsonl"), 10_000);
    const journaledSmallWindow = await marketOrders(n, path.join(dir, "c.jsonl"), 1_000);
    const journalAlone = await journalOnly(n, path.join(dir, "d.jsonl"), 10_000);
    const resting = await restingThenFilled(n / 4);
    const mem = await memoryGrowth(options.quick ? 100_000 : 1_000_000, path.join(dir, "m.jsonl"));
    const growthMb = (mem.after - mem.before) / 1024 / 1024;
    return [
      "### Paper broker matching (in-process, one core)",
      "",
      row(["what", "orders/s", "vs zod validation alone (same run)", "target"]),
      row(["---", "---:", "---:", "---"]),
      row(["zod validation of the request only (baseline)", fmt(baseline, 0), "1.00", "—"]),
      row([
        "MARKET orders, filled at once, no journal",
        fmt(memory, 0),
        fmt(memory / baseline),
        "≥ 200,000/s",
      ]),
      row([
        "MARKET orders, journal on, one at a time (each answered after its fsync)",
        fmt(durableOneByOne, 0),
        fmt(durableOneByOne / baseline),
        "—",
      ]),
      row([
        "MARKET orders, journal on, 10,000 in flight (answers share fsyncs)",
        fmt(journaled, 0),
        fmt(journaled / baseline),
        "≥ 200,000/s",
      ]),
      row([
        "MARKET orders, journal on, 1,000 in flight",
        fmt(journaledSmallWindow, 0),
        fmt(journaledSmallWindow / baseline),
        "—",
      ]),
      row([
        "the journal alone: those orders' records appended, fsync'd every 10,000",
        fmt(journalAlone, 0),
        fmt(journalAlone / baseline),
        "—",
      ]),
      row(["LIMIT orders resting, then filled by one quote", fmt(resting, 0), fmt(resting / baseline), "—"]),
      "",
      `Journal on, 10,000 in flight = ${fmt(journaled / memory)} × the rate without it (same run).`,
      "",
      `Memory: RSS ${fmt(mem.before / 1048576, 1)} MB → ${fmt(mem.after / 1048576, 1)} MB over ${options.quick ? "100,000" : "1,000,000"} journaled orders ` +
        `(growth ${fmt(growthMb, 1)} MB, target < 10 MB); journal file ${fmt(mem.fileBytes / 1048576, 1)} MB after compaction.` +
        ((globalThis as { gc?: unknown }).gc === undefined
          ? " (run with --expose-gc for a steadier figure)"
          : ""),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The memory figure alone, in a fresh process, so earlier benchmarks' garbage does not blur it. */
export async function runMemoryBench(options: { quick: boolean }): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-memory-"));
  try {
    const count = options.quick ? 100_000 : 1_000_000;
    const mem = await memoryGrowth(count, path.join(dir, "m.jsonl"));
    return [
      "### Paper broker memory (fresh process)",
      "",
      `RSS ${fmt(mem.before / 1048576, 1)} MB after 20,000 warm-up orders → ${fmt(mem.after / 1048576, 1)} MB after ${count.toLocaleString("en-US")} more journaled orders ` +
        `(growth ${fmt((mem.after - mem.before) / 1048576, 1)} MB, target < 10 MB); V8 heap in use ${fmt(mem.heapBefore / 1048576, 1)} MB → ` +
        `${fmt(mem.heapAfter / 1048576, 1)} MB; journal ${fmt(mem.fileBytes / 1048576, 1)} MB.`,
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
