import { OrderRequest } from "../lib/protocol";
import { MarketModel } from "../lib/market";
import { fmt, row } from "./stats";

/**
 * `node dist/bench/market-model.js [--quick]`: what the market model adds per order, as a ratio to
 * the zod parse of the same order that the paper broker already does on every placement (measured
 * in the same run). The paper broker's budget is 5 µs per order (200,000 orders/s); each row also
 * prints ns/op so the share of that budget can be read off.
 */
function opsPerSecond(iterations: number, body: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 20_000); i++) if (body(i) !== undefined) sink++; // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (body(i) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start);
  if (sink < 0) console.log(sink);
  return (iterations * 1e9) / ns;
}

export function runMarketBench(options: { quick?: boolean } = {}): string[] {
  const n = options.quick === true ? 50_000 : 1_000_000;
  const nse = new MarketModel({ preset: "nse" });
  const monday = Date.parse("2026-12-07T10:00:00+05:30");
  const infy = nse.instruments.get("NSE", "INFY")!;
  const order = {
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 10,
    order_type: "LIMIT",
    price: 1500.05,
    product: "MIS",
    validity: "DAY",
  };
  const admitOrder = {
    exchange: "NSE" as const,
    symbol: "INFY",
    side: "BUY" as const,
    product: "MIS" as const,
    quantity: 10,
    price: 1500.05,
  };
  const quote = { last_price: 1500, bid: 1499.95, ask: 1500.05, bid_size: 500, ask_size: 500 };

  const baseline = opsPerSecond(
    n,
    (i) => OrderRequest.safeParse({ ...order, quantity: 1 + (i % 50) }).success,
  );
  const cases: [string, (i: number) => unknown][] = [
    [
      "admit (instrument rules + session)",
      (i) => nse.admit({ ...admitOrder, quantity: 1 + (i % 50) }, monday + i),
    ],
    [
      "fillCharges (one fill of an order)",
      (i) => nse.fillCharges(infy, "MIS", "SELL", i * 1000, 15_000_000 + i),
    ],
    [
      "liquidity: new quote + one MARKET take",
      (i) => nse.liquidity(quote, infy).take({ side: "BUY", order_type: "MARKET", quantity: 1 + (i % 700) }),
    ],
    [
      "margin (MIS short)",
      (i) =>
        nse.margin({
          side: "SELL",
          product: "MIS",
          segment: "EQ",
          quantity: 1 + (i % 50),
          price_paise: 150_005,
          position_quantity: 0,
        }),
    ],
  ];
  const lines = [
    `## market model, ${n} operations each (baseline: OrderRequest.safeParse, ${fmt(baseline / 1000, 0)}k/s, ${fmt(1e9 / baseline, 0)} ns/op)`,
    "",
    row(["operation", "ops/s", "ns/op", "cost vs the baseline parse"]),
    row(["---", "---", "---", "---"]),
  ];
  for (const [name, body] of cases) {
    const rate = opsPerSecond(n, body);
    lines.push(row([name, `${fmt(rate / 1000, 0)}k`, fmt(1e9 / rate, 0), `${fmt(baseline / rate, 2)}×`]));
  }
  return lines;
}

if (require.main === module)
  console.log(runMarketBench({ quick: process.argv.includes("--quick") }).join("\n"));
