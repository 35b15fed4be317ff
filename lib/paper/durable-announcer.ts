/**
 * Holds events back until what they announce is durable, then hands them on in order. Operations
 * that happen while a write is under way share the next one (group commit), so a burst of orders
 * costs one fsync, not one each.
 */
export class DurableAnnouncer<E> {
  readonly #makeDurable: () => Promise<void>;
  readonly #announce: (event: E) => void;
  #open: { events: E[]; done: Promise<void> } | undefined;
  #tail: Promise<void> = Promise.resolve();

  constructor(makeDurable: () => Promise<void>, announce: (event: E) => void) {
    this.#makeDurable = makeDurable;
    this.#announce = announce;
  }

  /** Queues events whose record is already appended; resolves once they are durable and announced. */
  queue(events: readonly E[]): Promise<void> {
    let batch = this.#open;
    if (batch === undefined) {
      const created: { events: E[]; done: Promise<void> } = { events: [], done: Promise.resolve() };
      created.done = this.#tail.then(async () => {
        // From here on, new events wait for the next write: this one may already be on its way.
        if (this.#open === created) this.#open = undefined;
        await this.#makeDurable();
        // A listener that throws must not keep the events after it from the others.
        let failure: Error | undefined;
        for (const event of created.events) {
          try {
            this.#announce(event);
          } catch (error) {
            failure ??= error instanceof Error ? error : new Error(String(error));
          }
        }
        if (failure !== undefined) throw failure;
      });
      this.#tail = created.done.catch(() => undefined);
      this.#open = batch = created;
    }
    for (const event of events) batch.events.push(event);
    return batch.done;
  }

  /** Resolves when everything queued so far is announced (or has failed to become durable). */
  settled(): Promise<void> {
    return this.#open?.done.catch(() => undefined) ?? this.#tail;
  }
}
