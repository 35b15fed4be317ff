// A refusal that comes while a retry of the state file's save is in flight. That retry may meet the
// full disk just before it is mended; the refusal must then still bring one more retry, or the
// state stays unsaved (every node red, no new orders) until some later order. Seen once in CI's
// Node-RED 5 pass (kill-switch node spec). Here the timing is forced: the state file's temporary
// path is a FIFO, so the retry's open waits until the test lets it go, and its fsync then fails
// (fsync on a pipe is EINVAL), after the disk was mended and a second refusal came.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import { riskRigs } from "../support/risk-rig";

describe("RiskGuard: a refusal during a failing save retry brings another retry", function () {
  this.timeout(30_000);
  const rigs = riskRigs();

  it("the state is saved once the disk is mended, without another order (5 rounds)", async function () {
    for (let round = 0; round < 5; round++) {
      const stateFile = path.join(rigs.tempDir("risk-retry-race-"), "risk-paper-a.json");
      const tmp = `${stateFile}.tmp`;
      const { broker } = await rigs.open({
        stateFile,
        account: "paper-a",
        subscribe: ["INFY"],
        prices: { INFY: 1500 },
        quiet: true,
      });

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
