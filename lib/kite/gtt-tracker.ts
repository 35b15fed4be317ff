import type { GttEventType, GttSnapshot } from "../protocol";
import type { KiteTrigger } from "./mapping";
import { toGttSnapshot } from "./mapping";

export function copyGtt(gtt: GttSnapshot): GttSnapshot {
  return {
    ...gtt,
    trigger_values: [...gtt.trigger_values],
    orders: gtt.orders.map((o) => ({ ...o })),
    order_ids: [...gtt.order_ids],
  };
}

/**
 * What this broker knows of Kite's GTTs, and the one place their news is reported. Kite pushes
 * nothing about GTTs, so the broker polls the list while any is active; the poll and the answer
 * to our own request race, and whichever sees a change first reports it (issue 10, defect 3).
 */
export class GttTracker {
  readonly #gtts = new Map<string, GttSnapshot>();
  /** Order id → the GTT that placed it, learnt from GTT results. */
  readonly #gttOfOrder = new Map<string, string>();
  readonly #emit: (type: GttEventType, gtt: GttSnapshot) => void;
  readonly #onOrderLearnt: (orderId: string, gttId: string) => void;

  constructor(
    emit: (type: GttEventType, gtt: GttSnapshot) => void,
    onOrderLearnt: (orderId: string, gttId: string) => void,
  ) {
    this.#emit = emit;
    this.#onOrderLearnt = onOrderLearnt;
  }

  get(gttId: string): GttSnapshot | undefined {
    return this.#gtts.get(gttId);
  }

  gttOfOrder(orderId: string): string | undefined {
    return this.#gttOfOrder.get(orderId);
  }

  forgetOrder(orderId: string): void {
    this.#gttOfOrder.delete(orderId);
  }

  hasActive(): boolean {
    for (const gtt of this.#gtts.values()) if (gtt.status === "active") return true;
    return false;
  }

  /** Which orders a trigger's legs placed. */
  learnOrders(trigger: KiteTrigger): void {
    const gttId = String(trigger.id);
    for (const order of trigger.orders) {
      const id = order.result?.order_result?.order_id;
      if (id === undefined || id === null || String(id) === "") continue;
      this.#gttOfOrder.set(String(id), gttId);
      this.#onOrderLearnt(String(id), gttId);
    }
  }

  /**
   * The GTTs listed at connect, recorded without events, except one an earlier run knew (from
   * disk, `known`) in another status: it triggered or was deleted while this broker was down, and
   * that is reported now, once. Returns the GTTs reported triggered so (their orders are announced).
   */
  baseline(
    list: KiteTrigger[],
    known?: { gttStatusOf(gttId: string): GttSnapshot["status"] | undefined },
  ): GttSnapshot[] {
    const now = new Date().toISOString();
    const triggered: GttSnapshot[] = [];
    for (const trigger of list) {
      this.learnOrders(trigger);
      const gtt = toGttSnapshot(trigger, now);
      const before = this.#gtts.has(gtt.gtt_id) ? undefined : known?.gttStatusOf(gtt.gtt_id);
      if (before === undefined || before === gtt.status) {
        this.#gtts.set(gtt.gtt_id, gtt);
        continue;
      }
      this.#gtts.set(gtt.gtt_id, { ...gtt, status: before });
      this.record(gtt);
      if (gtt.status === "triggered" && before === "active") triggered.push(gtt);
    }
    return triggered;
  }

  /** Every GTT known now. */
  all(): GttSnapshot[] {
    return Array.from(this.#gtts.values(), copyGtt);
  }

  /** Records GTTs as listed; unless `silent` (the baseline at connect), reports what changed. */
  ingest(list: KiteTrigger[], silent: boolean): void {
    const now = new Date().toISOString();
    for (const trigger of list) {
      this.learnOrders(trigger);
      const gtt = toGttSnapshot(trigger, now);
      if (silent) this.#gtts.set(gtt.gtt_id, gtt);
      else this.record(gtt);
    }
  }

  /**
   * An event only for a change from what is known, and a GTT that has ended never comes back to
   * active from an older view (a poll that left before our delete was answered). Returns what is
   * known now.
   */
  record(gtt: GttSnapshot): GttSnapshot {
    const known = this.#gtts.get(gtt.gtt_id);
    if (known !== undefined && known.status !== "active" && gtt.status === "active") return copyGtt(known);
    this.#gtts.set(gtt.gtt_id, gtt);
    let type: GttEventType | undefined;
    if (known === undefined) type = gtt.status === "active" ? "GTT_PLACED" : undefined;
    else if (known.status !== gtt.status) {
      if (gtt.status === "triggered") type = "GTT_TRIGGERED";
      else if (gtt.status === "deleted") type = "GTT_DELETED";
    }
    if (type !== undefined) this.#emit(type, gtt);
    return copyGtt(gtt);
  }

  /** A change to the GTT's legs or triggers that we made (Kite's status stays active). */
  modified(gtt: GttSnapshot): GttSnapshot {
    this.#gtts.set(gtt.gtt_id, gtt);
    this.#emit("GTT_MODIFIED", gtt);
    return copyGtt(gtt);
  }
}
