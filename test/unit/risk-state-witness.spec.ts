// A halted account whose state file is deleted (by hand, or a cleanup that took one file) must not
// restart ACTIVE as a first run would: the file's witness beside it (<state file>.halted), written
// when trading stops and removed when it resumes, says it was halted, and the restart is HALTED and
// says why. A resumed account leaves no witness, so deleting its file is a first run again.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { loadState, witnessFile } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import { riskRigs } from "../support/risk-rig";
import { waitFor } from "../support/wait";

const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;

describe("RiskGuard: a deleted state file and its witness", function () {
  this.timeout(20_000);
  const rigs = riskRigs();

  it("halted, file deleted, restarted: HALTED and says why; resumed, deleted, restarted: ACTIVE (6 rounds)", async function () {
    const stateFile = path.join(rigs.tempDir("risk-witness-"), "risk-paper-a.json");
    const witness = witnessFile(stateFile);
    for (let round = 0; round < 6; round++) {
      const command = round % 2 === 0 ? "halt" : "reduce";
      const state = command === "halt" ? "HALTED" : "REDUCING";
      const first = await rigs.open({ stateFile, quiet: true, prices: { INFY: 1500 } });
      await first.broker.risk.kill(command, "operator", `round ${round}`);
      await first.broker.close(); // the guard's close waits for the witness
      await rigs.close(first.paper);
      assert.ok(fs.existsSync(witness), `round ${round}: the witness`);
      fs.unlinkSync(stateFile);
      const second = await rigs.open({ stateFile, prices: { INFY: 1500 } });
      const record = second.broker.risk.stateRecord;
      assert.equal(record.state, state, `round ${round}: ${record.reason}`);
      assert.match(
        record.reason,
        new RegExp(
          `state file .* is missing, .*\\.halted says ${state} since .* \\(operator: round ${round}\\)`,
        ),
      );
      assert.ok(
        second.logged.some((line) => line.startsWith("error state file")),
        second.logged.join("\n"),
      );
      if (state === "HALTED")
        await rejectsWithCode(second.broker.placeOrder(ONE), "RISK", /trading is HALTED/);
      // The state file holds it again.
      const saved = await loadState(stateFile);
      assert.ok(saved.kind === "ok" && saved.record.state === state);
      // A person resumes: the witness goes, and a deleted file is a first run again.
      await second.broker.risk.kill("resume", "operator", "checked");
      await second.broker.close(); // the guard's close waits for the witness
      await rigs.close(second.paper);
      assert.equal(fs.existsSync(witness), false, `round ${round}: no witness after a resume`);
      fs.unlinkSync(stateFile);
      const third = await rigs.open({ stateFile, quiet: true, prices: { INFY: 1500 } });
      assert.equal(third.broker.risk.tradingState, "ACTIVE");
      assert.equal(third.broker.risk.stateRecord.reason, "no state saved yet");
      assert.equal((await third.broker.placeOrder(ONE)).status, "FILLED");
      await third.broker.close(); // the guard's close waits for the witness
      await rigs.close(third.paper);
    }
  });

  it("a witness that cannot be understood still halts", async function () {
    const stateFile = path.join(rigs.tempDir("risk-witness-"), "risk-paper-a.json");
    fs.writeFileSync(witnessFile(stateFile), "\u0000garbage");
    const r = await rigs.open({ stateFile, quiet: true });
    assert.equal(r.broker.risk.tradingState, "HALTED");
    assert.match(r.broker.risk.stateRecord.reason, /\.halted exists but is not a trading state/);
  });

  it("a state file halted before witnesses were kept gets one at the next start", async function () {
    const stateFile = path.join(rigs.tempDir("risk-witness-"), "risk-paper-a.json");
    fs.writeFileSync(
      stateFile,
      JSON.stringify({
        version: 1,
        state: "HALTED",
        by: "kill switch",
        reason: "old halt",
        at: "2026-01-05T04:00:00.000Z",
      }),
    );
    const r = await rigs.open({ stateFile, quiet: true });
    assert.equal(r.broker.risk.tradingState, "HALTED");
    await waitFor(() => fs.existsSync(witnessFile(stateFile)), "the witness", 5000);
    await r.broker.close(); // the guard's close waits for the witness
    await rigs.close(r.paper);
    fs.unlinkSync(stateFile);
    const again = await rigs.open({ stateFile, quiet: true });
    assert.equal(again.broker.risk.tradingState, "HALTED");
    assert.match(
      again.broker.risk.stateRecord.reason,
      /says HALTED since 2026-01-05T04:00:00.000Z \(kill switch: old halt\)/,
    );
  });
});
