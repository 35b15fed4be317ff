// PaperAccount.snapshot() hands out the live order objects, not copies. Its one caller chain is
// PaperBroker.#snapshot() → PaperJournal.compact / compactIfGrown → Journal.compact, which
// serializes the snapshot before it returns, in the caller's turn. These tests hold that contract
// from the outside: orders changed right after a compaction began must not leak into the snapshot
// it writes (the records after its cut-off would then be applied twice on reopen).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { OrderSnapshot } from "../../lib/protocol";

const SETTINGS = { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, interval_ms: 60_000 } as const;

function sortById(orders: OrderSnapshot[]): OrderSnapshot[] {
  return [...orders].sort((a, b) => a.order_id.localeCompare(b.order_id));
}

describe("PaperAccount.snapshot() shares live orders: compaction writes them as they were", function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "snapshot-sharing-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const compactEvery of [3, 7, 25]) {
    it(`orders filled, modified and cancelled in the turn a compaction began reopen as they were (every ${compactEvery} records)`, async function () {
      const file = path.join(dir, "account.jsonl");
      const clock = new ManualClock(Date.UTC(2026, 0, 5, 4, 30));
      const live = new PaperBroker(
        { ...SETTINGS, max_fill_per_quote: 2 },
        { clock, journalFile: file, compactEvery },
      );
      await live.connect();
      live.setPrice("INFY", 100);
      const pending: Promise<unknown>[] = [];
      for (let round = 0; round < 30; round++) {
        // One synchronous burst: compactions start inside it, and the same order objects the
        // snapshot holds change right after, before any await.
        const placed = Array.from({ length: 6 }, (_, i) =>
          live.placeOrder({
            symbol: "INFY",
            side: i % 2 === 0 ? "BUY" : "SELL",
            quantity: 5,
            order_type: "LIMIT",
            price: i % 2 === 0 ? 99 : 101,
          }),
        );
        pending.push(...placed);
        live.setPrice("INFY", 98.5); // BUYs fill two shares each, in parts
        live.setPrice("INFY", 101.5); // SELLs too
        live.setPrice("INFY", 100);
        const orders = await Promise.all(placed);
        const open = orders.filter((o) => o.status === "OPEN" || o.status === "PARTIALLY_FILLED");
        for (const [i, order] of open.entries()) {
          pending.push(
            i % 2 === 0
              ? live.cancelOrder(order.order_id).catch(() => undefined)
              : live.modifyOrder(order.order_id, { quantity: 6 }).catch(() => undefined),
          );
        }
        live.setPrice("INFY", 98.5);
      }
      await Promise.all(pending);
      await live.flush();
      const book = sortById(await live.getOrderbook());
      const positions = await live.getPositions();
      const account = await live.getAccount();
      const seq = live.lastSeq;
      await live.close();

      const reopened = new PaperBroker(SETTINGS, { clock, journalFile: file, compactEvery });
      await reopened.connect();
      try {
        assert.equal(reopened.lastSeq, seq);
        assert.deepEqual(sortById(await reopened.getOrderbook()), book);
        assert.deepEqual(await reopened.getPositions(), positions);
        assert.deepEqual((await reopened.getAccount()).cash, account.cash);
      } finally {
        await reopened.close();
      }
    });
  }
});
