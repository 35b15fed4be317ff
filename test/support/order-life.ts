import type { OrderEvent, OrderStatus } from "../../lib/protocol";

const PROGRESS: Record<OrderStatus, number> = {
  PENDING: 0,
  OPEN: 1,
  TRIGGER_PENDING: 1,
  PARTIALLY_FILLED: 2,
  FILLED: 3,
  CANCELLED: 3,
  REJECTED: 3,
  EXPIRED: 3,
};

/** What is wrong with the order events a client emitted, judged as a trader would. */
export interface LifeReport {
  /** "order_id: A → B" where B is an earlier stage than A, or anything after an end. */
  regressions: string[];
  /** Order ids reported FILLED more than once. */
  doubleFills: string[];
  /** Order ids with an event although the test says the client must not hear of them. */
  phantoms: string[];
  /** Live (not synthesized) events whose seq did not rise. */
  seqOutOfOrder: string[];
}

/**
 * Reads a client's order events: each order's life must only move forward, end once, fill once;
 * orders in `foreign` (ended before the client connected, say) must not appear at all.
 */
export function checkLives(
  events: readonly OrderEvent[],
  foreign: ReadonlySet<string> = new Set(),
): LifeReport {
  const report: LifeReport = { regressions: [], doubleFills: [], phantoms: [], seqOutOfOrder: [] };
  const last = new Map<string, OrderEvent>();
  const fills = new Map<string, number>();
  let lastLiveSeq = 0;
  for (const event of events) {
    const id = event.order.order_id;
    if (foreign.has(id)) report.phantoms.push(`${id} ${event.type}`);
    const before = last.get(id);
    if (before !== undefined) {
      const from = before.order.status;
      const to = event.order.status;
      if (
        PROGRESS[from] === 3 ||
        PROGRESS[to] < PROGRESS[from] ||
        event.order.filled_quantity < before.order.filled_quantity
      ) {
        report.regressions.push(`${id}: ${before.type}#${before.seq} → ${event.type}#${event.seq}`);
      }
    }
    last.set(id, event);
    if (event.type === "ORDER_FILLED") fills.set(id, (fills.get(id) ?? 0) + 1);
    if (event.synthesized !== true) {
      if (event.seq <= lastLiveSeq)
        report.seqOutOfOrder.push(`${id} ${event.type}#${event.seq} after #${lastLiveSeq}`);
      lastLiveSeq = Math.max(lastLiveSeq, event.seq);
    }
  }
  report.doubleFills = [...fills].filter(([, n]) => n > 1).map(([id]) => id);
  return report;
}
