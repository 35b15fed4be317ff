// An attacker's pass over the guard's halt: many places and modifies in parallel racing a halt,
// limits changed between one guard and the next (a redeploy), and the clock stepping back over
// midnight across a restart. The oracle is what reached the paper broker itself.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderChanges, OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import { rejectsWithCode } from "../contract/broker-contract";
import { outcome, waitFor } from "../support/wait";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);
const SEED = Number(process.env.RISK_HALT_RACE_SEED ?? 20261205);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  pnl: { value: number };
  /** Each place and modify the paper broker itself received, and whether a halt had been asked for then. */
  reached: { kind: string; afterHalt: boolean }[];
  halt: { asked: boolean };
}

const opened: PaperBroker[] = [];
const dirs: string[] = [];

function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-halt-race-"));
  dirs.push(dir);
  return path.join(dir, "risk-paper-a.json");
}

async function rig(
  stateFile: string,
  settings: RiskSettingsInput,
  options: { start?: number; pnl?: number } = {},
): Promise<Rig> {
  const clock = new ManualClock(options.start ?? MONDAY_10_IST);
  // The paper account lives in a journal beside the state file, as under Node-RED: a restart finds it.
  const paper = new PaperBroker(
    { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 },
    { clock, journalFile: path.join(path.dirname(stateFile), "paper-a.jsonl") },
  );
  opened.push(paper);
  const pnl = { value: options.pnl ?? 0 };
  const account = paper.getAccount.bind(paper);
  paper.getAccount = async () => ({ ...(await account()), realized_pnl: pnl.value, unrealized_pnl: 0 });
  const reached: Rig["reached"] = [];
  const halt = { asked: false };
  const place = paper.placeOrder.bind(paper);
  paper.placeOrder = (request: OrderRequestInput) => {
    reached.push({ kind: "place", afterHalt: halt.asked });
    return place(request);
  };
  const modify = paper.modifyOrder.bind(paper);
  paper.modifyOrder = (orderId: string, changes: OrderChanges) => {
    reached.push({ kind: "modify", afterHalt: halt.asked });
    return modify(orderId, changes);
  };
  const broker = guardBroker(paper, { settings, clock, stateFile, log: quiet, account: "paper-a" });
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, pnl, reached, halt };
}

function resting(quantity: number): OrderRequestInput {
  return { symbol: "INFY", side: "BUY", quantity, order_type: "LIMIT", price: 1400 };
}

