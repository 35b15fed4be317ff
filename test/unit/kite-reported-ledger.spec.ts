import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ReportedLedger, SEQ_BLOCK } from "../../lib/kite/reported-ledger";
import type { GttSnapshot, OrderSnapshot } from "../../lib/protocol";

/**
 * The ledger's file: what a restart reads back, what a crash may leave, what old days leave.
 * The restart behaviour of the broker itself is kite-restarts.spec's.
 */
describe("ReportedLedger on disk", function () {
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-ledger-"));
  });
  afterEach(function () {
    for (const ledger of live.splice(0)) ledger.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const order = (id: string, status: OrderSnapshot["status"], filled: number): OrderSnapshot =>
    ({ order_id: id, status, filled_quantity: filled }) as OrderSnapshot;
  // An open ledger's lock file (ledger-lock.ts) is not one of the ledger files counted here.
  const files = (): string[] =>
    fs
      .readdirSync(dir)
      .filter((name) => !name.endsWith(".lock"))
      .sort();
  const live: ReportedLedger[] = [];
  /** A run's ledger: the earlier runs' have closed (one holder per file in a process). */
  function open(key: string, day: string, instance?: string): ReportedLedger {
    for (const ledger of live.splice(0)) ledger.close();
    const ledger = new ReportedLedger(dir, key, { day, ...(instance === undefined ? {} : { instance }) });
    live.push(ledger);
    return ledger;
  }

  it("reads back, over ten reopenings, exactly what each run recorded (last state per order, every placing id)", function () {
    const expected = new Map<string, [string, number]>();
    for (let run = 0; run < 10; run++) {
      const ledger = open("key", "2026-12-04");
      for (const [id, [status, filled]] of expected) {
        assert.deepEqual(ledger.reportedOf(id), { status, filled_quantity: filled }, `run ${run}, ${id}`);
      }
      for (let k = 0; k < run; k++) assert.equal(ledger.wasPlacing(`c${k}`), true, `run ${run}, c${k}`);
      ledger.placing(`c${run}`);
      ledger.reported(order(`O${run}`, "OPEN", 0));
      expected.set(`O${run}`, ["OPEN", 0]);
      if (run > 0) {
        ledger.reported(order(`O${run - 1}`, "PARTIALLY_FILLED", run));
        expected.set(`O${run - 1}`, ["PARTIALLY_FILLED", run]);
      }
    }
    // Compacted at every start: one line per order and per placing id, no temporary left behind.
    open("key", "2026-12-04");
    assert.deepEqual(files().length, 1);
    const lines = fs
      .readFileSync(path.join(dir, files()[0] as string), "utf8")
      .trim()
      .split("\n");
    assert.equal(lines.length, 20);
  });

  it("a line cut short by a crash is skipped, and the lines before it still count", function () {
    const first = open("key", "2026-12-04");
    first.reported(order("O1", "FILLED", 5));
    first.placing("c1");
    const file = path.join(dir, files()[0] as string);
    fs.appendFileSync(file, '{"order":"O2","status":"FIL');
    const second = open("key", "2026-12-04");
    assert.deepEqual(second.reportedOf("O1"), { status: "FILLED", filled_quantity: 5 });
    assert.equal(second.wasPlacing("c1"), true);
    assert.equal(second.reportedOf("O2"), undefined);
  });

  it("a compaction that cannot be written leaves the old file whole (it is never cut in place)", function () {
    const first = open("key", "2026-12-04");
    for (let i = 0; i < 20; i++) first.reported(order(`O${i}`, "OPEN", 0));
    const file = path.join(dir, files()[0] as string);
    const before = fs.readFileSync(file, "utf8");
    // The temporary file's name taken by a directory: the rewrite fails before the rename.
    fs.mkdirSync(`${file}.tmp`);
    const second = open("key", "2026-12-04");
    assert.equal(fs.readFileSync(file, "utf8"), before);
    for (let i = 0; i < 20; i++)
      assert.deepEqual(second.reportedOf(`O${i}`), { status: "OPEN", filled_quantity: 0 });
  });

  it("deletes this account's ledgers of earlier days, and keeps other accounts' and today's", function () {
    open("key", "2026-12-02").reported(order("A", "OPEN", 0));
    open("key", "2026-12-03").reported(order("B", "OPEN", 0));
    open("other", "2026-12-03").reported(order("C", "OPEN", 0));
    assert.equal(files().length, 2, files().join(", ")); // the 12-02 file went when 12-03 opened
    const today = open("key", "2026-12-04");
    today.reported(order("D", "OPEN", 0));
    const left = files();
    assert.equal(left.length, 2, left.join(", "));
    assert.ok(left.some((name) => name.endsWith("-2026-12-04.jsonl")));
    assert.ok(left.some((name) => name.endsWith("-2026-12-03.jsonl"))); // the other account's
    assert.equal(today.reportedOf("B"), undefined);
  });

  it("seqs: ten reopenings, each starting past every seq the runs before it issued (a block reserved on disk per SEQ_BLOCK)", function () {
    let highest = 0;
    for (let run = 0; run < 10; run++) {
      const ledger = open("key", "2026-12-04");
      assert.ok(ledger.seqFloor >= highest, `run ${run}: floor ${ledger.seqFloor} below ${highest}`);
      // Runs of different lengths: none, a few, and more than a block.
      const count = [0, 3, SEQ_BLOCK + 7][run % 3]!;
      for (let k = 1; k <= count; k++) ledger.issuing(ledger.seqFloor + k);
      highest = Math.max(highest, ledger.seqFloor + count);
    }
    // One synced line per block, not per event: the file stays small.
    const lines = fs
      .readFileSync(path.join(dir, files()[0] as string), "utf8")
      .trim()
      .split("\n");
    assert.ok(lines.length <= 3, lines.join("\n"));
  });

  it("two instances on one api key: two files, and one's compaction keeps the other's lines", function () {
    const a = new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "node-a" });
    let b = new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "node-b" });
    try {
      for (let round = 0; round < 10; round++) {
        a.reported(order(`A${round}`, "OPEN", 0));
        b.close();
        b = new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "node-b" });
        b.reported(order(`A${round}`, "FILLED", 1));
      }
      assert.equal(files().length, 2, files().join(", "));
      a.close();
      const again = new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "node-a" });
      for (let round = 0; round < 10; round++)
        assert.deepEqual(again.reportedOf(`A${round}`), { status: "OPEN", filled_quantity: 0 });
      again.close();
    } finally {
      a.close();
      b.close();
    }
  });

  it("one holder per file: a second open fails CONFIG naming the holder, and opens once the first closes", function () {
    const first = new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "n1", holder: "config n1" });
    assert.throws(
      () => new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "n1" }),
      (error: { code?: string; message?: string }) =>
        error.code === "CONFIG" &&
        /in use by another Kite broker in this process \(config n1\)/.test(error.message ?? ""),
    );
    first.close();
    new ReportedLedger(dir, "key", { day: "2026-12-04", instance: "n1" }).close();
  });

  it("a new day carries over GTTs and the seq, not orders or placements, and keeps the other instance's files", function () {
    const monday = open("key", "2026-12-07", "n1");
    monday.placing("c1");
    monday.reported(order("O1", "OPEN", 0));
    monday.gttsKnown([
      { gtt_id: "G1", status: "active" } as GttSnapshot,
      { gtt_id: "G3", status: "triggered" } as GttSnapshot,
    ]);
    monday.issuing(1);
    const other = new ReportedLedger(dir, "key", { day: "2026-12-07", instance: "n2" });
    other.gttsKnown([{ gtt_id: "G2", status: "active" } as GttSnapshot]);
    other.close();
    const tuesday = open("key", "2026-12-08", "n1");
    assert.equal(tuesday.gttStatusOf("G1"), "active");
    assert.equal(tuesday.gttStatusOf("G3"), undefined, "an ended GTT is not carried on");
    assert.ok(tuesday.seqFloor >= 1);
    assert.equal(tuesday.reportedOf("O1"), undefined);
    assert.equal(tuesday.wasPlacing("c1"), false);
    // n1's Monday file is gone; n2's stays for n2 to carry over.
    assert.equal(files().length, 2, files().join(", "));
  });
});
