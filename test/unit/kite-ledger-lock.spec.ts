import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BrokerError } from "../../lib/protocol/errors";
import { ReportedLedger, ledgerFile } from "../../lib/kite/reported-ledger";

const LEDGER_MODULE = path.resolve(__dirname, "../../lib/kite/reported-ledger.js");
const KEY = "lockkey";
const INSTANCE = "cfg-lock";

/**
 * A second process holding the ledger: prints "held" or "refused <code>", then closes the ledger
 * when told "close" on stdin (printing "released"), or is killed.
 */
function child(dir: string): {
  proc: ChildProcessWithoutNullStreams;
  said: (pattern: RegExp) => Promise<string>;
  exited: Promise<number | null>;
} {
  const script = `
    const { ReportedLedger } = require(${JSON.stringify(LEDGER_MODULE)});
    let ledger;
    try {
      ledger = new ReportedLedger(${JSON.stringify(dir)}, ${JSON.stringify(KEY)}, { instance: ${JSON.stringify(INSTANCE)}, holder: "child" });
      ledger.placing("child" + process.pid);
      process.stdout.write("held\\n");
    } catch (error) {
      process.stdout.write("refused " + error.code + "\\n");
      process.exit(0);
    }
    process.stdin.on("data", (data) => {
      if (String(data).includes("close")) {
        ledger.close();
        process.stdout.write("released\\n");
        process.exit(0);
      }
    });
  `;
  const proc = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  proc.stdout.on("data", (data: Buffer) => {
    out += data.toString();
    for (const waiter of waiters.splice(0)) {
      const match = waiter.pattern.exec(out);
      if (match !== null) waiter.resolve(match[0]);
      else waiters.push(waiter);
    }
  });
  let err = "";
  proc.stderr.on("data", (data: Buffer) => (err += data.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return {
    proc,
    exited,
    said: (pattern) =>
      new Promise<string>((resolve, reject) => {
        const match = pattern.exec(out);
        if (match !== null) {
          resolve(match[0]);
          return;
        }
        waiters.push({ pattern, resolve });
        void exited.then(() =>
          setTimeout(() => reject(new Error(`child exited without ${String(pattern)}: ${out} ${err}`)), 50),
        );
      }),
  };
}

function open(dir: string): ReportedLedger {
  return new ReportedLedger(dir, KEY, { instance: INSTANCE, holder: "this test" });
}

function refusedByProcess(dir: string, pid: number): void {
  assert.throws(
    () => open(dir),
    (error: unknown) =>
      error instanceof BrokerError &&
      error.code === "CONFIG" &&
      new RegExp(`in use by another process \\(child, process ${pid}\\)`).test(error.message),
  );
}

/** Issue kite10, item 4: one ledger, one process, whatever happens to the process holding it. */
describe("Kite reported ledger: a lock across processes (issue kite10, item 4)", function () {
  this.timeout(20_000);
  let dir: string;
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-ledger-lock-"));
  });

  afterEach(function () {
    for (const proc of children.splice(0)) if (proc.exitCode === null) proc.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const lockFile = (): string => `${ledgerFile(dir, KEY, { instance: INSTANCE })}.lock`;

  it("another process holds it: refused CONFIG naming that process; released on its close, then ours", async function () {
    for (let round = 0; round < 2; round++) {
      const other = child(dir);
      children.push(other.proc);
      await other.said(/held/);
      refusedByProcess(dir, other.proc.pid!);
      other.proc.stdin.write("close\n");
      await other.said(/released/);
      await other.exited;
      assert.ok(!fs.existsSync(lockFile()), "the lock file goes with the close");
      const ledger = open(dir);
      assert.ok(ledger.wasPlacing(`child${other.proc.pid}`), "what the other process wrote is read");
      // Ours now: a child is refused while we hold it.
      const late = child(dir);
      children.push(late.proc);
      assert.equal(await late.said(/refused \w+/), "refused CONFIG");
      ledger.close();
      assert.ok(!fs.existsSync(lockFile()));
    }
  });

  it("the holder is SIGKILLed: its lock is stale and taken over, three times in a row", async function () {
    for (let round = 0; round < 3; round++) {
      const other = child(dir);
      children.push(other.proc);
      await other.said(/held/);
      refusedByProcess(dir, other.proc.pid!);
      other.proc.kill("SIGKILL");
      await other.exited;
      assert.ok(fs.existsSync(lockFile()), "a killed process leaves its lock behind");
      const ledger = open(dir);
      const owner = JSON.parse(fs.readFileSync(lockFile(), "utf8")) as { pid: number };
      assert.equal(owner.pid, process.pid);
      ledger.close();
    }
  });

  it("a lock naming a live pid that is not its writer (the pid reused) is stale; with the right start time it holds", async function () {
    const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    children.push(sleeper);
    await new Promise((resolve) => sleeper.once("spawn", resolve));
    const pid = sleeper.pid!;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
    fs.mkdirSync(path.dirname(lockFile()), { recursive: true });
    fs.writeFileSync(lockFile(), JSON.stringify({ pid, start, nonce: "n1", holder: "child" }));
    refusedByProcess(dir, pid);
    fs.writeFileSync(lockFile(), JSON.stringify({ pid, start: `${start}1`, nonce: "n2", holder: "child" }));
    const ledger = open(dir);
    ledger.close();
    // A dead pid, and a lock cut short long ago: both stale.
    fs.writeFileSync(lockFile(), JSON.stringify({ pid: 2 ** 22 + 7, nonce: "n3", holder: "child" }));
    open(dir).close();
    fs.writeFileSync(lockFile(), '{"pid":');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lockFile(), old, old);
    open(dir).close();
    // Cut short just now (a process writing it): held.
    fs.writeFileSync(lockFile(), '{"pid":');
    assert.throws(() => open(dir), /in use by another process \(a process starting up\)/);
  });

  it("four processes race for a stale lock: exactly one holds it", async function () {
    for (let round = 0; round < 1; round++) {
      fs.mkdirSync(path.dirname(lockFile()), { recursive: true });
      fs.writeFileSync(lockFile(), JSON.stringify({ pid: 2 ** 22 + 9, nonce: `dead${round}`, holder: "x" }));
      const racers = Array.from({ length: 4 }, () => child(dir));
      children.push(...racers.map((r) => r.proc));
      const outcomes = await Promise.all(racers.map((r) => r.said(/held|refused \w+/)));
      assert.equal(outcomes.filter((o) => o === "held").length, 1, outcomes.join(", "));
      assert.deepEqual(
        outcomes.filter((o) => o !== "held"),
        Array(3).fill("refused CONFIG"),
      );
      for (const racer of racers) racer.proc.kill("SIGKILL");
      await Promise.all(racers.map((r) => r.exited));
    }
  });
});