describe(`RiskGuard attacked: halts, redeploys and clocks (seed ${SEED}; RISK_HALT_RACE_SEED to replay)`, function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("120 places and enlarging modifies in parallel, a halt among them: nothing reaches the broker after it was asked for (20 rounds)", async function () {
    const random = seededRandom(SEED);
    for (let round = 0; round < 20; round++) {
      const r = await rig(tmpFile(), { max_position_quantity: 100_000 });
      const open: OrderSnapshot[] = [];
      for (let i = 0; i < 5; i++) open.push(await r.broker.placeOrder(resting(1)));
      r.reached.length = 0;
      const haltAt = Math.floor(random() * 120);
      const outcomes: Promise<unknown>[] = [];
      let halting: Promise<unknown> | undefined;
      for (let i = 0; i < 120; i++) {
        if (i === haltAt) {
          r.halt.asked = true;
          halting = r.broker.risk.kill("halt", "kill switch", `round ${round}`);
        }
        const which = random();
        if (which < 0.5) outcomes.push(outcome(r.broker.placeOrder(resting(1))));
        else {
          const order = open[Math.floor(random() * open.length)]!;
          outcomes.push(outcome(r.broker.modifyOrder(order.order_id, { quantity: 2 + i })));
        }
        // Some calls in the same turn, some a microtask or a macrotask apart.
        const gap = random();
        if (gap < 0.3) await Promise.resolve();
        else if (gap < 0.4) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(outcomes);
      await halting;
      const late = r.reached.filter((c) => c.afterHalt);
      assert.deepEqual(late, [], `round ${round}: reached the broker after the halt (asked at ${haltAt})`);
      assert.ok(
        r.reached.length > 0 || haltAt < 2,
        `round ${round}: nothing reached the broker before the halt either`,
      );
      assert.equal(r.broker.risk.tradingState, "HALTED");
      await r.broker.close();
    }
  });

  it("a redeploy that tightens max_daily_loss below the day's loss refuses the first order after it (10 rounds)", async function () {
    for (let round = 0; round < 10; round++) {
      const stateFile = tmpFile();
      const before = await rig(stateFile, { max_daily_loss: 1000, pnl_check_ms: 100 });
      await waitFor(() => before.broker.risk.stateRecord.day_start_pnl === 0, "the day's start");
      await before.broker.close();
      // Lost 600 meanwhile; the new limit is 500.
      const after = await rig(stateFile, { max_daily_loss: 500, pnl_check_ms: 100 }, { pnl: -600 });
      await rejectsWithCode(
        after.broker.placeOrder(ONE),
        "RISK",
        /trading is HALTED \(daily loss 500 reached \(lost 600 since the start of 2026-01-05\)\)/,
      );
      assert.deepEqual(after.reached, [], `round ${round}`);
      await after.broker.close();
    }
  });

  it("a redeploy with looser limits (or none) never lets a halted account trade; each limit tightened applies to the first order", async function () {
    const stateFile = tmpFile();
    const first = await rig(stateFile, { max_daily_loss: 1000, pnl_check_ms: 100 }, { pnl: 0 });
    await waitFor(() => first.broker.risk.stateRecord.day_start_pnl === 0, "the day's start");
    first.pnl.value = -1001;
    await waitFor(() => {
      first.paper.setPrice("INFY", 1500 + Math.random());
      return first.broker.risk.tradingState === "HALTED";
    }, "the daily-loss halt");
    await first.broker.close();
    for (const looser of [
      {},
      { max_daily_loss: 1_000_000 },
      { max_order_quantity: 1_000_000, max_position_quantity: 1_000_000, max_open_orders: 1000 },
    ] as RiskSettingsInput[]) {
      const r = await rig(stateFile, looser, { pnl: 5000 });
      assert.equal(r.broker.risk.tradingState, "HALTED", JSON.stringify(looser));
      await rejectsWithCode(r.broker.placeOrder(ONE), "RISK", /trading is HALTED \(daily loss 1,000 reached/);
      assert.deepEqual(r.reached, []);
      await r.broker.close();
    }
    const resumed = await rig(stateFile, {});
    await resumed.broker.risk.setState("ACTIVE", "admin", "new limits");
    await resumed.broker.placeOrder(resting(5));
    await resumed.broker.close();
    // Tighter than what is held: the first order after the restart meets it.
    const tight = await rig(stateFile, {
      max_order_quantity: 2,
      max_position_quantity: 4,
      max_open_orders: 1,
    });
    await rejectsWithCode(tight.broker.placeOrder(resting(3)), "RISK", /\(max_order_quantity\)/);
    await rejectsWithCode(
      tight.broker.placeOrder(resting(1)),
      "RISK",
      /\((max_position_quantity|max_open_orders)\)/,
    );
    assert.deepEqual(tight.reached, []);
  });

  it("the clock stepping back over midnight across a restart keeps the day begun and its loss (4 restarts)", async function () {
    const stateFile = tmpFile();
    const TUESDAY_0010_IST = Date.UTC(2026, 0, 5, 18, 40);
    const tuesday = await rig(
      stateFile,
      { max_daily_loss: 1000, pnl_check_ms: 100 },
      { start: TUESDAY_0010_IST, pnl: -200 },
    );
    await waitFor(() => tuesday.broker.risk.stateRecord.day === "2026-01-06", "Tuesday's start");
    await tuesday.broker.close();
    // Restarts with the clock at Monday 23:55, 23:59, Tuesday 00:01 and 00:05, the loss growing.
    const steps = [-15, -11, -9, -5].map((minutes) => TUESDAY_0010_IST + minutes * 60_000);
    for (let i = 0; i < steps.length; i++) {
      const pnl = -200 - 300 * (i + 1);
      const r = await rig(stateFile, { max_daily_loss: 1000, pnl_check_ms: 100 }, { start: steps[i]!, pnl });
      await waitFor(() => r.broker.risk.stateRecord.last_pnl === pnl, `restart ${i}: a check`);
      assert.equal(r.broker.risk.stateRecord.day, "2026-01-06", `restart ${i}`);
      assert.equal(r.broker.risk.stateRecord.day_start_pnl, -200, `restart ${i}`);
      const lost = -200 - pnl;
      if (lost >= 1000) {
        await waitFor(() => r.broker.risk.tradingState === "HALTED", `restart ${i}: the halt at ${lost}`);
        await rejectsWithCode(r.broker.placeOrder(ONE), "RISK", /lost 1,200 since the start of 2026-01-06/);
      } else assert.equal(r.broker.risk.tradingState, "ACTIVE", `restart ${i}: lost ${lost}`);
      await r.broker.close();
    }
  });
  it("a state file swapped between restarts (foreign, linked, older version, emptied, torn, a directory) halts and says why, never trading (14 restarts)", async function () {
    const stateFile = tmpFile();
    const dir = path.dirname(stateFile);
    const theirs = path.join(dir, "risk-paper-b.json");
    const good = {
      version: 1,
      state: "ACTIVE",
      by: "admin",
      reason: "resumed",
      at: "2026-01-05T04:00:00.000Z",
      account: "paper-a",
    };
    fs.writeFileSync(theirs, JSON.stringify({ ...good, account: "paper-b" }));
    const swaps: [string, () => void, RegExp][] = [
      [
        "another account's file",
        () => fs.copyFileSync(theirs, stateFile),
        /belongs to account paper-b, not paper-a/,
      ],
      [
        "a link to another account's file",
        () => fs.symlinkSync(theirs, stateFile),
        /belongs to account paper-b/,
      ],
      [
        "an older format (version 0)",
        () => fs.writeFileSync(stateFile, JSON.stringify({ ...good, version: 0 })),
        /version/,
      ],
      ["an emptied file", () => fs.writeFileSync(stateFile, ""), /is not JSON/],
      ["a torn file", () => fs.writeFileSync(stateFile, JSON.stringify(good).slice(0, 40)), /is not JSON/],
      [
        "a state that is not one",
        () => fs.writeFileSync(stateFile, JSON.stringify({ ...good, state: "TRADING" })),
        /state/,
      ],
    ];
    swaps.push(["a directory in its place", () => fs.mkdirSync(stateFile), /cannot read|EISDIR/]);
    const random = seededRandom(SEED + 7);
    for (let restart = 0; restart < 14; restart++) {
      const [what, swap, why] = swaps[Math.floor(random() * swaps.length)]!;
      fs.rmSync(stateFile, { recursive: true, force: true });
      swap();
      const r = await rig(stateFile, {});
      assert.equal(r.broker.risk.tradingState, "HALTED", `restart ${restart}, ${what}`);
      const reason = r.broker.risk.stateRecord.reason;
      assert.match(reason, /state file unreadable|belongs to account/, `restart ${restart}, ${what}`);
      assert.match(reason, why, `restart ${restart}, ${what}: ${reason}`);
      await rejectsWithCode(
        r.broker.placeOrder(ONE),
        "RISK",
        /trading is HALTED \((state file unreadable|.*belongs to account)/,
      );
      assert.deepEqual(r.reached, [], `restart ${restart}, ${what}`);
      // A person looks, mends what a resume cannot, and resumes: the next process trades.
      if (what === "a directory in its place") fs.rmSync(stateFile, { recursive: true });
      await r.broker.risk.setState("ACTIVE", "admin", `checked after ${what}`);
      await r.broker.close();
      const mended = await rig(stateFile, {});
      assert.equal(
        mended.broker.risk.tradingState,
        "ACTIVE",
        `restart ${restart}, ${what}: after the resume`,
      );
      await mended.broker.placeOrder(ONE);
      await mended.broker.close();
    }
  });
});
