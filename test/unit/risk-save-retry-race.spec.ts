// A refusal that comes while a retry of the state file's save is in flight. That retry may meet the
// full disk just before it is mended; the refusal must then still bring one more retry, or the
// state stays unsaved (every node red, no new orders) until some later order. Seen once in CI's
// Node-RED 5 pass (kill-switch node spec). Here the timing is forced: the state file's temporary
// path is a FIFO, so the retry's open waits until the test lets it go, and its fsync then fails
// (fsync on a pipe is EINVAL), after the disk was mended and a second refusal came.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("RiskGuard: a refusal during a failing save retry brings another retry", function () {
  this.timeout(30_000);
  const opened: PaperBroker[] = [];
  const dirs: string[] = [];
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the state is saved once the disk is mended, without another order (5 rounds)", async function () {
    for (let round = 0; round < 5; round++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-retry-race-"));
      dirs.push(dir);
      const stateFile = path.join(dir, "risk-paper-a.json");
      const tmp = `${stateFile}.tmp`;
      const clock = new ManualClock(MONDAY_10_IST);
      const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
      opened.push(paper);
      const broker = guardBroker(paper, { settings: {}, clock, stateFile, log: quiet, account: "paper-a" });
      await broker.connect();
      await broker.subscribeQuotes(["INFY"]);
      paper.setPrice("INFY", 1500);

      // A full disk: the halt holds in memory only.
      fs.symlinkSync("/dev/full", tmp);
      const outcome = await broker.risk.kill("halt", "kill switch k1", `round ${round}`, {});
      assert.equal(outcome.state, "HALTED");
      assert.ok(broker.risk.unsaved !== undefined, `round ${round}: the halt's failed save is not shown`);
      fs.rmSync(tmp);
      execFileSync("mkfifo", [tmp]);

      // The first refusal starts a retry, whose open of the FIFO waits for a reader.
      const order = { symbol: "INFY", side: "BUY", quantity: 1 } as const;
      await rejectsWithCode(broker.placeOrder(order), "RISK");
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Refused again while that retry is in flight.
      await rejectsWithCode(broker.placeOrder(order), "RISK");
      // Let the retry go on to fail, and mend the disk in the same turn: its fsync meets a pipe.
      const reader = fs.openSync(tmp, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      fs.unlinkSync(tmp);
      try {
        const deadline = Date.now() + 3000;
        while (broker.risk.unsaved !== undefined) {
          assert.ok(
            Date.now() < deadline,
            `round ${round}: still not saved 3 s after the disk was mended: ${broker.risk.unsaved}`,
          );
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        fs.closeSync(reader);
      }
      const saved = await loadState(stateFile);
      assert.equal(
        saved.kind === "ok" ? saved.record.state : saved.kind,
        "HALTED",
        `round ${round}: on disk`,
      );
    }
  });
});
