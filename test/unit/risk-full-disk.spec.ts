import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { PaperBroker } from "../../lib/brokers/paper-broker";
import { seededRandom } from "../../lib/paper/random";
import { isTerminal } from "../../lib/protocol/orders";
import type { KillCommand } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import type { RiskRig } from "../support/risk-rig";
import { riskRigs } from "../support/risk-rig";
import { waitFor } from "../support/wait";

const SEED = Number(process.env.RISK_DISK_SEED ?? 20261205);

/** Polls an asynchronous condition (a read of the broker or the disk) until it holds. */
async function until(condition: () => Promise<boolean>, label: string, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every write of the state file fails ENOSPC from now on (its temporary name is /dev/full). */
function fillDisk(stateFile: string): () => void {
  fs.symlinkSync("/dev/full", `${stateFile}.tmp`);
  return () => fs.rmSync(`${stateFile}.tmp`);
}

async function openOrders(paper: PaperBroker): Promise<number> {
  return (await paper.getOrderbook()).filter((o) => !isTerminal(o.status)).length;
}

async function held(paper: PaperBroker): Promise<number> {
  return (await paper.getPositions()).reduce((sum, p) => sum + Math.abs(p.quantity), 0);
}

describe(`RiskGuard on a full disk: a halt holds, says RISK naming the file, and still cancels and closes (seed ${SEED}; RISK_DISK_SEED to replay)`, function () {
  this.timeout(20_000);
  const rigs = riskRigs();
  /** A guarded paper account "paper-a" keeping its state in `stateFile`, quoting INFY 1500 and TCS 3500. */
  const rig = (stateFile: string, settings: RiskSettingsInput = {}): Promise<RiskRig> =>
    rigs.open({
      settings,
      stateFile,
      account: "paper-a",
      subscribe: ["INFY", "TCS"],
      prices: { INFY: 1500, TCS: 3500 },
    });

  it("10 kill switches on a full disk, each a new process (halt / reduce, cancel / flatten seeded)", async function () {
    const random = seededRandom(SEED);
    for (let round = 0; round < 10; round++) {
      const stateFile = path.join(rigs.tempDir("risk-disk-"), "risk-paper-a.json");
      const { broker, paper, events, unsaved, logged } = await rig(stateFile);
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 + Math.floor(random() * 9) });
      await broker.placeOrder({ symbol: "TCS", side: "SELL", quantity: 1 + Math.floor(random() * 9) });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 2, order_type: "LIMIT", price: 1400 });
      const command: KillCommand = random() < 0.7 ? "halt" : "reduce";
      const state = command === "halt" ? "HALTED" : "REDUCING";
      const flatten = random() < 0.5;
      const cancel = flatten || random() < 0.5;
      const why = `round ${round}: ${command}${cancel ? " cancel" : ""}${flatten ? " flatten" : ""}`;
      const mend = fillDisk(stateFile);

      const outcome = await broker.risk.kill(command, "kill switch k1", `round ${round}`, {
        cancel,
        flatten,
      });
      assert.equal(outcome.state, state, why);
      assert.equal(broker.risk.tradingState, state, why);
      const failure = outcome.failures.find((f) => f.action === "save_state");
      assert.ok(failure !== undefined, `${why}: the outcome does not say the state was not saved`);
      assert.equal(failure.code, "RISK", why);
      assert.equal(failure.id, stateFile);
      assert.match(
        failure.message,
        new RegExp(
          `^trading is ${state} in this process only: cannot save the trading state to .*risk-paper-a\\.json: .*ENOSPC.*a restart would not keep it.*\\(state_file\\)$`,
        ),
        why,
      );
      assert.equal(outcome.failures.length, 1, `${why}: ${JSON.stringify(outcome.failures)}`);
      // Statuses follow the event and the unsaved signal: both came.
      assert.ok(
        events.some((e) => e.type === "RISK_STATE_CHANGED" && e.state === state && e.previous === "ACTIVE"),
        why,
      );
      assert.equal(unsaved.length, 1, why);
      assert.match(unsaved[0]!, /cannot save the trading state to .*ENOSPC/);
      assert.equal(broker.risk.unsaved, unsaved[0]);
      assert.ok(
        logged.some((l) => /^error cannot save the trading state/.test(l)),
        why,
      );
      if (cancel) assert.equal(await openOrders(paper), 0, `${why}: an order was left open`);
      if (flatten) assert.equal(await held(paper), 0, `${why}: a position was left`);

      await rejectsWithCode(
        broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 }),
        "RISK",
        new RegExp(
          `trading is ${state} \\(round ${round}\\) and cannot save the trading state to .*ENOSPC.*; no new orders until it can be saved \\(state_file\\)`,
        ),
      );
      await rejectsWithCode(
        broker.risk.setState("ACTIVE", "admin", "resume"),
        "RISK",
        new RegExp(
          `trading stays ${state}: cannot save the trading state to .*ENOSPC.*only once that can be saved \\(state_file\\)`,
        ),
      );
      assert.equal(broker.risk.tradingState, state, why);

      // The disk is mended: the next refused order retries the write, and the state is on disk.
      mend();
      await waitFor(() => {
        void broker.placeOrder({ symbol: "WIPRO", side: "BUY", quantity: 1 }).catch(() => undefined);
        return broker.risk.unsaved === undefined;
      }, `${why}: the retried write`);
      assert.deepEqual(unsaved, [unsaved[0], undefined]);
      const saved = await loadState(stateFile);
      assert.ok(saved.kind === "ok" && saved.record.state === state, why);
      await broker.risk.setState("ACTIVE", "admin", "disk mended");
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      await rigs.closeAll();
    }
  });

  it("the daily loss reached on a full disk (5 seeded drops) halts, reports it, and flattens as asked", async function () {
    const random = seededRandom(SEED + 1);
    for (let round = 0; round < 5; round++) {
      const stateFile = path.join(rigs.tempDir("risk-disk-"), "risk-paper-a.json");
      const { broker, paper, events, logged } = await rig(stateFile, {
        max_daily_loss: 1000,
        flatten_on_daily_loss: true,
        pnl_check_ms: 100,
      });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
      await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1, order_type: "LIMIT", price: 3000 });
      await waitFor(() => broker.risk.stateRecord.day_start_pnl !== undefined, "the baseline");
      await until(async () => (await loadState(stateFile)).kind === "ok", "the baseline on disk");
      fillDisk(stateFile);
      paper.setPrice("INFY", 1390 - Math.floor(random() * 200));
      // The state is HALTED in memory before the write is tried; the event follows the write.
      await waitFor(() => events.some((e) => e.type === "RISK_STATE_CHANGED"), `round ${round}: the halt`);
      assert.equal(broker.risk.tradingState, "HALTED");
      const change = events.find((e) => e.type === "RISK_STATE_CHANGED");
      assert.ok(change?.type === "RISK_STATE_CHANGED", `round ${round}: no RISK_STATE_CHANGED`);
      assert.match(change.reason, /daily loss 1,000 reached/);
      await until(async () => (await held(paper)) === 0, `round ${round}: the flatten`, 3000);
      assert.equal(await openOrders(paper), 0);
      assert.match(broker.risk.unsaved ?? "", /cannot save the trading state to .*ENOSPC/);
      assert.ok(
        logged.some((l) => /^error cannot save the trading state/.test(l)),
        `round ${round}: ${logged.join("\n")}`,
      );
      await rejectsWithCode(
        broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
        "RISK",
        /trading is HALTED \(daily loss.*\) and cannot save the trading state .*\(state_file\)/,
      );
      await rigs.closeAll();
    }
  });
});
