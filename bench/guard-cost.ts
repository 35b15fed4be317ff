import { PaperBroker } from "../lib/brokers/paper-broker";
import type { BrokerInterface } from "../lib/brokers/interface";
import { guardBroker } from "../lib/risk/guard";
import type { RiskSettingsInput } from "../lib/risk/settings";
import { fmt, row } from "./stats";

/**
 * What the risk guard costs per order on the paper broker: the same MARKET orders (alternating
 * BUY and SELL, so the position stays inside the limits) through the bare broker and through a
 * guard with every per-order limit switched on. Both sides take turns in small blocks within each
 * round, so drift hits both alike; the ratio of the medians is the figure (target: at most 1.2×).
 */
const LIMITS: RiskSettingsInput = {
  max_order_quantity: 1000,
  max_order_value: 1e9,
  max_position_quantity: 1000,
  max_position_value: 1e12,
  max_open_orders: 1000,
  max_orders_per_second: 1e9,
  max_orders_per_minute: 1e9,
  price_band_pct: 10,
  allowed_symbols: ["INFY", "TCS"],
  max_daily_loss: 1e12,
};

interface Side {
  broker: BrokerInterface;
  paper: PaperBroker;
  events: number;
  placed: number;
  nanos: bigint;
  /** CPU time (user + system, all of the process's threads, GC included) in µs. */
  cpu: number;
}

async function open(guarded: boolean): Promise<Side> {
  const paper = new PaperBroker({
    volatility: 0,
    spread_bps: 0,
    slippage_bps: 0,
    starting_cash: 1e13,
    retention: 10_000,
  });
  const broker: BrokerInterface = guarded ? guardBroker(paper, { settings: LIMITS }) : paper;
  await broker.connect();
  // Subscribed, so the guard sees the last price it values orders at.
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 100);
  const side: Side = { broker, paper, events: 0, placed: 0, nanos: 0n, cpu: 0 };
  broker.on("order", () => (side.events += 1));
  return side;
}

/** Places `count` orders on one side and adds the time they took to its total. */
async function block(side: Side, count: number): Promise<void> {
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < count; i += 1) {
    await side.broker.placeOrder({
      symbol: "INFY",
      side: side.placed % 2 === 0 ? "BUY" : "SELL",
      quantity: 1,
    });
    side.placed += 1;
  }
  side.nanos += process.hrtime.bigint() - start;
  const cpu = process.cpuUsage(cpuStart);
  side.cpu += cpu.user + cpu.system;
}

/**
 * One round: both brokers live side by side and take turns in blocks of BLOCK orders, so a burst
 * of load from elsewhere on the machine lands on both alike (whole runs in turn left a run of a
 * second or so to whichever side the burst happened to hit). Returns µs per order for each.
 */
async function round(
  count: number,
): Promise<{ bare: number; guarded: number; bareCpu: number; guardedCpu: number }> {
  const bare = await open(false);
  const guarded = await open(true);
  for (let done = 0; done < count; done += BLOCK) {
    // Which side goes first alternates too, so neither always follows the other's garbage.
    const first = (done / BLOCK) % 2 === 0 ? bare : guarded;
    await block(first, BLOCK);
    await block(first === bare ? guarded : bare, BLOCK);
  }
  for (const side of [bare, guarded]) {
    await side.broker.close();
    if (side.events !== side.placed * 2)
      throw new Error(`expected ${side.placed * 2} events, saw ${side.events}`);
  }
  return {
    bare: Number(bare.nanos) / 1e3 / bare.placed,
    guarded: Number(guarded.nanos) / 1e3 / guarded.placed,
    bareCpu: bare.cpu / bare.placed,
    guardedCpu: guarded.cpu / guarded.placed,
  };
}

const BLOCK = 500;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function runGuardBench(options: { quick: boolean }): Promise<string[]> {
  const count = options.quick ? 5_000 : 50_000;
  const rounds = options.quick ? 3 : 7;
  await round(count / 5);
  const bare: number[] = [];
  const guarded: number[] = [];
  const bareCpu: number[] = [];
  const guardedCpu: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const result = await round(count);
    bare.push(result.bare);
    guarded.push(result.guarded);
    bareCpu.push(result.bareCpu);
    guardedCpu.push(result.guardedCpu);
  }
  const b = median(bare);
  const g = median(guarded);
  const bc = median(bareCpu);
  const gc = median(guardedCpu);
  return [
    `## Risk guard cost per order (paper broker, ${count} MARKET orders each side × ${rounds} rounds, interleaved in blocks of ${BLOCK}, medians)`,
    "",
    row(["what", "orders/s", "µs/order", "ratio to unguarded (time per order)"]),
    row(["---", "---", "---", "---"]),
    row(["paper broker, unguarded", fmt(1e6 / b, 0), fmt(b), "1.00×"]),
    row([
      "paper broker behind the risk guard (every limit on)",
      fmt(1e6 / g, 0),
      fmt(g),
      `${fmt(g / b)}× (target ≤ 1.2×)`,
    ]),
    "",
    // The same blocks timed in CPU time: on a shared machine the wall clock also counts the time
    // the process waited for a core, which lands on either side at random.
    row(["what", "CPU µs/order", "ratio to unguarded (CPU time per order)"]),
    row(["---", "---", "---"]),
    row(["paper broker, unguarded", fmt(bc), "1.00×"]),
    row(["paper broker behind the risk guard (every limit on)", fmt(gc), `${fmt(gc / bc)}× (target ≤ 1.2×)`]),
  ];
}
