// A halt gates orders from the moment it is decided, not from the moment the state file holds it:
// RISK_STATE_CHANGED may wait for the disk, the refusals may not. The decision is the kill switch's
// call, or the daily-loss check's read of a P&L past the limit (marked here by a getter on the
// account the broker answers, which the guard reads synchronously). A slow disk is a FIFO at the
// state file's temporary path: its open waits until the test lets it go.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { OrderSnapshot } from "../../lib/protocol";
import type { RiskEvent } from "../../lib/protocol/events";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import type { Outcome } from "../support/wait";
import { outcome, waitFor } from "../support/wait";

/** Monday 2026-01-05 23:59:00 IST; Tuesday 00:00:30 IST. */
const MONDAY_2359_IST = Date.UTC(2026, 0, 5, 18, 29, 0);
const TUESDAY_0000_IST = Date.UTC(2026, 0, 5, 18, 30, 30);
const MAX_LOSS = 1000;
const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  pnl: { value: number };
  events: RiskEvent[];
  /** Called, synchronously, when the guard reads a P&L past the limit: the halt is decided then. */
  onLossRead: { hook: (() => void) | undefined };
  reads: { started: number; answered: number };
}

const opened: PaperBroker[] = [];
const dirs: string[] = [];
const readers: number[] = [];

async function rig(stateFile: string, start: number): Promise<Rig> {
  const clock = new ManualClock(start);
  const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  opened.push(paper);
  const pnl = { value: 0 };
  const onLossRead: Rig["onLossRead"] = { hook: undefined };
  const reads = { started: 0, answered: 0 };
  const account = paper.getAccount.bind(paper);
  paper.getAccount = async () => {
    reads.started += 1;
    const answer = { ...(await account()), unrealized_pnl: 0 };
    const value = pnl.value;
    Object.defineProperty(answer, "realized_pnl", {
      enumerable: true,
      get: () => {
        const hook = onLossRead.hook;
        if (value <= -MAX_LOSS && hook !== undefined) {
          onLossRead.hook = undefined;
          hook();
        }
        return value;
      },
    });
    reads.answered += 1;
    return answer;
  };
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: MAX_LOSS, pnl_check_ms: 100 },
    clock,
    stateFile,
    log: quiet,
  });
  const events: RiskEvent[] = [];
  broker.risk.on("event", (event) => events.push(event));
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, pnl, events, onLossRead, reads };
}

function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-gate-"));
  dirs.push(dir);
  return path.join(dir, "risk-paper-a.json");
}

/** Places one order in each of the next `steps` microtasks; the outcomes, in order. */
function placeInMicrotasks(broker: Guarded<PaperBroker>, steps: number): Promise<Outcome<OrderSnapshot>>[] {
  const outcomes: Promise<Outcome<OrderSnapshot>>[] = [];
  const step = (left: number): void => {
    outcomes.push(outcome(broker.placeOrder(ONE)));
    if (left > 1) queueMicrotask(() => step(left - 1));
  };
  queueMicrotask(() => step(steps));
  return outcomes;
}

function passed(outcomes: Outcome<OrderSnapshot>[]): number[] {
  return outcomes.flatMap((o, i) => (o.ok ? [i] : []));
}

/** A FIFO at the temporary path: the next save's open waits until `release`. */
function blockSaves(stateFile: string): { release(): void } {
  const tmp = `${stateFile}.tmp`;
  execFileSync("mkfifo", [tmp]);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      // The waiting open goes on (its fsync on the pipe then fails); later saves meet a real file.
      readers.push(fs.openSync(tmp, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
      fs.unlinkSync(tmp);
    },
  };
}

