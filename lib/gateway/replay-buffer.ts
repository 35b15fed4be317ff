/** One account event as the gateway keeps it: its seq and its EVENT message, serialized once. */
export interface BufferedEvent {
  seq: number;
  frame: string;
}

/**
 * The last `capacity` account events in seq order (a ring), for RESUME. Appends are O(1); finding
 * where a replay starts is a binary search.
 */
export class ReplayBuffer<T extends { readonly seq: number } = BufferedEvent> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  /** Index of the oldest item. */
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`replay buffer capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** The oldest seq still held, or undefined when empty. */
  get oldestSeq(): number | undefined {
    return this.#at(0)?.seq;
  }

  get newestSeq(): number | undefined {
    return this.#size === 0 ? undefined : this.#at(this.#size - 1)?.seq;
  }

  push(item: T): void {
    const newest = this.newestSeq;
    // A broker that re-emits an old seq (it should not) must not break the buffer's order.
    if (newest !== undefined && item.seq <= newest) return;
    if (this.#size < this.capacity) {
      this.#items[(this.#head + this.#size) % this.capacity] = item;
      this.#size++;
    } else {
      this.#items[this.#head] = item;
      this.#head = (this.#head + 1) % this.capacity;
    }
  }

  /** Every held event with seq > fromSeq, oldest first. */
  after(fromSeq: number): T[] {
    const found: T[] = [];
    for (let i = this.#firstAfter(fromSeq); i < this.#size; i++) {
      const item = this.#at(i);
      if (item !== undefined) found.push(item);
    }
    return found;
  }

  /** True when seq is held (so a replay from seq - 1 is complete). */
  has(seq: number): boolean {
    return this.#at(this.#firstAfter(seq - 1))?.seq === seq;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  /** Index of the first held event with seq > fromSeq (size when there is none). */
  #firstAfter(fromSeq: number): number {
    let low = 0;
    let high = this.#size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#at(mid)?.seq ?? Infinity) > fromSeq) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  #at(index: number): T | undefined {
    if (index < 0 || index >= this.#size) return undefined;
    return this.#items[(this.#head + index) % this.capacity];
  }
}
