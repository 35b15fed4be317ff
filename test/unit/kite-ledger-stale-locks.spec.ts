import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ReportedLedger, ledgerFile } from "../../lib/kite/reported-ledger";

const LEDGER_MODULE = path.resolve(__dirname, "../../lib/kite/reported-ledger.js");
const LOCK_MODULE = path.resolve(__dirname, "../../lib/kite/ledger-lock.js");
const KEY = "stalekey";

/** The IST day `n` days before 2026-12-01 (any fixed past days do). */
function dayBefore(n: number): string {
  return new Date(Date.parse("2026-12-01T12:00:00Z") - n * 86_400_000).toISOString().slice(0, 10);
}

/**
 * A process that opens the ledgers of `days` earlier days for each instance, leaves a lock
 * takeover guard and a half-made lock (what a crash inside the lock's own steps leaves), then is
 * killed: nothing it held is let go.
 */
async function dieHolding(dir: string, instances: string[], days: string[]): Promise<number> {
  const script = `
    const { ReportedLedger, ledgerFile } = require(${JSON.stringify(LEDGER_MODULE)});
    const fs = require("node:fs");
    const dir = ${JSON.stringify(dir)};
    for (const instance of ${JSON.stringify(instances)}) {
      for (const day of ${JSON.stringify(days)}) {
        const ledger = new ReportedLedger(dir, ${JSON.stringify(KEY)}, { instance, day, holder: "doomed" });
        ledger.placing("c" + day.replace(/-/g, ""));
        const lock = ledgerFile(dir, ${JSON.stringify(KEY)}, { instance, day }) + ".lock";
        fs.writeFileSync(lock + ".takeover", JSON.stringify({ pid: process.pid, nonce: "guard" }));
        fs.writeFileSync(lock + "." + process.pid + ".abcd1234", JSON.stringify({ pid: process.pid, nonce: "x" }));
      }
    }
    require(${JSON.stringify(LOCK_MODULE)});
    process.stdout.write("holding\\n");
    setInterval(() => undefined, 1000);
  `;
  const proc = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr.on("data", (data: Buffer) => (err += data.toString()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on("data", (data: Buffer) => {
      if (String(data).includes("holding")) resolve();
    });
    proc.on("exit", () => reject(new Error(`child exited early: ${err}`)));
  });
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  proc.kill("SIGKILL");
  await exited;
  return proc.pid!;
}

const lockish = (dir: string): string[] =>
  fs
    .readdirSync(dir)
    .filter((name) => name.includes(".lock"))
    .sort();

/**
 * Issue kite11, item 1: lock files left by a process that died holding ledgers of earlier days
 * (and the pieces the lock's own steps make) are removed when a ledger is next opened: nothing
 * accumulates over days of crashes or over configs that came and went.
 */
describe("Kite reported ledger: stale lock files are cleaned (issue kite11, item 1)", function () {
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-stale-locks-"));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("30 days of crashes under 3 configs: the next open leaves no earlier day's lock file", async function () {
    this.timeout(20_000);
    const days = Array.from({ length: 30 }, (_, i) => dayBefore(30 - i));
    const instances = ["cfg-a", "cfg-b", "cfg-c"];
    await dieHolding(dir, instances, days);
    assert.equal(lockish(dir).length, 3 * 30 * 3, "the dead process left its locks and their pieces");
    const today = dayBefore(0);
    const ledger = new ReportedLedger(dir, KEY, { instance: "cfg-a", day: today, holder: "test" });
    try {
      assert.deepEqual(lockish(dir), [
        `${path.basename(ledgerFile(dir, KEY, { instance: "cfg-a", day: today }))}.lock`,
      ]);
      // The earlier days' ledgers go as before: this config's all, the other two configs' last
      // day's stays (their seq and GTTs carry over when they next start).
      assert.equal(fs.readdirSync(dir).filter((n) => n.endsWith(".jsonl")).length, 2);
    } finally {
      ledger.close();
    }
    assert.deepEqual(lockish(dir), []);
  });

  it("a live holder's lock of an earlier day is left alone", function () {
    const yesterday = dayBefore(1);
    const other = new ReportedLedger(dir, KEY, { instance: "cfg-live", day: yesterday, holder: "live" });
    try {
      const ledger = new ReportedLedger(dir, KEY, { instance: "cfg-a", day: dayBefore(0), holder: "test" });
      ledger.close();
      const lock = `${path.basename(ledgerFile(dir, KEY, { instance: "cfg-live", day: yesterday }))}.lock`;
      assert.deepEqual(lockish(dir), [lock]);
    } finally {
      other.close();
    }
  });

  it("100 restarts each under a new config id with a crash between: lock files stay bounded", async function () {
    this.timeout(20_000);
    const ids = Array.from({ length: 100 }, (_, i) => `cfg-${i}`);
    await dieHolding(dir, ids, [dayBefore(2)]);
    assert.equal(lockish(dir).length, 300);
    const ledger = new ReportedLedger(dir, KEY, { instance: "cfg-new", day: dayBefore(0), holder: "test" });
    ledger.close();
    assert.deepEqual(lockish(dir), []);
  });
});
