import assert from "node:assert/strict";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Issue 10, defect 3: the GTT poll may see a change before the slow answer to the request that made it. */
describe("KiteBroker: one GTT event per change, whoever sees it first", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  const gtt = (trigger: number) => ({
    type: "single" as const,
    symbol: "TCS",
    last_price: 3500,
    trigger_values: [trigger] as [number],
    orders: [{ side: "SELL" as const, quantity: 1, price: trigger - 5, product: "MIS" as const }] as [
      { side: "SELL"; quantity: number; price: number; product: "MIS" },
    ],
  });

  it("slow answers to place and delete: GTT_PLACED once and GTT_DELETED once, each time", async function () {
    this.timeout(20_000);
    h = await startKite({ gtt_poll_ms: 200 });
    h.fake.setPrice("TCS", 3500);
    // An active GTT keeps the poll running.
    await h.broker.placeGtt(gtt(3900));
    for (let round = 0; round < 3; round++) {
      h.fake.delayNext("POST /gtt/triggers", 700);
      const placed = await h.broker.placeGtt(gtt(3600 + round));
      h.fake.delayNext(`DELETE /gtt/triggers/${placed.gtt_id}`, 700);
      const deleted = await h.broker.deleteGtt(placed.gtt_id);
      assert.equal(deleted.status, "deleted");
      // Polls after the answers must not report again either.
      await sleep(500);
      const types = h.log.gtts.filter((e) => e.gtt.gtt_id === placed.gtt_id).map((e) => e.type);
      assert.deepEqual(types, ["GTT_PLACED", "GTT_DELETED"], `round ${round}`);
    }
    const seqs = h.log.gtts.map((e) => e.seq);
    assert.deepEqual(
      seqs,
      [...new Set(seqs)].sort((a, b) => a - b),
    );
  });

  it("the poll saw the placement first: the answer agrees with it and adds no event", async function () {
    this.timeout(20_000);
    h = await startKite({ gtt_poll_ms: 200 });
    h.fake.setPrice("TCS", 3500);
    await h.broker.placeGtt(gtt(3900));
    h.fake.delayNext("POST /gtt/triggers", 900);
    const placing = h.broker.placeGtt(gtt(3700));
    await h.log.until(
      () => h.log.gtts.filter((e) => e.type === "GTT_PLACED").length === 2,
      "poll saw it",
      5000,
    );
    const placed = await placing;
    assert.equal(placed.status, "active");
    assert.equal(h.log.gtts.filter((e) => e.gtt.gtt_id === placed.gtt_id).length, 1);
  });
});
