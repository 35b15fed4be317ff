import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fmt, row, summarize } from "./stats";

/** One small index line, as the gateway appends per placement. */
const RECORD = Buffer.from(
  `${JSON.stringify(["i", "default\u0000b000000000000", "0".repeat(24), "2026-12-04", "P000000000"])}\n`,
);

/** A paper journal line for one placed order, about the size the journal writes. */
const JOURNAL_RECORD = Buffer.from(`{"r":${JSON.stringify({ o: "x".repeat(260) })},"k":"00000000"}\n`);

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fdatasync(fd, (error) => (error === null ? resolve() : reject(error))),
  );
}

function micros(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}

/**
 * Ways of making one small appended record durable, on the disk under `dir`, interleaved sample by
 * sample so the machine's noise weighs on each alike: what the index did before (open, append,
 * sync, close per flush), the journal's way before (FileHandle write + datasync: two threadpool
 * hops), the way of both now (writeSync into the page cache + one async fdatasync), the same into
 * a preallocated (zero-filled, synced) file, so the fdatasync has no file size to commit, and a
 * blocking write + fdatasyncSync: the disk's own cost, the floor under every other way. Then what
 * a durable placement pays: two files made durable (the index's intent, the journal's record),
 * their fdatasyncs side by side or one after the other.
 */
export async function fsyncVariants(dir: string, count: number): Promise<string[]> {
  const files = ["open", "handle", "sync", "prealloc", "blocking", "second"].map((name) =>
    path.join(dir, `fsync-${name}.jsonl`),
  );
  const [openFile, handleFile, syncFile, preallocFile, blockingFile, secondFile] = files as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const handle = await fsp.open(handleFile, "a");
  const syncFd = fs.openSync(syncFile, "a");
  const blockingFd = fs.openSync(blockingFile, "a");
  const secondFd = fs.openSync(secondFile, "a");
  const preallocFd = fs.openSync(preallocFile, "w");
  fs.writeSync(preallocFd, Buffer.alloc(Math.max(1 << 20, RECORD.length * (count + 1))));
  fs.fsyncSync(preallocFd);
  let preallocAt = 0;
  type Variant = "open" | "handle" | "sync" | "prealloc" | "blocking" | "twoAtOnce" | "twoInTurn";
  const samples: Record<Variant, number[]> = {
    open: [],
    handle: [],
    sync: [],
    prealloc: [],
    blocking: [],
    twoAtOnce: [],
    twoInTurn: [],
  };
  try {
    for (let i = 0; i < count; i += 1) {
      let start = process.hrtime.bigint();
      const opened = await fsp.open(openFile, "a");
      await opened.appendFile(RECORD);
      await opened.sync();
      await opened.close();
      samples.open.push(micros(start));

      start = process.hrtime.bigint();
      await handle.write(RECORD);
      await handle.datasync();
      samples.handle.push(micros(start));

      start = process.hrtime.bigint();
      fs.writeSync(syncFd, RECORD);
      await fdatasync(syncFd);
      samples.sync.push(micros(start));

      start = process.hrtime.bigint();
      fs.writeSync(preallocFd, RECORD, 0, RECORD.length, preallocAt);
      preallocAt += RECORD.length;
      await fdatasync(preallocFd);
      samples.prealloc.push(micros(start));

      // No threadpool hop at all (it blocks the event loop): what the disk alone costs.
      start = process.hrtime.bigint();
      fs.writeSync(blockingFd, RECORD);
      fs.fdatasyncSync(blockingFd);
      samples.blocking.push(micros(start));

      start = process.hrtime.bigint();
      fs.writeSync(syncFd, RECORD);
      const first = fdatasync(syncFd);
      fs.writeSync(secondFd, JOURNAL_RECORD);
      await Promise.all([first, fdatasync(secondFd)]);
      samples.twoAtOnce.push(micros(start));

      start = process.hrtime.bigint();
      fs.writeSync(syncFd, RECORD);
      await fdatasync(syncFd);
      fs.writeSync(secondFd, JOURNAL_RECORD);
      await fdatasync(secondFd);
      samples.twoInTurn.push(micros(start));
    }
  } finally {
    await handle.close();
    fs.closeSync(syncFd);
    fs.closeSync(preallocFd);
    fs.closeSync(blockingFd);
    fs.closeSync(secondFd);
    for (const file of files) fs.rmSync(file, { force: true });
  }
  const base = summarize(samples.sync);
  const line = (what: string, s: number[]): string => {
    const m = summarize(s);
    return row([what, fmt(m.p50, 1), fmt(m.p99, 1), fmt(m.p50 / base.p50)]);
  };
  return [
    row([
      `one ${RECORD.length}-byte record made durable, ${count} samples each, interleaved`,
      "p50 µs",
      "p99 µs",
      "p50 ratio",
    ]),
    row(["---", "---:", "---:", "---:"]),
    line("writeSync + async fdatasync, fd kept open (the index and the journal now; baseline)", samples.sync),
    line("FileHandle write + datasync, kept open (the journal before)", samples.handle),
    line("open + appendFile + sync + close per flush (the index before)", samples.open),
    line("writeSync at an offset into a preallocated file + async fdatasync", samples.prealloc),
    line(
      "writeSync + fdatasyncSync on the main thread (the disk alone, no threadpool hop)",
      samples.blocking,
    ),
    line(
      "two files (intent + journal record), writeSync each, both fdatasyncs side by side (a durable placement)",
      samples.twoAtOnce,
    ),
    line("the same two files, one fdatasync after the other", samples.twoInTurn),
  ];
}
