/** Slots a queue starts with; it doubles when full. */
const INITIAL = 16;

/**
 * Ids of ended orders and GTTs, oldest first, bounded by the retention setting. A ring, not a Map
 * or a growing array: V8's ordered maps keep deleted slots until they rehash, and an array with a
 * moving head had to be copied (sliced) every few thousand ends, and regrown after, all of it old
 * space garbage. The ring doubles while it fills and is then reused as it is: at a steady
 * retention, ending an order allocates nothing.
 */
export class RetentionQueue<K extends string> {
  #ids: (string | undefined)[] = slots(INITIAL);
  #kinds: (K | undefined)[] = slots(INITIAL);
  /** The slot of the oldest entry. */
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(id: string, kind: K): void {
    if (this.#size === this.#ids.length) this.#grow();
    const at = (this.#head + this.#size) & (this.#ids.length - 1);
    this.#ids[at] = id;
    this.#kinds[at] = kind;
    this.#size++;
  }

  /** Removes the oldest entries beyond `limit`, handing each to `evict`. */
  trim(limit: number, evict: (id: string, kind: K) => void): void {
    const mask = this.#ids.length - 1;
    while (this.#size > limit) {
      const at = this.#head;
      const id = this.#ids[at] as string;
      const kind = this.#kinds[at] as K;
      // Taken out before evict() runs, so the slot holds nothing and an evict that pushes is safe.
      this.#ids[at] = undefined;
      this.#kinds[at] = undefined;
      this.#head = (at + 1) & mask;
      this.#size--;
      evict(id, kind);
    }
    // A burst's backlog is given back once trimmed, not held for the process's life.
    const capacity = this.#ids.length;
    if (capacity > 4096 && this.#size * 4 < capacity) this.#resize(capacity / 2);
  }

  /** Oldest first, as trim() would take them. */
  forEach(visit: (id: string, kind: K) => void): void {
    const mask = this.#ids.length - 1;
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#head + i) & mask;
      visit(this.#ids[at] as string, this.#kinds[at] as K);
    }
  }

  clear(): void {
    this.#ids = slots(INITIAL);
    this.#kinds = slots(INITIAL);
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    this.#resize(this.#ids.length * 2);
  }

  /** `capacity` slots (a power of two, at least the size), the entries copied oldest first from slot 0. */
  #resize(capacity: number): void {
    const mask = this.#ids.length - 1;
    const ids = slots<string>(capacity);
    const kinds = slots<K>(capacity);
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#head + i) & mask;
      ids[i] = this.#ids[at];
      kinds[i] = this.#kinds[at];
    }
    this.#ids = ids;
    this.#kinds = kinds;
    this.#head = 0;
  }
}

/** `count` empty slots (a power of two), packed so V8 keeps them as one flat store. */
function slots<T>(count: number): (T | undefined)[] {
  return new Array<T | undefined>(count).fill(undefined);
}
