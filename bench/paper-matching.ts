import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../lib/brokers/paper-broker";
import type { OrderState } from "../lib/paper/account-state";
import { writeRecord } from "../lib/paper/compact-record";
import { Journal } from "../lib/paper/journal";
import { OrderRequest } from "../lib/protocol";
import { memoryGrowth } from "./paper-memory";
import { fmt, row } from "./stats";

/**
 * Paper broker throughput in-process: MARKET orders that fill at once, and LIMIT orders that rest
 * and are then filled by quotes. The baseline is validating the same requests with zod alone, so
 * the ratio says how much the engine (matching, positions, events, journal) costs on top of it.
 */
/** Orders per wall-clock second, and per second of this process's CPU (main and GC threads). */
interface Rate {
  wall: number;
  cpu: number;
}

/**
 * Starts a clock for both. The machines are shared: other processes' load stretches the wall
 * time of a run but hardly its CPU time, so the CPU rate is the one that compares between runs.
 */
function startTimer(): (count: number) => Rate {
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  return (count) => {
    const used = process.cpuUsage(cpu);
    return {
      wall: count / (Number(process.hrtime.bigint() - wall) / 1e9),
      cpu: count / ((used.user + used.system) / 1e6),
    };
  };
}

/**
 * MARKET orders that fill at once, `window` at a time. With a journal an order is answered only once
 * its record is fsync'd, so one at a time measures the disk; a window of many lets them share writes.
 */
