import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderSnapshot } from "../../lib/protocol";
import { isTerminal } from "../../lib/protocol/orders";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);
const SEED = Number(process.env.RISK_RACE_SEED ?? 20261205);

/** What the paper account itself holds: the oracle, never the guard's own figures. */
async function worstBuy(paper: PaperBroker, symbol: string): Promise<{ worst: number; open: number }> {
  const net = (await paper.getPositions())
    .filter((p) => p.symbol === symbol)
    .reduce((sum, p) => sum + p.quantity, 0);
  let buys = 0;
  let open = 0;
  for (const order of await paper.getOrderbook()) {
    if (isTerminal(order.status)) continue;
    open += 1;
    if (order.symbol === symbol && order.side === "BUY") buys += order.quantity - order.filled_quantity;
  }
  return { worst: net + buys, open };
}

async function rig(
  settings: RiskSettingsInput,
): Promise<{ paper: PaperBroker; broker: Guarded<PaperBroker> }> {
  const clock = new ManualClock(MONDAY_10_IST);
  const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  const broker = guardBroker(paper, { settings, clock, elapsed: clock });
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { paper, broker };
}

/** A resting BUY: far under the price, so it stays open and counts at its whole quantity. */
function resting(quantity: number): {
  symbol: string;
  side: "BUY";
  quantity: number;
  order_type: "LIMIT";
  price: number;
} {
  return { symbol: "INFY", side: "BUY", quantity, order_type: "LIMIT", price: 1400 };
}

