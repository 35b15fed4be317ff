import type { BrokerInterface } from "../brokers/interface";
import { BrokerError } from "../protocol/errors";
import type { OrderSnapshot } from "../protocol/orders";
import type { WireRequestOf } from "../protocol/wire";
import { IdPages } from "./id-pages";
import type { IdempotencyEntry, IdempotencyIndex } from "./idempotency-index";
import { orderHash } from "./idempotency-index";

type PlaceRequest = WireRequestOf<"PLACE_ORDER">["order"];

/** A placement this gateway started and has not yet handed to the index. */
interface Placing {
  readonly order: PlaceRequest;
  /** The parameters' hash, computed when first compared (in memory: after the answer is written). */
  hash: string | undefined;
  placed: Promise<OrderSnapshot>;
  /** Set once the broker has placed it in memory: the index hears of it at the end of the turn. */
  orderId: string | undefined;
}

/**
 * The gateway's order reads and writes that go beyond one broker call: idempotent placement on
 * client_order_id (in flight, then the durable index), lookups by client_order_id, and order-book
 * pages. Whatever a retry is told here, the first attempt was told too.
 */
export class Placements {
  readonly #broker: BrokerInterface;
  readonly #index: IdempotencyIndex;
  readonly #account: string;
  /** client_order_id → the placement in flight, or placed in memory and waiting for #recordPlaced. */
  readonly #placing = new Map<string, Placing>();
  /** Placed in memory this turn: their hashes and index entries are made once the answers are out. */
  #toRecord: Placing[] = [];
  #recordSoon: NodeJS.Immediate | undefined;
  /** The highest order_id given back so far (or known at start): an order placed later has a higher one. */
  #after = "";
  /** An order-book scan in progress, shared by the client_order_id lookups waiting on it. */
  #bookScan: Promise<Map<string, OrderSnapshot>> | undefined;
  /**
   * GET_ORDERBOOK pages, answered from one sorted scan until the book changes (bookChanged()): a
   * sort per page made reading a book of n orders in pages of p cost (n/p) · n log n.
   */
  readonly #pages: IdPages<OrderSnapshot>;

