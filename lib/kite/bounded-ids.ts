/**
 * Ids kept for the trading day, oldest dropped first past `cap`: a memory that outlives order
 * retention without growing with it. Kite takes at most 5,000 orders a day per api key, so a cap
 * of 10,000 drops nothing on a real day; past it the oldest go first.
 */
export class BoundedIds<V> {
  readonly #entries = new Map<string, V>();
  readonly #cap: number;
  #dropped = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  /** How many ids were dropped past the cap: once any was, a missing id proves nothing. */
  get dropped(): number {
    return this.#dropped;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): V | undefined {
    return this.#entries.get(id);
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  set(id: string, value: V): void {
    // Set again, it counts as new: it is dropped last.
    this.#entries.delete(id);
    this.#entries.set(id, value);
    while (this.#entries.size > this.#cap) {
      this.#entries.delete(this.#entries.keys().next().value as string);
      this.#dropped++;
    }
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }
}

/** Kite's daily order limit per api key (5,000) with room to spare. */
export const DAY_IDS_CAP = 10_000;
