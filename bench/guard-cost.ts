import { PaperBroker } from "../lib/brokers/paper-broker";
import type { BrokerInterface } from "../lib/brokers/interface";
import { guardBroker } from "../lib/risk/guard";
import type { RiskSettingsInput } from "../lib/risk/settings";
import { fmt, row } from "./stats";

/**
 * What the risk guard costs per order on the paper broker: the same MARKET orders (alternating
 * BUY and SELL, so the position stays inside the limits) through the bare broker and through a
 * guard with every per-order limit switched on. Runs alternate A/B so drift hits both alike; the
 * ratio of medians is the figure (target: at most 1.2×).
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

async function ordersPerSecond(count: number, guarded: boolean): Promise<number> {
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
  let events = 0;
  broker.on("order", () => (events += 1));
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    await broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await broker.close();
  if (events !== count * 2) throw new Error(`expected ${count * 2} events, saw ${events}`);
  return count / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function runGuardBench(options: { quick: boolean }): Promise<string[]> {
  const count = options.quick ? 5_000 : 50_000;
  const rounds = options.quick ? 3 : 7;
  await ordersPerSecond(count / 5, false);
  await ordersPerSecond(count / 5, true);
  const bare: number[] = [];
  const guarded: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(await ordersPerSecond(count, false));
    guarded.push(await ordersPerSecond(count, true));
  }
  const b = median(bare);
  const g = median(guarded);
  return [
    `## Risk guard cost per order (paper broker, ${count} MARKET orders × ${rounds} alternating runs, medians)`,
    "",
    row(["what", "orders/s", "µs/order", "ratio to unguarded (time per order)"]),
    row(["---", "---", "---", "---"]),
    row(["paper broker, unguarded", fmt(b, 0), fmt(1e6 / b), "1.00×"]),
    row([
      "paper broker behind the risk guard (every limit on)",
      fmt(g, 0),
      fmt(1e6 / g),
      `${fmt(b / g)}× (target ≤ 1.2×)`,
    ]),
  ];
}
