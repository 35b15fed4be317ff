// Issue 12, "Done when": flipped bytes in a real account journal are detected, never applied
// silently. Each flip either stops the open (line 1: nothing is loaded) or is quarantined and
// reported; what loads is always the account exactly as it was after some earlier operation.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { PaperSettingsInput } from "../../lib/paper/settings";

const SETTINGS: PaperSettingsInput = {
  seed: 3,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
  retention: 10,
  max_fill_per_quote: 4,
};
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("paper broker corruption test: flipped journal bytes", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-corrupt-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("400 single-byte flips: every one detected, none applied, the account always an earlier true state", async function () {
    const file = path.join(dir, "paper-corrupt.jsonl");
    const clock = new ManualClock();
    const random = seededRandom(99);
    const session = new PaperBroker(SETTINGS, { clock, journalFile: file, compactEvery: 25, log: quiet });
    await session.connect();
    const state = async (b: PaperBroker) =>
      JSON.stringify([await b.getAccount(), await b.getOrderbook(), await b.getGtts()]);
    const truths = new Set<string>([await state(session)]);
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      const price = Math.round((95 + random() * 10) * 100) / 100;
      session.setPrice("INFY", price);
      truths.add(await state(session)); // a quote that fills resting orders is an operation too
      await session
        .placeOrder({
          symbol: "INFY",
          side: random() < 0.5 ? "BUY" : "SELL",
          quantity: 1 + Math.floor(random() * 9),
          ...(random() < 0.5 ? {} : {}),
        } as never)
        .catch(() => undefined);
      truths.add(await state(session));
    }
    await session.close();
    const pristine = fs.readFileSync(file);
    const lines = pristine.toString("utf8").split("\n").length - 1;
    assert.ok(
      pristine.toString("utf8").startsWith('{"s":'),
      "the journal was compacted: line 1 is a snapshot",
    );
    assert.ok(lines > 5, `${lines} lines`);

    let refused = 0;
    let quarantined = 0;
    for (let trial = 0; trial < 400; trial++) {
      const damaged = Buffer.from(pristine);
      let at = Math.floor(random() * damaged.length);
      while (damaged[at] === 0x0a) at = Math.floor(random() * damaged.length);
      let flipped = damaged[at]! ^ (1 << Math.floor(random() * 7));
      if (flipped === 0x0a) flipped ^= 0x01;
      damaged[at] = flipped;
      fs.writeFileSync(file, damaged);
      const reopened = new PaperBroker(SETTINGS, { clock, journalFile: file, log: quiet });
      try {
        await reopened.connect();
      } catch (error) {
        assert.equal((error as { code?: string }).code, "CONFIG");
        assert.match((error as Error).message, /line 1 .*corrupt/);
        assert.deepEqual(fs.readFileSync(file), damaged, "a refused journal is left as it was");
        refused++;
        continue;
      }
      try {
        assert.ok(reopened.restoreReport?.quarantine !== undefined, `flip at byte ${at} went unnoticed`);
        quarantined++;
        assert.ok(
          truths.has(await state(reopened)),
          `flip at byte ${at}: the restored account was never a true state`,
        );
      } finally {
        await reopened.close();
      }
      for (const f of fs.readdirSync(dir)) if (f.includes(".corrupt-")) fs.rmSync(path.join(dir, f));
    }
    assert.equal(refused + quarantined, 400);
    assert.ok(refused > 0 && quarantined > 0, `${refused} refused, ${quarantined} quarantined`);
  });
});
