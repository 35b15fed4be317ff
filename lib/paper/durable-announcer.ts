/** Operations sharing one durable write: their events and answers, in the order they happened. */
interface Batch<E> {
  events: E[];
  /** Each operation's result and the resolve of the promise its caller holds. */
  results: unknown[];
  resolves: ((value: unknown) => void)[];
  done: Promise<void>;
}

/**
 * Holds events back until what they announce is durable, then hands them on in order and answers
 * the operations. Operations that happen while a write is under way share the next one (group
 * commit), so a burst of orders costs one fsync, not one each. Per operation a batch keeps its
 * events, its result and one resolve: no closure or promise chain per operation, since thousands
 * wait for one fsync and everything they keep alive is copied by every scavenge.
 */
export class DurableAnnouncer<E> {
  readonly #makeDurable: () => Promise<void>;
  readonly #announce: (event: E) => void;
  /** What a caller is given for a result, once durable (built then, not held until then). */
  readonly #present: (result: unknown) => unknown;
  #open: Batch<E> | undefined;
  /** Batches not announced yet, oldest first: the one being written and the open one. */
  readonly #waiting: Batch<E>[] = [];
  #tail: Promise<void> = Promise.resolve();
  /** Shared by every operation's promise: puts its resolve into the open batch. */
  readonly #capture = (resolve: (value: unknown) => void): void => {
    this.#open?.resolves.push(resolve);
  };

  constructor(
    makeDurable: () => Promise<void>,
    announce: (event: E) => void,
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
  queue<T>(events: readonly E[], result: T): Promise<T> {
    const batch = this.#open ?? this.#newBatch();
    for (const event of events) batch.events.push(event);
    batch.results.push(result);
    return new Promise(this.#capture as (resolve: (value: T) => void) => void);
  }

  #newBatch(): Batch<E> {
    const created: Batch<E> = { events: [], results: [], resolves: [], done: Promise.resolve() };
    created.done = this.#tail.then(() => this.#run(created));
    this.#tail = created.done.catch(() => undefined);
    this.#open = created;
    this.#waiting.push(created);
    return created;
  }

  async #run(batch: Batch<E>): Promise<void> {
    // From here on, new operations wait for the next write: this one may already be on its way.
    if (this.#open === batch) this.#open = undefined;
    try {
      await this.#makeDurable();
    } catch (error) {
      this.#waiting.shift();
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const resolve of batch.resolves) resolve(Promise.reject(failure));
      throw failure;
    }
    this.#waiting.shift();
    // A listener that throws must not keep the events after it from the others.
    let failure: Error | undefined;
    for (const event of batch.events) {
      try {
        this.#announce(event);
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    const { results, resolves } = batch;
    for (let i = 0; i < resolves.length; i++) {
      if (failure !== undefined) resolves[i]!(Promise.reject(failure));
      else resolves[i]!(this.#present(results[i]));
    }
    if (failure !== undefined) throw failure;
  }

  /** Replaces events not announced yet by `replace(event)` (same seq, same place in line). */
  rewritePending(replace: (event: E) => E): void {
    for (const batch of this.#waiting) {
      const events = batch.events;
      for (let i = 0; i < events.length; i++) events[i] = replace(events[i]!);
    }
  }

  /** Resolves when everything queued so far is announced (or has failed to become durable). */
  settled(): Promise<void> {
    return this.#open?.done.catch(() => undefined) ?? this.#tail;
  }
}