describe(`RiskGuard under races (seed ${SEED}; RISK_RACE_SEED to replay)`, function () {
  const opened: PaperBroker[] = [];
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("modifies that enlarge, sent at once, never together pass max_position_quantity (20 rounds)", async function () {
    const random = seededRandom(SEED);
    for (let round = 0; round < 20; round++) {
      const limit = 100;
      const { paper, broker } = await rig({ max_position_quantity: limit });
      opened.push(paper);
      const count = 2 + Math.floor(random() * 5);
      const orders: OrderSnapshot[] = [];
      for (let i = 0; i < count; i++) orders.push(await broker.placeOrder(resting(5)));
      // Each enlargement alone fits; together they do not.
      const target = 5 + Math.floor(limit / 2) + Math.floor(random() * 20);
      const settled = await Promise.allSettled(
        orders.map((order) => broker.modifyOrder(order.order_id, { quantity: target })),
      );
      const { worst } = await worstBuy(paper, "INFY");
      assert.ok(
        worst <= limit,
        `seed ${SEED} round ${round}: ${count} modifies to ${target} left the account at ${worst} (limit ${limit}); ` +
          `${settled.filter((s) => s.status === "fulfilled").length} passed`,
      );
      for (const s of settled) {
        if (s.status === "rejected") assert.equal((s.reason as { code?: string }).code, "RISK");
      }
      await paper.close();
    }
  });

  it("places and enlarging modifies interleaved at once stay within max_position_quantity (20 rounds)", async function () {
    const random = seededRandom(SEED + 1);
    for (let round = 0; round < 20; round++) {
      const limit = 60 + Math.floor(random() * 60);
      const { paper, broker } = await rig({ max_position_quantity: limit });
      opened.push(paper);
      const first = await broker.placeOrder(resting(10));
      const second = await broker.placeOrder(resting(10));
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 12; i++) {
        const pick = random();
        if (pick < 0.4) work.push(broker.placeOrder(resting(1 + Math.floor(random() * 30))));
        else {
          const order = pick < 0.7 ? first : second;
          work.push(broker.modifyOrder(order.order_id, { quantity: 10 + Math.floor(random() * limit) }));
        }
      }
      await Promise.allSettled(work);
      const { worst } = await worstBuy(paper, "INFY");
      assert.ok(
        worst <= limit,
        `seed ${SEED + 1} round ${round}: the account reached ${worst} (limit ${limit})`,
      );
      await paper.close();
    }
  });

  it("an enlarging modify refused by the broker gives its room back", async function () {
    const { paper, broker } = await rig({ max_position_quantity: 100 });
    opened.push(paper);
    const order = await broker.placeOrder(resting(10));
    await broker.cancelOrder(order.order_id);
    // The broker refuses the modify (the order is cancelled): the 80 it would have added is free again.
    await assert.rejects(broker.modifyOrder(order.order_id, { quantity: 90 }));
    const again = await broker.placeOrder(resting(100));
    assert.equal(again.quantity, 100);
  });

  it("many places at once stay within position, value, open-order and rate limits (30 rounds)", async function () {
    const random = seededRandom(SEED + 2);
    for (let round = 0; round < 30; round++) {
      const settings = {
        max_position_quantity: 50 + Math.floor(random() * 100),
        max_position_value: 1500 * (40 + Math.floor(random() * 100)),
        max_open_orders: 3 + Math.floor(random() * 10),
        max_orders_per_second: 5 + Math.floor(random() * 10),
      };
      const { paper, broker } = await rig(settings);
      opened.push(paper);
      const sizes = Array.from({ length: 40 }, () => 1 + Math.floor(random() * 25));
      const settled = await Promise.allSettled(sizes.map((q) => broker.placeOrder(resting(q))));
      const passed = settled.filter((s) => s.status === "fulfilled").length;
      const { worst, open } = await worstBuy(paper, "INFY");
      const why = `seed ${SEED + 2} round ${round} ${JSON.stringify(settings)}: worst ${worst}, open ${open}, passed ${passed}`;
      assert.ok(worst <= settings.max_position_quantity, why);
      assert.ok(
        worst * 1400 <= settings.max_position_value || worst * 1500 <= settings.max_position_value,
        why,
      );
      assert.ok(open <= settings.max_open_orders, why);
      assert.ok(passed <= settings.max_orders_per_second, why);
      for (const s of settled) {
        if (s.status === "rejected") assert.equal((s.reason as { code?: string }).code, "RISK", why);
      }
      await paper.close();
    }
  });

  it("each refusal is one RISK error naming its limit and one ORDER_DENIED with the same words; each state change one RISK_STATE_CHANGED (10 rounds)", async function () {
    const random = seededRandom(SEED + 3);
    for (let round = 0; round < 10; round++) {
      const { paper, broker } = await rig({
        max_order_quantity: 20,
        max_position_quantity: 60,
        max_open_orders: 5,
        max_orders_per_second: 8,
        allowed_symbols: ["INFY"],
      });
      opened.push(paper);
      const events: { type: string; message?: string; limit?: string }[] = [];
      broker.risk.on("event", (event) => events.push(event));
      const requests = Array.from({ length: 30 }, () => ({
        ...resting(1 + Math.floor(random() * 30)),
        symbol: random() < 0.1 ? "TCS" : "INFY",
      }));
      const settled = await Promise.allSettled(requests.map((r) => broker.placeOrder(r)));
      const refused = settled.flatMap((s) =>
        s.status === "rejected" ? [s.reason as Error & { code: string }] : [],
      );
      const denied = events.filter((e) => e.type === "ORDER_DENIED");
      assert.equal(
        denied.length,
        refused.length,
        `round ${round}: ${refused.length} refusals, ${denied.length} ORDER_DENIED`,
      );
      assert.deepEqual(
        denied.map((e) => e.message),
        refused.map((e) => e.message),
      );
      for (const [n, error] of refused.entries()) {
        assert.equal(error.code, "RISK");
        const limit = denied[n]!.limit!;
        assert.ok(
          error.message.endsWith(`(${limit})`),
          `round ${round}: '${error.message}' does not name ${limit}`,
        );
        assert.match(
          limit,
          /^(max_order_quantity|max_position_quantity|max_open_orders|max_orders_per_second|allowed_symbols)$/,
        );
      }
      const outcome = await broker.risk.kill("halt", "kill switch k1", `round ${round}`, { cancel: true });
      assert.equal(outcome.cancelled.length, settled.length - refused.length);
      await assert.rejects(
        broker.placeOrder(resting(1)),
        /trading is HALTED \(round \d+\): no new orders \(trading_state\)/,
      );
      await broker.risk.kill("resume", "admin", "checked");
      const changes = events.filter((e) => e.type === "RISK_STATE_CHANGED");
      assert.equal(changes.length, 2, `round ${round}: ${changes.length} RISK_STATE_CHANGED for 2 changes`);
      assert.equal(events.filter((e) => e.type === "ORDER_DENIED").length, refused.length + 1);
      await paper.close();
    }
  });
});