async function marketOrders(count: number, journalFile?: string, window = 1): Promise<Rate> {
  const broker = new PaperBroker(
    { volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e12, retention: 10_000 },
    journalFile === undefined ? {} : { journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  let events = 0;
  broker.on("order", () => (events += 1));
  const stop = startTimer();
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
  const rate = stop(count);
  await broker.close();
  if (events !== count * 2) throw new Error(`expected ${count * 2} events, saw ${events}`);
  return rate;
}

/**
 * MARKET orders that fill at once, `window` kept in flight all along: a new order is placed as each
 * answer arrives, where marketOrders() waits for a whole window before placing the next one (so
 * between windows nothing is in flight, and on average about half the window is).
 */
async function slidingOrders(count: number, journalFile: string, window: number): Promise<Rate> {
  const broker = new PaperBroker(
    { volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e12, retention: 10_000 },
    { journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  let events = 0;
  broker.on("order", () => (events += 1));
  const stop = startTimer();
  await new Promise<void>((resolve, reject) => {
    let placed = 0;
    let answered = 0;
    const place = (): void => {
      const k = placed++;
      broker
        .placeOrder({ symbol: "INFY", side: k % 2 === 0 ? "BUY" : "SELL", quantity: 1 })
        .then(answer, reject);
    };
    const answer = (): void => {
      answered += 1;
      if (placed < count) place();
      else if (answered === count) resolve();
    };
    for (let i = 0; i < Math.min(window, count); i += 1) place();
  });
  const rate = stop(count);
  await broker.close();
  if (events !== count * 2) throw new Error(`expected ${count * 2} events, saw ${events}`);
  return rate;
}

async function restingThenFilled(count: number): Promise<Rate> {
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
  const stop = startTimer();
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
  const rate = stop(count);
  await broker.close();
  if (filled !== count) throw new Error(`expected ${count} fills, saw ${filled}`);
  return rate;
}

/**
 * The journal on its own: the record a filled MARKET order writes, appended `count` times and made
 * durable every `window` appends. What the broker's journaled rate could reach if nothing else cost.
 */
async function journalOnly(count: number, file: string, window: number): Promise<Rate> {
  const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
  const now = new Date().toISOString();
  const stop = startTimer();
  for (let i = 0; i < count; i += 1) {
    const orderId = `P${String(i + 1).padStart(9, "0")}`;
    const order: OrderState = {
      order_id: orderId,
      client_order_id: `66cdf0dd18${orderId}`,
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
    };
    const position = {
      symbol: "INFY",
      exchange: "NSE",
      product: "MIS",
      quantity: i % 2,
      cost: 0,
      realized: 0,
    } as const;
    // The record the broker writes for it (format 3: the order whole, the position, the ended id),
    // written as the broker writes it: straight into the journal's pending bytes.
    writeRecord(
      journal.beginRecord(),
      now,
      { seq: 2 * i + 2, cash: 99_999_999_990_000, nextOrder: i + 2, nextGtt: 1 },
      [order],
      [order],
      [position],
      [orderId],
      undefined,
    );
    journal.endRecord();
    if ((i + 1) % window === 0) await journal.flush();
  }
  await journal.flush();
  const rate = stop(count);
  await journal.close();
  return rate;
}

function validationOnly(count: number): Rate {
  const stop = startTimer();
  for (let i = 0; i < count; i += 1) {
    OrderRequest.parse({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
  }
  return stop(count);
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
    const slidingLarge = await slidingOrders(n, path.join(dir, "e.jsonl"), 10_000);
    const slidingSmall = await slidingOrders(n, path.join(dir, "f.jsonl"), 1_000);
    const journalAlone = await journalOnly(n, path.join(dir, "d.jsonl"), 10_000);
    const resting = await restingThenFilled(n / 4);
    const mem = await memoryGrowth(options.quick ? 100_000 : 1_000_000, path.join(dir, "m.jsonl"));
    const growthMb = (mem.after.rss - mem.before.rss) / 1024 / 1024;
    const line = (what: string, rate: Rate, target: string) =>
      row([
        what,
        fmt(rate.wall, 0),
        fmt(rate.cpu, 0),
        fmt(rate.wall / baseline.wall),
        fmt(rate.cpu / baseline.cpu),
        target,
      ]);
    return [
      "### Paper broker matching (in-process, one core)",
      "",
      row([
        "what",
        "orders/s",
        "orders per CPU-second",
        "vs zod alone (wall)",
        "vs zod alone (CPU)",
        "target",
      ]),
      row(["---", "---:", "---:", "---:", "---:", "---"]),
      line("zod validation of the request only (baseline)", baseline, "—"),
      line("MARKET orders, filled at once, no journal", memory, "≥ 200,000/s"),
      line("MARKET orders, journal on, one at a time (each answered after its fsync)", durableOneByOne, "—"),
      line("MARKET orders, journal on, 10,000 in flight (answers share fsyncs)", journaled, "≥ 200,000/s"),
      line("MARKET orders, journal on, 1,000 in flight", journaledSmallWindow, "—"),
      line(
        "MARKET orders, journal on, 10,000 kept in flight (a new one placed as each answer arrives)",
        slidingLarge,
        "—",
      ),
      line("MARKET orders, journal on, 1,000 kept in flight", slidingSmall, "—"),
      line("the journal alone: those orders' records appended, fsync'd every 10,000", journalAlone, "—"),
      line("LIMIT orders resting, then filled by one quote", resting, "—"),
      "",
      `Journal on, 10,000 in flight = ${fmt(journaled.wall / memory.wall)} × the rate without it by the wall clock, ` +
        `${fmt(journaled.cpu / memory.cpu)} × by CPU time (same run). CPU time counts this process only, so it ` +
        "moves less than the wall clock when other processes share the machine.",
      "",
      `Memory: RSS ${fmt(mem.before.rss / 1048576, 1)} MB → ${fmt(mem.after.rss / 1048576, 1)} MB over ${options.quick ? "100,000" : "1,000,000"} journaled orders ` +
        `(growth ${fmt(growthMb, 1)} MB, target < 10 MB); journal file ${fmt(mem.fileBytes / 1048576, 1)} MB after compaction.` +
        ((globalThis as { gc?: unknown }).gc === undefined
          ? " (run with --expose-gc for a steadier figure)"
          : ""),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
