// An AMO released at the open that does not fill (no quote yet, or a limit away from it) changes only its release
// time, with no event. That change must still be journaled: every operation that changes the
// account is one record, or a reopen holds an order its never-restarted twin has already released.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import { readJournal } from "../support/paper-journal-file";

/** An IST wall-clock time as epoch ms (IST is UTC+05:30 all year). */
function ist(day: string, time: string): number {
  return Date.parse(`${day}T${time}:00+05:30`);
}

const SETTINGS: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 86_400_000,
  market: "nse",
};

/** The order as the journal last wrote it (records and snapshot), or undefined. */
function journaledOrder(file: string, orderId: string): Record<string, unknown> | undefined {
  let found: Record<string, unknown> | undefined;
  for (const line of readJournal(file)) {
    for (const order of line.orders) {
      if (order.order_id !== orderId) continue;
      // A format 3 change (no symbol) sets these exactly: absent means removed.
      const change = order.symbol === undefined;
      found = change ? { ...found, ...order } : { ...order };
      if (change)
        for (const key of ["status_message", "charges", "release_at"]) if (!(key in order)) delete found[key];
    }
  }
  return found;
}

describe("PaperBroker: an AMO released before any quote is journaled", function () {
  let dir: string;
  const opened: PaperBroker[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-amo-"));
  });
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes the release, so the journal holds the order as memory does", async function () {
    const file = path.join(dir, "amo.jsonl");
    const clock = new ManualClock(ist("2026-01-05", "18:00"));
    const broker = new PaperBroker(SETTINGS, { clock, journalFile: file });
    opened.push(broker);
    await broker.connect();
    const ids: string[] = [];
    // Several, LIMIT below the market: the open releases each and none fills, so no event is made.
    for (let i = 0; i < 5; i += 1) {
      const amo = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1 + i,
        order_type: "LIMIT",
        price: 95,
        product: "CNC",
        variety: "amo",
      });
      assert.equal(amo.status, "OPEN", amo.status_message);
      ids.push(amo.order_id);
    }
    await broker.flush();
    for (const id of ids)
      assert.equal(typeof journaledOrder(file, id)?.release_at, "number", "waits for the open");
    clock.advance(ist("2026-01-06", "09:15") - clock.now());
    await broker.flush();
    for (const id of ids) {
      const written = journaledOrder(file, id);
      assert.equal(written?.status, "OPEN");
      assert.equal(written?.release_at, undefined, `${id}: released in memory, still waiting in the journal`);
    }
  });
});
