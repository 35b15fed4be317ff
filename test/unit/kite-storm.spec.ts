// Attacks on the Kite order path through the fake Kite: a Kite whose own limits are far below the
// client's (every burst meets a 429 storm, on placements and on the reads that settle them) while
// some placements are carried out and then answered 500 or with an HTML page. Single faults are
// covered by kite-exactly-once.spec; here they come together, many orders at once, seeded.
import assert from "node:assert/strict";
import { seededRandom } from "../../lib/paper/random";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const PLACE = "POST /orders/regular";
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};
const HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>";

describe("KiteBroker: 500s after placing inside a 429 storm", function () {
  this.timeout(30_000);
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 24 orders at once against a Kite suddenly allowing 3 orders and 2 reads a second: one outcome each, none placed twice`, async function () {
      const random = seededRandom(seed);
      // The fake reads its limits per request: generous while the broker connects, then far below
      // what the broker allows itself, so every burst meets 429s (orders and the settling reads).
      const limits: { order?: number; other?: number } = {};
      h = await startKite({}, { rateLimits: limits });
      limits.order = 3;
      limits.other = 2;
      h.fake.setPrice("INFY", 1500);
      let faults = 0;
      for (let i = 0; i < 24; i++) {
        if (random() < 0.3) {
          faults += 1;
          if (random() < 0.5) h.fake.failAfter(PLACE, 500, GENERAL);
          else h.fake.failAfter(PLACE, 502, HTML, "text/html");
        }
      }
      const ids = Array.from({ length: 24 }, (_, i) => `st${seed}x${i}`);
      const outcomes = await Promise.allSettled(
        ids.map((id) =>
          h!.broker.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 1,
            order_type: "LIMIT",
            price: 1400,
            client_order_id: id,
          }),
        ),
      );
      const seedNote = `seed ${seed} (${faults} placed-then-500 faults, ${h.fake.requests.length} requests)`;
      for (const [i, outcome] of outcomes.entries()) {
        const made = await h.fake.orderCount((o) => o.tag === ids[i] || o.client_order_id === ids[i]);
        assert.ok(made <= 1, `${seedNote}: ${ids[i]} placed ${made} times`);
        if (outcome.status === "fulfilled") {
          assert.equal(made, 1, `${seedNote}: ${ids[i]} reported placed, so it exists`);
          assert.equal(outcome.value.client_order_id, ids[i]);
        } else {
          const error = outcome.reason as { code?: string; message?: string };
          // A failure a flow is told of must be true: only an unknown outcome may hide an order.
          if (error.code !== "NETWORK") {
            assert.equal(
              made,
              0,
              `${seedNote}: ${ids[i]} reported ${error.code} (${error.message}) but it exists`,
            );
          }
        }
      }
      const placed = outcomes.filter((o) => o.status === "fulfilled").length;
      const limited = ids.filter((_, i) => {
        const outcome = outcomes[i]!;
        return outcome.status === "rejected" && (outcome.reason as { code?: string }).code === "RATE_LIMITED";
      });
      assert.ok(
        placed > 0 && limited.length > 0,
        `${seedNote}: ${placed} placed, ${limited.length} refused 429`,
      );
      assert.ok(h.fake.rateLimited > 0, `${seedNote}: the storm was met (429s: ${h.fake.rateLimited})`);
      // The storm passes; a flow retries what was refused, with the same ids: each placed once now.
      limits.order = 100;
      limits.other = 100;
      for (const id of limited) {
        const order = await h.broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 1400,
          client_order_id: id,
        });
        assert.equal(order.client_order_id, id);
        assert.equal(
          await h.fake.orderCount((o) => o.tag === id || o.client_order_id === id),
          1,
          `${seedNote}: ${id}`,
        );
      }
      console.log(
        `      seed ${seed}: ${placed}/24 placed, ${faults} faults, ${h.fake.rateLimited} answered 429`,
      );
    });
  }
});
