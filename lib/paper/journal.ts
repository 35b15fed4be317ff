// Durable store for the paper broker's account, so it survives Node-RED redeploys and restarts.
//
// Format: one JSON value per line. `{"s":<snapshot>,"k":"<crc32>"}` may only be line 1 (written by
// compaction); every other line is `{"r":<record>,"k":"<crc32>"}`. The checksum covers the line as it
// would read without its `,"k":"…"` member, so one flipped byte anywhere is caught before the value is
// used. Lines without `k` (journals written before checksums) are read as they are. Appends are
// batched in memory and written + fdatasync'd by an unref'd timer or an explicit flush(); compaction
// replaces the file atomically (write .tmp, fsync, rename, fsync dir).
//
// A batch reaches the disk in one threadpool hop: written into the page cache on the main thread
// (a few µs for the lines one fsync covers while orders come one by one), then one fdatasync on
// the kept-open fd. Two hops (an async write, then the sync) cost a durable acknowledgement a
// threadpool round trip more, and let the index's fdatasync, started before the broker placed
// the order, run ahead alone. Only a batch too large to copy without stalling the event loop is
// written on the threadpool.

import fs, { constants as fsConstants, promises as fsp } from "node:fs";
import * as path from "node:path";
import { crc32 } from "node:zlib";
import { syncDirectory, writeFileDurably } from "../common/durable-file";
import { messageOf } from "../common/error-message";
import { crc32Byte, crc32Range } from "./crc32";
import { JsonSink } from "./json-sink";

export interface JournalLog {
  warn(message: string): void;
}

export interface JournalOptions {
  file: string;
  fsyncIntervalMs?: number;
  log?: JournalLog;
  /**
   * Checks one decoded value (its schema, say); a string names what is wrong and the line is treated
   * as corrupt, exactly like a checksum mismatch. A bad snapshot makes open() fail.
   */
  validate?: (kind: "s" | "r", value: unknown) => string | undefined;
}

/** What open() set aside: the first bad line and everything after it, never applied. */
export interface JournalQuarantine {
  lineNo: number;
  reason: string;
  /** Lines after the bad one that were dropped with it (they may depend on it). */
  droppedAfter: number;
  /** The untouched original, kept for a human. */
  corruptFile: string;
  /** The bytes that were not applied (the bad line onwards), for callers that must skip ids. */
  tail: Buffer;
}

export interface JournalContents<S, R> {
  snapshot: S | undefined;
  records: R[];
}

const DEFAULT_FSYNC_INTERVAL_MS = 100;
const NEWLINE = 0x0a;
const noopLog: JournalLog = { warn: () => undefined };

function errorCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    return typeof err.code === "string" ? err.code : undefined;
  }
  return undefined;
}

function journalError(file: string, what: string, cause?: unknown): Error {
  const detail = cause === undefined ? "" : `: ${messageOf(cause)}`;
  return new Error(`journal ${file}: ${what}${detail}`, cause === undefined ? undefined : { cause });
}

/**
 * Batches up to this size are copied into the page cache on the main thread: ~1,700 orders' lines,
 * well under a millisecond of memcpy. A larger one (a burst's backlog, an outage's) goes to the
 * threadpool so the event loop keeps serving meanwhile.
 */
const INLINE_WRITE_MAX = 1 << 20;

/** Through the `fs` module object on every call (not a captured reference), so a test can fail it. */
function writeChunk(fd: number, bytes: Buffer, offset: number): Promise<number> | number {
  if (bytes.length <= INLINE_WRITE_MAX) return fs.writeSync(fd, bytes, offset, bytes.length - offset);
  return new Promise((resolve, reject) =>
    fs.write(fd, bytes, offset, bytes.length - offset, null, (err, written) =>
      err === null ? resolve(written) : reject(err),
    ),
  );
}

async function writeAll(fd: number, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const chunk = writeChunk(fd, bytes, offset);
    const written = typeof chunk === "number" ? chunk : await chunk;
    // A zero-byte write would otherwise spin forever.
    if (written <= 0) throw new Error("write made no progress");
    offset += written;
  }
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fdatasync(fd, (err) => (err === null ? resolve() : reject(err))),
  );
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing of ours is lost: what was written is durable or pending.
  }
}

