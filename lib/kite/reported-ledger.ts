import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import type { OrderSnapshot } from "../protocol";
import { isRecord } from "../common/is-record";
import { istDay } from "../market/ist";

/** What a flow was last told of one order. */
export interface Reported {
  status: OrderSnapshot["status"];
  filled_quantity: number;
}

/**
 * What this broker has reported of each order today, and which client_order_ids it was sending,
 * on disk beside the instrument cache (DESIGN §10: no "reported" mark lives only in memory). A
 * restart reads it at connect: an order whose fill came while Node-RED was down is reported then,
 * and one whose placement was under way is announced, where the order book alone would make both
 * silent background. One JSON line per change, appended and fdatasync'd before the event that it
 * records goes out (a power cut must not forget a report a flow acted on; Kite's own limits keep
 * these to a few a second, so the ~0.1 ms sync on this thread costs nothing that matters). A new
 * trading day starts a new file, and earlier days' files are deleted: Kite's order book is the
 * day's only.
 */
export class ReportedLedger {
  readonly #file: string;
  readonly #reported = new Map<string, Reported>();
  readonly #placing = new Set<string>();
  #broken = false;

  constructor(dir: string, apiKey: string, day: string = istDay(Date.now())) {
    const account = createHash("sha256").update(apiKey).digest("hex").slice(0, 12);
    this.#file = path.join(dir, `kite-reported-${account}-${day}.jsonl`);
    dropEarlierDays(dir, `kite-reported-${account}-`, path.basename(this.#file));
    let text: string;
    try {
      text = readFileSync(this.#file, "utf8");
    } catch {
      return;
    }
    for (const line of text.split("\n")) {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // a line cut short by a crash
      }
      if (!isRecord(entry)) continue;
      if (typeof entry.placing === "string") this.#placing.add(entry.placing);
      if (typeof entry.order === "string" && typeof entry.status === "string") {
        this.#reported.set(entry.order, {
          status: entry.status as Reported["status"],
          filled_quantity: Number(entry.filled) || 0,
        });
      }
    }
    // Compacted once per start: one line per order.
    this.#rewrite();
  }

  /** What a flow was told of this order before (this run or an earlier one today). */
  reportedOf(orderId: string): Reported | undefined {
    return this.#reported.get(orderId);
  }

  /** Whether a placement with this client_order_id was sent (its outcome may never have been told). */
  wasPlacing(clientId: string): boolean {
    return this.#placing.has(clientId);
  }

  placing(clientId: string): void {
    if (this.#placing.has(clientId)) return;
    this.#placing.add(clientId);
    this.#append({ placing: clientId });
  }

  reported(order: OrderSnapshot): void {
    const before = this.#reported.get(order.order_id);
    if (before?.status === order.status && before.filled_quantity === order.filled_quantity) return;
    this.#reported.set(order.order_id, { status: order.status, filled_quantity: order.filled_quantity });
    this.#append({ order: order.order_id, status: order.status, filled: order.filled_quantity });
  }

  #append(entry: object): void {
    if (this.#broken) return;
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      const fd = openSync(this.#file, "a");
      try {
        writeAll(fd, Buffer.from(`${JSON.stringify(entry)}\n`));
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // A read-only or full disk: the broker goes on as it did before there was a ledger.
      this.#broken = true;
    }
  }

  #rewrite(): void {
    const lines: string[] = [];
    for (const clientId of this.#placing) lines.push(JSON.stringify({ placing: clientId }));
    for (const [order, r] of this.#reported) {
      lines.push(JSON.stringify({ order, status: r.status, filled: r.filled_quantity }));
    }
    // Written aside, synced, then renamed over the old file (and the directory synced): a crash in
    // the middle leaves the old ledger or the new one, never a cut-short one.
    const temporary = `${this.#file}.tmp`;
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      const fd = openSync(temporary, "w");
      try {
        writeAll(fd, Buffer.from(lines.length === 0 ? "" : `${lines.join("\n")}\n`));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, this.#file);
      syncDirectorySync(path.dirname(this.#file));
    } catch {
      this.#broken = true;
    }
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
}

function syncDirectorySync(dir: string): void {
  // Windows cannot open a directory for fsync; NTFS journals its metadata anyway.
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Deletes this account's ledgers of earlier days (and a temporary file a crash left). */
function dropEarlierDays(dir: string, prefix: string, today: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || name === today) continue;
    try {
      unlinkSync(path.join(dir, name));
    } catch {
      // Another process's file, or already gone: it is only a day's old ledger.
    }
  }
}
