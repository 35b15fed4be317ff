import type { AccountEvent, OrderEvent } from "../protocol/events";
import type { OrderSnapshot } from "../protocol/orders";
import type { Client } from "./client";

/**
 * One account event and the frames it goes out in, each serialized at most once however many
 * connections receive it: the full EVENT (v1.0 connections, and any connection that may lack the
 * delta's base), the EVENT_DELTA over the order's previous event, and the EVENT_DELTA over the
 * PLACE_ORDER request of the one connection that placed the order.
 */
export class PushedEvent {
  readonly seq: number;
  readonly event: AccountEvent;
  readonly #base: { seq: number; order: OrderSnapshot } | undefined;
  readonly #origin: { client: Client; request: Record<string, unknown> } | undefined;
  /** Built on first use: a gateway whose connections skip their answered events never needs most. */
  #delta: string | null | undefined;
  #originFrame: string | null | undefined;
  #frame: string | undefined;

  constructor(
    event: AccountEvent,
    base: { seq: number; order: OrderSnapshot } | undefined,
    origin: { client: Client; request: Record<string, unknown> } | undefined,
  ) {
    this.seq = event.seq;
    this.event = event;
    // A delta carries no `synthesized` flag: an event that has one goes out whole.
    if (!("order" in event) || event.synthesized !== undefined) return;
    this.#base = base;
    this.#origin = origin;
  }

  /** The seq of the order's previous event, when a delta over it can be made. */
  get baseSeq(): number | undefined {
    return this.delta === undefined ? undefined : this.#base?.seq;
  }

  /** The EVENT_DELTA over the order's previous event, when one can be made. */
  get delta(): string | undefined {
    if (this.#delta === undefined) {
      const base = this.#base;
      const changed = base === undefined ? undefined : changedFields(base.order, this.#order());
      this.#delta =
        base === undefined || changed === undefined ? null : deltaFrame(this.event, base.seq, changed);
    }
    return this.#delta ?? undefined;
  }

  /** The connection whose PLACE_ORDER made this order, when `originFrame` applies over that request. */
  get origin(): Client | undefined {
    return this.originFrame === undefined ? undefined : this.#origin?.client;
  }

  /** The EVENT_DELTA over the placing request, when one can be made. */
  get originFrame(): string | undefined {
    if (this.#originFrame === undefined) {
      const origin = this.#origin;
      const order = this.#order();
      const changed = origin === undefined ? undefined : changedFields(origin.request, order);
      if (changed !== undefined) changed.client_order_id = order.client_order_id;
      this.#originFrame = changed === undefined ? null : deltaFrame(this.event, "request", changed);
    }
    return this.#originFrame ?? undefined;
  }

  /** The full EVENT, serialized on first use (a gateway whose clients all take deltas never builds it). */
  get frame(): string {
    this.#frame ??= JSON.stringify({ type: "EVENT", event: this.event });
    return this.#frame;
  }

  /**
   * The frame for `client`, which has been sent every event after `heldFrom`: a delta only over a
   * base it was sent (or, live, its own request), the full event otherwise. A replay never uses
   * the request as base: a client resumes because it lacked a base, maybe that very request.
   */
  frameFor(client: Client, heldFrom: number, replay = false): string {
    if (!client.deltas) return this.frame;
    const delta = this.delta;
    if (delta !== undefined && (this.#base?.seq ?? 0) > heldFrom) return delta;
    if (!replay && this.#origin?.client === client) {
      const originFrame = this.originFrame;
      if (originFrame !== undefined) return originFrame;
    }
    return this.frame;
  }

  #order(): OrderSnapshot {
    return (this.event as OrderEvent).order;
  }
}

/**
 * The fields of `next` that differ from `base` (order_id always), or undefined when a field of
 * `base` is gone from `next`: a delta lays fields over its base and cannot remove one.
 */
export function changedFields(
  base: Record<string, unknown>,
  next: OrderSnapshot,
): Record<string, unknown> | undefined {
  const record = next as unknown as Record<string, unknown>;
  for (const key in base) {
    if (base[key] !== undefined && record[key] === undefined) return undefined;
  }
  const changed: Record<string, unknown> = { order_id: next.order_id };
  for (const key in record) {
    const value = record[key];
    if (value !== undefined && base[key] !== value) changed[key] = value;
  }
  return changed;
}

function deltaFrame(event: AccountEvent, base: number | "request", order: Record<string, unknown>): string {
  const delta: Record<string, unknown> = { type: event.type, seq: event.seq, base, order };
  // A fill's trades belong to the event, not to the order: a delta carries them as the EVENT does.
  if ("trades" in event && event.trades !== undefined) delta.trades = event.trades;
  delta.timestamp = event.timestamp;
  return JSON.stringify({ type: "EVENT_DELTA", event: delta });
}
