import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ReportedLedger } from "../../lib/kite/reported-ledger";
import type { OrderSnapshot } from "../../lib/protocol";

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
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const order = (id: string, status: OrderSnapshot["status"], filled: number): OrderSnapshot =>
    ({ order_id: id, status, filled_quantity: filled }) as OrderSnapshot;
  const files = (): string[] => fs.readdirSync(dir).sort();

  it("reads back, over ten reopenings, exactly what each run recorded (last state per order, every placing id)", function () {
    const expected = new Map<string, [string, number]>();
    for (let run = 0; run < 10; run++) {
      const ledger = new ReportedLedger(dir, "key", "2026-12-04");
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
    new ReportedLedger(dir, "key", "2026-12-04");
    assert.deepEqual(files().length, 1);
    const lines = fs
      .readFileSync(path.join(dir, files()[0] as string), "utf8")
      .trim()
      .split("\n");
    assert.equal(lines.length, 20);
  });

  it("a line cut short by a crash is skipped, and the lines before it still count", function () {
    const first = new ReportedLedger(dir, "key", "2026-12-04");
    first.reported(order("O1", "FILLED", 5));
    first.placing("c1");
    const file = path.join(dir, files()[0] as string);
    fs.appendFileSync(file, '{"order":"O2","status":"FIL');
    const second = new ReportedLedger(dir, "key", "2026-12-04");
    assert.deepEqual(second.reportedOf("O1"), { status: "FILLED", filled_quantity: 5 });
    assert.equal(second.wasPlacing("c1"), true);
    assert.equal(second.reportedOf("O2"), undefined);
  });

  it("a compaction that cannot be written leaves the old file whole (it is never cut in place)", function () {
    const first = new ReportedLedger(dir, "key", "2026-12-04");
    for (let i = 0; i < 20; i++) first.reported(order(`O${i}`, "OPEN", 0));
    const file = path.join(dir, files()[0] as string);
    const before = fs.readFileSync(file, "utf8");
    // The temporary file's name taken by a directory: the rewrite fails before the rename.
    fs.mkdirSync(`${file}.tmp`);
    const second = new ReportedLedger(dir, "key", "2026-12-04");
    assert.equal(fs.readFileSync(file, "utf8"), before);
    for (let i = 0; i < 20; i++)
      assert.deepEqual(second.reportedOf(`O${i}`), { status: "OPEN", filled_quantity: 0 });
  });

  it("deletes this account's ledgers of earlier days, and keeps other accounts' and today's", function () {
    new ReportedLedger(dir, "key", "2026-12-02").reported(order("A", "OPEN", 0));
    new ReportedLedger(dir, "key", "2026-12-03").reported(order("B", "OPEN", 0));
    new ReportedLedger(dir, "other", "2026-12-03").reported(order("C", "OPEN", 0));
    assert.equal(files().length, 2, files().join(", ")); // the 12-02 file went when 12-03 opened
    const today = new ReportedLedger(dir, "key", "2026-12-04");
    today.reported(order("D", "OPEN", 0));
    const left = files();
    assert.equal(left.length, 2, left.join(", "));
    assert.ok(left.some((name) => name.endsWith("-2026-12-04.jsonl")));
    assert.ok(left.some((name) => name.endsWith("-2026-12-03.jsonl"))); // the other account's
    assert.equal(today.reportedOf("B"), undefined);
  });
});
