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
  /** Numeric ids, increasing; a deleted entry keeps its id until compaction, its value is undefined. */
  #ids: number[] = [];
  #values: (V | undefined)[] = [];
  /** The first slot that may hold a value. */
  #head = 0;
  #size = 0;
  /** Deleted slots at or after the head. */
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
    const ids = this.#ids;
    const last = ids.length - 1;
    if (n >= 0 && (last < this.#head || n > ids[last]!)) {
      ids.push(n);
      this.#values.push(value);
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
    values[slot] = undefined;
    this.#size--;
    this.#holes++;
    while (this.#head < values.length && values[this.#head] === undefined) {
      this.#head++;
      this.#holes--;
    }
    if (this.#head > 1024 && this.#head * 2 > values.length) this.#compact();
    else if (this.#holes > 1024 && this.#holes > this.#size) this.#compact();
    return true;
  }

  clear(): void {
    this.#ids = [];
    this.#values = [];
    this.#head = 0;
    this.#size = 0;
    this.#holes = 0;
    this.#map = undefined;
  }

  /** The values in insertion order, as they are now (later changes do not show in it). */
  values(): IterableIterator<V> {
    if (this.#map !== undefined) return this.#map.values();
    const out: V[] = [];
    const values = this.#values;
    for (let i = this.#head; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) out.push(value);
    }
    return out.values();
  }

  /** The slot of an id present or deleted-but-not-compacted; -1 when there is none. */
  #slot(id: string): number {
    const n = numericId(id);
    if (n < 0) return -1;
    const ids = this.#ids;
    const head = this.#head;
    if (head >= ids.length) return -1;
    // Ids are usually consecutive: the slot is the distance from the first.
    const guess = head + (n - ids[head]!);
    if (guess >= head && guess < ids.length && ids[guess] === n) return guess;
    let low = head;
    let high = ids.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = ids[mid]!;
      if (at === n) return mid;
      if (at < n) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  #compact(): void {
    const ids: number[] = [];
    const values: (V | undefined)[] = [];
    for (let i = this.#head; i < this.#values.length; i++) {
      const value = this.#values[i];
      if (value === undefined) continue;
      ids.push(this.#ids[i]!);
      values.push(value);
    }
    this.#ids = ids;
    this.#values = values;
    this.#head = 0;
    this.#holes = 0;
  }

  #toMap(): Map<string, V> {
    const map = new Map<string, V>();
    for (let i = this.#head; i < this.#values.length; i++) {
      const value = this.#values[i];
      if (value !== undefined) map.set(idOf(this.#ids[i]!), value);
    }
    this.#map = map;
    this.#ids = [];
    this.#values = [];
    this.#head = 0;
    this.#size = 0;
    this.#holes = 0;
    return map;
  }
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
