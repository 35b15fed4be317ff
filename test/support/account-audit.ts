import type { OrderSnapshot } from "../../lib/protocol";
import type { ObservedBroker, Settled } from "./broker-chaos";
import { checkLives } from "./order-life";

/** What a client reported, held against the account's own book after the faults. */
export interface AuditReport {
  /** client_order_ids that settled other than exactly once. */
  settledTwice: string[];
  /** client_order_ids with more than one order in the book. */
  placedTwice: string[];
  /** Acknowledged but absent from the book, or acknowledged as another order. */
  lostAcks: string[];
  /** Ended EXPIRED (never sent) but present in the book. */
  expiredButPlaced: string[];
  /** Orders FILLED in the book with no ORDER_FILLED reported. */
  unreportedFills: string[];
  /** Orders reported FILLED more than once. */
  doubleFills: string[];
  /** Orders reported backwards (status or filled quantity going down, anything after an end). */
  regressions: string[];
  /** Live events reported out of seq order. */
  seqOutOfOrder: string[];
  /** Events for orders the account does not hold, or that ended before the client connected. */
  phantoms: string[];
  /** Live events whose (seq) was reported more than once. */
  seqRepeated: number[];
}

/**
 * Holds a client's tally and event stream against the account's book: every request one outcome,
 * no order twice, every acknowledged order present, every fill reported once and in seq order.
 */
export function auditAccount(
  observed: ObservedBroker,
  settledTimes: ReadonlyMap<string, number>,
  results: ReadonlyMap<string, Settled<OrderSnapshot>>,
  wholeBook: readonly OrderSnapshot[],
  prefix: string,
  foreign: ReadonlySet<string> = new Set(),
): AuditReport {
  const book = wholeBook.filter((o) => o.client_order_id.startsWith(prefix));
  const byClientId = new Map<string, OrderSnapshot>();
  const placedTwice: string[] = [];
  for (const order of book) {
    if (byClientId.has(order.client_order_id)) placedTwice.push(order.client_order_id);
    byClientId.set(order.client_order_id, order);
  }
  const lostAcks: string[] = [];
  const expiredButPlaced: string[] = [];
  for (const [clientOrderId, settled] of results) {
    const inBook = byClientId.get(clientOrderId);
    if (settled.kind === "accepted") {
      if (inBook?.order_id !== settled.value.order_id) lostAcks.push(clientOrderId);
    } else if (settled.kind === "expired" && inBook !== undefined) expiredButPlaced.push(clientOrderId);
  }
  const fills = new Set(
    observed.orders.filter((e) => e.type === "ORDER_FILLED").map((e) => e.order.order_id),
  );
  const unreportedFills = book
    .filter((o) => o.status === "FILLED" && !fills.has(o.order_id))
    .map((o) => o.order_id);
  const bookIds = new Set(wholeBook.map((o) => o.order_id));
  const strangers = observed.orders
    .filter((e) => !bookIds.has(e.order.order_id))
    .map((e) => `${e.order.order_id} ${e.type}`);
  const lives = checkLives(observed.orders, foreign);
  const liveSeqs = new Map<number, number>();
  for (const event of observed.orders) {
    if (event.synthesized !== true) liveSeqs.set(event.seq, (liveSeqs.get(event.seq) ?? 0) + 1);
  }
  return {
    settledTwice: [...settledTimes].filter(([, n]) => n !== 1).map(([id]) => id),
    placedTwice,
    lostAcks,
    expiredButPlaced,
    unreportedFills,
    doubleFills: lives.doubleFills,
    regressions: lives.regressions,
    seqOutOfOrder: lives.seqOutOfOrder,
    phantoms: [...lives.phantoms, ...strangers],
    seqRepeated: [...liveSeqs].filter(([, n]) => n > 1).map(([seq]) => seq),
  };
}

/** An audit with nothing wrong, to compare against with deepEqual (a failure shows what was). */
export const CLEAN_AUDIT: AuditReport = {
  settledTwice: [],
  placedTwice: [],
  lostAcks: [],
  expiredButPlaced: [],
  unreportedFills: [],
  doubleFills: [],
  regressions: [],
  seqOutOfOrder: [],
  phantoms: [],
  seqRepeated: [],
};

/** Tally of outcomes by kind, with the error codes of the ones not accepted. */
export function tallyOf(results: ReadonlyMap<string, Settled<unknown>>): {
  tally: Record<Settled<unknown>["kind"], number>;
  codes: Record<string, number>;
} {
  const tally = { accepted: 0, rejected: 0, expired: 0, failed: 0 };
  const codes: Record<string, number> = {};
  for (const settled of results.values()) {
    tally[settled.kind] += 1;
    if (settled.kind !== "accepted") {
      const key = `${settled.kind}:${settled.error.code}`;
      codes[key] = (codes[key] ?? 0) + 1;
    }
  }
  return { tally, codes };
}
