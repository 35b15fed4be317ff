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
} from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import type { GttSnapshot, OrderSnapshot } from "../protocol";
import { isRecord } from "../common/is-record";
import { syncDirectorySync, writeAllSync } from "../common/durable-file";
import { istDay } from "../market/ist";
import { holdLedger, isHeldHere } from "./ledger-holders";
import { clearStaleLock, lockLedgerFile } from "./ledger-lock";

/** What a flow was last told of one order. */
export interface Reported {
  status: OrderSnapshot["status"];
  filled_quantity: number;
}

export interface LedgerOptions {
  /** The trading day (IST) whose ledger this is; today unless said. */
  day?: string;
  /**
   * Which broker on this api key keeps it (broker-config passes its node id): two configs on one
   * Kite account see the same orders, and each reports each event once to its own users, so each
   * keeps its own record. Without it, one ledger per account.
   */
  instance?: string;
  /** Who holds it, for the error another holder of the same file gets. */
  holder?: string;
}

/**
 * Event seqs are reserved on disk this many at a time: one synced line per block, and a restart
 * starts past the last block, so no seq a flow may have seen is issued again.
 */
export const SEQ_BLOCK = 1000;

/** A ledger's lock or a piece of one (ledger-lock.ts): group 1 is the ledger's own name. */
const LOCK_NAME = /^(kite-reported-[0-9a-f]{12}(?:-[0-9a-f]{8})?-\d{4}-\d{2}-\d{2}\.jsonl)\.lock(?:$|\.)/;

const FILE_NAME = /^kite-reported-([0-9a-f]{12})(?:-([0-9a-f]{8}))?-(\d{4}-\d{2}-\d{2})\.jsonl(\.tmp)?$/;

function digest(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** The ledger file of one account (and instance) on one day: no key or node id shows in the name. */
export function ledgerFile(dir: string, apiKey: string, options: LedgerOptions = {}): string {
  const account = digest(apiKey, 12);
  const instance = options.instance === undefined ? "" : `-${digest(options.instance, 8)}`;
  return path.join(dir, `kite-reported-${account}${instance}-${options.day ?? istDay(Date.now())}.jsonl`);
}

/** One parsed ledger file: what each line said, the last line per key winning. */
interface Contents {
  reported: Map<string, Reported>;
  placing: Set<string>;
  /** Placements whose outcome was reported unknown (NETWORK) to someone: not told again. */
  unknown: Set<string>;
  gtts: Map<string, GttSnapshot["status"]>;
  seq: number;
}

function emptyContents(): Contents {
  return { reported: new Map(), placing: new Set(), unknown: new Set(), gtts: new Map(), seq: 0 };
}

function readInto(file: string, into: Contents, only?: "carried"): boolean {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return false;
  }
  for (const line of text.split("\n")) {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line cut short by a crash
    }
    if (!isRecord(entry)) continue;
    if (typeof entry.seq === "number" && Number.isSafeInteger(entry.seq))
      into.seq = Math.max(into.seq, entry.seq);
    if (typeof entry.gtt === "string" && typeof entry.status === "string")
      into.gtts.set(entry.gtt, entry.status as GttSnapshot["status"]);
    // Kite's order book is the day's only: orders and placements are not carried to the next day.
    if (only === "carried") continue;
    if (typeof entry.placing === "string") into.placing.add(entry.placing);
    if (typeof entry.refused === "string") into.placing.delete(entry.refused);
    if (typeof entry.unknown === "string") into.unknown.add(entry.unknown);
    if (typeof entry.order === "string" && typeof entry.status === "string") {
      into.reported.set(entry.order, {
        status: entry.status as Reported["status"],
        filled_quantity: Number(entry.filled) || 0,
      });
    }
  }
  return true;
}

/**
 * What this broker has reported today, which client_order_ids it was sending, which GTTs it knew
 * in which status, and how far event seqs went, on disk beside the instrument cache (DESIGN §10:
 * no "reported" mark lives only in memory). A restart reads it at connect: an order whose fill
 * came while Node-RED was down is reported then, one whose placement was under way is announced,
 * a GTT that triggered meanwhile gets its GTT_TRIGGERED, and seqs go on past the last run's.
 *
 * One JSON line per change, appended and fdatasync'd before the event that it records goes out (a
 * power cut must not forget a report a flow acted on; Kite's own limits keep these to a few a
 * second, so the ~0.1 ms sync on this thread costs nothing that matters). A new trading day starts
 * a new file: orders do not outlive Kite's day, GTTs (which live up to a year) and the seq are
 * carried over, and earlier days' files are then deleted. One holder per file in this process
 * (ledger-holders.ts) and across processes (ledger-lock.ts): two brokers sharing it would each
 * take the other's reports for its own.
 */