describe("RiskGuard: a halt gates orders at once, before the disk has it", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    for (const fd of readers.splice(0)) fs.closeSync(fd);
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("no order placed in the microtasks after the daily-loss check read the loss passes (10 rounds)", async function () {
    for (let round = 0; round < 10; round++) {
      const r = await rig(tmpFile(), MONDAY_2359_IST - 60 * 60_000);
      await waitFor(() => r.broker.risk.stateRecord.day_start_pnl === 0, `round ${round}: the day's start`);
      let placed: Promise<Outcome<OrderSnapshot>>[] = [];
      r.onLossRead.hook = () => (placed = placeInMicrotasks(r.broker, 20));
      r.pnl.value = -MAX_LOSS - 1 - round;
      await waitFor(
        () => {
          r.paper.setPrice("INFY", 1500 + Math.random());
          return placed.length === 20;
        },
        `round ${round}: a check that read the loss`,
        5000,
      );
      const outcomes = await Promise.all(placed);
      assert.deepEqual(passed(outcomes), [], `round ${round}: placed after the loss was read`);
      await waitFor(() => r.broker.risk.tradingState === "HALTED", `round ${round}: halted`);
      await r.broker.close();
    }
  });

  it("an order placed right after the kill switch was called is refused (10 rounds)", async function () {
    for (let round = 0; round < 10; round++) {
      const r = await rig(tmpFile(), MONDAY_2359_IST - 60 * 60_000);
      const halting = r.broker.risk.kill("halt", "kill switch k1", `round ${round}`);
      const first = outcome(r.broker.placeOrder(ONE));
      const next = placeInMicrotasks(r.broker, 5);
      const outcomes = [await first, ...(await Promise.all(next))];
      assert.deepEqual(passed(outcomes), [], `round ${round}: placed after the halt was asked for`);
      assert.equal((await halting).state, "HALTED");
      await r.broker.close();
    }
  });

  it("the first check after midnight reads a loss while the disk holds the new day's start: refused until and after it is written (4 rounds)", async function () {
    for (let round = 0; round < 4; round++) {
      const stateFile = tmpFile();
      const r = await rig(stateFile, MONDAY_2359_IST);
      await waitFor(() => r.broker.risk.stateRecord.day === "2026-01-05", `round ${round}: Monday's start`);
      // Monday's saves are done once the file holds the start; nothing else moves the P&L until now.
      await waitFor(() => fs.existsSync(stateFile), `round ${round}: Monday saved`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const disk = blockSaves(stateFile);
      try {
        r.clock.advance(TUESDAY_0000_IST - MONDAY_2359_IST);
        r.pnl.value = -MAX_LOSS - 200; // lost after midnight, before the first check of Tuesday
        let decided = false;
        r.onLossRead.hook = () => (decided = true);
        await waitFor(
          () => {
            r.paper.setPrice("INFY", 1500 + Math.random());
            return decided;
          },
          `round ${round}: Tuesday's first check`,
          5000,
        );
        // The disk is stuck: for 300 ms every place (and a GTT) must be refused.
        const tries: Promise<Outcome<OrderSnapshot>>[] = [];
        const until = performance.now() + 300;
        while (performance.now() < until) {
          tries.push(outcome(r.broker.placeOrder(ONE)));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        const outcomes = await Promise.all(tries);
        assert.deepEqual(passed(outcomes), [], `round ${round}: placed while the halt waited for the disk`);
        for (const o of outcomes) {
          assert.ok(!o.ok);
          assert.match(String((o.error as Error).message), /trading is HALTED \(daily loss 1,000 reached/);
        }
        await rejectsWithCode(
          r.broker.placeGtt({
            type: "single",
            symbol: "INFY",
            trigger_values: [1400],
            orders: [{ side: "BUY", quantity: 1, price: 1400 }],
          }),
          "RISK",
        );
        assert.equal(r.broker.risk.tradingState, "HALTED");
      } finally {
        disk.release();
      }
      // The announcement comes once the disk let go (that save failed on the pipe; a retry lands).
      await waitFor(
        () => r.events.some((e) => e.type === "RISK_STATE_CHANGED" && e.state === "HALTED"),
        `round ${round}: RISK_STATE_CHANGED`,
        5000,
      );
      // A refusal retries the failed save.
      await waitFor(
        () => {
          void r.broker.placeOrder(ONE).catch(() => undefined);
          return r.broker.risk.unsaved === undefined;
        },
        `round ${round}: saved`,
        5000,
      );
      const saved = await loadState(stateFile);
      assert.ok(saved.kind === "ok" && saved.record.state === "HALTED", `round ${round}: on disk`);
      await rejectsWithCode(r.broker.placeOrder(ONE), "RISK");
      await r.broker.close();
    }
  });
});
