import assert from "node:assert/strict";
import fc from "fast-check";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { OrderRequestInput } from "../../lib/protocol";
import { BrokerError, isTerminal } from "../../lib/protocol";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettings } from "../../lib/risk/settings";
import { RiskSettings as RiskSettingsSchema } from "../../lib/risk/settings";

const SYMBOLS = ["INFY", "TCS", "WIPRO"] as const;
type Sym = (typeof SYMBOLS)[number];

type Step =
  | { kind: "place"; symbol: Sym; side: "BUY" | "SELL"; quantity: number; limit: number | undefined }
  | { kind: "price"; symbol: Sym; move: number }
  | { kind: "tick"; ms: number }
  | { kind: "cancel"; pick: number }
  | { kind: "modify"; pick: number; quantity: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("place" as const),
      symbol: fc.constantFrom(...SYMBOLS),
      side: fc.constantFrom("BUY" as const, "SELL" as const),
      quantity: fc.integer({ min: 1, max: 25 }),
      // A LIMIT price as a factor of the last price (a fat finger now and then), or MARKET.
      limit: fc.option(fc.constantFrom(0.5, 0.9, 0.97, 0.99, 1, 1.01, 1.03, 1.1, 10), { nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("price" as const),
      symbol: fc.constantFrom(...SYMBOLS),
      move: fc.double({ min: -0.05, max: 0.05, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 1500 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("modify" as const),
      pick: fc.nat(),
      quantity: fc.integer({ min: 1, max: 25 }),
    }),
  },
);

const limits = fc
  .record(
    {
      max_order_quantity: fc.integer({ min: 1, max: 20 }),
      max_order_value: fc.integer({ min: 1000, max: 60_000 }),
      max_position_quantity: fc.integer({ min: 20, max: 60 }),
      max_position_value: fc.integer({ min: 60_000, max: 200_000 }),
      max_open_orders: fc.integer({ min: 1, max: 8 }),
      max_orders_per_second: fc.integer({ min: 1, max: 5 }),
      max_orders_per_minute: fc.integer({ min: 5, max: 40 }),
      price_band_pct: fc.constantFrom(1, 2, 5, 20),
      allowed_symbols: fc.constantFrom(["INFY", "TCS"], ["INFY"], ["NSE:TCS", "WIPRO"]),
    },
    { requiredKeys: [] },
  )
  .filter((s) => RiskSettingsSchema.safeParse(s).success)
  .map((s) => RiskSettingsSchema.parse(s));

interface Sent {
  at: number;
}

/** The account as the paper broker itself has it: worst-case position per symbol, open orders. */
async function truth(inner: PaperBroker) {
  const [positions, book] = await Promise.all([inner.getPositions(), inner.getOrderbook()]);
  const open = book.filter((o) => !isTerminal(o.status));
  const worst = new Map<string, { long: number; short: number }>();
  for (const symbol of SYMBOLS) {
    const net = positions.filter((p) => p.symbol === symbol).reduce((sum, p) => sum + p.quantity, 0);
    const rest = (side: string) =>
      open
        .filter((o) => o.symbol === symbol && o.side === side)
        .reduce((s, o) => s + o.quantity - o.filled_quantity, 0);
    worst.set(symbol, { long: net + rest("BUY"), short: net - rest("SELL") });
  }
  return { open: open.length, worst, book };
}

async function run(settings: RiskSettings, steps: readonly Step[]): Promise<void> {
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 4, 30));
  const inner = new PaperBroker({ seed: 3, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  let reached = 0;
  const place = inner.placeOrder.bind(inner);
  const modify = inner.modifyOrder.bind(inner);
  inner.placeOrder = (r) => {
    reached++;
    return place(r);
  };
  inner.modifyOrder = (id, c) => {
    reached++;
    return modify(id, c);
  };
  const broker = guardBroker(inner, { settings, clock, elapsed: clock });
  const last = new Map<Sym, number>([
    ["INFY", 1500],
    ["TCS", 3500],
    ["WIPRO", 300],
  ]);
  const sent: Sent[] = [];
  try {
    await broker.connect();
    await broker.subscribeQuotes([...SYMBOLS]);
    for (const [symbol, price] of last) inner.setPrice(symbol, price);
    for (const s of steps) {
      if (s.kind === "price") {
        const price = Math.round(last.get(s.symbol)! * (1 + s.move) * 100) / 100;
        last.set(s.symbol, price);
        inner.setPrice(s.symbol, price);
        continue;
      }
      if (s.kind === "tick") {
        clock.advance(s.ms);
        continue;
      }
      const before = reached;
      // The worst case before the request, for the position-value oracle (an order that brings it
      // nearer zero may pass although over the limit, so only growth is judged).
      const worstBefore = settings.max_position_value === undefined ? undefined : (await truth(inner)).worst;
      let target: { symbol: Sym; side: "BUY" | "SELL" } | undefined;
      let accepted = false;
      let request: OrderRequestInput | undefined;
      let modifiedTo: { quantity: number; price: number } | undefined;
      try {
        if (s.kind === "place") {
          const lp = last.get(s.symbol)!;
          request =
            s.limit === undefined
              ? { symbol: s.symbol, side: s.side, quantity: s.quantity }
              : {
                  symbol: s.symbol,
                  side: s.side,
                  quantity: s.quantity,
                  order_type: "LIMIT",
                  price: Math.round(lp * s.limit * 100) / 100,
                };
          target = { symbol: s.symbol, side: s.side };
          await broker.placeOrder(request);
          accepted = true;
        } else {
          const open = (await inner.getOrderbook()).filter((o) => !isTerminal(o.status));
          if (open.length === 0) continue;
          const order = open[s.pick % open.length]!;
          if (s.kind === "cancel") {
            await broker.cancelOrder(order.order_id);
            continue;
          }
          modifiedTo = { quantity: s.quantity, price: order.price ?? last.get(order.symbol as Sym)! };
          target = { symbol: order.symbol as Sym, side: order.side };
          await broker.modifyOrder(order.order_id, { quantity: s.quantity });
          accepted = true;
        }
      } catch (error) {
        assert.ok(error instanceof BrokerError, String(error));
        if (error.code === "RISK") {
          assert.equal(reached, before, `refused (${error.message}) yet it reached the broker`);
          continue;
        }
        // A broker's own answer (an order filled meanwhile, insufficient funds): it did reach it.
        continue;
      }
      if (!accepted) continue;
      sent.push({ at: clock.now() });
      const now = clock.now();
      const t = await truth(inner);
      const quantity = request?.quantity ?? modifiedTo!.quantity;
      if (settings.max_order_quantity !== undefined) assert.ok(quantity <= settings.max_order_quantity);
      if (request !== undefined) {
        const symbol = request.symbol as Sym;
        const lp = last.get(symbol)!;
        if (settings.max_order_value !== undefined) {
          assert.ok(quantity * (request.price ?? lp) <= settings.max_order_value + 1e-6, "order value");
        }
        if (settings.price_band_pct !== undefined && request.price !== undefined) {
          assert.ok(
            (Math.abs(request.price - lp) / lp) * 100 <= settings.price_band_pct + 1e-9,
            "price band",
          );
        }
        if (settings.allowed_symbols !== undefined) {
          assert.ok(
            settings.allowed_symbols.some((a) => a === symbol || a === `NSE:${symbol}`),
            "symbol",
          );
        }
      }
      if (settings.max_open_orders !== undefined)
        assert.ok(t.open <= settings.max_open_orders, "open orders");
      if (settings.max_position_quantity !== undefined) {
        for (const [symbol, w] of t.worst) {
          const worst = Math.max(Math.abs(w.long), Math.abs(w.short));
          assert.ok(worst <= settings.max_position_quantity, `${symbol} worst case ${worst}`);
        }
      }
      if (settings.max_position_value !== undefined && target !== undefined && worstBefore !== undefined) {
        // The side the order adds to: its worst case, valued at the last price, within the limit
        // whenever the order made it larger.
        const pick = (w: { long: number; short: number }): number =>
          Math.abs(target.side === "BUY" ? w.long : w.short);
        const grown = pick(t.worst.get(target.symbol)!);
        if (grown > pick(worstBefore.get(target.symbol)!)) {
          const value = grown * last.get(target.symbol)!;
          assert.ok(
            value <= settings.max_position_value + 1e-6,
            `${target.symbol} position value ${grown} × ${last.get(target.symbol)} = ${value} over ${settings.max_position_value}`,
          );
        }
      }
      if (settings.max_orders_per_second !== undefined) {
        assert.ok(sent.filter((x) => x.at > now - 1000).length <= settings.max_orders_per_second, "orders/s");
      }
      if (settings.max_orders_per_minute !== undefined) {
        assert.ok(
          sent.filter((x) => x.at > now - 60_000).length <= settings.max_orders_per_minute,
          "orders/min",
        );
      }
    }
  } finally {
    await broker.close();
  }
}

describe("RiskGuard: property", function () {
  this.timeout(120_000);

  it("accepts no order that breaches a limit and lets no refused order reach the broker", async function () {
    await fc.assert(
      fc.asyncProperty(limits, fc.array(step, { minLength: 10, maxLength: 60 }), (settings, steps) =>
        run(settings, steps),
      ),
      { numRuns: 150 },
    );
  });
});
