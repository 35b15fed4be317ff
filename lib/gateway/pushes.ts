import { WebSocket } from "ws";
import type { BrokerLogger } from "../brokers/logger";
import type { AccountEvent, OrderEvent } from "../protocol/events";
import type { OrderSnapshot } from "../protocol/orders";
import { isTerminal } from "../protocol/orders";
import type { ResumeResult } from "../protocol/wire";
import type { Client, Outgoing } from "./client";
import { messageOf } from "../common/error-message";
import { PushedEvent } from "./pushed-event";
import { ReplayBuffer } from "./replay-buffer";
import { eventsLeftOut } from "./answer-size";
import type { DurableBacklog } from "./durable-backlog";

/** A PLACE_ORDER of a delta connection awaiting its order's first event. */
export interface Placing {
  readonly client: Client;
  readonly request: Record<string, unknown>;
  readonly clientOrderId: string;
}

/**
 * Open orders whose last event is kept as the base of the next one's delta. Past it the oldest
 * is forgotten and its next event goes out whole: a cost, never a wrong delta.
 */
export const MAX_DELTA_BASES = 100_000;
/** PLACE_ORDER requests awaiting their order's first event, per gateway (bounded like the above). */
const MAX_ORIGINS = 10_000;

/**
 * What the gateway sends unasked: account events to every authenticated connection (and held for
 * RESUME) and quotes to their subscribers, gathered per tick into array frames. An account event
 * goes out only once `durable` has run, so no client hears of a change a kill -9 could take back.
 */
export class Pushes {
  readonly #clients: ReadonlySet<Client>;
  readonly #durable: (() => Promise<void>) | undefined;
  readonly #log: BrokerLogger;
  readonly #replay: ReplayBuffer<PushedEvent>;
  #flushing: NodeJS.Immediate | undefined;
  readonly #dirty = new Set<Client>();
  /** The last event seq made durable, held for RESUME and pushed: what AUTH, PING and RESUME report. */
  #pushedSeq: number;
  /** Account events emitted since the last flush, waiting for `durable`. */
  #unflushed: PushedEvent[] = [];
  /** Every account event received and not yet published, in seq order (flushed or not). */
  #unpublished: PushedEvent[] = [];
  /** order_id → its latest event among #unpublished: where an answer looks for its events. */
  readonly #latest = new Map<string, PushedEvent>();
  /** order_id → its last event's seq and snapshot: the base of its next event's delta. */
  readonly #bases = new Map<string, { seq: number; order: OrderSnapshot }>();
  /** client_order_id → the delta connection placing it and its request as it arrived. */
  readonly #origins = new Map<string, Placing>();
  #publishing: Promise<void> = Promise.resolve();
  readonly #maxAnswerFrameBytes: number;
  readonly #backlog: DurableBacklog | undefined;

  constructor(options: {
    clients: ReadonlySet<Client>;
    durable: (() => Promise<void>) | undefined;
    log: BrokerLogger;
    replayBuffer: number;
    maxAnswerFrameBytes?: number;
    /** Caps the events held until durable (durable-backlog.ts). */
    backlog?: DurableBacklog;
  }) {
    this.#maxAnswerFrameBytes = options.maxAnswerFrameBytes ?? Number.POSITIVE_INFINITY;
    this.#backlog = options.backlog;
    this.#clients = options.clients;
    this.#durable = options.durable;
    this.#log = options.log;
    this.#replay = new ReplayBuffer<PushedEvent>(options.replayBuffer);
    this.#pushedSeq = 0;
  }

  get seq(): number {
    return this.#pushedSeq;
  }

  /** Where the broker's own seq stands at start: what it holds was loaded from its journal, durable already. */
  startAt(seq: number): void {
    this.#pushedSeq = seq;
  }

