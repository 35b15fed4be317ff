import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderSnapshot } from "../../lib/protocol";
import { seedFromAccount } from "../../lib/strategy/account-read";
import { MomentumStrategy } from "../../lib/strategy/momentum";

const SEED = Number(process.env.MOMENTUM_SEED ?? 20261205);

/** Net MIS position of INFY as the paper account itself holds it. */
async function accountNet(paper: PaperBroker): Promise<number> {
  return (await paper.getPositions())
    .filter((p) => p.symbol === "INFY" && p.product === "MIS")
    .reduce((sum, p) => sum + p.quantity, 0);
}

/**
 * A redeploy's read of the account while another flow's resting order fills: the fill lands
 * between the strategy's reads (`between`), or its event arrives while they are on their way.
 */
describe(`momentum: positions read from the account while orders fill (seed ${SEED}; MOMENTUM_SEED to replay)`, function () {
  for (const when of [
    "between the positions and the book",
    "before the positions, its event during the read",
    "after the last read of the book, before the seed",
  ] as const) {
    it(`counts a fill that lands ${when} exactly once (20 rounds)`, async function () {
      const random = seededRandom(SEED);
      for (let round = 0; round < 20; round++) {
        const paper = new PaperBroker(
          { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 },
          { clock: new ManualClock(Date.UTC(2026, 0, 5, 4, 30)) },
        );
        await paper.connect();
        await paper.subscribeQuotes(["INFY"]);
        paper.setPrice("INFY", 100);
        const held = 1 + Math.floor(random() * 5);
        if (held > 0) await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: held, product: "MIS" });
        const quantity = 1 + Math.floor(random() * 5);
        const resting: OrderSnapshot = await paper.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity,
          order_type: "LIMIT",
          price: 95,
          product: "MIS",
        });
        const strategy = new MomentumStrategy({ max_position: 100 }, { fromAccount: true });
        paper.on("order", (event) => strategy.onOrder(event.order));
        let filled = false;
        let reads = 0;
        const fill = (): void => {
          if (filled) return;
          filled = true;
          paper.setPrice("INFY", 94); // the resting order fills, its event goes out at once
        };
        const source = {
          getPositions: async () => {
            if (when === "before the positions, its event during the read") fill();
            const positions = await paper.getPositions();
            // Its event reached the strategy while this answer was on its way.
            return positions;
          },
          getOrderbook: async () => {
            if (when === "between the positions and the book" && reads++ > 0) fill();
            const book = await paper.getOrderbook();
            if (when === "after the last read of the book, before the seed" && reads++ > 0) {
              fill();
              // Its event reaches the strategy before this (older) answer does.
              await new Promise((resolve) => setImmediate(resolve));
            }
            return book;
          },
        };
        await seedFromAccount(strategy, source);
        const order = await paper.getOrder(resting.order_id);
        assert.equal(order.status, "FILLED", "the resting order filled during the read");
        const net = await accountNet(paper);
        assert.equal(net, held + quantity);
        assert.equal(
          strategy.position("INFY"),
          net,
          `seed ${SEED} round ${round} (${when}): the strategy holds ${strategy.position("INFY")}, the account ${net}`,
        );
        await paper.close();
      }
    });
  }
});
