import type { Quote } from "../protocol";
import { BrokerError } from "../protocol/errors";
import { instrumentKey } from "../protocol/instrument";
import { formatIssues } from "../protocol/validate";
import type { BrokerLogger } from "../brokers/logger";
import type { PaperAccount } from "./account";
import type { AccountSnapshot, WalkPosition } from "./account-state";
import {
  AccountRecord as RecordSchema,
  AccountSnapshot as SnapshotSchema,
  isLegacy,
  upgrade,
} from "./account-state";
import { Journal } from "./journal";
import type { JsonSink } from "./json-sink";
import {
  decodeRecord,
  fromWrittenSnapshot,
  isCompact,
  parseCompact,
  toWrittenSnapshot,
} from "./compact-record";

/** What a connect restored, and what it set aside instead of applying. */
export interface RestoreReport {
  records: number;
  orders: number;
  gtts: number;
  positions: number;
  /** Written by version 1 (rupees): held-back cash has to be worked out again. */
  legacy: boolean;
  quarantine?: { lineNo: number; reason: string; droppedAfter: number; corruptFile: string };
}

/** Two brokers writing one journal would corrupt the account, so a file is opened once per process. */
const openJournals = new Set<string>();

export interface OpenOptions {
  file: string;
  account: PaperAccount;
  settingsName: string;
  log: BrokerLogger;
  onError: (error: BrokerError) => void;
}

/** Every record, validated as it is read: a line that does not fit the schema is never applied. */
function validate(kind: "s" | "r", value: unknown): string | undefined {
  if (kind === "r" && isCompact(value)) {
    const compact = parseCompact(value as unknown[]);
    return compact.success ? undefined : formatIssues(compact.error.issues);
  }
  const readable = kind === "s" ? fromWrittenSnapshot(value) : value;
  const result = (kind === "s" ? SnapshotSchema : RecordSchema).safeParse(upgrade(readable, kind));
  return result.success ? undefined : formatIssues(result.error.issues);
}

