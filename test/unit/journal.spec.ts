import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { crc32 } from "node:zlib";

import { Journal } from "../../lib/paper/journal";
import type { JournalOptions } from "../../lib/paper/journal";
import { seededRandom } from "../../lib/paper/random";
import { DiskModel } from "../support/disk-model";
import { FdFaults, openFdOf } from "../support/fd-faults";

interface Snap {
  cash: number;
  seq: number;
}
interface Rec {
  seq: number;
  kind: string;
}

function rec(seq: number): Rec {
  return { seq, kind: "fill" };
}

class RecordingLog {
  readonly messages: string[] = [];
  warn(message: string): void {
    this.messages.push(message);
  }
}

// Long enough that nothing reaches disk unless a test flushes (or waits for the timer on purpose).
const NEVER_MS = 60_000;

describe("paper/journal", () => {
  let dir: string;
  let file: string;
  const opened: Journal<unknown, unknown>[] = [];

  async function open<S = Snap, R = Rec>(options: Partial<JournalOptions> = {}) {
    const result = await Journal.open<S, R>({ file, fsyncIntervalMs: NEVER_MS, ...options });
    opened.push(result.journal);
    return result;
  }

  function readLines(target = file): string[] {
    const text = fs.readFileSync(target, "utf8");
    assert.ok(
      text === "" || text.endsWith("\n"),
      `file ends with a newline: ${JSON.stringify(text.slice(-20))}`,
    );
    return text === "" ? [] : text.slice(0, -1).split("\n").map(unsealed);
  }

  /** A written line without its checksum member, after checking the checksum covers the rest. */
  function unsealed(line: string): string {
    const match = /^(.*),"k":"([0-9a-f]{8})"\}$/.exec(line);
    assert.ok(match, `line carries a checksum: ${line}`);
    const body = `${match[1]!}}`;
    assert.equal(match[2], crc32(body).toString(16).padStart(8, "0"), `checksum of ${body}`);
    return body;
  }

  let faults: FdFaults | undefined;
  let model: DiskModel | undefined;

  /**
   * The journal's next write fails like ENOSPC (on the real fd, through fs.writeSync), optionally
   * after landing half its bytes as a disk filling up part-way does; later writes land.
   */
  function breakWrites(partial: boolean): FdFaults {
    faults = new FdFaults(file, { write: (n) => (n === 0 ? (partial ? "partial" : "fail") : "none") });
    faults.install();
    return faults;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "journal-spec-"));
    file = path.join(dir, "trading-broker", "paper-default.jsonl");
  });

  afterEach(async () => {
    model?.uninstall();
    faults?.uninstall();
    model = undefined;
    faults = undefined;
    for (const journal of opened.splice(0)) await journal.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("creates the file and its parent directories when none exists", async () => {
    const { journal, contents } = await open();
    assert.deepEqual(contents, { snapshot: undefined, records: [] });
    assert.equal(journal.file, file);
    assert.equal(journal.recordsSinceCompaction, 0);
    assert.ok(fs.existsSync(file));
    assert.equal(fs.statSync(file).size, 0);
  });

  it("round-trips records through close and reopen, in order", async () => {
    const first = await open();
    const records = [rec(1), { seq: 2, kind: "order", note: 'quotes " and \n newlines ₹' }, rec(3)];
    for (const r of records) first.journal.append(r);
    assert.equal(first.journal.recordsSinceCompaction, 3);
    await first.journal.close();

    const second = await open();
    assert.deepEqual(second.contents, { snapshot: undefined, records });
    assert.equal(second.journal.recordsSinceCompaction, 3);
    second.journal.append(rec(4));
    await second.journal.close();

    const third = await open();
    assert.deepEqual(third.contents.records, [...records, rec(4)]);
  });

  // Lines are encoded straight into one Buffer per batch; the bytes must be exactly the sealed text.
  it('writes each record as {"r":…} plus the CRC32 of that text, also for multi-byte UTF-8', async () => {
    const { journal } = await open<Snap, unknown>();
    const records: unknown[] = [];
    const samples = ["₹", "नमस्ते", "😀", "\u0000", "a\u2028b", '"\\', "é".repeat(300), ""];
    for (let i = 0; i < 400; i++) {
      records.push({
        seq: i,
        tag: samples[i % samples.length]!.repeat(1 + (i % 5)),
        n: [i, i === 0 ? 0.5 : -i / 3],
      });
    }
    for (const r of records) journal.append(r);
    await journal.flush();
    const text = fs.readFileSync(file, "utf8");
    const expected = records
      .map((r) => {
        const body = `{"r":${JSON.stringify(r)}}`;
        return `${body.slice(0, -1)},"k":"${crc32(body).toString(16).padStart(8, "0")}"}\n`;
      })
      .join("");
    assert.equal(text, expected);
    assert.equal(fs.statSync(file).size, Buffer.byteLength(expected));
    await journal.close();
    const again = await open<Snap, unknown>();
    assert.deepEqual(again.contents.records, records);
    assert.equal(again.quarantine, undefined);
  });

  it("flush() makes buffered records visible on disk, and fdatasyncs them", async () => {
    const { journal } = await open();
    // Durability itself needs a power cut to observe; the fdatasync call is the part a test can see.
    const fd = openFdOf(file);
    const realDatasync = fs.fdatasync;
    const realWrite = fs.writeSync;
    let syncs = 0;
    let writes = 0;
    (fs as { fdatasync: unknown }).fdatasync = (f: number, callback: fs.NoParamCallback) => {
      if (f === fd) syncs++;
      realDatasync(f, callback);
    };
    (fs as { writeSync: unknown }).writeSync = (f: number, ...rest: unknown[]) => {
      if (f === fd) writes++;
      return (realWrite as (...a: unknown[]) => number)(f, ...rest);
    };
    try {
      journal.append(rec(1));
      journal.append(rec(2));
      assert.deepEqual(readLines(), [], "nothing is written before the flush");
      await journal.flush();
      assert.deepEqual(readLines(), ['{"r":{"seq":1,"kind":"fill"}}', '{"r":{"seq":2,"kind":"fill"}}']);
      assert.equal(syncs, 1, "one fdatasync for the batch");
      assert.equal(writes, 1, "one write into the page cache for the batch, on the main thread");
    } finally {
      (fs as { fdatasync: unknown }).fdatasync = realDatasync;
      (fs as { writeSync: unknown }).writeSync = realWrite;
    }
  });

  it("writes buffered records on its own timer", async () => {
    const { journal } = await open({ fsyncIntervalMs: 5 });
    journal.append(rec(1));
    const deadline = Date.now() + 5_000;
    while (readLines().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(readLines(), ['{"r":{"seq":1,"kind":"fill"}}']);
  });

  it("close() writes what is still buffered", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    await journal.close();
    assert.deepEqual(readLines(), ['{"r":{"seq":1,"kind":"fill"}}']);
  });

  it("batches 10,000 appends and keeps every one of them, in order", async () => {
    const { journal } = await open();
    for (let i = 0; i < 10_000; i++) journal.append(rec(i));
    assert.equal(fs.statSync(file).size, 0, "appends are buffered, not written one by one");
    await journal.flush();
    const lines = readLines();
    assert.equal(lines.length, 10_000);
    lines.forEach((line, i) => assert.deepEqual(JSON.parse(line), { r: rec(i) }));
    await journal.close();

    const reopened = await open();
    assert.equal(reopened.contents.records.length, 10_000);
    assert.deepEqual(reopened.contents.records[9_999], rec(9_999));
  });

  it("compaction leaves the snapshot first and later records after it", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    journal.append(rec(2));
    await journal.flush();
    journal.append(rec(3));
    await journal.compact({ cash: 100, seq: 3 });
    assert.equal(journal.recordsSinceCompaction, 0);
    journal.append(rec(4));
    journal.append(rec(5));
    assert.equal(journal.recordsSinceCompaction, 2);
    await journal.close();

    assert.deepEqual(readLines(), [
      '{"s":{"cash":100,"seq":3}}',
      '{"r":{"seq":4,"kind":"fill"}}',
      '{"r":{"seq":5,"kind":"fill"}}',
    ]);
    const reopened = await open();
    assert.deepEqual(reopened.contents, { snapshot: { cash: 100, seq: 3 }, records: [rec(4), rec(5)] });
    assert.equal(reopened.journal.recordsSinceCompaction, 2);
  });

  it("compaction is atomic: the .tmp is gone and the file holds exactly the snapshot", async () => {
    const { journal } = await open();
    for (let i = 0; i < 100; i++) journal.append(rec(i));
    await journal.compact({ cash: 7, seq: 99 });
    assert.ok(!fs.existsSync(`${file}.tmp`), ".tmp is renamed away");
    assert.deepEqual(fs.readdirSync(path.dirname(file)), [path.basename(file)]);
    assert.deepEqual(readLines(), ['{"s":{"cash":7,"seq":99}}']);
    // A second compaction replaces the first rather than stacking snapshots.
    await journal.compact({ cash: 8, seq: 99 });
    assert.deepEqual(readLines(), ['{"s":{"cash":8,"seq":99}}']);
  });

  it("captures the snapshot when compact() is called, not when it runs", async () => {
    const { journal } = await open();
    const state: Snap = { cash: 1, seq: 0 };
    const done = journal.compact(state);
    state.cash = 999;
    await done;
    await journal.close();
    assert.deepEqual((await open()).contents.snapshot, { cash: 1, seq: 0 });
  });

  it("keeps appends made during flushes and compactions, in order, and none the snapshot covers", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    const f1 = journal.flush();
    journal.append(rec(2));
    const c1 = journal.compact({ cash: 1, seq: 2 });
    journal.append(rec(3));
    const f2 = journal.flush();
    journal.append(rec(4));
    const c2 = journal.compact({ cash: 2, seq: 4 });
    journal.append(rec(5));
    journal.append(rec(6));
    const f3 = journal.flush();
    journal.append(rec(7));
    assert.equal(journal.recordsSinceCompaction, 3);
    await Promise.all([f1, c1, f2, c2, f3]);
    await journal.close();

    const reopened = await open();
    assert.deepEqual(reopened.contents, { snapshot: { cash: 2, seq: 4 }, records: [rec(5), rec(6), rec(7)] });
  });

  it("keeps every line whole and in order while appends outgrow the pending bytes mid-write", async function () {
    // ~4 s of CPU alone (megabytes of UTF-8 written, read back and parsed): 10 s ran out under load.
    this.timeout(40_000);
    // Records from a few bytes to 3 MB (so the pending bytes grow past what a drained journal keeps,
    // then shrink), in 1-, 2-, 3- and 4-byte UTF-8, appended while writes and compactions are under
    // way: each line must come back exactly, checksummed, with nothing a snapshot covers.
    let state = 12345;
    const next = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const alphabet = ["a", '"', "é", "₹", "漢", "😀", "\n"];
    const text = (length: number) => {
      let chunk = "";
      for (let i = 0; i < Math.min(length, 64); i++) chunk += alphabet[next(alphabet.length)];
      return chunk.repeat(Math.max(1, Math.floor(length / 64)));
    };
    const { journal } = await open<Snap, Rec & { note: string }>();
    const expected: (Rec & { note: string })[] = [];
    let snapshot: Snap | undefined;
    const inFlight: Promise<void>[] = [];
    let seq = 0;
    const add = (size: number) => {
      const record = { seq: seq++, kind: "fill", note: text(size) };
      journal.append(record);
      expected.push(record);
    };
    // Each huge record outgrows the pending bytes while a write is in flight and lines wait behind it.
    for (const huge of [100_000, 400_000, 1_600_000, 6_400_000]) {
      add(10);
      inFlight.push(journal.flush());
      // Microtasks only: the write starts, and cannot finish before the event loop turns.
      for (let k = 0; k < 5; k++) await Promise.resolve();
      add(20);
      add(huge);
      add(30);
    }
    await Promise.all(inFlight.splice(0));
    await journal.flush();
    // Checked now: a compaction below would cover these lines.
    const written = readLines();
    assert.equal(written.length, expected.length);
    written.forEach((line, i) => assert.deepEqual(JSON.parse(line), { r: expected[i] }, `line ${i}`));
    for (let i = seq; i < 400; i++) {
      add(next(10) === 0 ? 200_000 + next(800_000) : 1 + next(300));
      const op = next(20);
      if (op === 0) inFlight.push(journal.flush());
      else if (op === 1) {
        snapshot = { cash: i, seq: i };
        expected.length = 0;
        inFlight.push(journal.compact(snapshot));
      } else if (op === 2) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(inFlight);
    await journal.close();
    const lines = readLines();
    const body = snapshot === undefined ? lines : lines.slice(1);
    if (snapshot !== undefined) assert.deepEqual(JSON.parse(lines[0]!), { s: snapshot });
    assert.equal(body.length, expected.length);
    body.forEach((line, i) => assert.deepEqual(JSON.parse(line), { r: expected[i] }, `line ${i}`));
    const reopened = await open<Snap, Rec & { note: string }>();
    assert.deepEqual(reopened.contents, { snapshot, records: expected });
  });

  it("deletes a leftover .tmp from a crash during compaction and keeps the journal", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"s":{"cash":5,"seq":1}}\n{"r":{"seq":2,"kind":"fill"}}\n');
    fs.writeFileSync(`${file}.tmp`, '{"s":{"cash":6,');
    const log = new RecordingLog();
    const { contents } = await open({ log });
    assert.ok(!fs.existsSync(`${file}.tmp`));
    assert.deepEqual(contents, { snapshot: { cash: 5, seq: 1 }, records: [rec(2)] });
    assert.deepEqual(log.messages, []);
  });

  it("skips a torn last line, warns, truncates, and appends cleanly after it", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const good = '{"r":{"seq":1,"kind":"fill"}}\n{"r":{"seq":2,"kind":"fill"}}\n';
    fs.writeFileSync(file, `${good}{"r":{"seq":3,"ki`);
    const log = new RecordingLog();
    const { journal, contents } = await open({ log });

    assert.deepEqual(contents, { snapshot: undefined, records: [rec(1), rec(2)] });
    assert.equal(log.messages.length, 1);
    assert.match(log.messages[0]!, /torn/);
    assert.ok(log.messages[0]!.includes(file), "warning names the file");
    assert.match(log.messages[0]!, /line 3\b/);
    assert.equal(fs.readFileSync(file, "utf8"), good, "file is truncated to the last good line");

    journal.append(rec(4));
    await journal.close();
    const reopenLog = new RecordingLog();
    const reopened = await open({ log: reopenLog });
    assert.deepEqual(reopened.contents.records, [rec(1), rec(2), rec(4)]);
    assert.deepEqual(reopenLog.messages, []);
  });

  it("treats a complete-looking last line without its newline as torn", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"r":{"seq":1,"kind":"fill"}}\n{"r":{"seq":2,"kind":"fill"}}');
    const log = new RecordingLog();
    const { contents } = await open({ log });
    assert.deepEqual(contents.records, [rec(1)]);
    assert.match(log.messages[0] ?? "", /line 2\b/);
    assert.equal(fs.readFileSync(file, "utf8"), '{"r":{"seq":1,"kind":"fill"}}\n');
  });

  it("treats a newline-terminated but unparsable last line (e.g. zero-filled) as torn", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"r":{"seq":1,"kind":"fill"}}\n\0\0\0\0\n');
    const log = new RecordingLog();
    const { contents } = await open({ log });
    assert.deepEqual(contents.records, [rec(1)]);
    assert.equal(log.messages.length, 1);
    assert.match(log.messages[0]!, /line 2\b/);
    assert.equal(fs.readFileSync(file, "utf8"), '{"r":{"seq":1,"kind":"fill"}}\n');
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((f) => f.includes(".corrupt-")),
      [],
      "a torn tail is not quarantined",
    );
  });

  it("sets a corrupt middle line aside in .corrupt-<ms> and restores the good prefix", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const prefix = '{"s":{"cash":50,"seq":0}}\n{"r":{"seq":1,"kind":"fill"}}\n';
    const original = `${prefix}garbage here\n{"r":{"seq":3,"kind":"fill"}}\n`;
    fs.writeFileSync(file, original);
    const log = new RecordingLog();
    const before = Date.now();
    const { journal, contents } = await open({ log });

    assert.deepEqual(contents, { snapshot: { cash: 50, seq: 0 }, records: [rec(1)] });
    assert.equal(journal.recordsSinceCompaction, 1);
    const corrupt = fs
      .readdirSync(path.dirname(file))
      .filter((f) => f.startsWith(`${path.basename(file)}.corrupt-`));
    assert.equal(corrupt.length, 1);
    const corruptPath = path.join(path.dirname(file), corrupt[0]!);
    const stamp = Number(corrupt[0]!.split(".corrupt-")[1]);
    assert.ok(stamp >= before && stamp <= Date.now(), `epoch ms suffix: ${corrupt[0]!}`);
    assert.equal(fs.readFileSync(corruptPath, "utf8"), original, "the damaged original is kept intact");
    assert.equal(fs.readFileSync(file, "utf8"), prefix);
    assert.ok(!fs.existsSync(`${file}.tmp`));

    assert.equal(log.messages.length, 1);
    assert.ok(log.messages[0]!.includes(file));
    assert.ok(log.messages[0]!.includes(corruptPath), "warning names the .corrupt path");
    assert.match(log.messages[0]!, /line 3\b/);

    journal.append(rec(4));
    await journal.close();
    const reopenLog = new RecordingLog();
    const reopened = await open({ log: reopenLog });
    assert.deepEqual(reopened.contents, { snapshot: { cash: 50, seq: 0 }, records: [rec(1), rec(4)] });
    assert.deepEqual(reopenLog.messages, []);
  });

  it("detects every single-byte flip in a checksummed record: never applied, counted, quarantined", async () => {
    const { journal } = await open();
    for (let seq = 1; seq <= 3; seq++) journal.append(rec(seq));
    await journal.close();
    const pristine = fs.readFileSync(file);
    const firstEnd = pristine.indexOf(0x0a) + 1;
    const secondEnd = pristine.indexOf(0x0a, firstEnd) + 1;
    let trials = 0;
    // Every byte of the middle line except its newline, each to several other values.
    for (let at = firstEnd; at < secondEnd - 1; at++) {
      for (const mask of [0x01, 0x02, 0x10, 0x20, 0x40]) {
        const damaged = Buffer.from(pristine);
        damaged[at] = damaged[at]! ^ mask;
        if (damaged[at] === 0x0a) continue; // a new line break is a different damage, tested apart
        fs.writeFileSync(file, damaged);
        for (const f of fs.readdirSync(path.dirname(file))) {
          if (f.includes(".corrupt-")) fs.rmSync(path.join(path.dirname(file), f));
        }
        const log = new RecordingLog();
        const result = await open({ log });
        trials++;
        assert.deepEqual(result.contents.records, [rec(1)], `flip at byte ${at} ^ ${mask} never applied`);
        assert.equal(result.quarantine?.lineNo, 2);
        assert.equal(
          result.quarantine?.droppedAfter,
          1,
          "the quarantine says one good line after it was dropped",
        );
        assert.match(log.messages[0] ?? "", /line 2\b.*1 line\(s\) after it were not applied/s);
        await result.journal.close();
      }
    }
    assert.ok(trials > 100, `${trials} flips tried`);
  });

  it("refuses to open when line 1 is corrupt, instead of starting an empty account", async () => {
    const first = await open();
    await first.journal.compact({ cash: 42, seq: 7 });
    first.journal.append(rec(8));
    await first.journal.close();
    const pristine = fs.readFileSync(file);
    const damaged = Buffer.from(pristine);
    damaged[10] = damaged[10]! ^ 0x04;
    fs.writeFileSync(file, damaged);
    await assert.rejects(
      Journal.open({ file, fsyncIntervalMs: NEVER_MS }),
      (error: Error) =>
        error.message.includes(file) && /line 1 .*corrupt.*checksum mismatch/.test(error.message),
    );
    assert.deepEqual(fs.readFileSync(file), damaged, "the file is left as it was for a human");
  });

  it("treats a record the validator refuses as corrupt: quarantined with the validator's reason", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    journal.append({ seq: 2, kind: "OPEM" });
    journal.append(rec(3));
    await journal.close();
    const log = new RecordingLog();
    const result = await open({
      log,
      validate: (kind, value) =>
        kind === "r" && (value as Rec).kind !== "fill" ? `kind: must be fill` : undefined,
    });
    assert.deepEqual(result.contents.records, [rec(1)]);
    assert.equal(result.quarantine?.droppedAfter, 1);
    assert.match(result.quarantine?.reason ?? "", /invalid record: kind: must be fill/);
  });

  it("treats a snapshot after line 1 as corruption", async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      '{"r":{"seq":1,"kind":"fill"}}\n{"s":{"cash":1,"seq":1}}\n{"r":{"seq":2,"kind":"fill"}}\n',
    );
    const log = new RecordingLog();
    const { contents } = await open({ log });
    assert.deepEqual(contents, { snapshot: undefined, records: [rec(1)] });
    assert.match(log.messages[0] ?? "", /line 2\b.*snapshot after line 1/);
  });

  it("append() after close() throws an Error naming the file; close() is idempotent", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    const closing = journal.close();
    assert.throws(
      () => journal.append(rec(2)),
      (err: unknown) => err instanceof Error && err.message.includes(file),
    );
    await closing;
    await journal.close();
    await journal.flush();
    await assert.rejects(journal.compact({ cash: 0, seq: 0 }), (err: Error) => err.message.includes(file));
    assert.deepEqual(readLines(), ['{"r":{"seq":1,"kind":"fill"}}']);
  });

  it("rejects records JSON cannot carry, with an Error naming the file, and stays usable", async () => {
    const { journal } = await open();
    assert.throws(
      () => journal.append({ seq: 1n } as unknown as Rec),
      (err: unknown) => err instanceof Error && err.message.includes(file),
    );
    assert.throws(() => journal.append(undefined as unknown as Rec), /not serializable/);
    assert.equal(journal.recordsSinceCompaction, 0);
    journal.append(rec(1));
    await journal.flush();
    assert.deepEqual(readLines(), ['{"r":{"seq":1,"kind":"fill"}}']);
  });

  it("a failed write rejects flush() naming the file, cuts off its half line and retries the records", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    await journal.flush();
    const durable = fs.readFileSync(file, "utf8");
    const broken = breakWrites(true);
    journal.append(rec(2));
    await assert.rejects(
      journal.flush(),
      (err: Error) => err.message.includes(file) && /write failed: ENOSPC/.test(err.message),
    );
    assert.equal(broken.failedWrites, 1, "the fault was met");
    assert.equal(fs.readFileSync(file, "utf8"), durable, "the half-written line is cut off");
    journal.append(rec(3));
    await journal.flush();
    await journal.close();
    const log = new RecordingLog();
    assert.deepEqual((await open({ log })).contents.records, [rec(1), rec(2), rec(3)]);
    assert.deepEqual(log.messages, []);
  });

  it("a failed fdatasync rejects flush() naming the file; its lines are written again before a later sync counts them", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    await journal.flush();
    let failing = true;
    faults = new FdFaults(file, { sync: () => failing });
    faults.install();
    model = new DiskModel(file);
    model.install();
    journal.append(rec(2));
    await assert.rejects(
      journal.flush(),
      (err: Error) => err.message.includes(file) && /write failed: EIO/.test(err.message),
    );
    assert.equal(faults.failedSyncs, 1);
    // Linux dropped the failed writeback's pages: a sync that now succeeded would write nothing.
    assert.equal(model.disk.toString("utf8").split("\n").length, 2, "only rec(1) on the platter");
    failing = false;
    journal.append(rec(3));
    await journal.flush();
    const onDisk = model.disk.toString("utf8");
    assert.equal(onDisk, fs.readFileSync(file, "utf8"), "the platter holds what the journal wrote");
    assert.deepEqual(
      onDisk.slice(0, -1).split("\n").map(unsealed),
      [1, 2, 3].map((n) => JSON.stringify({ r: rec(n) })),
    );
  });

  for (let seed = 1; seed <= 12; seed++) {
    it(`seed ${seed}: appends and flushes with one failed fdatasync and failed or torn writes; every acknowledged record on the platter once, in order`, async () => {
      const random = seededRandom(seed);
      const { journal } = await open();
      journal.append(rec(0));
      await journal.flush();
      // The first or second sync: a burst this size makes only a few (flushes share them).
      const failAt = Math.floor(random() * 2);
      const writeFaults = new Map<number, "fail" | "partial">();
      for (let k = 0; k < 4; k++)
        writeFaults.set(Math.floor(random() * 40), random() < 0.5 ? "fail" : "partial");
      faults = new FdFaults(file, {
        sync: (n) => n === failAt,
        write: (n) => writeFaults.get(n) ?? "none",
      });
      faults.install();
      model = new DiskModel(file);
      model.install();
      let appended = 1;
      let acked = 1;
      const pending: Promise<void>[] = [];
      for (let op = 0; op < 150; op++) {
        const r = random();
        if (r < 0.6) journal.append(rec(appended++));
        else if (r < 0.85) {
          const covered = appended;
          pending.push(
            journal.flush().then(
              () => {
                acked = Math.max(acked, covered);
              },
              () => undefined,
            ),
          );
        } else await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(pending);
      const platter = () => {
        const text = model!.disk.toString("utf8");
        assert.equal(model!.disk.indexOf(0), -1, `seed ${seed}: no zero bytes on the platter`);
        assert.ok(text === "" || text.endsWith("\n"), `seed ${seed}: the platter ends in a whole line`);
        return text === ""
          ? []
          : text
              .slice(0, -1)
              .split("\n")
              .map((l) => JSON.parse(unsealed(l)) as { r: Rec });
      };
      // A power cut now: every acknowledged record is there, once, in order, and nothing torn.
      const now = platter().map((l) => l.r.seq);
      assert.deepEqual(
        now.slice(0, acked),
        Array.from({ length: acked }, (_, i) => i),
        `seed ${seed}`,
      );
      assert.deepEqual(
        now,
        Array.from({ length: now.length }, (_, i) => i),
        `seed ${seed}: no line twice`,
      );
      assert.equal(faults.failedSyncs, 1, `seed ${seed}: the sync fault was met`);
      // On a healthy disk again, everything appended becomes durable.
      for (let tries = 0; tries < 5; tries++)
        if (
          await journal.flush().then(
            () => true,
            () => false,
          )
        )
          break;
      assert.deepEqual(
        platter().map((l) => l.r.seq),
        Array.from({ length: appended }, (_, i) => i),
        `seed ${seed}: all records after the disk recovered`,
      );
      const image = path.join(dir, "after-power-cut.jsonl");
      fs.writeFileSync(image, model.disk);
      const reopened = await Journal.open<Snap, Rec>({ file: image, fsyncIntervalMs: NEVER_MS });
      opened.push(reopened.journal);
      assert.equal(reopened.contents.records.length, appended);
    });
  }

  it("writes a batch over 1 MiB on the threadpool; a short then failed write is cut back and retried", async () => {
    const { journal } = await open<Snap, Rec & { note: string }>();
    journal.append({ seq: 1, kind: "fill", note: "small" });
    await journal.flush();
    const durable = fs.readFileSync(file);
    const fd = openFdOf(file);
    const realWrite = fs.write;
    const realWriteSync = fs.writeSync;
    let threadpoolWrites = 0;
    let mainThreadWrites = 0;
    let failing = true;
    type WriteCallback = (err: NodeJS.ErrnoException | null, written: number) => void;
    (fs as { write: unknown }).write = (f: number, ...rest: unknown[]) => {
      if (f !== fd) return (realWrite as (...a: unknown[]) => void)(f, ...rest);
      threadpoolWrites++;
      const [buffer, offset, length, , callback] = rest as [Buffer, number, number, null, WriteCallback];
      if (failing && threadpoolWrites === 1) {
        // Half lands, as on a disk filling up part-way; the next write of the rest fails.
        const half = Math.floor(length / 2);
        realWriteSync(f, buffer, offset, half);
        setImmediate(callback, null, half);
        return;
      }
      if (failing) {
        const error = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        setImmediate(callback, error, 0);
        return;
      }
      return (realWrite as (...a: unknown[]) => void)(f, ...rest);
    };
    (fs as { writeSync: unknown }).writeSync = (f: number, ...rest: unknown[]) => {
      if (f === fd) mainThreadWrites++;
      return (realWriteSync as (...a: unknown[]) => number)(f, ...rest);
    };
    try {
      const big = { seq: 2, kind: "fill", note: "₹".repeat(600_000) };
      journal.append(big);
      await assert.rejects(
        journal.flush(),
        (err: Error) => err.message.includes(file) && /ENOSPC/.test(err.message),
      );
      assert.equal(threadpoolWrites, 2);
      assert.deepEqual(fs.readFileSync(file), durable, "the half-written line is cut off");
      failing = false;
      await journal.flush();
      assert.equal(mainThreadWrites, 0, "a batch that large never blocks the event loop on its copy");
      await journal.close();
      assert.deepEqual((await open<Snap, Rec & { note: string }>()).contents.records, [
        { seq: 1, kind: "fill", note: "small" },
        big,
      ]);
    } finally {
      (fs as { write: unknown }).write = realWrite;
      (fs as { writeSync: unknown }).writeSync = realWriteSync;
    }
  });

  it("a compaction whose preceding write fails still supersedes the records it covers", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    await journal.flush();
    journal.append(rec(2));
    // rec(2) cannot reach the old file before the snapshot is written.
    breakWrites(false);
    await journal.compact({ cash: 2, seq: 2 });
    journal.append(rec(3));
    await journal.close();
    assert.deepEqual((await open()).contents, { snapshot: { cash: 2, seq: 2 }, records: [rec(3)] });
  });

  it("a failed compaction rejects naming the file, after flushing, and the journal carries on", async () => {
    const { journal } = await open();
    journal.append(rec(1));
    journal.append(rec(2));
    // A directory where the .tmp must go makes the snapshot write fail.
    fs.mkdirSync(`${file}.tmp`);
    await assert.rejects(journal.compact({ cash: 1, seq: 2 }), (err: Error) => err.message.includes(file));
    assert.equal(readLines().length, 2, "the covered records were flushed before the snapshot was attempted");
    assert.equal(journal.recordsSinceCompaction, 2, "nothing was compacted");
    journal.append(rec(3));
    await journal.close();
    fs.rmdirSync(`${file}.tmp`);
    assert.deepEqual((await open()).contents, { snapshot: undefined, records: [rec(1), rec(2), rec(3)] });
  });

  it("rejects a bad fsyncIntervalMs with an Error naming the file", async () => {
    await assert.rejects(open({ fsyncIntervalMs: -1 }), (err: Error) => err.message.includes(file));
  });

  it("close() leaves no timers, fds or pending fs requests of ours", async () => {
    const countActive = (): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (const kind of process.getActiveResourcesInfo()) {
        if (kind === "Timeout" || kind.startsWith("FS") || kind === "FileHandle")
          counts[kind] = (counts[kind] ?? 0) + 1;
      }
      return counts;
    };
    // Unref'd timers are invisible to getActiveResourcesInfo(), so track Timeout lifetimes directly.
    const liveTimeouts = new Set<number>();
    const refedTimeouts: number[] = [];
    const hook = createHook({
      init: (id, type, _trigger, resource) => {
        if (type !== "Timeout") return;
        liveTimeouts.add(id);
        // A ref'd timer would keep Node-RED from exiting; checked once the creating call has returned.
        setImmediate(() => {
          if ((resource as NodeJS.Timeout).hasRef()) refedTimeouts.push(id);
        });
      },
      destroy: (id) => {
        liveTimeouts.delete(id);
      },
    });
    const fdDir = "/proc/self/fd";
    const countFds = (): number | undefined =>
      fs.existsSync(fdDir) ? fs.readdirSync(fdDir).length : undefined;

    // Mocha arms its own per-test Timeout once this function returns its promise; let that happen first.
    await new Promise((r) => setImmediate(r));
    const activeBefore = countActive();
    const fdsBefore = countFds();
    hook.enable();
    try {
      const { journal } = await open();
      journal.append(rec(1));
      assert.equal(liveTimeouts.size, 1, "the batch timer is observable while open");
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(refedTimeouts, [], "the batch timer is unref'd");
      if (fdsBefore !== undefined)
        assert.equal(countFds(), fdsBefore + 1, "the append fd is observable while open");
      await journal.compact({ cash: 1, seq: 1 });
      journal.append(rec(2));
      await journal.close();
      await new Promise((r) => setImmediate(r));
      assert.equal(liveTimeouts.size, 0, "no timer left behind");
      if (fdsBefore !== undefined) assert.equal(countFds(), fdsBefore, "no fd left behind");
      assert.deepEqual(countActive(), activeBefore);
    } finally {
      hook.disable();
    }
  });
});
