import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { istDay } from "../market/ist";

/** What a client_order_id was used for: the order it made and a hash of the order's parameters. */
export interface IdempotencyEntry {
  readonly orderId: string;
  /** "" when unknown (seeded from the broker's book at start): no mismatch check then. */
  readonly hash: string;
}

interface Held extends IdempotencyEntry {
  /** IST trading day the id was used on, "YYYY-MM-DD". */
  readonly day: string;
}

/** The IST calendar day of an instant: Indian trading days run on IST whatever the host's zone. */
export { istDay };

/**
 * A hash of an order's parameters, independent of key order and of the client_order_id itself:
 * a retry must repeat the order exactly, and one that does not is refused, not answered with the
 * first order as if it were the same.
 */
export function orderHash(order: Record<string, unknown>): string {
  const keys = Object.keys(order)
    .filter((key) => key !== "client_order_id" && order[key] !== undefined)
    .sort();
  const canonical = JSON.stringify(keys.map((key) => [key, order[key]]));
  return createHash("sha256").update(canonical).digest("hex").slice(0, 24);
}

/**
 * Every client_order_id the gateway placed an order for, kept for the IST day it was used and the
 * day after, whatever the broker's own retention: the id is how a client settles a placement
 * whose answer it lost, so it must outlive the order's place in the broker's memory and a restart.
 * Kept in a compact append-only file (one JSON array per id, group-committed with fsync), compacted
 * to the kept days when opened.
 */
export class IdempotencyIndex {
  readonly #file: string | undefined;
  readonly #now: () => number;
  readonly #entries = new Map<string, Held>();
  #pending: string[] = [];
  #flushing: Promise<void> | undefined;
  #again = false;
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
    if (options.file !== undefined) await index.#load(options.file);
    return index;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(account: string, clientOrderId: string): IdempotencyEntry | undefined {
    return this.#entries.get(key(account, clientOrderId));
  }

  /** Remembers an id in memory now; durable once the next flush() resolves. */
  record(account: string, clientOrderId: string, orderId: string, hash: string): void {
    this.#prune();
    const day = this.#today;
    const k = key(account, clientOrderId);
    this.#entries.delete(k);
    this.#entries.set(k, { orderId, hash, day });
    if (this.#file !== undefined) this.#pending.push(JSON.stringify([k, orderId, hash, day]));
  }

  /** Remembers an id known from elsewhere (the broker's book) without writing it. */
  seed(account: string, clientOrderId: string, orderId: string): void {
    const k = key(account, clientOrderId);
    if (!this.#entries.has(k)) this.#entries.set(k, { orderId, hash: "", day: istDay(this.#now()) });
  }

  /** True while something recorded is not yet durable: flush() has work to wait for. */
  get unflushed(): boolean {
    return this.#file !== undefined && (this.#pending.length > 0 || this.#flushing !== undefined);
  }

  /** Writes and fsyncs what was recorded; concurrent callers share one write. */
  flush(): Promise<void> {
    if (this.#file === undefined) return Promise.resolve();
    if (this.#flushing !== undefined) {
      // Lines recorded after the running write started need one more.
      this.#again = true;
      return this.#flushing;
    }
    if (this.#pending.length === 0) return Promise.resolve();
    const file = this.#file;
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        const lines = this.#pending;
        this.#pending = [];
        if (lines.length === 0) continue;
        const handle = await fsp.open(file, "a");
        try {
          await handle.appendFile(`${lines.join("\n")}\n`);
          await handle.sync();
        } finally {
          await handle.close();
        }
      } while (this.#again || this.#pending.length > 0);
    };
    this.#flushing = run().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    await this.flush();
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

  /** Entries are in the order used, so the expired ones are at the front. */
  #prune(): void {
    const cutoff = this.#cutoff();
    if (cutoff === this.#oldestKeptDay) return;
    this.#oldestKeptDay = cutoff;
    for (const [k, entry] of this.#entries) {
      if (entry.day >= cutoff) break;
      this.#entries.delete(k);
    }
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
    let dropped = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        // A line cut short by a crash mid-write: its placement was never answered.
        dropped += 1;
        continue;
      }
      if (!Array.isArray(parsed) || parsed.length !== 4 || !parsed.every((v) => typeof v === "string")) {
        dropped += 1;
        continue;
      }
      const [k, orderId, hash, day] = parsed as [string, string, string, string];
      if (day < cutoff) {
        dropped += 1;
        continue;
      }
      this.#entries.delete(k);
      this.#entries.set(k, { orderId, hash, day });
    }
    if (dropped > 0 || text.length > 0) await this.#compact(file);
  }

  /** Rewrites the file with the kept entries only: write a temporary file, fsync, rename. */
  async #compact(file: string): Promise<void> {
    const temporary = `${file}.tmp`;
    const lines = Array.from(this.#entries, ([k, e]) => JSON.stringify([k, e.orderId, e.hash, e.day]));
    const handle = await fsp.open(temporary, "w");
    try {
      await handle.writeFile(lines.length === 0 ? "" : `${lines.join("\n")}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temporary, file);
    syncDirectory(path.dirname(file));
  }
}

function key(account: string, clientOrderId: string): string {
  return `${account}\u0000${clientOrderId}`;
}

/** A rename is durable once the directory entry is synced (not possible on Windows; NTFS journals it). */
function syncDirectory(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Best effort: see above.
  }
}