export class ReportedLedger {
  readonly #file: string;
  readonly #reported: Map<string, Reported>;
  readonly #placing: Set<string>;
  readonly #unknown: Set<string>;
  readonly #gtts: Map<string, GttSnapshot["status"]>;
  /** Seqs up to this may have been issued (by this run or an earlier one). */
  #seqReserved: number;
  readonly #seqAtOpen: number;
  readonly #release: () => void;
  #broken = false;
  #closed = false;

  constructor(dir: string, apiKey: string, options: LedgerOptions = {}) {
    const day = options.day ?? istDay(Date.now());
    this.#file = ledgerFile(dir, apiKey, { ...options, day });
    const holder = options.holder ?? "a Kite broker";
    const releaseHere = holdLedger(this.#file, holder);
    let releaseLock: () => void;
    try {
      releaseLock = lockLedgerFile(this.#file, holder);
    } catch (error) {
      releaseHere();
      throw error;
    }
    this.#release = () => {
      releaseLock();
      releaseHere();
    };
    const contents = emptyContents();
    const mine = FILE_NAME.exec(path.basename(this.#file))!;
    const existed = readInto(this.#file, contents);
    if (!existed) {
      // First open today: what earlier days' files carry over, then (for a broker config that
      // kept one ledger per account before) that shared ledger of today, read, never written.
      for (const earlier of this.#sameLedgerFiles(dir, mine)) {
        if (earlier.day < day && earlier.temporary === undefined)
          readInto(path.join(dir, earlier.name), contents, "carried");
      }
      // Only an active GTT can still trigger: the ended ones of earlier days are not carried on.
      for (const [gtt, status] of contents.gtts) if (status !== "active") contents.gtts.delete(gtt);
      if (options.instance !== undefined) readInto(ledgerFile(dir, apiKey, { day }), contents);
    }
    this.#reported = contents.reported;
    this.#placing = contents.placing;
    this.#unknown = contents.unknown;
    this.#gtts = contents.gtts;
    this.#seqReserved = contents.seq;
    this.#seqAtOpen = contents.seq;
    for (const file of this.#sameLedgerFiles(dir, mine)) {
      if (file.day === day && file.temporary === undefined) continue;
      if (file.day === day && file.instance !== mine[2]) continue; // another broker's compaction
      try {
        unlinkSync(path.join(dir, file.name));
      } catch {
        // Already gone: it is only a day's old ledger.
      }
    }
    this.#clearStaleLocks(dir);
    // Compacted once per start: one line per order, placement and GTT, and the seq reserved. A
    // ledger with nothing to say yet is written by its first record.
    const empty =
      contents.seq === 0 && contents.placing.size + contents.reported.size + contents.gtts.size === 0;
    if (existed || !empty) this.#rewrite();
  }

  /**
   * Locks (of any ledger here but this one) whose holder died: a holder that crashed on an
   * earlier day, or under a config since deleted, left its lock for good otherwise (issue kite11,
   * item 1). Live holders' locks stay.
   */
  #clearStaleLocks(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    const ledgers = new Set<string>();
    for (const name of names) {
      const m = LOCK_NAME.exec(name);
      if (m !== null && path.join(dir, m[1]!) !== this.#file) ledgers.add(path.join(dir, m[1]!));
    }
    for (const ledger of ledgers) clearStaleLock(ledger, isHeldHere(ledger), names);
  }

  /** This account's ledger files of this instance and of the shared per-account ledger. */
  #sameLedgerFiles(
    dir: string,
    mine: RegExpExecArray,
  ): { name: string; instance: string | undefined; day: string; temporary: string | undefined }[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const found = [];
    for (const name of names.sort()) {
      const m = FILE_NAME.exec(name);
      if (m === null || m[1] !== mine[1] || (m[2] !== undefined && m[2] !== mine[2])) continue;
      found.push({ name, instance: m[2], day: m[3]!, temporary: m[4] });
    }
    return found;
  }

  get file(): string {
    return this.#file;
  }

  /** The highest seq an earlier run may have issued: this run's events start after it. */
  get seqFloor(): number {
    return this.#seqAtOpen;
  }

  /** What a flow was told of this order before (this run or an earlier one today). */
  reportedOf(orderId: string): Reported | undefined {
    return this.#reported.get(orderId);
  }

  /** Whether a placement with this client_order_id was sent (its outcome may never have been told). */
  wasPlacing(clientId: string): boolean {
    return this.#placing.has(clientId);
  }

  /** The status a GTT had when this broker last knew it (reported or read at connect). */
  gttStatusOf(gttId: string): GttSnapshot["status"] | undefined {
    return this.#gtts.get(gttId);
  }

  /** Every client_order_id sent today (and not refused outright), in the order first sent. */
  placings(): string[] {
    return [...this.#placing];
  }

  /** Whether that placement's outcome was reported unknown (NETWORK) already. */
  wasToldUnknown(clientId: string): boolean {
    return this.#unknown.has(clientId);
  }

  /** That placement's outcome was reported unknown (NETWORK): a restart does not report it again. */
  toldUnknown(clientId: string): void {
    if (this.#unknown.has(clientId)) return;
    this.#unknown.add(clientId);
    this.#append([{ unknown: clientId }]);
  }

  placing(clientId: string): void {
    if (this.#placing.has(clientId)) return;
    this.#placing.add(clientId);
    this.#append([{ placing: clientId }]);
  }

  /** Kite refused that placement outright: it made no order, and its client_order_id may be sent again. */
  refused(clientId: string): void {
    if (!this.#placing.delete(clientId)) return;
    this.#append([{ refused: clientId }]);
  }

  reported(order: OrderSnapshot): void {
    const before = this.#reported.get(order.order_id);
    if (before?.status === order.status && before.filled_quantity === order.filled_quantity) return;
    this.#reported.set(order.order_id, { status: order.status, filled_quantity: order.filled_quantity });
    this.#append([{ order: order.order_id, status: order.status, filled: order.filled_quantity }]);
  }

  /**
   * Open orders taken in at connect without an event (Kite had them before this broker did):
   * recorded as they stand, in one synced write, so that a restart reports what they did since.
   */
  baselined(orders: readonly OrderSnapshot[]): void {
    const lines: object[] = [];
    for (const order of orders) {
      const before = this.#reported.get(order.order_id);
      if (before?.status === order.status && before.filled_quantity === order.filled_quantity) continue;
      this.#reported.set(order.order_id, { status: order.status, filled_quantity: order.filled_quantity });
      lines.push({ order: order.order_id, status: order.status, filled: order.filled_quantity });
    }
    if (lines.length > 0) this.#append(lines);
  }

  /** GTTs as now known (the list read at connect, or one reported): one synced write for all. */
  gttsKnown(gtts: readonly GttSnapshot[]): void {
    const lines: object[] = [];
    for (const gtt of gtts) {
      if (this.#gtts.get(gtt.gtt_id) === gtt.status) continue;
      this.#gtts.set(gtt.gtt_id, gtt.status);
      lines.push({ gtt: gtt.gtt_id, status: gtt.status });
    }
    if (lines.length > 0) this.#append(lines);
  }

  /** Called with each seq before its event goes out: a new block is reserved on disk first. */
  issuing(seq: number): void {
    if (seq <= this.#seqReserved) return;
    this.#seqReserved = seq + SEQ_BLOCK - 1;
    this.#append([{ seq: this.#seqReserved }]);
  }

  /** Lets the file go (a broker config redeployed opens it again); later records are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  #append(entries: object[]): void {
    if (this.#broken || this.#closed) return;
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      const fd = openSync(this.#file, "a");
      try {
        writeAllSync(fd, Buffer.from(entries.map((e) => `${JSON.stringify(e)}\n`).join("")));
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
    if (this.#seqReserved > 0) lines.push(JSON.stringify({ seq: this.#seqReserved }));
    for (const clientId of this.#placing) lines.push(JSON.stringify({ placing: clientId }));
    for (const clientId of this.#unknown) {
      if (this.#placing.has(clientId)) lines.push(JSON.stringify({ unknown: clientId }));
    }
    for (const [order, r] of this.#reported) {
      lines.push(JSON.stringify({ order, status: r.status, filled: r.filled_quantity }));
    }
    for (const [gtt, status] of this.#gtts) lines.push(JSON.stringify({ gtt, status }));
    // Written aside, synced, then renamed over the old file (and the directory synced): a crash in
    // the middle leaves the old ledger or the new one, never a cut-short one.
    const temporary = `${this.#file}.tmp`;
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      const fd = openSync(temporary, "w");
      try {
        writeAllSync(fd, Buffer.from(lines.length === 0 ? "" : `${lines.join("\n")}\n`));
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