/** The highest seq and ids a dropped tail mentions, bounded by its size (a flipped digit must not jump ids by 1e15). */
function idsIn(
  tail: Buffer,
  account: PaperAccount,
): { seq?: number; next_order?: number; next_gtt?: number } {
  const text = tail.toString("utf8");
  const found: { seq?: number; next_order?: number; next_gtt?: number } = {};
  const bound = (current: number) => current + text.length;
  for (const match of text.matchAll(/"(seq|next_order|next_gtt)":(\d{1,15})/g)) {
    const field = match[1] as "seq" | "next_order" | "next_gtt";
    const value = Number(match[2]);
    const current =
      field === "seq" ? account.seq : field === "next_order" ? account.nextOrder : account.nextGtt;
    if (value <= bound(current)) found[field] = Math.max(found[field] ?? 0, value);
  }
  // Format 3: [3,"<now>",seq,cash,next_order,next_gtt,… and order tuples that start with their id.
  for (const match of text.matchAll(/\{"r":\[3,"[^"]*",(\d{1,15}),-?\d{1,20},(\d{1,15}),(\d{1,15}),/g)) {
    for (const [field, value] of [
      ["seq", Number(match[1])],
      ["next_order", Number(match[2])],
      ["next_gtt", Number(match[3])],
    ] as const) {
      const current =
        field === "seq" ? account.seq : field === "next_order" ? account.nextOrder : account.nextGtt;
      if (value <= bound(current)) found[field] = Math.max(found[field] ?? 0, value);
    }
  }
  for (const match of text.matchAll(/(?:"order_id":|\[)"P(\d{9})"/g)) {
    const next = Number(match[1]) + 1;
    if (next <= bound(account.nextOrder)) found.next_order = Math.max(found.next_order ?? 0, next);
  }
  return found;
}

/**
 * The paper account's journal: opens and restores it (validated, corruption quarantined and
 * reported), claims the file for this process, and owns compaction and the durability wait.
 */
export class PaperJournal {
  readonly #journal: Journal<unknown, unknown>;
  readonly #file: string;
  readonly #onError: (error: BrokerError) => void;
  #compacting: Promise<void> | undefined;
  #failing = false;

  private constructor(journal: Journal<unknown, unknown>, options: OpenOptions) {
    this.#journal = journal;
    this.#file = options.file;
    this.#onError = options.onError;
  }

  static async open(
    options: OpenOptions,
  ): Promise<{ journal: PaperJournal; report: RestoreReport; prices: Quote[]; walk?: WalkPosition }> {
    const { file, account, log } = options;
    if (openJournals.has(file)) {
      throw new BrokerError(
        "CONFIG",
        `paper account "${options.settingsName}" is already open by another broker config (${file}); give each config its own account name`,
      );
    }
    openJournals.add(file);
    try {
      const opened = await Journal.open<AccountSnapshot, unknown>({
        file,
        log: { warn: (m) => log.warn(m) },
        validate,
      });
      const { snapshot, records } = opened.contents;
      let legacy = false;
      const prices = new Map<string, Quote>();
      // The latest position wins: each record carries it only when the walk moved.
      let walk: WalkPosition | undefined;
      const notePrices = (list: Quote[] | undefined) => {
        for (const quote of list ?? []) prices.set(instrumentKey(quote.exchange, quote.symbol), quote);
      };
      if (snapshot !== undefined) {
        // Version 3 (orders as tuples) reads as the version 2 object it was written from.
        const readable = fromWrittenSnapshot(snapshot);
        const parsed = SnapshotSchema.parse(upgrade(readable, "s"));
        legacy ||= isLegacy(readable);
        account.restoreSnapshot(parsed, isLegacy(readable));
        notePrices(parsed.prices);
        walk = parsed.walk ?? walk;
      }
      for (const raw of records) {
        if (isCompact(raw)) {
          const parsed = parseCompact(raw as unknown[]);
          // validate() accepted it on open; a failure here would be a bug, not a bad byte.
          if (!parsed.success) throw new Error(`format 3 record: ${formatIssues(parsed.error.issues)}`);
          const decoded = decodeRecord(parsed.data);
          account.applyCompact(decoded);
          notePrices(decoded.extra.prices);
          walk = decoded.extra.walk ?? walk;
          continue;
        }
        const record = RecordSchema.parse(upgrade(raw, "r"));
        legacy ||= isLegacy(raw);
        account.applyRecord(record, isLegacy(raw));
        notePrices(record.prices);
        walk = record.walk ?? walk;
      }
      account.rebuildIndexes();
      const report: RestoreReport = {
        records: records.length,
        orders: account.orders.size,
        gtts: account.gtts.size,
        positions: account.positions.size,
        legacy,
      };
      const quarantine = opened.quarantine;
      if (quarantine !== undefined) {
        // Ids and seq numbers in the dropped lines may have been seen; they are never handed out again.
        account.skipPast(idsIn(quarantine.tail, account));
        report.quarantine = {
          lineNo: quarantine.lineNo,
          reason: quarantine.reason,
          droppedAfter: quarantine.droppedAfter,
          corruptFile: quarantine.corruptFile,
        };
        log.error(
          `paper account "${options.settingsName}": journal line ${quarantine.lineNo} is corrupt (${quarantine.reason}); ` +
            `it and the ${quarantine.droppedAfter} line(s) after it were NOT applied (kept in ${quarantine.corruptFile}); ` +
            `the account is as of the ${records.length} record(s) before it`,
        );
      }
      if (report.orders + report.gtts + report.positions > 0) {
        log.info(
          `paper account "${options.settingsName}" restored: ${report.orders} orders, ${report.gtts} GTTs, cash ${account.cash / 100}`,
        );
      }
      const restored = {
        journal: new PaperJournal(opened.journal, options),
        report,
        prices: Array.from(prices.values()),
      };
      return walk === undefined ? restored : { ...restored, walk };
    } catch (error) {
      openJournals.delete(file);
      throw error;
    }
  }

  /**
   * A format 3 record written in place (PaperAccount.writeRecord(); see Journal.beginRecord());
   * format 2 records are only read.
   */
  beginRecord(): JsonSink {
    return this.#journal.beginRecord();
  }

  endRecord(): void {
    this.#journal.endRecord();
  }

  flush(): Promise<void> {
    return this.#journal.flush();
  }

  /**
   * Resolves when everything appended so far is on disk. A failing disk is retried (the records
   * stay in memory) until it recovers or the broker closes; announcing before then could show a
   * listener something a crash would take back.
   */
  async durable(closing: () => boolean): Promise<void> {
    for (;;) {
      try {
        await this.#journal.flush();
        this.#failing = false;
        return;
      } catch (error) {
        const failure = new BrokerError(
          "INTERNAL",
          `paper journal write failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
        if (closing()) throw failure;
        if (!this.#failing) this.#onError(failure);
        this.#failing = true;
        await new Promise((resolve) => setTimeout(resolve, 200).unref());
      }
    }
  }

  compact(snapshot: AccountSnapshot): Promise<void> {
    return this.#journal.compact(toWrittenSnapshot(snapshot));
  }

  /** Whether compactIfGrown() would start one: asked per operation, so it allocates nothing. */
  compactionDue(every: number): boolean {
    return this.#compacting === undefined && this.#journal.recordsSinceCompaction >= every;
  }

  /**
   * Starts a compaction once the journal has grown past `every` records; one at a time. Never
   * rejects: a failure is reported through onError and the journal carries on uncompacted.
   */
  compactIfGrown(every: number, snapshot: () => AccountSnapshot): Promise<void> {
    if (this.#compacting !== undefined) return this.#compacting;
    if (this.#journal.recordsSinceCompaction < every) return Promise.resolve();
    this.#compacting = this.#journal
      .compact(toWrittenSnapshot(snapshot()))
      .catch((error: unknown) => {
        this.#onError(
          new BrokerError("INTERNAL", `paper journal compaction failed: ${(error as Error).message}`),
        );
      })
      .finally(() => {
        this.#compacting = undefined;
      });
    return this.#compacting;
  }

  async close(): Promise<void> {
    try {
      await this.#compacting;
      await this.#journal.close();
    } finally {
      openJournals.delete(this.#file);
    }
  }
}

export const openPaperJournal = PaperJournal.open.bind(PaperJournal);
