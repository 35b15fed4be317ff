import { WebSocket } from "ws";
import type { BrokerLogger } from "../brokers/logger";
import type { AccountEvent } from "../protocol/events";
import type { ResumeResult } from "../protocol/wire";
import type { Client, Outgoing } from "./client";
import { describe } from "./frames";
import type { BufferedEvent } from "./replay-buffer";
import { ReplayBuffer } from "./replay-buffer";

/**
 * What the gateway sends unasked: account events to every authenticated connection (and held for
 * RESUME) and quotes to their subscribers, gathered per tick into array frames. An account event
 * goes out only once `durable` has run, so no client hears of a change a kill -9 could take back.
 */
export class Pushes {
  readonly #clients: ReadonlySet<Client>;
  readonly #durable: (() => Promise<void>) | undefined;
  readonly #log: BrokerLogger;
  readonly #replay: ReplayBuffer;
  #flushing: NodeJS.Immediate | undefined;
  readonly #dirty = new Set<Client>();
  /** The last event seq made durable, held for RESUME and pushed: what AUTH, PING and RESUME report. */
  #pushedSeq: number;
  /** Account events emitted since the last flush, waiting for `durable`. */
  #unflushed: BufferedEvent[] = [];
  #publishing: Promise<void> = Promise.resolve();

  constructor(options: {
    clients: ReadonlySet<Client>;
    durable: (() => Promise<void>) | undefined;
    log: BrokerLogger;
    replayBuffer: number;
  }) {
    this.#clients = options.clients;
    this.#durable = options.durable;
    this.#log = options.log;
    this.#replay = new ReplayBuffer(options.replayBuffer);
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
    this.#unflushed.push({ seq: event.seq, frame: JSON.stringify({ type: "EVENT", event }) });
    this.#flushing ??= setImmediate(this.#flush);
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
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    this.#dirty.clear();
  }

  /** Sends the held events after fromSeq now (before the RESULT), and says whether any are missing. */
  resume(client: Client, fromSeq: number): ResumeResult {
    const seq = this.seq;
    const events = this.#replay.after(fromSeq);
    client.sendChunked(events.map((event) => event.frame));
    const last = events[events.length - 1];
    if (last !== undefined && last.seq > client.sentSeq) client.sentSeq = last.seq;
    // A client ahead of the server (a wiped account, another server) must reconcile as well.
    const gap = fromSeq > seq || (fromSeq < seq && !this.#replay.has(fromSeq + 1));
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
        this.#log.error(`gateway: journal flush failed before pushing events: ${describe(error)}`);
        publish();
      })
      .catch((error: unknown) => this.#log.error(`gateway: pushing events failed: ${describe(error)}`));
  };

  /** Events now durable: held for RESUME and sent to every authenticated connection. */
  #publishEvents(events: BufferedEvent[]): void {
    if (events.length === 0) return;
    for (const item of events) {
      this.#replay.push(item);
      if (item.seq > this.#pushedSeq) this.#pushedSeq = item.seq;
    }
    for (const client of this.#clients) {
      if (!client.authenticated || client.closeCode !== undefined) continue;
      const frames: string[] = [];
      for (const item of events) {
        if (item.seq <= client.sentSeq) continue;
        client.sentSeq = item.seq;
        frames.push(item.frame);
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
