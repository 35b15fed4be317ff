// Finite liquidity across a reopen: what was taken from the current quote carries over only to that
// quote. A new quote that happens to equal it field for field (same millisecond, same prices) is a
// new quote with all its liquidity, as it is for the never-restarted twin.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";

const AT = Date.parse("2026-01-05T11:00:00+05:30");
const SETTINGS: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
  market: "nse",
};
const BUY = {
  symbol: "INFY",
  side: "BUY",
  quantity: 80,
  order_type: "LIMIT",
  price: 1500,
  product: "CNC",
} as const;

describe("PaperBroker: liquidity taken, across a reopen", function () {
  let dir: string;
  const opened: PaperBroker[] = [];
  async function open(file?: string): Promise<PaperBroker> {
    const broker = new PaperBroker(SETTINGS, {
      clock: new ManualClock(AT),
      ...(file === undefined ? {} : { journalFile: file }),
    });
    opened.push(broker);
    await broker.connect();
    return broker;
  }
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-liquidity-"));
  });
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a new quote equal to the restored one in every field offers all its liquidity, as for the twin", async function () {
    const file = path.join(dir, "a.jsonl");
    const twin = await open();
    const first = await open(file);
    for (const broker of [twin, first]) {
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      assert.equal((await broker.placeOrder(BUY)).filled_quantity, 80);
    }
    await first.close();
    const second = await open(file);
    // The restored quote itself: what is left of it.
    assert.equal((await second.placeOrder(BUY)).filled_quantity, 20);
    assert.equal((await twin.placeOrder(BUY)).filled_quantity, 20);
    // Then a new quote in the same millisecond with the same prices: fresh liquidity for both, which
    // the resting rest of the last order takes first (60), then the next order.
    for (const broker of [twin, second]) broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
    const expected = await twin.placeOrder(BUY);
    assert.equal(expected.filled_quantity, 40);
    const reopened = await second.placeOrder(BUY);
    assert.equal(reopened.filled_quantity, expected.filled_quantity);
    const filled = async (broker: PaperBroker) => (await broker.getOrderbook()).map((o) => o.filled_quantity);
    assert.deepEqual(await filled(second), await filled(twin));
  });

  it("a same-millisecond equal quote right after the reopen is new too", async function () {
    const file = path.join(dir, "b.jsonl");
    const twin = await open();
    const first = await open(file);
    for (const broker of [twin, first]) {
      broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
      assert.equal((await broker.placeOrder(BUY)).filled_quantity, 80);
    }
    await first.close();
    const second = await open(file);
    for (const broker of [twin, second]) broker.setPrice("INFY", 1500, { bid: 1500, ask: 1500 });
    const expected = await twin.placeOrder(BUY);
    assert.equal(expected.filled_quantity, 80);
    assert.equal((await second.placeOrder(BUY)).filled_quantity, 80);
  });
});
