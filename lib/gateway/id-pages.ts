import { BrokerError } from "../protocol/errors";
import { WIRE_LIMITS } from "../protocol/wire";

export interface IdPagesOptions<T> {
  /** Everything there is to list, in any order. */
  scan(): Promise<T[]>;
  idOf: (item: T) => string;
  /** The request type and what it lists, for the refusal: "GET_GTTS", "GTTs". */
  request: string;
  items: string;
  /**
   * How long one sorted scan answers later pages when nothing says the list changed. Default 1000:
   * long enough for a client reading 30 pages one after another, short enough that a change the
   * broker reports late (Kite's GTTs are polled) shows within a second.
   */
  maxAgeMs?: number;
  now?: () => number;
}

/**
 * A list answered in pages in id order (plain string comparison), as GET_ORDERBOOK is: the items
 * after `after`, at most `limit`. One sorted scan answers every page asked for until the list
 * changes (changed()) or it is maxAgeMs old: a scan of 30,000 GTTs costs the paper broker ~100 ms,
 * and a scan per page made reading them take 30 of those, during which the client's heartbeat
 * went unanswered.
 */
export class IdPages<T> {
  readonly #options: IdPagesOptions<T>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** The scan under way, or the last one while it is fresh. */
  #scan: Promise<T[]> | undefined;
  #scannedAt = 0;
  #drop: NodeJS.Timeout | undefined;
  #lastSize = 0;

  constructor(options: IdPagesOptions<T>) {
    this.#options = options;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
  }

  async page(limit: number | undefined, after: string | undefined): Promise<T[]> {
    const { idOf, request, items } = this.#options;
    const sorted = await this.#sorted();
    let start = 0;
    if (after !== undefined) {
      let high = sorted.length;
      while (start < high) {
        const mid = (start + high) >>> 1;
        const item = sorted[mid];
        if (item !== undefined && idOf(item) > after) high = mid;
        else start = mid + 1;
      }
    }
    const remaining = sorted.length - start;
    if (limit === undefined && remaining > WIRE_LIMITS.maxPage) {
      throw new BrokerError(
        "VALIDATION",
        `invalid ${request}: limit: is required when more than ${WIRE_LIMITS.maxPage} ${items} would be answered (${remaining} would); page with limit and after`,
      );
    }
    return sorted.slice(start, start + (limit ?? WIRE_LIMITS.maxPage));
  }

  /**
   * How many items the last scan found (0 before the first): what a page without `limit` may hold
   * now, as far as anything short of scanning again can tell. Kept after the scan is let go.
   */
  get lastSize(): number {
    return this.#lastSize;
  }

  /**
   * The list changed: the next page scans again. A scan already under way is not shared with
   * requests made from now on (it may have read the list before the change).
   */
  changed(): void {
    this.#forget();
  }

  #sorted(): Promise<T[]> {
    if (this.#scan !== undefined && this.#now() - this.#scannedAt <= this.#maxAgeMs) return this.#scan;
    this.#forget();
    const { idOf } = this.#options;
    const scan = this.#options.scan().then((list) => {
      this.#lastSize = list.length;
      return list
        .map((item) => ({ item, id: idOf(item) }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map(({ item }) => item);
    });
    this.#scan = scan;
    this.#scannedAt = this.#now();
    // A failed scan is not kept: the next page asks the broker again.
    scan.catch(() => {
      if (this.#scan === scan) this.#forget();
    });
    // Not held in memory past its age: 30,000 snapshots are megabytes.
    this.#drop = setTimeout(() => {
      if (this.#scan === scan) this.#forget();
    }, this.#maxAgeMs + 1);
    this.#drop.unref();
    return scan;
  }

  #forget(): void {
    this.#scan = undefined;
    if (this.#drop !== undefined) clearTimeout(this.#drop);
    this.#drop = undefined;
  }
}
