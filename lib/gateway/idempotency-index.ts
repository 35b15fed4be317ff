import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { syncDirectory, writeFileDurably } from "../common/durable-file";
import { istDay } from "../market/ist";

/** What a client_order_id was used for: the order it made and a hash of the order's parameters. */
export interface IdempotencyEntry {
  readonly orderId: string;
  /** "" when unknown (seeded from the broker's book at start): no mismatch check then. */
  readonly hash: string;
  /** IST trading day the id was used on, "YYYY-MM-DD": it is kept through that day and the next. */
  readonly day: string;
}

type Held = IdempotencyEntry;

/**
 * A placement the index was told of before the broker was, and never heard the end of: the gateway
 * stopped between the two. Settled at the next start by looking the id up in the broker's book.
 */
export interface Intent {
  readonly clientOrderId: string;
  readonly hash: string;
  readonly day: string;
  /**
   * The highest order_id the gateway had been given back before this intent was written (or the
   * broker's highest known at start): the order this intent was for, if it was made, has a higher one.
   */
  readonly after: string;
}

/** The IST calendar day of an instant: Indian trading days run on IST whatever the host's zone. */
export { istDay };

/**
 * Lines no placement waits for (completions, abandons) are fsync'd by the next intent's flush, or
 * once no intent has come for this long: an fsync of their own while placements keep coming would
 * only make the next intent wait for it to end before its own could start.
 */
const SOON_MS = 10;

/**
 * A hash of an order's parameters, independent of key order and of the client_order_id itself:
 * a retry must repeat the order exactly, and one that does not is refused, not answered with the
 * first order as if it were the same. Written in order-hash.ts, which computes it cheaply.
 */
export { orderHash } from "./order-hash";

/**
 * Every client_order_id the gateway placed an order for, kept for the IST day it was used and the
 * day after, whatever the broker's own retention: the id is how a client settles a placement
 * whose answer it lost, so it must outlive the order's place in the broker's memory and a restart.
 *
 * An append-only file of JSON arrays, compacted to the kept days when opened:
 * - `[key, order_id, hash, day]` an id and the order it made (the only line before intents existed);
 * - `["i", key, hash, day, after]` an intent, written before the broker is asked and fsync'd while
 *   it places the order, so a placement waits for one disk flush, not two in a row;
 * - `["x", key]` the intent ended without an order (the broker refused it).
 * An intent goes into the page cache with one synchronous write (it survives the process being
 * killed) before the broker is asked; the lines nobody waits for (completions, abandons) are
 * written together once the turn's answers are out, or before the next intent, whichever is first.
 * An fdatasync on the threadpool makes them durable, shared by everyone waiting at the time.
 * After a failed fdatasync (Linux may drop a failed writeback's pages and mark them clean) or a
 * torn write, the file is cut back to its last durable size and the lines past it written again,
 * as the paper journal does: no later fdatasync counts a line it may not have written.
 */
export class IdempotencyIndex {
  readonly #file: string | undefined;
  readonly #now: () => number;
  readonly #entries = new Map<string, Held>();
  /** Intents read back from the file with no end written: for Placements.recover(). */
  readonly #intents = new Map<string, Intent>();
  /** Intents recovery could not settle, and their days: their ids are refused (IDEMPOTENCY_UNKNOWN). */
  readonly #unknown = new Map<string, string>();
  #fd: number | undefined;
  /**
   * Lines not yet written, in order: ones nobody waits for (written at the end of the turn, in one
   * write) and ones a write failed for. Written before anything newer.
   */
  #backlog: string[] = [];
  #drainSoon: NodeJS.Immediate | undefined;
  /** Lines written to the page cache, and how many of them an fdatasync has covered. */
  #written = 0;
  #synced = 0;
  /** Bytes of the file an fdatasync has made durable: all whole lines, the first `#synced`. */
  #syncedSize = 0;
  /**
   * The lines past `#syncedSize`, as written: after a failed fdatasync Linux may have dropped their
   * pages and marked them clean, so a later fdatasync that succeeds would not write them. They are
   * written again (the file cut back to `#syncedSize` first) before any sync may count them.
   */
  #unsynced: { bytes: Buffer; lines: number }[] = [];
  #unsyncedBytes = 0;
  /**
   * What the file holds past `#syncedSize` is not known to be `#unsynced`: an fdatasync failed, or a
   * torn write could not be cut off. Nothing is appended or synced until #rewrite() puts it right.
   */
  #stale = false;
  /** Counts cut-backs: a sync that started before one does not cover what was written again. */
  #rewrites = 0;
  #syncing = false;
  #waiters: { upTo: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  #soon: NodeJS.Timeout | undefined;
  /** When the last intent was written (performance.now()). */
  #lastIntent = Number.NEGATIVE_INFINITY;
  #closed = false;
  #oldestKeptDay = "";
  /** The minute `#today` and `#keptFrom` were worked out for: IST days start on a whole minute. */
  #minute = Number.NaN;
  #today = "";
  #keptFrom = "";

