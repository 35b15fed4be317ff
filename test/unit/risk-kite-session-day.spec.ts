// A broker whose P&L the venue starts again each session (Kite, pnlResetsDaily) across midnight
// inside one running process: until the venue resets its positions the P&L still shows the last
// session's figure, so the day must start at the reset (09:00 IST, the pre-open), not at midnight
// with yesterday's figure as its start (or as a floor). Otherwise a good Monday reads as a loss on
// Tuesday (a false halt), and a bad Monday as a cushion that widens Tuesday's limit.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { sessionDay } from "../../lib/risk/trading-day";
import { STILL_PAPER } from "../support/risk-rig";
import { waitFor } from "../support/wait";

const MONDAY_14_IST = Date.UTC(2026, 0, 5, 8, 30);
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const MAX_LOSS = 1000;

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  pnl: { value: number };
  reads: { started: number; answered: number };
}

const opened: PaperBroker[] = [];
const dirs: string[] = [];

async function rig(stateFile: string, pnlResetsDaily: boolean): Promise<Rig> {
  const clock = new ManualClock(MONDAY_14_IST);
  const paper = new PaperBroker(STILL_PAPER, { clock });
  if (pnlResetsDaily) Object.defineProperty(paper, "pnlResetsDaily", { value: true });
  opened.push(paper);
  const pnl = { value: 0 };
  const reads = { started: 0, answered: 0 };
  const account = paper.getAccount.bind(paper);
  // The account as the venue reports it: the test sets its P&L.
  paper.getAccount = async () => {
    reads.started += 1;
    const answer = { ...(await account()), realized_pnl: pnl.value, unrealized_pnl: 0 };
    reads.answered += 1;
    return answer;
  };
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: MAX_LOSS, pnl_check_ms: 100 },
    clock,
    stateFile,
  });
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, pnl, reads };
}

/** Sets the P&L and waits until a check begun after that has read it. */
async function see(r: Rig, pnl: number): Promise<void> {
  r.pnl.value = pnl;
  for (let i = 0; i < 2; i++) {
    const started = r.reads.started;
    await waitFor(
      () => {
        r.paper.setPrice("INFY", 1500 + Math.random());
        return r.reads.started > started;
      },
      `a daily-loss check after the P&L ${pnl}`,
      5000,
    );
  }
  await waitFor(() => r.reads.answered === r.reads.started, "its read", 5000);
}

/** Moves the wall clock forward to `at`. */
function to(r: Rig, at: number): void {
  r.clock.advance(at - r.clock.now());
}

function stateFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-kite-day-"));
  dirs.push(dir);
  return path.join(dir, "risk-kite.json");
}

/** Monday 14:00 IST, then these times after it: Tuesday 00:10, 06:30 and 08:59 IST (before the reset). */
const NIGHT = [10 * HOUR_MS + 10 * MINUTE_MS, 16 * HOUR_MS + 30 * MINUTE_MS, 18 * HOUR_MS + 59 * MINUTE_MS];
/** Tuesday 09:00 IST: the venue has reset its positions. */
const RESET = 19 * HOUR_MS;

describe("RiskGuard: a P&L the venue resets each session (Kite), across midnight in one process", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the session day turns at 09:00 IST", function () {
    assert.equal(sessionDay(MONDAY_14_IST), "2026-01-05");
    assert.equal(sessionDay(MONDAY_14_IST + NIGHT[2]!), "2026-01-05");
    assert.equal(sessionDay(MONDAY_14_IST + RESET - 1), "2026-01-05");
    assert.equal(sessionDay(MONDAY_14_IST + RESET), "2026-01-06");
  });

  it("a good Monday is no loss on Tuesday: the day starts at the reset, not at midnight", async function () {
    const file = stateFile();
    const r = await rig(file, true);
    await see(r, 0);
    await see(r, 3000); // Monday made 3,000
    // Past midnight the venue still shows Monday's 3,000, at every reading until its reset.
    for (const at of NIGHT) {
      to(r, MONDAY_14_IST + at);
      await see(r, 3000);
      assert.equal(r.broker.risk.stateRecord.day, "2026-01-05", `the day at +${at / HOUR_MS} h`);
    }
    to(r, MONDAY_14_IST + RESET);
    await see(r, 0); // the reset: Tuesday starts from nothing
    assert.equal(r.broker.risk.tradingState, "ACTIVE", r.broker.risk.stateRecord.reason);
    assert.equal(r.broker.risk.stateRecord.day, "2026-01-06");
    assert.equal(r.broker.risk.stateRecord.day_start_pnl, 0);
    await see(r, -900);
    assert.equal(r.broker.risk.tradingState, "ACTIVE");
    // A real loss on Tuesday still halts, and says since when.
    await see(r, -1000);
    await waitFor(() => r.broker.risk.tradingState === "HALTED", "Tuesday's halt", 5000);
    assert.match(r.broker.risk.stateRecord.reason, /lost 1,000 since the start of 2026-01-06/);
    await r.broker.close();
    const saved = await loadState(file);
    assert.ok(saved.kind === "ok" && saved.record.day === "2026-01-06" && saved.record.day_start_pnl === 0);
  });

  it("a bad Monday is no cushion on Tuesday: a loss of the limit after the reset halts", async function () {
    const r = await rig(stateFile(), true);
    await see(r, 0);
    await see(r, -900); // Monday lost 900, under the limit
    for (const at of NIGHT) {
      to(r, MONDAY_14_IST + at);
      await see(r, -900);
    }
    to(r, MONDAY_14_IST + RESET + 5 * MINUTE_MS);
    await see(r, 0);
    assert.equal(r.broker.risk.stateRecord.day_start_pnl, 0);
    await see(r, -1100); // Tuesday's own loss: 1,100
    await waitFor(() => r.broker.risk.tradingState === "HALTED", "Tuesday's halt", 5000);
    assert.match(r.broker.risk.stateRecord.reason, /lost 1,100 since the start of 2026-01-06/);
  });

  it("a running total (paper) keeps its day at midnight", async function () {
    const r = await rig(stateFile(), false);
    await see(r, 0);
    await see(r, 200);
    to(r, MONDAY_14_IST + NIGHT[0]!);
    await see(r, 200);
    assert.equal(r.broker.risk.stateRecord.day, "2026-01-06");
    assert.equal(r.broker.risk.stateRecord.day_start_pnl, 200);
  });
});
