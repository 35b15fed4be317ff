import assert from "node:assert/strict";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderSnapshot } from "../../lib/protocol";
import { toBrokerError } from "../../lib/protocol/errors";
import type { Guarded } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import type { RiskRig } from "../support/risk-rig";
import { MONDAY_10_IST, STILL_PAPER, riskRigs } from "../support/risk-rig";

const SEED = Number(process.env.RISK_RATE_SEED ?? 20261205);

/** Places `count` one-share orders, alternating sides; how many the guard let through, and why not. */
async function burst(
  broker: Guarded<PaperBroker>,
  count: number,
  first = 0,
): Promise<{ passed: number; refused: string[] }> {
  let passed = 0;
  const refused: string[] = [];
  for (let i = 0; i < count; i++) {
    const side = (first + i) % 2 === 0 ? "BUY" : "SELL";
    try {
      await broker.placeOrder({ symbol: "INFY", side, quantity: 1 });
      passed += 1;
    } catch (error) {
      const err = toBrokerError(error);
      assert.equal(err.code, "RISK", err.message);
      refused.push(err.message);
    }
  }
  return { passed, refused };
}

/** The most orders placed within any `ms` (by their placed_at), and when. */
function busiest(orders: readonly OrderSnapshot[], ms: number): { count: number; at: string } {
  const times = orders.map((o) => Date.parse(o.placed_at)).sort((a, b) => a - b);
  let best = { count: 0, at: "" };
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[start]! <= times[end]! - ms) start++;
    if (end - start + 1 > best.count)
      best = { count: end - start + 1, at: new Date(times[end]!).toISOString() };
  }
  return best;
}

describe(`RiskGuard: rate windows follow elapsed time, not the wall clock (seed ${SEED}; RISK_RATE_SEED to replay)`, function () {
  this.timeout(20_000);
  const rigs = riskRigs();
  /** A guarded paper account on the wall clock `wall`, quoting INFY 1500. */
  const rig = (
    settings: RiskSettingsInput,
    wall: ManualClock,
    options: { elapsed?: ManualClock; journalFile?: string } = {},
  ): Promise<RiskRig> => rigs.open({ settings, clock: wall, ...options, prices: { INFY: 1500 } });

  it("a wall clock stepped forward (61 s to 6 h, 12 seeded steps) frees no second burst", async function () {
    const random = seededRandom(SEED);
    for (let trial = 0; trial < 12; trial++) {
      const step = 61_000 + Math.floor(random() * 6 * 3600_000);
      const wall = new ManualClock(MONDAY_10_IST - 3600_000);
      // The real elapsed clock: the whole trial takes well under the minute it limits.
      const { broker } = await rig({ max_orders_per_minute: 10 }, wall);
      const first = await burst(broker, 10);
      assert.equal(first.passed, 10, first.refused.join("\n"));
      wall.advance(step);
      const second = await burst(broker, 10, 10);
      assert.equal(
        second.passed,
        0,
        `trial ${trial}: ${second.passed} more orders went out within the same minute after the wall clock stepped ${step} ms forward`,
      );
      assert.match(
        second.refused[0]!,
        /max orders per minute 10: 10 sent in the last minute \(max_orders_per_minute\)/,
      );
      await rigs.closeAll();
    }
  });

  it("a wall clock stepped back (1 s to 6 h, 12 seeded steps) blocks nothing once a minute has passed", async function () {
    const random = seededRandom(SEED + 1);
    for (let trial = 0; trial < 12; trial++) {
      const step = 1000 + Math.floor(random() * 6 * 3600_000);
      const wall = new ManualClock(MONDAY_10_IST + 6 * 3600_000);
      const elapsed = new ManualClock(1_000 + Math.floor(random() * 1e9));
      const { broker } = await rig({ max_orders_per_second: 4, max_orders_per_minute: 10 }, wall, {
        elapsed,
      });
      for (let second = 0; second < 3; second++) {
        const sent = await burst(broker, 4, second * 4);
        assert.equal(
          sent.passed,
          second < 2 ? 4 : 2,
          `trial ${trial}, second ${second}: ${sent.refused.join("\n")}`,
        );
        elapsed.advance(1000);
        wall.advance(1000);
      }
      wall.advance(-step);
      elapsed.advance(58_001);
      // A minute after the first burst by the elapsed clock, however far back the wall clock went.
      const after = await burst(broker, 4);
      assert.equal(
        after.passed,
        4,
        `trial ${trial}: stepped back ${step} ms, then refused: ${after.refused.join("\n")}`,
      );
      await rigs.closeAll();
    }
  });

  it("10 restarts in a row free no burst: the book's orders of the last minute count again (seeded gaps)", async function () {
    const settings = { max_orders_per_second: 4, max_orders_per_minute: 12 };
    const random = seededRandom(SEED + 2);
    const dir = rigs.tempDir("risk-rate-");
    const journalFile = path.join(dir, "paper.jsonl");
    const wall = new ManualClock(MONDAY_10_IST);
    let placed = 0;
    for (let restart = 0; restart <= 10; restart++) {
      // A new process: its elapsed clock starts anywhere, and moves with the wall clock (no step).
      const elapsed = new ManualClock(Math.floor(random() * 1e9));
      const { broker, paper, logged } = await rig(settings, wall, { elapsed, journalFile });
      for (let round = 0; round < 4; round++) {
        const gap = Math.floor(random() * 6_000);
        wall.advance(gap);
        elapsed.advance(gap);
        const sent = await burst(broker, 1 + Math.floor(random() * 8), placed);
        placed += sent.passed;
      }
      if (restart > 0 && placed > 0) {
        assert.ok(
          logged.some((l) => /orders the book shows sent within the last minute count/.test(l)) ||
            (await paper.getOrderbook()).every((o) => wall.now() - Date.parse(o.placed_at) >= 60_000),
          logged.join("\n"),
        );
      }
      await rigs.close(paper);
      // The restart itself takes from nothing to a few seconds.
      const down = Math.floor(random() * 3_000);
      wall.advance(down);
    }
    const last = rigs.track(new PaperBroker(STILL_PAPER, { clock: wall, journalFile }));
    await last.connect();
    const book = await last.getOrderbook();
    assert.equal(book.length, placed);
    assert.ok(placed >= 20, `only ${placed} orders went out: the test proves little`);
    const minute = busiest(book, 60_000);
    assert.ok(
      minute.count <= settings.max_orders_per_minute,
      `${minute.count} orders in the minute up to ${minute.at}, over max_orders_per_minute ${settings.max_orders_per_minute}`,
    );
    const second = busiest(book, 1000);
    assert.ok(
      second.count <= settings.max_orders_per_second,
      `${second.count} orders in the second up to ${second.at}, over max_orders_per_second ${settings.max_orders_per_second}`,
    );
  });
});
