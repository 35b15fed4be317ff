import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderSnapshot } from "../../lib/protocol";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";

/**
 * A broker whose order events arrive before its answer (a gateway's pushes overtaking the answer,
 * Kite's ticker before its REST reply): the paper broker with each placement's answer held back.
 */
async function eventsFirst(
  answerDelayMs: number,
): Promise<{ guarded: Guarded<PaperBroker>; inner: PaperBroker }> {
  const inner = new PaperBroker({
    seed: 1,
    volatility: 0,
    spread_bps: 0,
    slippage_bps: 0,
    interval_ms: 60_000,
  });
  const place = inner.placeOrder.bind(inner);
  inner.placeOrder = async (request) => {
    const answer = await place(request);
    await new Promise((resolve) => setTimeout(resolve, answerDelayMs));
    return answer;
  };
  const guarded = guardBroker(inner, { settings: { max_position_quantity: 10 } });
  await guarded.connect();
  inner.setPrice("INFY", 100);
  return { guarded, inner };
}

describe("RiskGuard: an order whose events arrive before its answer", function () {
  this.timeout(20_000);

  it("counts an order sent with a client_order_id once (in the position, no longer in flight): an order up to the limit passes, 20 rounds", async function () {
    const { guarded, inner } = await eventsFirst(30);
    try {
      const outcomes: string[] = [];
      for (let round = 0; round < 20; round++) {
        const side = round % 2 === 0 ? "BUY" : "SELL";
        const seen = new Promise<void>((resolve) => {
          const onOrder = (event: { type: string }): void => {
            if (event.type !== "ORDER_FILLED") return;
            inner.off("order", onOrder);
            resolve();
          };
          inner.on("order", onOrder);
        });
        // With client_order_ids, as the momentum node sends them: the guard can tell its order's event.
        const first = guarded.placeOrder({ symbol: "INFY", side, quantity: 6, client_order_id: `A${round}` });
        // Its fill is reported; its answer is not in yet.
        await seen;
        const second = await guarded
          .placeOrder({ symbol: "INFY", side, quantity: 4, client_order_id: `B${round}` })
          .then(
            (o: OrderSnapshot) => o.status,
            (error: Error) => error.message,
          );
        outcomes.push(`${(await first).status} ${second}`);
        const net = (await inner.getPositions()).find((p) => p.symbol === "INFY")?.quantity ?? 0;
        // Back to flat for the next round (10 the other way is within the limit from ±10).
        await guarded.placeOrder({
          symbol: "INFY",
          side: side === "BUY" ? "SELL" : "BUY",
          quantity: Math.abs(net),
        });
      }
      assert.deepEqual(outcomes, Array(20).fill("FILLED FILLED"));
      // Nothing left counted in flight: a full-size order still passes.
      await guarded.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    } finally {
      await guarded.close();
    }
  });
});