  constructor(broker: BrokerInterface, index: IdempotencyIndex, account: string) {
    this.#broker = broker;
    this.#index = index;
    this.#account = account;
    this.#pages = new IdPages({
      scan: () => broker.getOrderbook(),
      idOf: (order) => order.order_id,
      request: "GET_ORDERBOOK",
      items: "orders",
    });
  }

  /** An order changed (an event, or a request that may have changed one): the next page reads the book again. */
  bookChanged(): void {
    this.#pages.changed();
  }

  /**
   * Before the gateway serves: learns the ids of the orders the broker holds (a crash may have
   * cut the index's write short) and settles every intent a stop left open. An intent whose order
   * is in the book is completed. One whose order is not was either never taken by the broker, or
   * taken and since forgotten (past its retention): the broker tells them apart when it can say
   * that it still holds every order made after the intent's `after`; otherwise the id is refused
   * with IDEMPOTENCY_UNKNOWN, since a second order is worse than a refused retry.
   */
  async recover(): Promise<void> {
    const book = await this.#broker.getOrderbook();
    const byClientId = new Map<string, OrderSnapshot>();
    let highest = "";
    for (const order of book) {
      this.#index.seed(this.#account, order.client_order_id, order.order_id, Date.parse(order.placed_at));
      byClientId.set(order.client_order_id, order);
      if (order.order_id > highest) highest = order.order_id;
    }
    const forgotten = await this.#lastForgotten();
    // Any order placed from now on gets a higher id than every one made so far.
    if (forgotten !== undefined && forgotten > highest) highest = forgotten;
    this.#after = highest;
    const intents = this.#index.intents(this.#account);
    if (intents.length === 0) return;
    for (const intent of intents) {
      const found = byClientId.get(intent.clientOrderId);
      if (found !== undefined) {
        this.#index.record(this.#account, intent.clientOrderId, found.order_id, intent.hash, intent.day);
      } else if (forgotten !== undefined && forgotten <= intent.after) {
        this.#index.abandon(this.#account, intent.clientOrderId);
      } else {
        this.#index.markUnknown(this.#account, intent.clientOrderId);
      }
    }
    await this.#index.flush();
  }

  /** The broker's newest forgotten order id, when it can say ("" = none); undefined when it cannot. */
  async #lastForgotten(): Promise<string | undefined> {
    const broker = this.#broker;
    if (broker.lastForgottenOrderId === undefined) return undefined;
    return broker.lastForgottenOrderId();
  }

  /**
   * Idempotent on client_order_id on top of the broker's own, for the whole trading day and across
   * restarts: a retry while the first placement is in flight gets that placement's answer; a later
   * one the original order as it is now. The answer waits until the id is durably indexed. A
   * retry with different parameters is refused with IDEMPOTENCY_MISMATCH.
   */
  place(order: PlaceRequest): Promise<OrderSnapshot> {
    try {
      const clientOrderId = order.client_order_id;
      const inFlight = this.#placing.get(clientOrderId);
      if (inFlight !== undefined) {
        if (hashOf(inFlight) !== orderHash(order)) throw mismatch(clientOrderId, "an order in flight");
        // Placed, its index entry waiting for the end of the turn: answered as the index answers.
        if (inFlight.orderId !== undefined) return this.#originalOrder(clientOrderId, inFlight.orderId);
        return inFlight.placed;
      }
      const known = this.#index.get(this.#account, clientOrderId);
      if (known !== undefined) return this.#repeat(order, known);
      if (this.#index.unknown(this.#account, clientOrderId)) throw unknownOutcome(clientOrderId);
      return this.#index.durable ? this.#placeDurablyOnce(order) : this.#placeInMemory(order);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** A retry of an id the index holds: the original order, if the parameters are the same. */
  async #repeat(order: PlaceRequest, known: IdempotencyEntry): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    if (known.hash !== "" && known.hash !== orderHash(order)) {
      throw mismatch(clientOrderId, `order ${known.orderId}`);
    }
    // What this answer repeats must be as durable as the first answer was.
    await this.#durablyIndexed(clientOrderId, known.orderId);
    return this.#originalOrder(clientOrderId, known.orderId, known.day);
  }

  /**
   * Waits until the index line naming orderId is on disk; a fault there is the not-durable
   * answer. An order reported by client_order_id is one a retry after a crash will name too:
   * reported from memory while the index could not write (a failing fsync), a crash and the
   * broker's retention could leave the id free and the retry place a second order.
   */
  async #durablyIndexed(clientOrderId: string, orderId: string): Promise<void> {
    if (!this.#index.unflushed) return;
    await this.#index.flush().catch((error: unknown) => {
      throw notDurable(clientOrderId, orderId, error);
    });
  }

  async #placeDurablyOnce(order: PlaceRequest): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    const hash = orderHash(order);
    const entry: Placing = { order, hash, placed: this.#placeDurably(order, hash), orderId: undefined };
    this.#placing.set(clientOrderId, entry);
    try {
      return await entry.placed;
    } finally {
      // Placed: the index answers from now on. Failed: nothing was placed, a retry may try again.
      if (this.#placing.get(clientOrderId) === entry) this.#placing.delete(clientOrderId);
    }
  }

  /**
   * Without an index file, nothing needs the hash or the index entry before the answer: both are
   * made once the turn's answers are written (#recordPlaced, one immediate per turn), and until
   * then the entry in #placing stands for the index. The answer no longer waits for the sha256.
   */
  #placeInMemory(order: PlaceRequest): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    const entry: Placing = { order, hash: undefined, placed: undefined as never, orderId: undefined };
    entry.placed = this.#broker.placeOrder(order).then(
      (snapshot) => {
        entry.orderId = snapshot.order_id;
        this.#toRecord.push(entry);
        this.#recordSoon ??= setImmediate(this.recordPlaced);
        return snapshot;
      },
      (error: unknown) => {
        // Nothing was placed: a retry may try again.
        if (this.#placing.get(clientOrderId) === entry) this.#placing.delete(clientOrderId);
        throw error;
      },
    );
    this.#placing.set(clientOrderId, entry);
    return entry.placed;
  }

  /** This turn's in-memory placements into the index; the gateway runs it too before it closes. */
  readonly recordPlaced = (): void => {
    if (this.#recordSoon !== undefined) clearImmediate(this.#recordSoon);
    this.#recordSoon = undefined;
    const placed = this.#toRecord;
    this.#toRecord = [];
    for (const entry of placed) {
      const clientOrderId = entry.order.client_order_id;
      this.#index.record(this.#account, clientOrderId, entry.orderId ?? "", hashOf(entry));
      if (this.#placing.get(clientOrderId) === entry) this.#placing.delete(clientOrderId);
    }
  };

  /**
   * One disk wait, not two in a row: the intent is written before the broker hears of the order
   * and fsync'd while the broker places (and journals) it; the answer waits for both. The line
   * naming the order_id follows unawaited: should it be lost, the intent is settled at the next
   * start from the broker's book (recover()).
   */
  async #placeDurably(order: PlaceRequest, hash: string): Promise<OrderSnapshot> {
    const clientOrderId = order.client_order_id;
    // Throws when the intent cannot be written: then the broker is not asked at all.
    const intentDurable = this.#index.intend(this.#account, clientOrderId, hash, this.#after);
    const [placed, durable] = await Promise.allSettled([this.#broker.placeOrder(order), intentDurable]);
    if (placed.status === "rejected") {
      const error: unknown = placed.reason;
      // A refusal made no order: the id is free again. An unknown outcome (timeout, network)
      // leaves the intent open, for a retry or the next start to settle.
      if (error instanceof BrokerError && !error.retryable) this.#index.abandon(this.#account, clientOrderId);
      throw error;
    }
    const snapshot = placed.value;
    if (snapshot.order_id > this.#after) this.#after = snapshot.order_id;
    this.#index.record(this.#account, clientOrderId, snapshot.order_id, hash);
    // Placed but not durably indexed: the client hears of a fault, and its retry of the order.
    if (durable.status === "rejected") throw notDurable(clientOrderId, snapshot.order_id, durable.reason);
    return snapshot;
  }

  async byClientOrderId(clientOrderId: string): Promise<OrderSnapshot> {
    const inFlight = this.#placing.get(clientOrderId);
    if (inFlight !== undefined) {
      const placed = await inFlight.placed.catch(() => undefined);
      if (placed !== undefined) {
        await this.#durablyIndexed(clientOrderId, placed.order_id);
        return this.#broker.getOrder(placed.order_id);
      }
    }
    const known = this.#index.get(this.#account, clientOrderId);
    if (known !== undefined) {
      // As a PLACE_ORDER retry waits (#repeat): GET_ORDER settles what a retry would be told.
      await this.#durablyIndexed(clientOrderId, known.orderId);
      return this.#originalOrder(clientOrderId, known.orderId, known.day);
    }
    const found = (await this.#scanBook()).get(clientOrderId);
    if (found !== undefined) return found;
    // PLACE_ORDER refuses the id, so GET_ORDER does not call it free.
    if (this.#index.unknown(this.#account, clientOrderId)) throw unknownOutcome(clientOrderId);
    throw new BrokerError("NOT_FOUND", `no order with client_order_id ${clientOrderId}`);
  }

  /** Orders the last book scan for pages found (IdPages.lastSize). */
  get orderbookLastSize(): number {
    return this.#pages.lastSize;
  }

  /** One page of the order book by order_id (docs/PROTOCOL.md, GET_ORDERBOOK). */
  orderbookPage(limit: number | undefined, after: string | undefined): Promise<OrderSnapshot[]> {
    return this.#pages.page(limit, after);
  }

  /**
   * The order an id made (on IST day `usedOn`, today unless said); when the broker no longer holds
   * it, PLACE_ORDER and GET_ORDER say so alike, naming the day the id was used.
   */
  async #originalOrder(clientOrderId: string, orderId: string, usedOn?: string): Promise<OrderSnapshot> {
    try {
      return await this.#broker.getOrder(orderId);
    } catch (error) {
      if (error instanceof BrokerError && error.code === "NOT_FOUND") {
        const today = this.#index.today;
        const day = usedOn ?? today;
        const when = day === today ? `was already used today (${day}, IST)` : `was used on ${day} (IST)`;
        throw new BrokerError(
          "DUPLICATE_ORDER",
          `client_order_id ${clientOrderId} ${when} for order ${orderId}, which the broker no longer holds; the gateway keeps an id through the IST day it was used and the next, so no new order was placed`,
        );
      }
      throw error;
    }
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

function hashOf(entry: Placing): string {
  entry.hash ??= orderHash(entry.order);
  return entry.hash;
}

function mismatch(clientOrderId: string, what: string): BrokerError {
  return new BrokerError(
    "IDEMPOTENCY_MISMATCH",
    `client_order_id ${clientOrderId} was already used for ${what} with different parameters; a retry must repeat the order exactly, a new order needs a new client_order_id`,
  );
}

/**
 * The order exists but its id is not yet durably indexed (the disk failed the index's write or
 * fdatasync). A final code here would have a client report a failure for an order that exists, and
 * place it again under a new id; TIMEOUT makes the outcome unknown, so the client retries the same
 * client_order_id or looks it up, and is answered once the index is durable again. Only the errno
 * goes on the wire: the index's path stays on the gateway.
 */
function notDurable(clientOrderId: string, orderId: string, error: unknown): BrokerError {
  let cause: unknown = error;
  while (
    cause instanceof Error &&
    (cause as NodeJS.ErrnoException).code === undefined &&
    cause.cause !== undefined
  )
    cause = cause.cause;
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code ?? "disk fault";
  return new BrokerError(
    "TIMEOUT",
    `client_order_id ${clientOrderId}: order ${orderId} was placed but the gateway could not yet make its idempotency index durable (${errno}); the outcome counts as unknown: retry with the same client_order_id, which answers this order once the index is durable`,
    { cause: error },
  );
}

function unknownOutcome(clientOrderId: string): BrokerError {
  return new BrokerError(
    "IDEMPOTENCY_UNKNOWN",
    `client_order_id ${clientOrderId}: the gateway stopped while placing this order and cannot tell whether the broker took it (the broker no longer holds every order made since); it is not placed again: look for it in the order book, and place it with a new client_order_id if it is not there`,
  );
}
