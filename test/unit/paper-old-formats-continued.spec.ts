// Issue 12, attacked: journals written by the old formats (version 1 in rupees, version 2 objects;
// fixtures in test/fixtures, the version 2 ones written by the code before format 3, 367a230^) are
// continued in format 3 and reopened ten times in a row, with place, modify, cancel, fills and GTTs
// between reopens. Oracle: a twin opened from the same fixture that is never restarted, given the
// same operations on the same clock: after every reopen both hold the same account to the paisa.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { PaperSettingsInput } from "../../lib/paper/settings";

const SETTINGS: PaperSettingsInput = {
  seed: 5,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
  retention: 10,
  max_fill_per_quote: 3,
  starting_cash: 1_000_000,
};
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const FIXTURES = path.join(__dirname, "..", "..", "..", "test", "fixtures");

/** What the code that wrote the version 2 fixtures reported when it closed them. */
const V2_ACCOUNT = { cash: 998905.85, realized_pnl: -1.95 };

/**
 * The account as JSON with sorted keys. A GTT's order gets a random client_order_id of its own
 * broker object, so those are blanked: twins cannot share them.
 */
async function state(broker: PaperBroker): Promise<string> {
  const orders = (await broker.getOrderbook()).map((o) =>
    o.gtt_id === undefined ? o : { ...o, client_order_id: "(made by the GTT)" },
  );
  const whole = [await broker.getAccount(), orders, await broker.getGtts(), await broker.getPositions()];
  return JSON.stringify(whole, (_key, value: unknown) =>
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

describe("paper journal: old formats continued in format 3, reopened ten times", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-old-formats-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * Runs seeded operations on a broker reopened every few operations and on its twin; `fixture`
   * (or nothing: a new account) is where both start.
   */
  async function againstTwin(
    fixture: string | undefined,
    seed: number,
    cycles: number,
    opsPerCycle: () => number,
    compactEvery?: number,
  ): Promise<void> {
    {
      const random = seededRandom(seed);
      const clock = new ManualClock(Date.parse("2026-12-04T16:00:00.000Z"));
      const reopenedFile = path.join(dir, "reopened.jsonl");
      const twinFile = path.join(dir, "twin.jsonl");
      if (fixture !== undefined) {
        fs.copyFileSync(path.join(FIXTURES, fixture), reopenedFile);
        fs.copyFileSync(path.join(FIXTURES, fixture), twinFile);
      }
      const open = async (file: string): Promise<PaperBroker> => {
        const broker = new PaperBroker(SETTINGS, {
          clock,
          journalFile: file,
          log: quiet,
          ...(compactEvery === undefined ? {} : { compactEvery }),
        });
        await broker.connect();
        return broker;
      };
      let broker = await open(reopenedFile);
      const twin = await open(twinFile);
      try {
        assert.equal(await state(broker), await state(twin), "both open the same");
        if (fixture?.startsWith("paper-v2") === true) {
          const account = await broker.getAccount();
          assert.deepEqual({ cash: account.cash, realized_pnl: account.realized_pnl }, V2_ACCOUNT);
        }
        let ids = 0;
        for (let cycle = 0; cycle < cycles; cycle++) {
          const ops = opsPerCycle();
          for (let op = 0; op < ops; op++) {
            clock.advance(1000);
            const roll = random();
            const open = (await twin.getOrderbook()).filter(
              (o) => o.status === "OPEN" || o.status === "PARTIALLY_FILLED",
            );
            const pick = open[Math.floor(random() * open.length)];
            const price = Math.round((97 + random() * 6) * 20) / 20;
            const both = async (act: (b: PaperBroker) => unknown): Promise<void> => {
              const results = await Promise.allSettled(
                [act(broker), act(twin)].map((p) => Promise.resolve(p)),
              );
              const codes = results.map((r) =>
                r.status === "rejected" ? String((r.reason as { code?: string }).code) : "ok",
              );
              assert.equal(codes[0], codes[1], `seed ${seed} cycle ${cycle} op ${op}: both answer alike`);
            };
            if (roll < 0.3) await both((b) => b.setPrice("INFY", price));
            else if (roll < 0.55) {
              const id = `k${cycle}x${ids++}`;
              const limit = random() < 0.6;
              const side = random() < 0.6 ? "BUY" : "SELL";
              const quantity = 1 + Math.floor(random() * 9);
              await both((b) =>
                b.placeOrder({
                  symbol: "INFY",
                  side,
                  quantity,
                  client_order_id: id,
                  ...(limit ? { order_type: "LIMIT" as const, price } : {}),
                }),
              );
            } else if (roll < 0.7 && pick !== undefined) {
              const quantity = pick.quantity + 1 + Math.floor(random() * 3);
              await both((b) => b.modifyOrder(pick.order_id, { quantity, price }));
            } else if (roll < 0.82 && pick !== undefined) {
              await both((b) => b.cancelOrder(pick.order_id));
            } else if (roll < 0.9) {
              await both((b) =>
                b.placeGtt({
                  type: "single",
                  symbol: "INFY",
                  trigger_values: [price],
                  orders: [
                    {
                      side: "SELL",
                      quantity: 1,
                      price: Math.round((price - 0.1) * 100) / 100,
                      product: "MIS",
                    },
                  ],
                }),
              );
            } else await both((b) => b.setPrice("INFY", Math.round((price + 1.5) * 20) / 20));
          }
          await broker.flush();
          const before = await state(broker);
          assert.equal(
            before,
            await state(twin),
            `seed ${seed} cycle ${cycle}: the twins agree before the reopen`,
          );
          await broker.close();
          const text = fs.readFileSync(reopenedFile, "utf8");
          assert.ok(
            /^\{"r":\[/m.test(text) || text.startsWith('{"s":'),
            `cycle ${cycle}: written in format 3`,
          );
          broker = await open(reopenedFile);
          assert.equal(broker.restoreReport?.quarantine, undefined, `cycle ${cycle}: nothing quarantined`);
          assert.equal(
            await state(broker),
            before,
            `seed ${seed} cycle ${cycle}: reopened to the same account, to the paisa`,
          );
        }
      } finally {
        await broker.close();
        await twin.close();
      }
    }
  }

  for (const fixture of [
    "paper-v1-records.jsonl",
    "paper-v1-snapshot.jsonl",
    "paper-v2-records.jsonl",
    "paper-v2-snapshot.jsonl",
  ]) {
    it(`${fixture}: equals its never-restarted twin after each of ten reopens`, async function () {
      await againstTwin(fixture, fixture.length * 7919, 10, () => 8);
    });
  }

  it("a new account, 12 seeds: reopened after every 1 to 6 operations, compacting every 7 records", async function () {
    for (let seed = 1; seed <= 12; seed++) {
      const every = seededRandom(seed * 31);
      await againstTwin(undefined, seed, 12, () => 1 + Math.floor(every() * 6), 7);
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    }
  });
});