  private constructor(file: string | undefined, now: () => number) {
    this.#file = file;
    this.#now = now;
  }

  /** Loads `file` (created when missing); without a file the index lives in memory only. */
  static async open(options: { file?: string; now?: () => number } = {}): Promise<IdempotencyIndex> {
    const index = new IdempotencyIndex(options.file, options.now ?? Date.now);
    index.#oldestKeptDay = index.#cutoff();
    if (options.file !== undefined) {
      await index.#load(options.file);
      index.#fd = fs.openSync(options.file, "a");
      // Compacted with an fsync at load, or empty: all of it is durable.
      index.#syncedSize = fs.fstatSync(index.#fd).size;
    }
    return index;
  }

  /** True when ids are written to a file: placements then write an intent first. */
  get durable(): boolean {
    return this.#file !== undefined;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The IST day it is now, "YYYY-MM-DD": the day an id used now is recorded under. */
  get today(): string {
    this.#cutoff();
    return this.#today;
  }

  get(account: string, clientOrderId: string): IdempotencyEntry | undefined {
    // An id whose days are over is free whether or not the gateway restarted since (a restart
    // drops it at load): a gateway up across midnight must not refuse it for longer.
    this.#prune();
    return this.#entries.get(key(account, clientOrderId));
  }

  /** Whether recovery left this id unsettled: it may or may not have made an order. */
  unknown(account: string, clientOrderId: string): boolean {
    if (this.#unknown.size === 0) return false;
    this.#prune();
    return this.#unknown.has(key(account, clientOrderId));
  }

  /** The intents of `account` read back at open with no end: placements a stop cut short. */
  intents(account: string): Intent[] {
    const prefix = `${account}\u0000`;
    const found: Intent[] = [];
    for (const [k, intent] of this.#intents) if (k.startsWith(prefix)) found.push(intent);
    return found;
  }

  /**
   * Writes an intent before the broker is asked to place the order; resolves once it is durable.
   * Throws at once when it cannot even be written: then nothing may be placed.
   */
  intend(account: string, clientOrderId: string, hash: string, after: string): Promise<void> {
    this.#cutoff();
    const k = key(account, clientOrderId);
    this.#write(JSON.stringify(["i", k, hash, this.#today, after]));
    this.#lastIntent = performance.now();
    return this.#sync();
  }

  /**
   * Remembers an id in memory now; written at once, durable with the next fsync of the file. `day`
   * is when it was used (an intent's, settled at a later start), today unless said.
   */
  record(account: string, clientOrderId: string, orderId: string, hash: string, usedOn?: string): void {
    this.#prune();
    const day = usedOn ?? this.#today;
    const k = key(account, clientOrderId);
    this.#entries.delete(k);
    this.#entries.set(k, { orderId, hash, day });
    this.#intents.delete(k);
    this.#unknown.delete(k);
    if (this.#file !== undefined) this.#later(JSON.stringify([k, orderId, hash, day]));
  }

  /** The intent ended without an order: the id is free again, here and after a restart. */
  abandon(account: string, clientOrderId: string): void {
    const k = key(account, clientOrderId);
    this.#intents.delete(k);
    if (this.#file !== undefined) this.#later(JSON.stringify(["x", k]));
  }

  /**
   * Recovery could not tell whether the intent made an order: its id stays refused (and its line
   * kept) for the rest of the intent's days.
   */
  markUnknown(account: string, clientOrderId: string): void {
    const k = key(account, clientOrderId);
    const day = this.#intents.get(k)?.day ?? istDay(this.#now());
    this.#intents.delete(k);
    this.#unknown.set(k, day);
  }

  /**
   * Remembers an id known from elsewhere (the broker's book, `placedAt` its order's placement time)
   * without writing it, for the days it would have been kept had it been recorded when used: read
   * back at a restart, it is not kept longer (nor answered as used today) for being read late.
   */
  seed(account: string, clientOrderId: string, orderId: string, placedAt: number): void {
    const k = key(account, clientOrderId);
    if (this.#entries.has(k)) return;
    const day = Number.isFinite(placedAt) ? istDay(placedAt) : istDay(this.#now());
    if (day >= this.#cutoff()) this.#entries.set(k, { orderId, hash: "", day });
  }

  /** True while something recorded is not yet durable: flush() has work to wait for. */
  get unflushed(): boolean {
    return (
      this.#file !== undefined && (this.#backlog.length > 0 || this.#synced < this.#written || this.#stale)
    );
  }

  /** Makes everything recorded so far durable; concurrent callers share one fdatasync. */
  flush(): Promise<void> {
    if (this.#file === undefined || this.#closed) return Promise.resolve();
    try {
      this.#drainBacklog();
    } catch (error) {
      return Promise.reject(this.#error("write failed", error));
    }
    return this.#sync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      if (this.#soon !== undefined) clearTimeout(this.#soon);
      this.#soon = undefined;
      if (this.#drainSoon !== undefined) clearImmediate(this.#drainSoon);
      this.#drainSoon = undefined;
      const fd = this.#fd;
      this.#fd = undefined;
      // A sync still running keeps its fd until it ends (closing it under fdatasync is EBADF).
      if (fd !== undefined) await this.#idle().then(() => fs.closeSync(fd));
    }
  }

  /**
   * A line nothing waits for now: written once this turn's answers are out (its write would only
   * delay the answer it follows), together with the turn's others, or first by the next intent or
   * flush; fsync'd by the next intent's flush or soon after. Lost to a kill before then, an
   * intent's end is settled from the broker's book at the next start, as after a torn write.
   */
  #later(line: string): void {
    if (this.#closed || this.#fd === undefined) return;
    this.#backlog.push(line);
    this.#drainSoon ??= setImmediate(this.#onDrainSoon);
    this.#soon ??= setTimeout(this.#onSoon, SOON_MS).unref();
  }

  readonly #onDrainSoon = (): void => {
    this.#drainSoon = undefined;
    if (this.#closed) return;
    try {
      this.#drainBacklog();
    } catch {
      // Kept in the backlog: the next flush or intent writes it first.
    }
  };

  readonly #onSoon = (): void => {
    this.#soon = undefined;
    if (!this.unflushed) return;
    const quiet = performance.now() - this.#lastIntent;
    if (quiet < SOON_MS) {
      this.#soon = setTimeout(this.#onSoon, SOON_MS - quiet).unref();
      return;
    }
    // A failure here is met again by the next flush, which writes and syncs the same lines.
    this.flush().catch(() => undefined);
  };

  /** Appends one line to the page cache, after the backlog; throws when that cannot be done. */
  #write(line: string): void {
    if (this.#fd === undefined) {
      if (this.#closed) throw this.#error("write failed", new Error("the index is closed"));
      return;
    }
    try {
      this.#drainBacklog();
      this.#append(line);
    } catch (error) {
      throw this.#error("write failed", error);
    }
  }

  /** Writes the backlog in one write; on failure all of it stays, for the next try. */
  #drainBacklog(): void {
    if (this.#stale) this.#rewrite();
    const backlog = this.#backlog;
    if (backlog.length === 0) return;
    this.#appendLines(backlog.length === 1 ? `${backlog[0]!}\n` : `${backlog.join("\n")}\n`, backlog.length);
    this.#backlog = [];
  }

  #append(line: string): void {
    this.#appendLines(`${line}\n`, 1);
  }

  /** `text` is `lines` whole lines: written whole at the end of the file, or not at all. */
  #appendLines(text: string, lines: number): void {
    const fd = this.#fd;
    if (fd === undefined) throw new Error("the index is closed");
    const bytes = Buffer.from(text);
    this.#writeAll(fd, bytes, this.#syncedSize + this.#unsyncedBytes);
    this.#unsynced.push({ bytes, lines });
    this.#unsyncedBytes += bytes.length;
    this.#written += lines;
  }

  /** Writes `bytes` whole at the end of the file, which is `size` long, or cuts a torn part off. */
  #writeAll(fd: number, bytes: Buffer, size: number): void {
    let offset = 0;
    try {
      while (offset < bytes.length) {
        const wrote = fs.writeSync(fd, bytes, offset, bytes.length - offset);
        if (wrote <= 0) throw new Error("write made no progress");
        offset += wrote;
      }
    } catch (error) {
      if (offset > 0) {
        // A torn line must not stay for the next to follow, nor be made durable by a sync.
        try {
          fs.ftruncateSync(fd, size);
        } catch {
          this.#stale = true;
        }
      }
      throw error;
    }
  }

  /**
   * Cuts the file back to what an fdatasync made durable and writes the lines past it again: their
   * pages are dirty once more, so the next fdatasync (started after this) writes them or fails.
   */
  #rewrite(): void {
    const fd = this.#fd;
    if (fd === undefined) throw new Error("the index is closed");
    this.#stale = true;
    this.#rewrites += 1;
    fs.ftruncateSync(fd, this.#syncedSize);
    let size = this.#syncedSize;
    for (const { bytes } of this.#unsynced) {
      this.#writeAll(fd, bytes, size);
      size += bytes.length;
    }
    this.#stale = false;
  }

  /** Resolves once an fdatasync that started after every line written so far has succeeded. */
  #sync(): Promise<void> {
    const upTo = this.#written;
    if (this.#synced >= upTo || this.#fd === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ upTo, resolve, reject });
      this.#startSync();
    });
  }

  #startSync(): void {
    const fd = this.#fd;
    if (this.#syncing || fd === undefined) return;
    if (this.#stale) {
      try {
        this.#rewrite();
      } catch (error) {
        // The lines cannot be put back: no sync may count them, so everyone waiting hears so now.
        this.#settle(this.#written, this.#error("write failed", error));
        return;
      }
    }
    const upTo = this.#written;
    const size = this.#syncedSize + this.#unsyncedBytes;
    const rewrites = this.#rewrites;
    this.#syncing = true;
    fs.fdatasync(fd, (error) => {
      this.#syncing = false;
      if (error !== null) {
        // Linux may have dropped every dirty page and marked it clean: a later fdatasync would
        // not write them. Whoever this sync was for hears of the failure; every line past the
        // durable size is written again before the next sync may count it.
        this.#stale = true;
        this.#settle(upTo, this.#error("fdatasync failed", error));
        if (this.#fd !== undefined) {
          try {
            this.#rewrite();
          } catch {
            // Still stale: the next write or sync tries again, and fails its callers meanwhile.
          }
        }
      } else if (rewrites === this.#rewrites) {
        if (upTo > this.#synced) {
          // A sync covers whole writes: `upTo` was counted between two of them.
          let covered = 0;
          let count = 0;
          while (covered < upTo - this.#synced) covered += this.#unsynced[count++]!.lines;
          this.#unsynced.splice(0, count);
          this.#unsyncedBytes -= size - this.#syncedSize;
          this.#syncedSize = size;
          this.#synced = upTo;
        }
        this.#settle(upTo, undefined);
      }
      // Lines written while this one ran (or written again since it started) need one more.
      if (this.#waiters.length > 0) this.#startSync();
      else this.#onIdle?.();
    });
  }

  /** Answers the waiters for lines up to `upTo`: resolved, or rejected with `error`. */
  #settle(upTo: number, error: Error | undefined): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.upTo > upTo) this.#waiters.push(waiter);
      else if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }

  #onIdle: (() => void) | undefined;

  #idle(): Promise<void> {
    if (!this.#syncing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#onIdle = () => {
        this.#onIdle = undefined;
        resolve();
      };
    });
  }

  #error(what: string, cause: unknown): Error {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return new Error(`idempotency index ${this.#file ?? ""}: ${what}: ${detail}`, { cause });
  }

  /** The first IST day still kept: yesterday's, so an id lives at least through its whole day. */
  #cutoff(): string {
    // Worked out once a minute, not per order: every placement asks.
    const now = this.#now();
    const minute = Math.floor(now / 60_000);
    if (minute !== this.#minute) {
      this.#minute = minute;
      this.#today = istDay(now);
      this.#keptFrom = istDay(now - 24 * 60 * 60_000);
    }
    return this.#keptFrom;
  }

