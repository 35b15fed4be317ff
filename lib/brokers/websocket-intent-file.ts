import { createHash } from "node:crypto";
import { readFileSync, statSync, promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { messageOf } from "../common/error-message";
import { syncDirectory } from "../common/durable-file";
import type { BrokerLogger } from "./logger";

/**
 * The WebSocket broker's intent mark (FIX's PossDupFlag, made durable): before a batch of events
 * is handed to the flow, the highest seq in it is on disk. The story file (websocket-story-file.ts)
 * is written after the events it counts; so after a crash, the events between the story's seq and
 * this mark are the only ones the crashed process may have reported, and the next one reports them
 * again marked `possible_duplicate`. Events past the mark were never reported: they are new.
 *
 * One small record of fixed size, overwritten in place and fdatasync'ed: one sync per batch (a
 * rename would cost two, and a directory sync). The record carries a digest of itself, so a torn
 * write is seen and read as "unknown" — everything the next process replays is then marked.
 */

/** Bytes of the record: one sector at most, so the disk writes it whole or (rarely) tears it. */
const RECORD_BYTES = 64;
const MAGIC = "ws-intent 1";

/** Where the intent mark of the story kept in `storyFile` lives (beside it, removed with it). */
export function websocketIntentFile(storyFile: string): string {
  return `${storyFile}.intent`;
}

function check(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** The record for `seq`: "ws-intent 1 <seq> <digest>", padded with spaces to RECORD_BYTES. */
export function intentRecord(seq: number): Buffer {
  const head = `${MAGIC} ${seq}`;
  const line = `${head} ${check(head)}`;
  return Buffer.from(line.padEnd(RECORD_BYTES - 1, " ") + "\n", "utf8");
}

export type LoadedIntent =
  { kind: "missing" } | { kind: "ok"; seq: number } | { kind: "unknown"; why: string };

/**
 * Reads the mark. "missing": no event was ever reported under it (it is written before the first
 * one is). "unknown": the file is there but not a whole record (a torn write, or not ours): any
 * event after the story's seq may have been reported.
 */
export function loadIntent(file: string): LoadedIntent {
  let bytes: Buffer;
  try {
    // Sized before it is read: a huge file put there is not loaded into memory to be refused.
    const size = statSync(file).size;
    if (size !== RECORD_BYTES)
      return { kind: "unknown", why: `${file} is not an intent mark (${size} bytes)` };
    bytes = readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    return { kind: "unknown", why: `cannot read ${file}: ${messageOf(error)}` };
  }
  const match = /^ws-intent 1 (\d{1,16}) ([0-9a-f]{16}) *\n$/.exec(bytes.toString("latin1"));
  const seq = match === null ? NaN : Number(match[1]);
  if (match === null || !Number.isSafeInteger(seq) || check(`${MAGIC} ${match[1]}`) !== match[2]) {
    return { kind: "unknown", why: `${file} is not a whole intent mark (a write torn by a crash?)` };
  }
  return { kind: "ok", seq };
}

/**
 * Keeps the mark on disk ahead of what is reported. `want(seq)` asks for a mark of at least `seq`;
 * writes run one at a time, each covering every seq wanted before it started (so what arrives
 * while one is on its way shares the next one); `onDurable` runs after each. The mark never goes
 * down: it starts at `floor` (the mark and story read at start), since the events up to a mark an
 * earlier process wrote may have been reported whatever this one does.
 */
export class IntentMark {
  readonly #file: string;
  readonly #log: BrokerLogger;
  readonly #onDurable: () => void;
  #floor: number;
  /** Highest mark on disk (or given up on: see #write). */
  #durable: number;
  #wanted: number;
  #writing: Promise<void> | undefined;
  #handle: FileHandle | undefined;
  #failing = false;
  #closed = false;
  /** Writes done, for the benchmark and tests. */
  writes = 0;

  constructor(file: string, floor: number, log: BrokerLogger, onDurable: () => void) {
    this.#file = file;
    this.#log = log;
    this.#onDurable = onDurable;
    this.#floor = floor;
    this.#durable = 0;
    this.#wanted = 0;
  }

  /** Events up to this seq may be reported now. */
  get durable(): number {
    return this.#durable;
  }

  /** The next write is at least `seq` (an earlier process may have reported up to it). */
  raiseFloor(seq: number): void {
    if (seq > this.#floor) this.#floor = seq;
  }

  /** Asks for a mark of at least `seq` on disk; `onDurable` runs once it is. */
  want(seq: number): void {
    if (seq <= this.#durable) return;
    if (seq > this.#wanted) this.#wanted = seq;
    this.#writing ??= this.#write();
  }

  /** Resolves once a mark of at least `seq` is on disk (or could not be put there: logged). */
  async reach(seq: number): Promise<void> {
    this.want(seq);
    while (this.#writing !== undefined && this.#durable < seq) await this.#writing;
  }

  async close(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
    this.#closed = true;
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  async #write(): Promise<void> {
    try {
      while (this.#wanted > this.#durable) {
        const target = Math.max(this.#wanted, this.#floor);
        try {
          await this.#put(target);
          if (this.#failing) this.#log.info(`the WebSocket intent mark is saved again at ${this.#file}`);
          this.#failing = false;
        } catch (error) {
          // Reporting is not held up by a disk that refuses: the events go out, and the log says
          // what a crash now would cost.
          if (!this.#failing) {
            this.#log.warn(
              `cannot save the WebSocket intent mark at ${this.#file} (${messageOf(error)}): a crash of Node-RED now may report events again without marking them possible_duplicate`,
            );
          }
          this.#failing = true;
          await this.#handle?.close().catch(() => undefined);
          this.#handle = undefined;
        }
        this.#durable = target;
        this.writes += 1;
        this.#onDurable();
      }
    } finally {
      this.#writing = undefined;
    }
  }

  async #put(seq: number): Promise<void> {
    if (this.#closed) throw new Error("closed");
    if (this.#handle === undefined) {
      try {
        this.#handle = await fsp.open(this.#file, "r+");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        await fsp.mkdir(path.dirname(this.#file), { recursive: true });
        this.#handle = await fsp.open(this.#file, "w", 0o600);
        // The new name must be on disk too, or the record could vanish with it.
        await this.#handle.write(intentRecord(seq), 0, RECORD_BYTES, 0);
        await this.#handle.datasync();
        await syncDirectory(path.dirname(this.#file));
        return;
      }
      await this.#handle.truncate(RECORD_BYTES);
    }
    await this.#handle.write(intentRecord(seq), 0, RECORD_BYTES, 0);
    await this.#handle.datasync();
  }
}
