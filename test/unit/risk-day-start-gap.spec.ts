// Node-RED down at midnight: the first process of a day must not take its own first P&L read as
// the day's start, which would forgive every loss made between the last reading it (or an earlier
// process) saw and that read. The state file keeps the last P&L seen and when; a day whose start
// nobody saw starts at the higher of that and the first read (erring towards refusal).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import { waitFor } from "../support/wait";

/** Monday 2026-01-05 14:00 IST, and the same hour on Tuesday. */
const MONDAY_14_IST = Date.UTC(2026, 0, 5, 8, 30);
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MAX_LOSS = 1000;
const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  pnl: { value: number };
  /** Account reads begun and answered (the guard's daily-loss checks). */
  reads: { started: number; answered: number };
  warnings: string[];
}

const opened: PaperBroker[] = [];

async function rig(
  stateFile: string,
  start: number,
  pnl: number,
  options: { pnlResetsDaily?: boolean } = {},
): Promise<Rig> {
  const clock = new ManualClock(start);
  const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  if (options.pnlResetsDaily === true) Object.defineProperty(paper, "pnlResetsDaily", { value: true });
  opened.push(paper);
  const state = { value: pnl };
  const account = paper.getAccount.bind(paper);
  const reads = { started: 0, answered: 0 };
  // The account as the broker reports it: it lives on while Node-RED is down.
  paper.getAccount = async () => {
    reads.started += 1;
    const answer = { ...(await account()), realized_pnl: state.value, unrealized_pnl: 0 };
    reads.answered += 1;
    return answer;
  };
  const warnings: string[] = [];
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: MAX_LOSS, pnl_check_ms: 100 },
    clock,
    stateFile,
    log: { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, pnl: state, reads, warnings };
}

/**
 * Moves the P&L and waits until the guard has read it: checks run one at a time, so a read begun
 * after two more quotes means the one that saw the new figure is done (its save queued, which a
 * close waits for).
 */
async function see(r: Rig, pnl: number, price: number): Promise<void> {
  r.pnl.value = pnl;
  for (let i = 0; i < 2; i++) {
    const started = r.reads.started;
    await waitFor(
      () => {
        r.paper.setPrice("INFY", price + i / 10 + Math.random() / 100);
        return r.reads.started > started;
      },
      `a daily-loss check after the P&L ${pnl}`,
      5000,
    );
  }
  await waitFor(() => r.reads.answered === r.reads.started, "its read", 5000);
}

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), "risk-gap-")), "risk-paper-a.json");
}