  /**
   * Drops the ids whose days are over, once per IST day. All of them are looked at: entries are
   * mostly in the order used, but ids seeded from the broker's book at start, or settled from an
   * intent, carry their own older day.
   */
  #prune(): void {
    const cutoff = this.#cutoff();
    if (cutoff === this.#oldestKeptDay) return;
    this.#oldestKeptDay = cutoff;
    for (const [k, entry] of this.#entries) if (entry.day < cutoff) this.#entries.delete(k);
    for (const [k, day] of this.#unknown) if (day < cutoff) this.#unknown.delete(k);
  }

  async #load(file: string): Promise<void> {
    let text = "";
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      await fsp.mkdir(path.dirname(file), { recursive: true });
    }
    const cutoff = this.#oldestKeptDay;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        // A line cut short by a crash mid-write: its placement was never answered (an intent's
        // fsync is awaited before any answer, and a completion cut short leaves its intent).
        continue;
      }
      if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === "string")) continue;
      const fields = parsed;
      if (fields.length === 4) {
        const [k, orderId, hash, day] = fields as [string, string, string, string];
        if (day < cutoff) continue;
        this.#entries.delete(k);
        this.#entries.set(k, { orderId, hash, day });
        this.#intents.delete(k);
      } else if (fields.length === 5 && fields[0] === "i") {
        const [, k, hash, day, after] = fields as [string, string, string, string, string];
        // An id already known answers with its order; an intent for it cannot have made another.
        if (day < cutoff || this.#entries.has(k)) continue;
        const clientOrderId = k.slice(k.indexOf("\u0000") + 1);
        this.#intents.set(k, { clientOrderId, hash, day, after });
      } else if (fields.length === 2 && fields[0] === "x") {
        this.#intents.delete(fields[1]!);
      }
    }
    // Also when empty: a file first created by the append open below would have a directory entry
    // no fsync covers, and a power cut could take every synced line with it. The compaction's
    // rename is followed by the directory's fsync.
    await this.#compact(file);
  }

  /** Rewrites the file with the kept entries and open intents only: temporary file, fsync, rename. */
  async #compact(file: string): Promise<void> {
    const temporary = `${file}.tmp`;
    const lines = Array.from(this.#entries, ([k, e]) => JSON.stringify([k, e.orderId, e.hash, e.day]));
    for (const [k, i] of this.#intents) lines.push(JSON.stringify(["i", k, i.hash, i.day, i.after]));
    await writeFileDurably(temporary, lines.length === 0 ? "" : `${lines.join("\n")}\n`);
    await fsp.rename(temporary, file);
    // Best effort, as before: a directory that cannot be synced must not stop the gateway starting.
    await syncDirectory(path.dirname(file)).catch(() => undefined);
  }
}

function key(account: string, clientOrderId: string): string {
  return `${account}\u0000${clientOrderId}`;
}