type Entry = { kind: "s"; value: unknown } | { kind: "r"; value: unknown };
type Validate = JournalOptions["validate"];

/** `,"k":"xxxxxxxx"}`: a fixed-length tail, so the covered text is found without parsing. */
const CHECK_TAIL = 16;
const CHECK_PREFIX = ',"k":"';

function checksum(text: string): string {
  return crc32(text).toString(16).padStart(8, "0");
}

const SNAPSHOT_OPEN = Buffer.from('{"s":', "latin1");
const SNAPSHOT_OPEN_CRC = crc32(SNAPSHOT_OPEN);

/**
 * `{"s":<json>,"k":"<crc32 of {"s":<json>}>"}` + newline, the JSON written by a JsonSink straight
 * into one buffer (the bytes JSON.stringify would give): a snapshot of 10,000 orders is megabytes,
 * and JSON.stringify's string had to be flattened and then encoded into the buffer, which cost
 * more than writing the bytes from the objects. `sizeHint` (the last snapshot's size) spares the
 * buffer most of its doublings. Throws what JSON.stringify would (a BigInt, a cycle).
 */
function sealSnapshot(snapshot: unknown, sizeHint: number): Buffer {
  const sink = new JsonSink(Buffer.allocUnsafe(Math.max(PENDING_INITIAL, sizeHint + (sizeHint >> 3))));
  const start = SNAPSHOT_OPEN.length;
  sink.buf.set(SNAPSHOT_OPEN, 0);
  sink.at = start;
  sink.item(snapshot);
  sink.ensure(SEAL_BYTES);
  const out = sink.buf;
  const body = new Uint8Array(out.buffer, out.byteOffset + start, sink.at - start);
  return sealAt(out, sink.at, crc32Byte(crc32(body, SNAPSHOT_OPEN_CRC), 0x7d)); // }
}

/** Writes `,"k":"<sum as 8 hex digits>"}` and a newline at `at`; returns the line. */
function sealAt(out: Buffer, start: number, sum: number): Buffer {
  let at = start + out.write(CHECK_PREFIX, start, "latin1");
  for (let shift = 28; shift >= 0; shift -= 4) out[at++] = HEX[(sum >>> shift) & 0xf]!;
  out[at++] = 0x22; // "
  out[at++] = 0x7d; // }
  out[at++] = NEWLINE;
  return out.subarray(0, at);
}

const RECORD_OPEN = Buffer.from('{"r":', "latin1");
/** The CRC32 of `{"r":`, so a record's checksum starts from its JSON. */
const RECORD_OPEN_CRC = crc32(RECORD_OPEN);
const CHECK_PREFIX_BYTES = Buffer.from(CHECK_PREFIX, "latin1");
/** `,"k":"` + 8 hex digits + `"}` + newline. */
const SEAL_BYTES = CHECK_TAIL + 1;
const HEX = Buffer.from("0123456789abcdef", "latin1");
/** What the pending buffer starts at and shrinks back to once drained. */
const PENDING_INITIAL = 64 * 1024;
/**
 * Kept when drained up to this size: a steady burst (10,000 orders per fsync is ~6 MB) would
 * otherwise regrow it by copying every time; past it, an outage's backlog is given back.
 */
const PENDING_KEEP = 16 * 1024 * 1024;

/**
 * Above this many bytes a record's body goes to zlib's crc32 (one view and one call into C++, then
 * faster per byte); below it, the JS loop over the pending bytes costs less than the call.
 */
const JS_CRC_MAX = 256;

/** The CRC32 of `{"r":` followed by out[start, end). */
function recordCrc(out: Buffer, start: number, end: number): number {
  if (end - start <= JS_CRC_MAX) return crc32Range(out, start, end, RECORD_OPEN_CRC);
  // A plain Uint8Array view: Buffer's subarray() goes through its subclass's constructor (~25 % dearer).
  return crc32(new Uint8Array(out.buffer, out.byteOffset + start, end - start), RECORD_OPEN_CRC);
}

