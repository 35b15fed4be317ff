import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { RiskEvent } from "../../lib/protocol/events";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import { loadState } from "../../lib/risk/state-file";
import { rejectsWithCode } from "../contract/broker-contract";
import { waitFor } from "../support/wait";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);
const DAY_MS = 86_400_000;
const SEED = Number(process.env.RISK_STATE_SEED ?? 20261205);

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  events: RiskEvent[];
  logged: string[];
  /** The account's P&L as the broker reports it (realized; what the daily loss counts). */
  pnl: { value: number };
}

const opened: PaperBroker[] = [];

async function rig(
  stateFile: string,
  settings: RiskSettingsInput = {},
  options: { start?: number; account?: string; pnl?: number } = {},
): Promise<Rig> {
  const clock = new ManualClock(options.start ?? MONDAY_10_IST);
  const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  opened.push(paper);
  const pnl = { value: options.pnl ?? 0 };
  const account = paper.getAccount.bind(paper);
  // The P&L of an account that lived before this process: what a restart finds at the broker.
  paper.getAccount = async () => ({ ...(await account()), realized_pnl: pnl.value, unrealized_pnl: 0 });
  const logged: string[] = [];
  const log = {
    info: (m: string) => logged.push(`info ${m}`),
    warn: (m: string) => logged.push(`warn ${m}`),
    error: (m: string) => logged.push(`error ${m}`),
  };
  const broker = guardBroker(paper, {
    settings,
    clock,
    stateFile,
    log,
    ...(options.account === undefined ? {} : { account: options.account }),
  });
  const events: RiskEvent[] = [];
  broker.risk.on("event", (event) => events.push(event));
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, events, logged, pnl };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "risk-state-"));
}

const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;

