// close() called twice at once (a config node's close and a user's, or a redeploy racing a stop):
// the second call must not resolve before the journal is let go, or a broker reopened at once on
// the same file is refused "already open" (found by jrate10's close-in-a-burst test).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";

const SETTINGS = { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, interval_ms: 60_000 };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("PaperBroker: close() twice at once", function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-close-twice-"));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("each close resolves only once the journal is let go: a reopen right after either succeeds (20 rounds)", async function () {
    const file = path.join(dir, "paper-default.jsonl");
    let placed = 0;
    for (let round = 0; round < 20; round++) {
      const paper = new PaperBroker(SETTINGS, { clock: new ManualClock(), journalFile: file, log: quiet });
      await paper.connect();
      paper.setPrice("INFY", 100);
      // Some rounds close during a burst, so the first close has a flush and a compaction to wait for.
      const burst = Array.from({ length: round % 2 === 0 ? 200 : 0 }, () =>
        paper.placeOrder({ symbol: "INFY", side: "BUY", order_type: "MARKET", quantity: 1 }),
      );
      const outcomes = Promise.allSettled(burst);
      const first = paper.close();
      const second = paper.close();
      // Whichever resolves first, the file must be free by then.
      await Promise.race([first, second]);
      const reopened = new PaperBroker(SETTINGS, { clock: new ManualClock(), journalFile: file, log: quiet });
      try {
        await reopened.connect();
      } catch (error) {
        assert.fail(`round ${round}: reopen after a close resolved: ${(error as Error).message}`);
      }
      await Promise.all([first, second]);
      placed += (await outcomes).filter((outcome) => outcome.status === "fulfilled").length;
      const held = (await reopened.getOrderbook()).length;
      assert.equal(held, placed, `round ${round}: ${held} orders after reopen, ${placed} acknowledged`);
      await reopened.close();
    }
  });
});