  /**
   * An account event is held back until `durable` has run: only then does it enter the replay
   * buffer and go to connections, so neither a push nor a RESUME hands out an event that a kill -9
   * could still take back.
   */
  event(event: AccountEvent): void {
    if (!("order" in event)) {
      const item = new PushedEvent(event, undefined, undefined);
      this.#unflushed.push(item);
      this.#unpublished.push(item);
    } else {
      const order = event.order;
      const base = this.#bases.get(order.order_id);
      const origin = base === undefined ? this.#origins.get(order.client_order_id) : undefined;
      const item = new PushedEvent(event, base, origin);
      this.#unflushed.push(item);
      this.#unpublished.push(item);
      this.#latest.set(order.order_id, item);
      // Map order is insertion order: delete first so a live order moves to the young end.
      this.#bases.delete(order.order_id);
      if (!isTerminal(order.status)) {
        this.#bases.set(order.order_id, { seq: event.seq, order });
        if (this.#bases.size > MAX_DELTA_BASES) this.#bases.delete(this.#bases.keys().next().value ?? "");
      }
    }
    this.#flushing ??= setImmediate(this.#flush);
    if (this.#backlog !== undefined && this.#unpublished.length >= this.#backlog.max) {
      this.#backlog.update(this.#unpublished.length);
    }
  }

  /**
   * A delta connection is placing this order: its first event may go to that connection as the
   * fields its request did not say. Returns what to hand placementAnswered() once the placement
   * has answered (an object, not an undo closure: one allocation fewer per order).
   */
  expectPlacement(client: Client, request: Record<string, unknown>): Placing | undefined {
    const clientOrderId = request.client_order_id;
    if (typeof clientOrderId !== "string" || this.#origins.has(clientOrderId)) return undefined;
    const entry: Placing = { client, request, clientOrderId };
    this.#origins.set(clientOrderId, entry);
    if (this.#origins.size > MAX_ORIGINS) this.#origins.delete(this.#origins.keys().next().value ?? "");
    return entry;
  }

  /** The placement `expectPlacement` registered has answered: its request is no longer a base. */
  placementAnswered(entry: Placing): void {
    if (this.#origins.get(entry.clientOrderId) === entry) this.#origins.delete(entry.clientOrderId);
  }

  enqueue(client: Client, item: Outgoing): void {
    client.outbox.push(item);
    this.#dirty.add(client);
    this.#flushing ??= setImmediate(this.#flush);
  }

  /** A closed connection: nothing more is sent to it. */
  forget(client: Client): void {
    this.#dirty.delete(client);
    client.outbox = [];
  }

  /** Drops whatever waits for the next flush (the gateway is closing). */
  stop(): void {
    this.#unpublished = [];
    this.#backlog?.reset();
    this.#latest.clear();
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    this.#dirty.clear();
  }

  /**
   * The frames that answer an order request of a connection that skips answered events, built
   * as they go onto its socket: the events it has not been sent up to the one whose snapshot is
   * `order` (none of those published yet), with the run of this order's events that ends there
   * inside the RESULT and the others in front of it, so the connection still gets every event
   * once and in seq order. Without such an event (the broker reports it later, or it was already
   * sent) the RESULT goes alone and the events go as pushes. The frames are appended to `frames`
   * (the batch's, so no array per answer).
   */
  answer(client: Client, id: string, order: OrderSnapshot, frames: string[]): void {
    const pending = this.#unpublished;
    const latest = this.#latest.get(order.order_id);
    if (latest === undefined || latest.seq <= client.sentSeq) {
      frames.push(answerFrame(id, order, ""));
      return;
    }
    // Seqs ascend: the first event not yet sent to this connection, and the order's latest, by bisection.
    const first = firstAfter(pending, client.sentSeq);
    let match = -1;
    // Mostly the latest event is the answer; a later change (a fill after it) makes it an earlier one.
    for (let i = firstAfter(pending, latest.seq - 1); i >= first; i--) {
      const event = pending[i]!.event;
      if (
        "order" in event &&
        event.order.order_id === order.order_id &&
        event.synthesized === undefined &&
        sameSnapshot(order, event.order)
      ) {
        match = i;
        break;
      }
    }
    if (match < 0) {
      frames.push(answerFrame(id, order, ""));
      return;
    }
    // The answered run: this order's events (each expressible over the answer) that end at the match.
    // Gathered from the match backwards, then put in seq order.
    const carried: string[] = [answeredEventJson(pending[match]!.event as OrderEvent, "")];
    let start = match;
    while (start - 1 >= first) {
      const event = pending[start - 1]!.event;
      if (!("order" in event) || event.order.order_id !== order.order_id || event.synthesized !== undefined)
        break;
      const overlay = overlayJson(order, event.order);
      if (overlay === undefined) break;
      carried.push(answeredEventJson(event, overlay));
      start--;
    }
    carried.reverse();
    // The RESULT without its closing brace: closed or given its events below without slicing the
    // head, which flattened the concatenated head into a copy only to concatenate it again.
    const open = answerOpen(id, order);
    // Within the answer frame limit: the run's first events may go as pushes (answer-size.ts).
    const left = eventsLeftOut(carried, open.length + 1, this.#maxAnswerFrameBytes);
    for (let i = first; i < start + left; i++) frames.push(pending[i]!.frameFor(client, client.heldFrom));
    client.sentSeq = pending[match]!.seq;
    frames.push(
      left === carried.length ? `${open}}` : `${open},"events":[${carried.slice(left).join(",")}]}`,
    );
  }

  /** Sends the held events after fromSeq now (before the RESULT), and says whether any are missing. */
  resume(client: Client, fromSeq: number): ResumeResult {
    const seq = this.seq;
    const events = this.#replay.after(fromSeq);
    // Replayed in order from fromSeq: a delta over a base after it reaches the client first.
    client.sendReplay(events, (event) => event.frameFor(client, fromSeq, true));
    const last = events[events.length - 1];
    if (last !== undefined && last.seq > client.sentSeq) client.sentSeq = last.seq;
    // A client ahead of the server (a wiped account, another server) must reconcile as well.
    const gap = fromSeq > seq || (fromSeq < seq && !this.#replay.has(fromSeq + 1));
    // Every event after fromSeq has now been sent or will be: bases after it are the client's.
    if (!gap && fromSeq < client.heldFrom) client.heldFrom = fromSeq;
    return { replayed: events.length, gap, seq };
  }

  /** Sends each client's pushes of this tick, several in one array frame (after `durable`, if set). */
  readonly #flush = (): void => {
    this.#flushing = undefined;
    const events = this.#unflushed;
    this.#unflushed = [];
    const batch = Array.from(this.#dirty, (client) => {
      const items = client.outbox;
      client.outbox = [];
      return { client, items };
    });
    this.#dirty.clear();
    const publish = (): void => {
      this.#publishEvents(events);
      this.#sendPushes(batch);
    };
    if (this.#durable === undefined) {
      publish();
      return;
    }
    const durable = this.#durable;
    // Chained, so events enter the replay buffer in seq order even if flushes finish out of order.
    this.#publishing = this.#publishing
      .then(durable)
      .then(publish, (error: unknown) => {
        // The account in memory has changed either way; say the journal failed and tell clients.
        this.#log.error(`gateway: journal flush failed before pushing events: ${messageOf(error)}`);
        publish();
      })
      .catch((error: unknown) => this.#log.error(`gateway: pushing events failed: ${messageOf(error)}`));
  };

  /** Events now durable: held for RESUME and sent to every authenticated connection. */
  #publishEvents(events: PushedEvent[]): void {
    if (events.length === 0) return;
    // Published in seq order (the flushes are chained): these are the oldest unpublished.
    const last = events[events.length - 1]!.seq;
    let cut = 0;
    while (cut < this.#unpublished.length && this.#unpublished[cut]!.seq <= last) cut++;
    this.#unpublished.splice(0, cut);
    if (this.#backlog?.paused === true) this.#backlog.update(this.#unpublished.length);
    for (const item of events) {
      if ("order" in item.event) {
        const orderId = item.event.order.order_id;
        if (this.#latest.get(orderId) === item) this.#latest.delete(orderId);
      }
      this.#replay.push(item);
      if (item.seq > this.#pushedSeq) this.#pushedSeq = item.seq;
    }
    for (const client of this.#clients) {
      if (!client.authenticated || client.closeCode !== undefined) continue;
      const frames: string[] = [];
      for (const item of events) {
        if (item.seq <= client.sentSeq) continue;
        client.sentSeq = item.seq;
        frames.push(item.frameFor(client, client.heldFrom));
      }
      client.sendChunked(frames);
    }
  }

  #sendPushes(batch: { client: Client; items: Outgoing[] }[]): void {
    for (const { client, items } of batch) {
      if (client.closeCode !== undefined && client.ws.readyState !== WebSocket.OPEN) continue;
      const frames: string[] = [];
      for (const item of items) {
        if (item.seq !== undefined) {
          if (item.seq <= client.sentSeq) continue;
          client.sentSeq = item.seq;
        }
        frames.push(item.frame);
      }
      client.sendChunked(frames);
    }
  }
}

/**
 * The fields of `event` that differ from the answer's snapshot, or undefined when the answer has a
 * field the event lacks (an overlay cannot remove one).
 */
function overlayOn(answer: OrderSnapshot, event: OrderSnapshot): Record<string, unknown> | undefined {
  const a = answer as unknown as Record<string, unknown>;
  const e = event as unknown as Record<string, unknown>;
  for (const key in a) if (a[key] !== undefined && e[key] === undefined) return undefined;
  const changed: Record<string, unknown> = {};
  for (const key in e) {
    const value = e[key];
    if (value !== undefined && a[key] !== value) changed[key] = value;
  }
  return changed;
}

/**
 * `JSON.stringify(overlayOn(answer, event))`, or "" when that overlay is empty, written without
 * building the overlay object (test/unit/gateway-answer-batch.spec.ts pins the bytes): the keys
 * come in the event's own order, which is the order the object would have. A value JSON leaves
 * out of an object (a function, a symbol) takes the object's way.
 */
export function overlayJson(answer: OrderSnapshot, event: OrderSnapshot): string | undefined {
  const a = answer as unknown as Record<string, unknown>;
  const e = event as unknown as Record<string, unknown>;
  for (const key in a) if (a[key] !== undefined && e[key] === undefined) return undefined;
  let json = "";
  for (const key in e) {
    const value = e[key];
    if (value === undefined || a[key] === value) continue;
    const type = typeof value;
    if (type === "function" || type === "symbol") return overlayObjectJson(a, e);
    json += `${json === "" ? "{" : ","}${JSON.stringify(key)}:${JSON.stringify(value)}`;
  }
  return json === "" ? "" : `${json}}`;
}

function overlayObjectJson(a: Record<string, unknown>, e: Record<string, unknown>): string {
  const overlay = overlayOn(a as unknown as OrderSnapshot, e as unknown as OrderSnapshot) ?? {};
  return isEmpty(overlay) ? "" : JSON.stringify(overlay);
}

/** The index of the first event with a seq above `seq` (events.length when none). */
function firstAfter(events: readonly PushedEvent[], seq: number): number {
  let low = 0;
  for (let high = events.length; low < high;) {
    const mid = (low + high) >>> 1;
    if (events[mid]!.seq <= seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

function sameSnapshot(a: OrderSnapshot, b: OrderSnapshot): boolean {
  if (a === b) return true;
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  for (const key in x) if (x[key] !== y[key]) return false;
  for (const key in y) if (x[key] !== y[key]) return false;
  return true;
}

function isEmpty(record: Record<string, unknown>): boolean {
  for (const _ in record) return false;
  return true;
}

/**
 * One answered event as the RESULT's `events` carries it: what JSON.stringify of
 * `{type, seq, order?, trades?, timestamp}` writes, concatenated from its parts so that no object
 * is built per event only to be serialized (test/unit/gateway-answer-frame.spec.ts pins the bytes).
 */
export function answeredEvent(event: OrderEvent, overlay: Record<string, unknown> | undefined): string {
  return answeredEventJson(event, overlay === undefined || isEmpty(overlay) ? "" : JSON.stringify(overlay));
}

/** answeredEvent with the overlay already written as JSON ("" for none). */
export function answeredEventJson(event: OrderEvent, overlay: string): string {
  const seq = event.seq;
  let item = `{"type":${JSON.stringify(event.type)},"seq":${Number.isSafeInteger(seq) ? String(seq) : JSON.stringify(seq)}`;
  if (overlay !== "") item += `,"order":${overlay}`;
  if (event.trades !== undefined) item += `,"trades":${JSON.stringify(event.trades)}`;
  if (event.timestamp !== undefined) item += `,"timestamp":${JSON.stringify(event.timestamp)}`;
  return `${item}}`;
}

/** A RESULT with the events it stands for (their JSON, comma-joined); the snapshot serialized once. */
export function answerFrame(id: string, order: OrderSnapshot, events: string): string {
  const head = answerOpen(id, order);
  return events.length === 0 ? `${head}}` : `${head},"events":[${events}]}`;
}

/** A RESULT for `order` up to, not including, its closing brace. */
function answerOpen(id: string, order: OrderSnapshot): string {
  return `{"type":"RESULT","id":${JSON.stringify(id)},"result":${JSON.stringify(order)}`;
}
