import type { AccountEvent } from "../protocol";
import type { OrderState } from "./account-state";
import { EventLog } from "./event-log";

/** The largest log kept for reuse: a burst of 30,000 operations with two events each. */
const SPARE_ENTRIES = 65_536;

/** Operations sharing one durable write: their events and answers, in the order they happened. */
interface Batch {
  events: EventLog;
  /** Each operation's result, in the order the operations were queued. */
  results: unknown[];
  /** The next result to hand out. */
  cursor: number;
  /** Settles once the batch is durable and announced (rejects if it cannot be). */
  done: Promise<void>;
  /**
   * The one reaction every caller's promise in the batch has on `done`: reactions to one promise
   * run in the order they were added, so the k-th call takes the k-th result.
   */
  deliver: () => unknown;
}

/**
 * Holds events back until what they announce is durable, then hands them on in order and answers
 * the operations. Operations that happen while a write is under way share the next one (group
 * commit), so a burst of orders costs one fsync, not one each. Per operation a batch keeps its
 * events, its result and the caller's promise, derived from the batch's own with one shared
 * reaction: no closure, resolving functions or context per operation, since thousands wait for
 * one fsync and everything they keep alive is copied by every scavenge.
 */
export class DurableAnnouncer {
  readonly #makeDurable: () => Promise<void>;
  readonly #announce: (event: AccountEvent) => void;
  /** What a caller is given for a result, once durable (built then, not held until then). */
  readonly #present: (result: unknown) => unknown;
  #open: Batch | undefined;
  /** Batches not announced yet, oldest first: the one being written and the open one. */
  readonly #waiting: Batch[] = [];
  #tail: Promise<void> = Promise.resolve();
  /**
   * An announced batch's log, emptied, for the next batch: a burst's log grows to megabytes by
   * doubling (allocated, zero-filled and copied each time); reusing it skips all that.
   */
  #spare: EventLog | undefined;

  constructor(
    makeDurable: () => Promise<void>,
    announce: (event: AccountEvent) => void,
    present: (result: unknown) => unknown = (result) => result,
  ) {
    this.#makeDurable = makeDurable;
    this.#announce = announce;
    this.#present = present;
  }

  /**
   * Queues an operation whose record is already appended: its events, then its result. Resolves
   * with present(result) once durable and announced; rejects if it cannot be made durable.
   */
  queue<T>(events: EventLog, result: T): Promise<T> {
    const batch = this.#open ?? this.#newBatch();
    batch.events.append(events);
    batch.results.push(result);
    return batch.done.then(batch.deliver) as Promise<T>;
  }

  #newBatch(): Batch {
    const created: Batch = {
      events: this.#spare ?? new EventLog(),
      results: [],
      cursor: 0,
      done: Promise.resolve(),
      deliver: () => {
        const i = created.cursor++;
        const result = created.results[i];
        created.results[i] = undefined;
        return this.#present(result);
      },
    };
    this.#spare = undefined;
    created.done = this.#tail.then(() => this.#run(created));
    this.#tail = created.done.catch(() => undefined);
    this.#open = created;
    this.#waiting.push(created);
    return created;
  }

  async #run(batch: Batch): Promise<void> {
    // From here on, new operations wait for the next write: this one may already be on its way.
    if (this.#open === batch) this.#open = undefined;
    try {
      await this.#makeDurable();
    } catch (error) {
      this.#waiting.shift();
      // Every caller's promise rejects with it, through `done`.
      throw error instanceof Error ? error : new Error(String(error));
    }
    this.#waiting.shift();
    // A listener that throws must not keep the events after it from the others.
    let failure: Error | undefined;
    const events = batch.events;
    for (let i = 0; i < events.length; i++) {
      try {
        this.#announce(events.at(i));
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    // Kept up to a bound: an outage's backlog is given back, not held for the process's life.
    if (events.capacity <= SPARE_ENTRIES) {
      events.clear();
      this.#spare = events;
    }
    // Then every caller's promise rejects with it, through `done`; otherwise each takes its result.
    if (failure !== undefined) throw failure;
  }

  /** Builds the order's events not announced yet now, as EventLog.built() (same seq, same place in line). */
  buildPending(order: OrderState): void {
    for (const batch of this.#waiting) batch.events.built(order);
  }

  /** Resolves when everything queued so far is announced (or has failed to become durable). */
  settled(): Promise<void> {
    return this.#open?.done.catch(() => undefined) ?? this.#tail;
  }
}
