import type { BrokerInterface } from "../brokers/interface";
import { BrokerError } from "../protocol/errors";
import type { OrderSnapshot } from "../protocol/orders";
import type { WireRequestOf } from "../protocol/wire";
import { WIRE_LIMITS } from "../protocol/wire";
import type { IdempotencyIndex } from "./idempotency-index";
import { orderHash } from "./idempotency-index";

/**
 * The gateway's order reads and writes that go beyond one broker call: idempotent placement on
 * client_order_id (in flight, then the durable index), lookups by client_order_id, and order-book
 * pages. Whatever a retry is told here, the first attempt was told too.
 */
export class Placements {
  readonly #broker: BrokerInterface;
  readonly #index: IdempotencyIndex;
  readonly #account: string;
  /** client_order_id → the placement in flight and its parameters' hash. */
  readonly #placing = new Map<string, { hash: string; placed: Promise<OrderSnapshot> }>();
  /** An order-book scan in progress, shared by the client_order_id lookups waiting on it. */
  #bookScan: Promise<Map<string, OrderSnapshot>> | undefined;
  /** The order book sorted by order_id, shared by the GET_ORDERBOOK pages asked for in one turn. */
  #sortedScan: Promise<OrderSnapshot[]> | undefined;

  constructor(broker: BrokerInterface, index: IdempotencyIndex, account: string) {
    this.#broker = broker;
    this.#index = index;
    this.#account = account;
  }

  /** Makes every id recorded so far durable (awaited before a PLACE_ORDER is answered). */
  flush(): Promise<void> {
    return this.#index.flush();
  }

  /** False when flush() would have nothing to wait for (no file, or all written). */
  get unflushed(): boolean {
    return this.#index.unflushed;
  }

  /**
   * Idempotent on client_order_id on top of the broker's own, for the whole trading day and across
   * restarts: a retry while the first placement is in flight gets that placement's answer; a later
   * one the original order as it is now. The answer waits until the id is durably indexed. A
   * retry with different parameters is refused with IDEMPOTENCY_MISMATCH.
   */
  async place(order: WireRequestOf<"PLACE_ORDER">["order"]): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    const hash = orderHash(order);
    const inFlight = this.#placing.get(clientOrderId);
    if (inFlight !== undefined) {
      if (inFlight.hash !== hash) throw mismatch(clientOrderId, "an order in flight");
      return inFlight.placed;
    }
    const known = this.#index.get(this.#account, clientOrderId);
    if (known !== undefined) {
      if (known.hash !== "" && known.hash !== hash) throw mismatch(clientOrderId, `order ${known.orderId}`);
      return this.#originalOrder(clientOrderId, known.orderId);
    }
    const placed = (async () => {
      const snapshot = await this.#broker.placeOrder(order);
      // Durable before the answer goes out: the gateway awaits flush() with the journal's.
      this.#index.record(this.#account, clientOrderId, snapshot.order_id, hash);
      return snapshot;
    })();
    const entry = { hash, placed };
    this.#placing.set(clientOrderId, entry);
    try {
      return await placed;
    } finally {
      // Placed: the index answers from now on. Failed: nothing was placed, a retry may try again.
      if (this.#placing.get(clientOrderId) === entry) this.#placing.delete(clientOrderId);
    }
  }

  async byClientOrderId(clientOrderId: string): Promise<OrderSnapshot> {
    const inFlight = this.#placing.get(clientOrderId);
    if (inFlight !== undefined) {
      const placed = await inFlight.placed.catch(() => undefined);
      if (placed !== undefined) return this.#broker.getOrder(placed.order_id);
    }
    const known = this.#index.get(this.#account, clientOrderId);
    if (known !== undefined) return this.#originalOrder(clientOrderId, known.orderId);
    const found = (await this.#scanBook()).get(clientOrderId);
    if (found === undefined)
      throw new BrokerError("NOT_FOUND", `no order with client_order_id ${clientOrderId}`);
    return found;
  }

  /** One page of the order book by order_id (docs/PROTOCOL.md, GET_ORDERBOOK). */
  async orderbookPage(limit: number | undefined, after: string | undefined): Promise<OrderSnapshot[]> {
    const book = await this.#sortedBook();
    let start = 0;
    if (after !== undefined) {
      let high = book.length;
      while (start < high) {
        const mid = (start + high) >>> 1;
        if ((book[mid]?.order_id ?? "") > after) high = mid;
        else start = mid + 1;
      }
    }
    const remaining = book.length - start;
    if (limit === undefined && remaining > WIRE_LIMITS.maxPage) {
      throw new BrokerError(
        "VALIDATION",
        `invalid GET_ORDERBOOK: limit: is required when more than ${WIRE_LIMITS.maxPage} orders would be answered (${remaining} would); page with limit and after`,
      );
    }
    return book.slice(start, start + (limit ?? WIRE_LIMITS.maxPage));
  }

  /** The order an id made; when the broker no longer holds it, PLACE_ORDER and GET_ORDER say so alike. */
  async #originalOrder(clientOrderId: string, orderId: string): Promise<OrderSnapshot> {
    try {
      return await this.#broker.getOrder(orderId);
    } catch (error) {
      if (error instanceof BrokerError && error.code === "NOT_FOUND") {
        throw new BrokerError(
          "DUPLICATE_ORDER",
          `client_order_id ${clientOrderId} was already used today for order ${orderId}, which the broker no longer holds; no new order was placed`,
        );
      }
      throw error;
    }
  }

  #sortedBook(): Promise<OrderSnapshot[]> {
    this.#sortedScan ??= this.#broker
      .getOrderbook()
      .then((book) => book.sort((a, b) => (a.order_id < b.order_id ? -1 : a.order_id > b.order_id ? 1 : 0)))
      .finally(() => {
        this.#sortedScan = undefined;
      });
    return this.#sortedScan;
  }

  /**
   * The order book indexed by client_order_id. Lookups that arrive while a scan is running share
   * it: after a restart every client settling lost placements asks at once, and a scan of the
   * whole book per lookup (O(book) each) would starve the gateway just when it is busiest.
   */
  #scanBook(): Promise<Map<string, OrderSnapshot>> {
    this.#bookScan ??= this.#broker
      .getOrderbook()
      .then((book) => new Map(book.map((order) => [order.client_order_id, order])))
      .finally(() => {
        this.#bookScan = undefined;
      });
    return this.#bookScan;
  }
}

function mismatch(clientOrderId: string, what: string): BrokerError {
  return new BrokerError(
    "IDEMPOTENCY_MISMATCH",
    `client_order_id ${clientOrderId} was already used for ${what} with different parameters; a retry must repeat the order exactly, a new order needs a new client_order_id`,
  );
}
