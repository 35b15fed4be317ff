import type { AccountEvent, OrderEvent, OrderEventType, OrderStatus } from "../protocol";
import { OrderEventType as OrderEventTypes } from "../protocol/events";
import { OrderStatus as OrderStatuses } from "../protocol/orders";
import type { OrderState } from "./account-state";
import type { Paise } from "./money";
import { toRupees } from "./money";
import { orderView } from "./views";

const TYPES: readonly OrderEventType[] = OrderEventTypes.options;
const STATUSES: readonly OrderStatus[] = OrderStatuses.options;
const TYPE_CODE = new Map(TYPES.map((type, code) => [type, code]));
const STATUS_CODE = new Map(STATUSES.map((status, code) => [status, code]));

/** Numbers kept per deferred entry: type code, status code, seq, fills. */
const WIDTH = 7;
const TYPE = 0;
const STATUS = 1;
const SEQ = 2;
const FILLED = 3;
const AVERAGE = 4;
const FILL_QUANTITY = 5;
const FILL_PRICE = 6;

/**
 * An operation's or a batch's account events, in the order they happened, until they are
 * announced. Order events noted while the journal's fsync is pending are not built yet: such an
 * entry keeps the live order, the timestamp and, in one typed array, the few fields that move after
 * the event (status, fills; a status message in a side table, as few events have one). With
 * thousands of orders waiting for one fsync, what each keeps alive on the JS heap is copied by every
 * scavenge and then promoted: two pointers per event here, against an event object of ten fields
 * (or a view, a trades array and a trade). The event the flow sees is built when it goes out. The
 * order's other fields change only in a modify, which builds the order's waiting events first
 * (built()).
 */
export class EventLog {
  /** Per entry: the order of a deferred order event, or the event itself. */
  #items: (OrderState | AccountEvent)[] = [];
  /**
   * Per entry: a deferred event's timestamp (one string shared by an operation's events); undefined
   * marks an entry that is a built event, whose numbers are not used.
   */
  #timestamps: (string | undefined)[] = [];
  #numbers = new Float64Array(WIDTH * 16);
  /** status_message as it was at the entry, for the few deferred events when it was set. */
  #messages: Map<number, string> | undefined;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Entries it holds without growing. */
  get capacity(): number {
    return this.#numbers.length / WIDTH;
  }

  /** An event as it is (GTT events, order events without a journal): two array pushes, nothing else. */
  push(event: AccountEvent): void {
    this.#items.push(event);
    this.#timestamps.push(undefined);
    this.#length++;
  }

  /**
   * An order event built later, as it would be built now: the order's status, fills and message
   * are noted; `fillQuantity` > 0 is the fill it reports, at `fillPrice` paise.
   */
  defer(
    type: OrderEventType,
    seq: number,
    order: OrderState,
    timestamp: string,
    fillQuantity: number,
    fillPrice: Paise,
  ): void {
    const at = this.#reserve();
    this.#items.push(order);
    this.#timestamps.push(timestamp);
    const numbers = this.#numbers;
    const base = at * WIDTH;
    numbers[base + TYPE] = TYPE_CODE.get(type)!;
    numbers[base + STATUS] = STATUS_CODE.get(order.status)!;
    numbers[base + SEQ] = seq;
    numbers[base + FILLED] = order.filled_quantity;
    numbers[base + AVERAGE] = order.average_price;
    numbers[base + FILL_QUANTITY] = fillQuantity;
    numbers[base + FILL_PRICE] = fillPrice;
    if (order.status_message !== undefined) (this.#messages ??= new Map()).set(at, order.status_message);
  }

  /** Entry `i` as the flow sees it (built now when it was deferred). */
  at(i: number): AccountEvent {
    const item = this.#items[i]!;
    const timestamp = this.#timestamps[i];
    if (timestamp === undefined) return item as AccountEvent;
    const order = item as OrderState;
    const base = i * WIDTH;
    const numbers = this.#numbers;
    const view = orderView(order);
    view.status = STATUSES[numbers[base + STATUS]!]!;
    view.filled_quantity = numbers[base + FILLED]!;
    view.average_price = numbers[base + AVERAGE]!;
    view.timestamp = timestamp;
    const message = this.#messages?.get(i);
    // Only when it differs (a later cancel set one), so the view keeps orderView's key order.
    if (view.status_message !== message) {
      if (message === undefined) delete view.status_message;
      else view.status_message = message;
    }
    const event: OrderEvent = {
      type: TYPES[numbers[base + TYPE]!]!,
      seq: numbers[base + SEQ]!,
      order: view,
      timestamp,
    };
    const fillQuantity = numbers[base + FILL_QUANTITY]!;
    if (fillQuantity > 0) {
      // The id names the order and its filled quantity after this fill (see MatchingEngine.#fill).
      event.trades = [
        {
          trade_id: `${view.order_id}-${view.filled_quantity}`,
          quantity: fillQuantity,
          price: toRupees(numbers[base + FILL_PRICE]!),
          timestamp,
        },
      ];
    }
    return event;
  }

  /** Adds `other`'s entries after these, as they are (deferred ones stay deferred). */
  append(other: EventLog): void {
    const count = other.#length;
    if (count === 0) return;
    const from = this.#length;
    this.#reserve(count);
    // A loop, not set(subarray()): an operation has a few entries, and a subarray is an object each.
    const numbers = this.#numbers;
    const source = other.#numbers;
    for (let i = 0, to = from * WIDTH; i < count * WIDTH; i++) numbers[to + i] = source[i]!;
    for (let i = 0; i < count; i++) {
      this.#items.push(other.#items[i]!);
      this.#timestamps.push(other.#timestamps[i]);
    }
    if (other.#messages !== undefined) {
      for (const [i, message] of other.#messages) (this.#messages ??= new Map()).set(from + i, message);
    }
  }

  /** Builds the deferred events of `order` now: a modify is about to change the fields they show. */
  built(order: OrderState): void {
    for (let i = 0; i < this.#length; i++) {
      if (this.#items[i] !== order || this.#timestamps[i] === undefined) continue;
      this.#items[i] = this.at(i);
      this.#timestamps[i] = undefined;
    }
  }

  /**
   * Empties the log and keeps its storage for the next operation. pop(), not `length = 0`: V8
   * lets an array's store go when it is set to length 0, and the next push would allocate again.
   */
  clear(): void {
    const items = this.#items;
    const timestamps = this.#timestamps;
    while (items.length > 0) items.pop();
    while (timestamps.length > 0) timestamps.pop();
    this.#messages = undefined;
    this.#length = 0;
  }

  /** Room for `count` more entries; the index of the first. */
  #reserve(count = 1): number {
    const at = this.#length;
    const needed = (at + count) * WIDTH;
    if (needed > this.#numbers.length) {
      const bigger = new Float64Array(Math.max(this.#numbers.length * 2, needed));
      bigger.set(this.#numbers.subarray(0, at * WIDTH));
      this.#numbers = bigger;
    }
    this.#length = at + count;
    return at;
  }
}
