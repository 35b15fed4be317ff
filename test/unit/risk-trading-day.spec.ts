import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { waitFor } from "../support/wait";

/** Monday 2026-01-05 23:59:59.900 IST (18:29:59.900 UTC). */
const MONDAY_LAST_TICK = Date.UTC(2026, 0, 5, 18, 29, 59, 900);

interface DayRig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  /** The guard's wall clock: set by hand, forward or back. */
  wall: { at: number };
  pnl: { value: number };
  /** Every day the record took a new baseline for, in order. */
  baselines: string[];
  warnings: string[];
}

const opened: { close(): Promise<void> }[] = [];

async function dayRig(stateFile: string, start: number, startPnl = 0): Promise<DayRig> {
  const wall = { at: start };
  const paper = new PaperBroker(
    { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 },
    { clock: new ManualClock(start) },
  );
  opened.push(paper);
  const pnl = { value: startPnl };
  const account = paper.getAccount.bind(paper);
  paper.getAccount = async () => ({ ...(await account()), realized_pnl: pnl.value, unrealized_pnl: 0 });
  const warnings: string[] = [];
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: 1000, pnl_check_ms: 100 },
    clock: { now: () => wall.at },
    stateFile,
    log: { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  const baselines: string[] = [];
  let last: string | undefined;
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  const watch = setInterval(() => {
    const day = broker.risk.stateRecord.day;
    if (day !== undefined && day !== last) {
      baselines.push(`${day} from ${broker.risk.stateRecord.day_start_pnl}`);
      last = day;
    }
  }, 1);
  opened.push({
    close: () => {
      clearInterval(watch);
      return Promise.resolve();
    },
  });
  return { broker, paper, wall, pnl, baselines, warnings };
}

/** Moves the P&L and lets the guard check it (a quote is what makes it look, at most every 100 ms). */
async function check(rig: DayRig, pnl: number, price: number): Promise<void> {
  rig.pnl.value = pnl;
  await new Promise((resolve) => setTimeout(resolve, 130));
  rig.paper.setPrice("INFY", price);
  await new Promise((resolve) => setTimeout(resolve, 30));
}

describe("RiskGuard: the trading day's edges (Asia/Kolkata)", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("the clock stepping back over midnight neither restarts the day nor forgets its loss", async function () {
    const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "risk-day-")), "risk.json");
    const rig = await dayRig(stateFile, MONDAY_LAST_TICK);
    await waitFor(() => rig.broker.risk.stateRecord.day === "2026-01-05", "Monday's baseline");
    await check(rig, -600, 1500); // Monday: lost 600
    rig.wall.at = MONDAY_LAST_TICK + 200; // 00:00:00.100 Tuesday
    await check(rig, -600, 1501);
    await waitFor(() => rig.broker.risk.stateRecord.day === "2026-01-06", "Tuesday's baseline");
    await check(rig, -1100, 1502); // Tuesday: lost 500
    rig.wall.at = MONDAY_LAST_TICK + 50; // an NTP step back to Monday 23:59:59.950
    await check(rig, -1100, 1503);
    rig.wall.at = MONDAY_LAST_TICK + 5000; // forward again
    await check(rig, -1700, 1504); // Tuesday: lost 1,100 in all
    await waitFor(
      () => rig.broker.risk.tradingState === "HALTED",
      `the halt (baselines ${rig.baselines.join(", ")})`,
    );
    assert.match(rig.broker.risk.stateRecord.reason, /lost 1,100 since the start of 2026-01-06/);
    assert.deepEqual(rig.baselines, ["2026-01-05 from 0", "2026-01-06 from -600"]);
    assert.ok(
      rig.warnings.some((w) => /the clock reads 2026-01-05, before the trading day 2026-01-06/.test(w)),
    );
    const saved = await loadState(stateFile);
    assert.ok(
      saved.kind === "ok" && saved.record.day === "2026-01-06" && saved.record.day_start_pnl === -600,
    );
  });

  it("a day's baseline is taken exactly once however many checks and restarts straddle midnight (10 restarts)", async function () {
    const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "risk-day-")), "risk.json");
    const days: string[] = [];
    for (let restart = 0; restart < 10; restart++) {
      // Restarts 0-4 on Monday's last second, 5-9 on Tuesday's first, one backwards in between.
      const at =
        MONDAY_LAST_TICK + (restart < 5 ? restart * 10 : 100 + restart * 10) - (restart === 7 ? 300 : 0);
      const rig = await dayRig(stateFile, at, -10 * restart);
      await waitFor(() => rig.broker.risk.stateRecord.day !== undefined, `restart ${restart}: a check`);
      await check(rig, -10 * restart, 1500 + restart);
      const record = rig.broker.risk.stateRecord;
      days.push(`${record.day} from ${record.day_start_pnl}`);
      await rig.broker.close();
    }
    // Tuesday starts at the higher of Monday's last P&L seen (restart 4: -40, kept in the state
    // file) and the first read on Tuesday (restart 5: -50): the 10 lost around midnight count Tuesday.
    assert.deepEqual(days, [...Array(5).fill("2026-01-05 from 0"), ...Array(5).fill("2026-01-06 from -40")]);
  });
});