describe("RiskGuard: a day whose start no process saw (Node-RED down at midnight)", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  for (const [what, stopAt, restartAt] of [
    ["stopped Monday 15:30, started Tuesday 10:00", 1.5 * HOUR_MS, DAY_MS - 4 * HOUR_MS],
    ["stopped Monday 23:50, started Tuesday 00:10", 9 * HOUR_MS + 50 * 60_000, 10 * HOUR_MS + 10 * 60_000],
    [
      "stopped Monday 15:30, started Thursday 10:00 (three days down)",
      1.5 * HOUR_MS,
      3 * DAY_MS - 4 * HOUR_MS,
    ],
  ] as const) {
    it(`${what}: the loss since the last P&L seen counts today and halts at the limit`, async function () {
      const stateFile = tmpFile();
      const monday = await rig(stateFile, MONDAY_14_IST, 0);
      await see(monday, 0, 1500);
      monday.clock.advance(stopAt / 2);
      await see(monday, 500, 1501); // a gain the account then gave back while nobody watched
      monday.clock.advance(stopAt / 2);
      await monday.broker.close();
      // Down at midnight. The account lost 1,100 since the last reading; the first read of the
      // new day is that lower figure.
      const tuesday = await rig(stateFile, MONDAY_14_IST + restartAt, -600);
      await waitFor(() => tuesday.broker.risk.tradingState === "HALTED", "the halt", 5000);
      const day = new Date(MONDAY_14_IST + restartAt + 5.5 * HOUR_MS).toISOString().slice(0, 10);
      assert.match(
        tuesday.broker.risk.stateRecord.reason,
        new RegExp(`daily loss 1,000 reached \\(lost 1,100 since the start of ${day}\\)`),
      );
      assert.equal(tuesday.broker.risk.stateRecord.day_start_pnl, 500);
      await rejectsWithCode(tuesday.broker.placeOrder(ONE), "RISK", /trading is HALTED \(daily loss/);
      assert.ok(
        tuesday.warnings.some((w) => w.includes(`${day} starts at the P&L last seen`)),
        tuesday.warnings.join("\n"),
      );
      await tuesday.broker.close();
      // And the next process that day keeps that start.
      const again = await rig(stateFile, MONDAY_14_IST + restartAt + HOUR_MS, -600);
      assert.equal(again.broker.risk.tradingState, "HALTED");
      assert.equal(again.broker.risk.stateRecord.day_start_pnl, 500);
    });
  }

  it("a broker whose P&L is the day's own (Kite): yesterday's gain is no floor for today's start", async function () {
    const stateFile = tmpFile();
    const monday = await rig(stateFile, MONDAY_14_IST, 0);
    await see(monday, 3000, 1500); // a good Monday
    await monday.broker.close();
    // Tuesday's positions start again at 0: not a loss of 3,000.
    const tuesday = await rig(stateFile, MONDAY_14_IST + DAY_MS, 0, { pnlResetsDaily: true });
    await waitFor(() => tuesday.broker.risk.stateRecord.day === "2026-01-06", "Tuesday's start");
    assert.equal(tuesday.broker.risk.stateRecord.day_start_pnl, 0);
    assert.equal(tuesday.broker.risk.tradingState, "ACTIVE");
  });

  it("a gain before the first read is no cushion: the start is the higher figure, so a later fall halts", async function () {
    const stateFile = tmpFile();
    const monday = await rig(stateFile, MONDAY_14_IST, 0);
    await see(monday, -200, 1500);
    await monday.broker.close();
    const tuesday = await rig(stateFile, MONDAY_14_IST + DAY_MS, 300);
    await waitFor(() => tuesday.broker.risk.stateRecord.day === "2026-01-06", "Tuesday's start");
    assert.equal(tuesday.broker.risk.stateRecord.day_start_pnl, 300);
    assert.equal(tuesday.broker.risk.tradingState, "ACTIVE");
    await see(tuesday, -650, 1502); // lost 950 today
    assert.equal(tuesday.broker.risk.tradingState, "ACTIVE");
    tuesday.pnl.value = -710; // 1,010 today
    await waitFor(
      () => {
        tuesday.paper.setPrice("INFY", 1503 + Math.random());
        return tuesday.broker.risk.tradingState === "HALTED";
      },
      "the halt at 1,010",
      5000,
    );
  });

  it("a state file from before the last P&L was kept: the last known start counts as the P&L seen", async function () {
    const stateFile = tmpFile();
    fs.writeFileSync(
      stateFile,
      JSON.stringify({
        version: 1,
        state: "ACTIVE",
        by: "kill switch",
        reason: "resumed",
        at: "2026-01-05T08:30:00.000Z",
        day: "2026-01-05",
        day_start_pnl: 0,
      }),
    );
    const tuesday = await rig(stateFile, MONDAY_14_IST + DAY_MS, -1200);
    await waitFor(() => tuesday.broker.risk.tradingState === "HALTED", "the halt", 5000);
    assert.match(tuesday.broker.risk.stateRecord.reason, /lost 1,200 since the start of 2026-01-06/);
  });

  it("the last P&L seen is kept across restarts the same day without moving the day's start", async function () {
    const stateFile = tmpFile();
    for (let restart = 0; restart < 6; restart++) {
      const r = await rig(stateFile, MONDAY_14_IST + restart * 60_000, -100 * restart);
      await see(r, -100 * restart - 50, 1500 + restart);
      assert.equal(r.broker.risk.stateRecord.day_start_pnl, 0, `restart ${restart}`);
      await r.broker.close();
    }
    const saved = await loadState(stateFile);
    assert.ok(saved.kind === "ok");
    assert.equal(saved.record.last_pnl, -550);
    assert.equal(saved.record.last_pnl_at, new Date(MONDAY_14_IST + 5 * 60_000).toISOString());
  });
});