describe(`RiskGuard: the state that protects money survives (seed ${SEED}; RISK_STATE_SEED to replay)`, function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("HALTED and REDUCING hold across 10 restarts in a row, each set by a different process", async function () {
    const stateFile = path.join(tmpDir(), "risk-paper-a.json");
    const plan = [
      "REDUCING",
      "REDUCING",
      "HALTED",
      "HALTED",
      "HALTED",
      "REDUCING",
      "HALTED",
      "HALTED",
      "REDUCING",
      "HALTED",
    ] as const;
    let expected: string = "ACTIVE";
    for (let restart = 0; restart < plan.length; restart++) {
      const { broker } = await rig(stateFile);
      assert.equal(
        broker.risk.tradingState,
        expected,
        `restart ${restart}: came back ${broker.risk.tradingState}`,
      );
      if (expected !== "ACTIVE") {
        await rejectsWithCode(
          broker.placeOrder(ONE),
          "RISK",
          /trading is (HALTED|REDUCING).*\(trading_state\)/,
        );
      }
      await broker.risk.setState(plan[restart]!, `kill switch ${restart}`, `restart ${restart}`);
      expected = plan[restart]!;
      await broker.close();
    }
  });

  it("the day's P&L baseline holds across 10 restarts: a loss spread over them halts at the limit", async function () {
    const stateFile = path.join(tmpDir(), "risk-paper-a.json");
    for (let restart = 0; restart < 10; restart++) {
      // Each process finds the account 100 lower than the last one did.
      const { broker, logged } = await rig(
        stateFile,
        { max_daily_loss: 850, pnl_check_ms: 100 },
        { pnl: -100 * restart },
      );
      await waitFor(
        () => broker.risk.stateRecord.day_start_pnl !== undefined,
        `restart ${restart}: the first check`,
      );
      assert.equal(broker.risk.stateRecord.day, "2026-01-05");
      assert.equal(broker.risk.stateRecord.day_start_pnl, 0, `restart ${restart}: the baseline was reset`);
      if (restart < 9) assert.equal(broker.risk.tradingState, "ACTIVE", logged.join("\n"));
      else {
        await waitFor(() => broker.risk.tradingState === "HALTED", "the halt at a loss of 900");
        assert.match(
          broker.risk.stateRecord.reason,
          /daily loss 850 reached \(lost 900 since the start of 2026-01-05\)/,
        );
      }
      await broker.close();
    }
  });

  it("a SIGKILL during the state file's write (8 kills, real child process) leaves the old record or the new, never ACTIVE", async function () {
    const random = seededRandom(SEED);
    const dir = tmpDir();
    const stateFile = path.join(dir, "risk-paper-a.json");
    const module = path.resolve(__dirname, "../../lib/risk/state-file.js");
    // Writes HALTED and REDUCING records back to back as fast as the disk takes them.
    const script = `
      const { saveState } = require(${JSON.stringify(module)});
      const file = ${JSON.stringify(stateFile)};
      (async () => {
        for (let n = 0; ; n++) {
          await saveState(file, { version: 1, state: n % 2 ? "REDUCING" : "HALTED", by: "writer", reason: "write " + n + " " + "x".repeat(n % 4000), at: new Date().toISOString(), day: "2026-01-05", day_start_pnl: -n });
          if (n === 0) process.stdout.write("ready\\n");
        }
      })();`;
    for (let kill = 0; kill < 8; kill++) {
      const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(random() * 40)));
      child.kill("SIGKILL");
      await exited;
      const loaded = await loadState(stateFile);
      assert.equal(loaded.kind, "ok", `kill ${kill}: ${loaded.kind === "corrupt" ? loaded.why : ""}`);
      assert.ok(loaded.kind === "ok" && loaded.record.state !== "ACTIVE");
      const { broker } = await rig(stateFile);
      assert.notEqual(broker.risk.tradingState, "ACTIVE", `kill ${kill}`);
      await broker.close();
    }
  });

  it("a torn, garbled or foreign state file (16 shapes) halts and every order is refused RISK naming the file", async function () {
    const random = seededRandom(SEED + 1);
    const whole = JSON.stringify(
      {
        version: 1,
        state: "ACTIVE",
        by: "kill switch",
        reason: "resumed",
        at: "2026-01-05T04:00:00.000Z",
        day: "2026-01-05",
        day_start_pnl: 0,
      },
      null,
      2,
    );
    const shapes: [string, string | Buffer][] = [];
    for (let i = 0; i < 10; i++) {
      const cut = 1 + Math.floor(random() * (whole.length - 2));
      shapes.push([`torn at byte ${cut}`, whole.slice(0, cut)]);
    }
    shapes.push([
      "binary garbage",
      Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256))),
    ]);
    shapes.push(["a later version", whole.replace('"version": 1', '"version": 2')]);
    shapes.push(["a negative baseline as text", whole.replace('"day_start_pnl": 0', '"day_start_pnl": "0"')]);
    shapes.push(["an array", "[]"]);
    shapes.push(["zeros (a torn block)", Buffer.alloc(512)]);
    shapes.push([
      "a record with an unknown field",
      whole.replace('"version": 1', '"version": 1, "override": true'),
    ]);
    for (const [what, content] of shapes) {
      const stateFile = path.join(tmpDir(), "risk-paper-a.json");
      fs.writeFileSync(stateFile, content);
      const { broker, events } = await rig(stateFile);
      assert.equal(broker.risk.tradingState, "HALTED", what);
      await rejectsWithCode(
        broker.placeOrder(ONE),
        "RISK",
        new RegExp(
          `state file unreadable.*${stateFile.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}.*\\(trading_state\\)`,
        ),
      );
      assert.equal(events.filter((e) => e.type === "ORDER_DENIED").length, 1, what);
      await broker.close();
    }
  });

  it("a state file that is a directory halts, naming it", async function () {
    const stateFile = path.join(tmpDir(), "risk-paper-a.json");
    fs.mkdirSync(stateFile);
    const { broker } = await rig(stateFile);
    assert.equal(broker.risk.tradingState, "HALTED");
    // It cannot be replaced by a readable HALTED record either: the refusal says so.
    await rejectsWithCode(
      broker.placeOrder(ONE),
      "RISK",
      /risk-paper-a\.json.*\((state_file|trading_state)\)/,
    );
  });

  it("a state file from another account is not believed: HALTED, naming the file and both accounts", async function () {
    const dir = tmpDir();
    const theirs = path.join(dir, "risk-paper-b.json");
    const ours = path.join(dir, "risk-paper-a.json");
    const b = await rig(theirs, {}, { account: "paper-b" });
    await b.broker.risk.setState("ACTIVE", "admin", "b trades");
    await b.broker.close();
    fs.copyFileSync(theirs, ours);
    const a = await rig(ours, {}, { account: "paper-a" });
    assert.equal(a.broker.risk.tradingState, "HALTED");
    await rejectsWithCode(
      a.broker.placeOrder(ONE),
      "RISK",
      /risk-paper-a\.json belongs to account paper-b, not paper-a \(state_file\).*\(trading_state\)/,
    );
    // A person resumes: the file is ours from then on, and the next process trades.
    await a.broker.risk.setState("ACTIVE", "admin", "checked");
    await a.broker.close();
    const again = await rig(ours, {}, { account: "paper-a" });
    assert.equal(again.broker.risk.tradingState, "ACTIVE");
    assert.equal(
      (await loadState(ours)).kind === "ok" && JSON.parse(fs.readFileSync(ours, "utf8")).account,
      "paper-a",
    );
    await again.broker.placeOrder(ONE);
  });

  it("HALTED from yesterday stays HALTED today; yesterday's baseline gives way to today's once", async function () {
    const stateFile = path.join(tmpDir(), "risk-paper-a.json");
    const monday = await rig(stateFile, { max_daily_loss: 1000 }, { pnl: 500 });
    await waitFor(() => monday.broker.risk.stateRecord.day === "2026-01-05", "Monday's baseline");
    await monday.broker.risk.setState("HALTED", "kill switch", "Monday's panic");
    await monday.broker.close();
    const tuesday = await rig(
      stateFile,
      { max_daily_loss: 1000, pnl_check_ms: 100 },
      { start: MONDAY_10_IST + DAY_MS, pnl: -200 },
    );
    assert.equal(tuesday.broker.risk.tradingState, "HALTED");
    await rejectsWithCode(tuesday.broker.placeOrder(ONE), "RISK", /HALTED \(Monday's panic\)/);
    await waitFor(() => tuesday.broker.risk.stateRecord.day === "2026-01-06", "Tuesday's baseline");
    // Node-RED was down at midnight: Tuesday starts at the P&L last seen on Monday (500, kept in
    // the state file), not at Tuesday's first read (-200): the 700 lost unseen counts Tuesday.
    assert.equal(tuesday.broker.risk.stateRecord.day_start_pnl, 500);
    await tuesday.broker.risk.setState("ACTIVE", "admin", "new day");
    assert.equal(tuesday.broker.risk.stateRecord.day_start_pnl, 500, "a resume keeps the day's baseline");
    await tuesday.broker.close();
    const saved = await loadState(stateFile);
    assert.ok(saved.kind === "ok" && saved.record.day === "2026-01-06" && saved.record.day_start_pnl === 500);
  });

  for (const [what, make] of [
    ["full (/dev/full: every write fails ENOSPC)", (tmp: string) => fs.symlinkSync("/dev/full", tmp)],
    ["unwritable (the temporary name is taken by a directory)", (tmp: string) => fs.mkdirSync(tmp)],
  ] as const) {
    it(`a disk that is ${what}: the guard refuses RISK naming the file until a write succeeds`, async function () {
      const stateFile = path.join(tmpDir(), "risk-paper-a.json");
      const first = await rig(stateFile, { max_daily_loss: 1000 });
      await first.broker.risk.setState("HALTED", "kill switch", "panic");
      await first.broker.close();
      make(`${stateFile}.tmp`);
      const { broker, logged } = await rig(stateFile, { max_daily_loss: 1000, pnl_check_ms: 100 });
      // A resume the disk cannot keep is not made: a restart would undo it.
      await rejectsWithCode(
        broker.risk.setState("ACTIVE", "admin", "resume"),
        "RISK",
        /trading stays HALTED: cannot save the trading state to .*risk-paper-a\.json: .*\(state_file\)/,
      );
      assert.equal(broker.risk.tradingState, "HALTED");
      // A first check of the day whose baseline cannot be saved blocks too (else a restart would forget the loss).
      await rejectsWithCode(
        broker.placeOrder(ONE),
        "RISK",
        /(cannot save the trading state to .*risk-paper-a\.json.*\(state_file\))|HALTED/,
      );
      assert.ok(
        logged.some((l) => l.startsWith("error cannot save the trading state")),
        logged.join("\n"),
      );
      fs.rmSync(`${stateFile}.tmp`, { recursive: true });
      await broker.risk.setState("ACTIVE", "admin", "disk fixed");
      await waitFor(() => broker.risk.stateRecord.day_start_pnl !== undefined, "the baseline");
      const order = await broker.placeOrder(ONE);
      assert.equal(order.symbol, "INFY");
      const saved = await loadState(stateFile);
      assert.ok(saved.kind === "ok" && saved.record.state === "ACTIVE");
    });
  }

  it("a baseline that cannot be saved blocks new orders (RISK, state_file) and retries the write on the next order", async function () {
    const stateFile = path.join(tmpDir(), "risk-paper-a.json");
    fs.symlinkSync("/dev/full", `${stateFile}.tmp`);
    const { broker, events } = await rig(stateFile, { max_daily_loss: 1000 });
    await waitFor(() => broker.risk.stateRecord.day_start_pnl !== undefined, "the first check");
    await waitFor(() => {
      void broker.placeOrder(ONE).catch(() => undefined);
      return events.some((e) => e.type === "ORDER_DENIED" && e.limit === "state_file");
    }, "a refusal naming state_file");
    const denied = events.find((e) => e.type === "ORDER_DENIED" && e.limit === "state_file");
    assert.ok(denied?.type === "ORDER_DENIED");
    assert.match(
      denied.message,
      /cannot save the trading state to .*risk-paper-a\.json: .*ENOSPC.*no new orders until it can be saved \(state_file\)/,
    );
    fs.rmSync(`${stateFile}.tmp`);
    // The next order retries the write; once it lands, orders go out again.
    let placed = 0;
    await waitFor(() => {
      void broker.placeOrder(ONE).then(
        () => (placed += 1),
        () => undefined,
      );
      return placed > 0;
    }, "an order after the retried write");
    const saved = await loadState(stateFile);
    assert.ok(saved.kind === "ok" && saved.record.day === "2026-01-05" && saved.record.day_start_pnl === 0);
  });
});
