// Issue 12, attacked: a small format-3 journal (a compacted snapshot on line 1, then place, modify,
// cancel, partial and whole fills, a GTT and its trigger) damaged at EVERY byte offset, once by a
// flipped bit and once by cutting the file there. A damaged line is detected (the open refused,
// or the line quarantined and reported in restoreReport), never applied; what loads is always the
// account exactly as it was after some earlier operation, to the paisa.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
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

/** How many leading characters two states share: the nearest true state, for a failure's diff. */
function closeness(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

/** The account as JSON with sorted keys: a view's key order is not part of the state. */
async function state(broker: PaperBroker): Promise<string> {
  const whole = [
    await broker.getAccount(),
    await broker.getOrderbook(),
    await broker.getGtts(),
    await broker.getPositions(),
  ];
  return JSON.stringify(whole, (_key, value: unknown) =>
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

describe("paper journal format 3: damage at every offset", function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;
  let clock: ManualClock;
  let pristine: Buffer;
  let firstLineEnd: number;
  const truths = new Set<string>();

  before(async function () {
    // Thousands of reopens: on a RAM disk where there is one, so the fsyncs cost nothing.
    const base = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
    dir = fs.mkdtempSync(path.join(base, "paper-offsets-"));
    file = path.join(dir, "paper.jsonl");
    clock = new ManualClock();
    const broker = new PaperBroker(SETTINGS, { clock, journalFile: file, compactEvery: 6, log: quiet });
    await broker.connect();
    const step = async (op: () => unknown): Promise<void> => {
      clock.advance(1000);
      await op();
      await broker.flush();
      truths.add(await state(broker));
    };
    truths.add(await state(broker));
    await step(() => broker.setPrice("INFY", 100.05));
    await step(() => broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 }));
    // Enough operations that a compaction has put a snapshot on line 1, then a tail of records.
    const resting = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 7,
      order_type: "LIMIT",
      price: 99.5,
    });
    truths.add(await state(broker));
    await step(() => broker.modifyOrder(resting.order_id, { price: 99.75, quantity: 8 }));
    await step(() => broker.setPrice("INFY", 99.7)); // fills 3 of 8 (max_fill_per_quote)
    const other = await broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: 2,
      order_type: "LIMIT",
      price: 120.35,
    });
    truths.add(await state(broker));
    await step(() => broker.cancelOrder(other.order_id));
    await step(() =>
      broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [98.4],
        orders: [{ side: "SELL", quantity: 1, price: 98.3, product: "MIS" }],
      }),
    );
    await step(() => broker.setPrice("INFY", 98.35)); // triggers the GTT, fills more of the resting BUY
    await step(() => broker.setPrice("INFY", 98.2));
    await step(() => broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 }));
    await broker.close();
    pristine = fs.readFileSync(file);
    const text = pristine.toString("utf8");
    assert.ok(text.startsWith('{"s":'), "line 1 is a compacted snapshot");
    firstLineEnd = pristine.indexOf(0x0a) + 1;
    assert.ok(text.split("\n").length - 1 >= 4, `a tail of records: ${text.split("\n").length - 1} lines`);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  afterEach(() => {
    for (const f of fs.readdirSync(dir)) if (f !== "paper.jsonl") fs.rmSync(path.join(dir, f));
  });

  async function reopen(damaged: Buffer, what: string): Promise<"refused" | "quarantined" | "cut"> {
    fs.writeFileSync(file, damaged);
    const broker = new PaperBroker(SETTINGS, { clock, journalFile: file, log: quiet });
    try {
      await broker.connect();
    } catch (error) {
      assert.equal((error as { code?: string }).code, "CONFIG", `${what}: ${String(error)}`);
      assert.match((error as Error).message, /line 1 .*corrupt/, what);
      assert.deepEqual(fs.readFileSync(file), damaged, `${what}: a refused journal is left as it was`);
      return "refused";
    }
    try {
      const restored = await state(broker);
      if (!truths.has(restored)) {
        const near = [...truths].sort((a, b) => closeness(b, restored) - closeness(a, restored))[0];
        assert.equal(restored, near, `${what}: the restored account was never a true state (nearest shown)`);
      }
      return broker.restoreReport?.quarantine === undefined ? "cut" : "quarantined";
    } finally {
      await broker.close();
    }
  }

  it("a flipped bit at every offset is refused or quarantined, never applied", async function () {
    const tally = { refused: 0, quarantined: 0, cut: 0 };
    for (let at = 0; at < pristine.length; at++) {
      if (pristine[at] === 0x0a) continue;
      const damaged = Buffer.from(pristine);
      let flipped = damaged[at]! ^ (1 << (at % 7));
      if (flipped === 0x0a) flipped ^= 0x01;
      damaged[at] = flipped;
      const outcome = await reopen(damaged, `bit ${at % 7} of byte ${at} (0x${pristine[at]!.toString(16)})`);
      tally[outcome] += 1;
      assert.notEqual(outcome, "cut", `byte ${at}: a flipped byte in a whole line went unreported`);
      if (at < firstLineEnd) assert.equal(outcome, "refused", `byte ${at} is in line 1`);
    }
    assert.ok(tally.refused > 0 && tally.quarantined > 0, JSON.stringify(tally));
  });

  it("cut at every offset: a true earlier state, and a snapshot cut short is refused, not an empty account", async function () {
    const tally = { refused: 0, quarantined: 0, cut: 0 };
    for (let at = 0; at < pristine.length; at++) {
      const outcome = await reopen(pristine.subarray(0, at), `cut at ${at} of ${pristine.length}`);
      tally[outcome] += 1;
      // A snapshot is only ever written whole (temporary file, fsync, rename): a line 1 that starts
      // as one and is cut short is damage, not an interrupted append; starting from nothing would put
      // the account back to its starting cash. (Under 5 bytes, `{"s":` is not there to tell.)
      if (at >= 5 && at < firstLineEnd) assert.equal(outcome, "refused", `cut at ${at} inside the snapshot`);
    }
    assert.ok(tally.cut > 0, JSON.stringify(tally));
  });
});
