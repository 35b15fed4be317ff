/**
 * The account's orders by order_id, iterated in insertion order (time priority): what a Map gives,
 * for the paper broker's own ids. Those are `P` and nine digits, handed out in increasing order and
 * inserted as they are made, so they sit in two arrays in that order and a lookup computes its slot.
 * A Map holding the retention window's 10,000 orders, with one inserted and the oldest deleted per
 * order, was the broker's largest self time (its hash table is rehashed every few thousand inserts
 * and misses the cache on each). Any other id, or one inserted out of order, moves the table to a
 * Map for good (until clear()), so the behaviour is the Map's whatever is inserted.
 */
export class OrderTable<V> {
  /**
   * A ring of slots (a power of two, doubled when full): numeric ids, increasing from the head, and
   * their values. A deleted entry keeps its id until compaction, its value is undefined. A ring,
   * not arrays with a moving head: those were copied every few thousand deletions and regrown after
   * (old-space garbage per order); at a steady retention the ring is reused as it is.
   */
  #ids = new Float64Array(INITIAL);
  #values: (V | undefined)[] = slots(INITIAL);
  /** The slot of the first entry, which is live whenever #length > 0. */
  #head = 0;
  /** Entries from the head, deleted ones included. */
  #length = 0;
  #size = 0;
  /** Deleted entries among the #length. */
  #holes = 0;
  #map: Map<string, V> | undefined;

  get size(): number {
    return this.#map === undefined ? this.#size : this.#map.size;
  }

  get(id: string): V | undefined {
    if (this.#map !== undefined) return this.#map.get(id);
    const slot = this.#slot(id);
    return slot < 0 ? undefined : this.#values[slot];
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  set(id: string, value: V): this {
    if (this.#map !== undefined) {
      this.#map.set(id, value);
      return this;
    }
    const n = numericId(id);
    const length = this.#length;
    if (n >= 0 && (length === 0 || n > this.#ids[(this.#head + length - 1) & (this.#values.length - 1)]!)) {
      // Full: doubled, or compacted when holes make room (#length is then smaller).
      if (length === this.#values.length) this.#resize(length * 2);
      const at = (this.#head + this.#length) & (this.#values.length - 1);
      this.#ids[at] = n;
      this.#values[at] = value;
      this.#length++;
      this.#size++;
      return this;
    }
    const slot = n < 0 ? -1 : this.#slot(id);
    if (slot >= 0 && this.#values[slot] !== undefined) {
      // An existing key keeps its place, as in a Map.
      this.#values[slot] = value;
      return this;
    }
    // A new key that does not sort last (or is not one of ours): a Map keeps the order from here.
    this.#toMap().set(id, value);
    return this;
  }

  delete(id: string): boolean {
    if (this.#map !== undefined) return this.#map.delete(id);
    const slot = this.#slot(id);
    if (slot < 0 || this.#values[slot] === undefined) return false;
    const values = this.#values;
    const mask = values.length - 1;
    values[slot] = undefined;
    this.#size--;
    this.#holes++;
    while (this.#length > 0 && values[this.#head] === undefined) {
      this.#head = (this.#head + 1) & mask;
      this.#length--;
      this.#holes--;
    }
    if (this.#holes > 1024 && this.#holes > this.#size) this.#resize(values.length);
    return true;
  }

  clear(): void {
    this.#ids = new Float64Array(INITIAL);
    this.#values = slots(INITIAL);
    this.#head = 0;
    this.#length = 0;
    this.#size = 0;
    this.#holes = 0;
    this.#map = undefined;
  }

  /** The values in insertion order, as they are now (later changes do not show in it). */
  values(): IterableIterator<V> {
    if (this.#map !== undefined) return this.#map.values();
    const out: V[] = [];
    const values = this.#values;
    const mask = values.length - 1;
    for (let i = 0; i < this.#length; i++) {
      const value = values[(this.#head + i) & mask];
      if (value !== undefined) out.push(value);
    }
    return out.values();
  }

  /** The slot of an id present or deleted-but-not-compacted; -1 when there is none. */
  #slot(id: string): number {
    const n = numericId(id);
    const length = this.#length;
    if (n < 0 || length === 0) return -1;
    const ids = this.#ids;
    const head = this.#head;
    const mask = this.#values.length - 1;
    // Ids are usually consecutive: the slot is the distance from the first.
    const k = n - ids[head]!;
    if (k >= 0 && k < length) {
      const guess = (head + k) & mask;
      if (ids[guess] === n) return guess;
    }
    let low = 0;
    let high = length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = (head + mid) & mask;
      const found = ids[at]!;
      if (found === n) return at;
      if (found < n) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  /**
   * The live entries copied, in order from slot 0, into `capacity` slots (a power of two): doubled
   * when full, the same when compacting holes away, halved when mostly empty.
   */
  #resize(capacity: number): void {
    const live = this.#size;
    while (capacity > INITIAL && live * 4 < capacity) capacity /= 2;
    const ids = new Float64Array(capacity);
    const values = slots<V>(capacity);
    const mask = this.#values.length - 1;
    let to = 0;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      const value = this.#values[at];
      if (value === undefined) continue;
      ids[to] = this.#ids[at]!;
      values[to] = value;
      to++;
    }
    this.#ids = ids;
    this.#values = values;
    this.#head = 0;
    this.#length = to;
    this.#holes = 0;
  }

  #toMap(): Map<string, V> {
    const map = new Map<string, V>();
    const mask = this.#values.length - 1;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      const value = this.#values[at];
      if (value !== undefined) map.set(idOf(this.#ids[at]!), value);
    }
    this.clear();
    this.#map = map;
    return map;
  }
}

/** Slots a table starts with. */
const INITIAL = 16;

/** `count` empty slots, packed so V8 keeps them as one flat store. */
function slots<T>(count: number): (T | undefined)[] {
  return new Array<T | undefined>(count).fill(undefined);
}

/** The number in a `P` + nine digits id; -1 for any other string. */
function numericId(id: string): number {
  if (id.length !== 10 || id.charCodeAt(0) !== 0x50) return -1;
  let n = 0;
  for (let i = 1; i < 10; i++) {
    const digit = id.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

function idOf(n: number): string {
  return `P${String(n).padStart(9, "0")}`;
}
