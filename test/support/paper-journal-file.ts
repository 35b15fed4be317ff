import fs from "node:fs";
import type { OrderState } from "../../lib/paper/account-state";
import { decodeRecord, fromWrittenSnapshot, isCompact, parseCompact } from "../../lib/paper/compact-record";

/** One journal line as a test reads it, whatever format wrote it. */
export interface JournalLine {
  kind: "s" | "r";
  seq: number;
  /** The orders the line writes: whole ones, or (format 3) the fields a change sets, with order_id. */
  orders: Partial<OrderState>[];
}

/** Every line of a paper journal file, read with the broker's own decoder (checksums not checked). */
export function readJournal(file: string): JournalLine[] {
  const lines: JournalLine[] = [];
  for (const text of fs.readFileSync(file, "utf8").split("\n")) {
    if (text === "") continue;
    const entry = JSON.parse(text) as { s?: unknown; r?: unknown };
    if (entry.s !== undefined) {
      // Version 3 writes the orders as tuples: read as the version 2 object they came from.
      const snapshot = fromWrittenSnapshot(entry.s) as { seq: number; orders: OrderState[] };
      lines.push({ kind: "s", seq: snapshot.seq, orders: snapshot.orders });
    } else if (isCompact(entry.r)) {
      const parsed = parseCompact(entry.r as unknown[]);
      if (!parsed.success) throw parsed.error;
      const record = decodeRecord(parsed.data);
      const orders = record.orders.map((o) => ("whole" in o ? o.whole : o.update));
      lines.push({ kind: "r", seq: record.counters.seq, orders });
    } else {
      const record = entry.r as { seq: number; orders?: OrderState[] };
      lines.push({ kind: "r", seq: record.seq, orders: record.orders ?? [] });
    }
  }
  return lines;
}