/** The line without its checksum when the checksum matches; a reason when it does not. */
function unseal(text: string): { body: string } | string {
  const at = text.length - CHECK_TAIL;
  if (at <= 0 || !text.startsWith(CHECK_PREFIX, at) || !text.endsWith('"}')) return { body: text };
  const body = `${text.slice(0, at)}}`;
  const given = text.slice(at + CHECK_PREFIX.length, -2);
  return given === checksum(body)
    ? { body }
    : `checksum mismatch (stored ${given}, computed ${checksum(body)})`;
}

function classify(text: string, lineIndex: number, validate: Validate): Entry | string {
  const unsealed = unseal(text);
  if (typeof unsealed === "string") return unsealed;
  let value: unknown;
  try {
    value = JSON.parse(unsealed.body);
  } catch (err) {
    return `invalid JSON (${messageOf(err)})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a journal entry";
  // Exactly one key: a damaged checksum member must not turn a line into an unchecked legacy one.
  const keys = Object.keys(value);
  if (keys.length !== 1) return "not a journal entry";
  let entry: Entry;
  if (keys[0] === "r") entry = { kind: "r", value: (value as { r: unknown }).r };
  else if (keys[0] === "s") {
    if (lineIndex !== 0) return "snapshot after line 1";
    entry = { kind: "s", value: (value as { s: unknown }).s };
  } else return "not a journal entry";
  const invalid = validate?.(entry.kind, entry.value);
  return invalid === undefined ? entry : `invalid ${entry.kind === "s" ? "snapshot" : "record"}: ${invalid}`;
}

/** A crash can leave the tail of the last write unwritten (no newline) or zero-filled. */
function looksTorn(data: Buffer, start: number, end: number, hasNewline: boolean): boolean {
  if (!hasNewline) return true;
  for (let i = start; i < end; i++) if (data[i] !== 0) return false;
  return true;
}

interface Parsed {
  snapshot: unknown;
  records: unknown[];
  /** Byte offset just past the last good line. */
  goodEnd: number;
  bad?: { lineNo: number; reason: string; isLast: boolean; torn: boolean };
}

function countLines(data: Buffer, from: number): number {
  let count = 0;
  for (let at = data.indexOf(NEWLINE, from); at !== -1; at = data.indexOf(NEWLINE, at + 1)) count++;
  return count;
}

function parse(data: Buffer, validate: Validate): Parsed {
  const out: Parsed = { snapshot: undefined, records: [], goodEnd: 0 };
  let start = 0;
  let lineIndex = 0;
  while (start < data.length) {
    const nl = data.indexOf(NEWLINE, start);
    const end = nl === -1 ? data.length : nl;
    const next = nl === -1 ? data.length : nl + 1;
    const isLast = next >= data.length;
    // Without its newline the write was cut short, even if the fragment happens to parse.
    const entry =
      nl === -1 ? "no trailing newline" : classify(data.toString("utf8", start, end), lineIndex, validate);
    if (typeof entry === "string") {
      // A snapshot is only ever written whole (temporary file, fsync, rename), never appended: one
      // cut short is damage, and skipping it as torn would restart the account from nothing.
      const snapshotCut = lineIndex === 0 && data.subarray(start, end).indexOf(SNAPSHOT_OPEN) === 0;
      const torn = isLast && !snapshotCut && looksTorn(data, start, end, nl !== -1);
      out.bad = { lineNo: lineIndex + 1, reason: entry, isLast, torn };
      return out;
    }
    if (entry.kind === "s") out.snapshot = entry.value;
    else out.records.push(entry.value);
    out.goodEnd = next;
    start = next;
    lineIndex++;
  }
  return out;
}

export class Journal<S, R> {
  readonly file: string;
  private readonly tmpFile: string;
  private readonly intervalMs: number;
  private readonly log: JournalLog;
  /** The append fd, kept open: opened again (O_APPEND) if a compaction or a failure closed it. */
  private fd: number | undefined;
  /** Bytes known to be durable; a failed write is cut back to here so later lines don't follow a half line. */
  private goodSize: number;
  /**
   * Lines not yet durable, oldest first, sealed as they are appended: bytes outside the JS heap, so
   * thousands of records waiting for one fsync cost the garbage collector nothing. A line leaves only
   * once it is on disk or covered by a durable snapshot.
   */
  private pending: Buffer = Buffer.allocUnsafe(PENDING_INITIAL);
  private pendingBytes = 0;
  /** What beginRecord() hands out, reused: one per journal, not one per record. */
  private readonly sink = new JsonSink(this.pending);
  /** Where each pending line ends, in bytes since the journal opened (`pendingBase` is pending[0]). */
  private readonly ends: number[] = [];
  private pendingBase = 0;
  /** Sequence number of the first pending line; sequence numbers order lines against compaction cut-offs. */
  private bufferSeq = 0;
  private nextSeq = 0;
  /** Cut-offs of queued compactions: lines before a cut-off are covered by that snapshot and must not follow it. */
  private readonly cutoffs: number[] = [];
  /** Every disk operation runs on this chain, so writes never interleave or reorder. */
  private tail: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private released = false;
  /** Set when a failed write left a partial line we could not remove; only a compaction can recover. */
  private broken: Error | undefined;
  private failing = false;
  private records: number;
  /** The last snapshot line's size: the next one's buffer starts about as large. */
  private lastSnapshotBytes = 0;

  private constructor(
    file: string,
    intervalMs: number,
    log: JournalLog,
    fd: number,
    goodSize: number,
    records: number,
  ) {
    this.file = file;
    this.tmpFile = `${file}.tmp`;
    this.intervalMs = intervalMs;
    this.log = log;
    this.fd = fd;
    this.goodSize = goodSize;
    this.records = records;
  }

  get recordsSinceCompaction(): number {
    return this.records;
  }

  static async open<S, R>(
    options: JournalOptions,
  ): Promise<{ journal: Journal<S, R>; contents: JournalContents<S, R>; quarantine?: JournalQuarantine }> {
    const file = options.file;
    if (typeof file !== "string" || file === "")
      throw new Error("journal: options.file must be a non-empty path");
    const intervalMs = options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw journalError(file, `fsyncIntervalMs must be a finite number >= 0, got ${String(intervalMs)}`);
    }
    const log = options.log ?? noopLog;
    const dir = path.dirname(file);
    const tmpFile = `${file}.tmp`;

    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (err) {
      throw journalError(file, `cannot create directory ${dir}`, err);
    }
    // A .tmp is only ever a compaction that did not reach its rename; the journal itself is still whole.
    try {
      await fsp.rm(tmpFile, { force: true });
    } catch (err) {
      throw journalError(file, `cannot remove leftover ${tmpFile}`, err);
    }

    let data: Buffer | undefined;
    try {
      data = await fsp.readFile(file);
    } catch (err) {
      if (errorCode(err) !== "ENOENT") throw journalError(file, "cannot read", err);
    }

    const parsed = parse(data ?? Buffer.alloc(0), options.validate);
    const bad = parsed.bad;
    if (bad !== undefined && bad.lineNo === 1 && !bad.torn) {
      // Continuing from nothing would silently put the account back to its starting cash.
      throw journalError(
        file,
        `line 1 (the account snapshot or first record) is corrupt (${bad.reason}); nothing was loaded and the file is ` +
          "unchanged. Restore it from a backup, or move it aside to start a new account",
      );
    }
    let quarantine: JournalQuarantine | undefined;
    if (data !== undefined && bad !== undefined && !bad.torn) {
      quarantine = await Journal.quarantine(file, data, parsed.goodEnd, bad, parsed.records.length, log);
    }

    let fd: number;
    try {
      fd = fs.openSync(file, "a");
    } catch (err) {
      throw journalError(file, "cannot open for append", err);
    }
    try {
      if (bad?.torn === true) {
        // Cut the torn tail off now, or the next append would be glued onto it and corrupt a good line.
        fs.ftruncateSync(fd, parsed.goodEnd);
        await datasync(fd);
        log.warn(
          `journal ${file}: skipped torn line ${bad.lineNo} (${bad.reason}), left by an interrupted write; ` +
            `truncated the file to ${parsed.goodEnd} bytes`,
        );
      }
    } catch (err) {
      fs.closeSync(fd);
      throw journalError(file, "cannot truncate torn last line", err);
    }
    if (data === undefined) {
      await syncDirectory(dir).catch((err: unknown) =>
        log.warn(`journal ${file}: cannot fsync directory ${dir}: ${messageOf(err)}`),
      );
    }

    const journal = new Journal<S, R>(file, intervalMs, log, fd, parsed.goodEnd, parsed.records.length);
    const contents = { snapshot: parsed.snapshot as S | undefined, records: parsed.records as R[] };
    return quarantine === undefined ? { journal, contents } : { journal, contents, quarantine };
  }

  /**
   * Keeps the damaged original for a human to inspect and continues from the good prefix. The original
   * is hard-linked (not renamed) before the prefix is renamed over it, so a crash at any point leaves a
   * complete journal at `file`.
   */
  private static async quarantine(
    file: string,
    data: Buffer,
    goodEnd: number,
    bad: { lineNo: number; reason: string },
    goodRecords: number,
    log: JournalLog,
  ): Promise<JournalQuarantine> {
    const tmpFile = `${file}.tmp`;
    let stamp = Date.now();
    let corrupt = `${file}.corrupt-${stamp}`;
    try {
      await writeFileDurably(tmpFile, data.subarray(0, goodEnd));
      for (;;) {
        try {
          await fsp.link(file, corrupt);
          break;
        } catch (err) {
          const code = errorCode(err);
          if (code === "EEXIST") {
            corrupt = `${file}.corrupt-${++stamp}`;
            continue;
          }
          // Some filesystems have no hard links; a copy keeps the same evidence.
          await fsp.copyFile(file, corrupt, fsConstants.COPYFILE_EXCL);
          break;
        }
      }
      await fsp.rename(tmpFile, file);
    } catch (err) {
      await fsp.rm(tmpFile, { force: true }).catch(() => undefined);
      throw journalError(
        file,
        `line ${bad.lineNo} is corrupt (${bad.reason}) and it could not be set aside`,
        err,
      );
    }
    const dir = path.dirname(file);
    await syncDirectory(dir).catch((err: unknown) =>
      log.warn(`journal ${file}: cannot fsync directory ${dir}: ${messageOf(err)}`),
    );
    const droppedAfter = countLines(data, goodEnd) - 1 + (data[data.length - 1] === NEWLINE ? 0 : 1);
    log.warn(
      `journal ${file}: line ${bad.lineNo} is corrupt (${bad.reason}); moved the original to ${corrupt} ` +
        `and continued from the ${goodRecords} record(s) and snapshot before that line; ` +
        `${droppedAfter} line(s) after it were not applied`,
    );
    return {
      lineNo: bad.lineNo,
      reason: bad.reason,
      droppedAfter,
      corruptFile: corrupt,
      tail: data.subarray(goodEnd),
    };
  }

  append(record: R): void {
    if (this.closing !== undefined) throw journalError(this.file, "append() after close()");
    let json: string | undefined;
    try {
      json = JSON.stringify(record);
    } catch (err) {
      throw journalError(this.file, "record is not serializable", err);
    }
    // JSON.stringify yields undefined for undefined/functions/symbols; the line would not read back.
    if (json === undefined) throw journalError(this.file, "record is not serializable to JSON");
    this.pushLine(json);
    this.nextSeq++;
    this.records++;
    this.armTimer();
  }

  /**
   * `{"r":<json>,"k":"<crc32 of {"r":<json>}>"}` + newline, written straight into the pending bytes:
   * sealed as sealSnapshot() does, without the intermediate strings.
   */
  private pushLine(json: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; reserving that spares a byteLength pass.
    const most = RECORD_OPEN.length + json.length * 3 + SEAL_BYTES;
    if (this.pending.length - this.pendingBytes < most) this.grow(most);
    const out = this.pending;
    const bodyStart = this.pendingBytes + RECORD_OPEN.length;
    out.set(RECORD_OPEN, this.pendingBytes);
    this.seal(bodyStart, bodyStart + out.write(json, bodyStart, "utf8"));
  }

  /**
   * Writes the JSON body of a record in place: `beginRecord()` hands out a sink positioned in the
   * pending bytes, the caller writes one JSON value into it, `endRecord()` seals it as append()
   * would have (same bytes as appending that value). Nothing is kept if endRecord() is not reached:
   * a throw while writing leaves the journal as it was. For callers whose records are built for
   * the journal only, so the value and its JSON string need not exist.
   */
  beginRecord(): JsonSink {
    if (this.closing !== undefined) throw journalError(this.file, "append() after close()");
    const sink = this.sink;
    sink.buf = this.pending;
    sink.at = this.pendingBytes;
    sink.ensure(RECORD_OPEN.length + 512);
    const out = sink.buf;
    for (let i = 0; i < RECORD_OPEN.length; i++) out[sink.at++] = RECORD_OPEN[i]!;
    return sink;
  }

  endRecord(): void {
    const sink = this.sink;
    sink.ensure(SEAL_BYTES);
    // The sink may have grown into a new buffer; it holds every pending line too.
    this.pending = sink.buf;
    this.seal(this.pendingBytes + RECORD_OPEN.length, sink.at);
    this.nextSeq++;
    this.records++;
    this.armTimer();
  }

  /** Ends the line whose JSON body is pending[bodyStart, end) (after `{"r":`): checksum, newline. */
  private seal(bodyStart: number, end: number): void {
    const out = this.pending;
    const sum = crc32Byte(recordCrc(out, bodyStart, end), 0x7d); // }
    // Byte by byte: a Buffer.write of six bytes is a call into C++ per record.
    let at = end;
    for (let i = 0; i < CHECK_PREFIX_BYTES.length; i++) out[at++] = CHECK_PREFIX_BYTES[i]!;
    for (let shift = 28; shift >= 0; shift -= 4) out[at++] = HEX[(sum >>> shift) & 0xf]!;
    out[at++] = 0x22; // "
    out[at++] = 0x7d; // }
    out[at++] = NEWLINE;
    this.pendingBytes = at;
    this.ends.push(this.pendingBase + at);
  }

  /**
   * A larger pending buffer with the same lines. A write in flight keeps the old one alive through
   * its own view, and the lines it is writing stay at the front of this one until it is done.
   */
  private grow(needed: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.pending.length * 2, this.pendingBytes + needed));
    this.pending.copy(bigger, 0, 0, this.pendingBytes);
    this.pending = bigger;
  }

  /** The first `count` pending lines are durable (or covered by a snapshot): they leave. */
  private dropPending(count: number): void {
    if (count <= 0) return;
    const cut = this.ends[count - 1]! - this.pendingBase;
    this.ends.splice(0, count);
    this.bufferSeq += count;
    this.pendingBase += cut;
    if (cut === this.pendingBytes) {
      this.pendingBytes = 0;
      if (this.pending.length > PENDING_KEEP) this.pending = Buffer.allocUnsafe(PENDING_INITIAL);
    } else {
      this.pending.copyWithin(0, cut, this.pendingBytes);
      this.pendingBytes -= cut;
    }
  }

  flush(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    return this.enqueue(() => this.writePending());
  }

  compact(snapshot: S): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(journalError(this.file, "compact() after close()"));
    // JSON.stringify gives nothing for these; the line would not read back.
    if (snapshot === undefined || typeof snapshot === "function" || typeof snapshot === "symbol")
      return Promise.reject(journalError(this.file, "snapshot is not serializable to JSON"));
    // Serialize now: the caller keeps mutating its state, and the snapshot must match the cut-off below.
    let line: Buffer;
    try {
      line = sealSnapshot(snapshot, this.lastSnapshotBytes);
    } catch (err) {
      return Promise.reject(journalError(this.file, "snapshot is not serializable", err));
    }
    this.lastSnapshotBytes = line.length;
    const cutoff = this.nextSeq;
    this.cutoffs.push(cutoff);
    const covered = this.records;
    this.records = 0;
    return this.enqueue(async () => {
      try {
        await this.compactNow(cutoff, line);
      } catch (err) {
        this.records += covered;
        throw err;
      } finally {
        this.cutoffs.shift();
      }
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.clearTimer();
    try {
      await this.enqueue(() => this.writePending());
    } catch (err) {
      this.log.warn(`journal ${this.file}: closing with ${this.ends.length} unsaved record(s)`);
      throw err;
    } finally {
      this.released = true;
      const fd = this.fd;
      this.fd = undefined;
      if (fd !== undefined) {
        try {
          fs.closeSync(fd);
        } catch (err) {
          // A close failure after a successful flush loses nothing, but should not go unnoticed.
          this.log.warn(`journal ${this.file}: cannot close: ${messageOf(err)}`);
        }
      }
    }
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.tail.then(op);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.closing !== undefined) return;
    // unref: a pending batch must never keep Node-RED (or a test run) alive; close() flushes it.
    this.timer = setTimeout(() => this.onTimer(), this.intervalMs).unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    this.timer = undefined;
    void this.enqueue(() => this.writePending()).then(
      () => {
        this.failing = false;
        if (this.ends.length > 0) this.armTimer();
      },
      (err: unknown) => {
        // Warn once per run of failures; the timer keeps retrying and the lines stay buffered.
        if (!this.failing) {
          this.log.warn(`${messageOf(err)}; ${this.ends.length} record(s) kept in memory, retrying`);
        }
        this.failing = true;
        if (this.ends.length > 0) this.armTimer();
      },
    );
  }

  /** Writes buffered lines up to the next queued compaction's cut-off (or all of them). */
  private async writePending(): Promise<void> {
    await this.writeUpTo(this.cutoffs[0] ?? this.nextSeq);
  }

  private async writeUpTo(limit: number): Promise<void> {
    const count = Math.min(limit - this.bufferSeq, this.ends.length);
    if (count <= 0) return;
    if (this.broken !== undefined) throw this.broken;
    await this.appendDurably(this.pending.subarray(0, this.ends[count - 1]! - this.pendingBase));
    // Appends made while we awaited went after these lines, so the first `count` are still ours.
    this.dropPending(count);
  }

  private async appendDurably(bytes: Buffer): Promise<void> {
    try {
      if (this.released) throw new Error("journal is closed");
      this.fd ??= fs.openSync(this.file, "a");
      await writeAll(this.fd, bytes);
      await datasync(this.fd);
      this.goodSize += bytes.length;
    } catch (err) {
      this.cutBack(err);
      throw journalError(this.file, "write failed", err);
    }
  }

  /**
   * After a failed write the file may end in a partial line, and after a failed fdatasync Linux may
   * have dropped the dirty pages and marked them clean, so a later fdatasync that succeeds would not
   * write them ("fsyncgate"). Cutting back to the last durable size means the same lines are written
   * again, dirty again, before any later sync can count them.
   */
  private cutBack(cause: unknown): void {
    const fd = this.fd;
    if (fd === undefined || this.released) return;
    try {
      fs.ftruncateSync(fd, this.goodSize);
    } catch (err) {
      this.broken = journalError(
        this.file,
        `a failed write (${messageOf(cause)}) may have left a partial line that could not be cut back ` +
          `(${messageOf(err)}); compact() to recover`,
      );
    }
  }

  private async compactNow(cutoff: number, bytes: Buffer): Promise<void> {
    // Writing the covered lines to the old file first means a crash anywhere below still leaves a file
    // that replays to the snapshot's state. If that fails, the snapshot supersedes them anyway.
    if (this.broken === undefined) await this.writeUpTo(cutoff).catch(() => undefined);
    try {
      await writeFileDurably(this.tmpFile, bytes);
      await fsp.rename(this.tmpFile, this.file);
    } catch (err) {
      await fsp.rm(this.tmpFile, { force: true }).catch(() => undefined);
      throw journalError(this.file, "compaction failed; the journal is unchanged", err);
    }
    // The old fd now points at the replaced inode; later appends must go to the new file.
    const old = this.fd;
    this.fd = undefined;
    this.goodSize = bytes.length;
    this.broken = undefined;
    this.dropPending(Math.min(cutoff - this.bufferSeq, this.ends.length));
    if (old !== undefined) closeQuietly(old);
    const dir = path.dirname(this.file);
    await syncDirectory(dir).catch((err: unknown) =>
      this.log.warn(
        `journal ${this.file}: cannot fsync directory ${dir} after compaction: ${messageOf(err)}`,
      ),
    );
    try {
      this.fd = fs.openSync(this.file, "a");
    } catch {
      // Not fatal: the next write retries the open and reports a failure then.
    }
  }
}
