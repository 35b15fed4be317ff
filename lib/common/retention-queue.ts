/**
 * Ids of ended orders and GTTs, oldest first, bounded by the retention setting. An array with a
 * moving head, not a Map: V8's ordered maps keep deleted slots until they rehash, so taking the
 * oldest key of a Map that is deleted from the front gets slower with every deletion.
 */
export class RetentionQueue<K extends string> {
  #ids: string[] = [];
  #kinds: K[] = [];
  #head = 0;

  get size(): number {
    return this.#ids.length - this.#head;
  }

  push(id: string, kind: K): void {
    this.#ids.push(id);
    this.#kinds.push(kind);
  }

  /** Removes the oldest entries beyond `limit`, handing each to `evict`. */
  trim(limit: number, evict: (id: string, kind: K) => void): void {
    while (this.size > limit) {
      const id = this.#ids[this.#head] as string;
      const kind = this.#kinds[this.#head] as K;
      this.#head += 1;
      evict(id, kind);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#kinds = this.#kinds.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Oldest first, as trim() would take them. */
  forEach(visit: (id: string, kind: K) => void): void {
    for (let i = this.#head; i < this.#ids.length; i++) visit(this.#ids[i] as string, this.#kinds[i] as K);
  }

  clear(): void {
    this.#ids = [];
    this.#kinds = [];
    this.#head = 0;
  }
}
