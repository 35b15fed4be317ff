import type {
  OrderChanges,
  OrderRequest,
  OrderRequestInput,
  OrderSnapshot,
  Trade,
  Variety,
} from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { OrderChanges as OrderChangesSchema, isTerminal } from "../protocol/orders";
import { parseOrThrow } from "../protocol/validate";
import type { KiteSettings } from "../brokers/kite-settings";
import type { BrokerLogger } from "../brokers/logger";
import { newClientOrderId } from "../common/ids";
import { sleep } from "../common/sleep";
import { isRecord } from "../common/is-record";
import { CHANGEABLE_FIELD_NAMES, settlePlacement, showsChanges } from "../common/unknown-outcome";
import { isUnknownOutcome } from "./errors";
import type { KiteInstruments } from "./kite-instruments";
import type { KiteOrder } from "./mapping";
import { kiteVariety, toKiteOrderParams } from "./mapping";
import type { OrderTracker } from "./order-tracker";
import type { KiteRestClient } from "./rest-client";
import { isKiteOrder } from "./rest-client";
import { pendingSnapshot } from "./snapshots";
import { toTrade } from "./trade-reporter";

/** Kite order ids are digits; this also keeps ids from breaking kiteconnect's unescaped URL paths. */
const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * A lost placement is sent again only after this many order book reads in a row, ABSENT_GRACE_MS
 * apart, have not listed it: Kite may list a new order some reads late, and sending it again
 * then would place it twice (two reads were not enough: kite-misbehaving.spec).
 */
const ABSENT_READS = 4;
const ABSENT_GRACE_MS = 300;

export interface OrderDeskDeps {
  settings: KiteSettings;
  rest: KiteRestClient;
  orders: OrderTracker;
  instruments: KiteInstruments;
  log: BrokerLogger;
  /** Aborted when the broker closes: a placement being settled stops waiting. */
  signal: AbortSignal;
  /** Throws when the broker cannot take requests now (closed, session expired). */
  usable: (what: string) => void;
  /** Told before a placement is first sent (so a restart knows it was under way). */
  onPlacing?: (clientId: string) => void;
}

/**
 * Placing, changing, cancelling and reading Kite orders, each exactly once.
 *
 * - Our client_order_id travels in Kite's `tag`. A placement whose answer does not prove Kite
 *   refused it (no answer, 5xx, an HTML page) is looked up by tag in the order book before
 *   anything is reported; it is sent again only when absent and still within order_ttl_ms, so it
 *   never yields two orders. Modifications and cancellations are settled likewise, by reading the
 *   order.
 * - Kite's vague refusals of a change are explained from the order book (NOT_FOUND, ORDER_TERMINAL).
 */
export class OrderDesk {
  readonly #deps: OrderDeskDeps;
  readonly #rest: KiteRestClient;
  readonly #orders: OrderTracker;
  readonly #instruments: KiteInstruments;
  readonly #log: BrokerLogger;
  readonly #placing = new Map<string, Promise<OrderSnapshot>>();

  constructor(deps: OrderDeskDeps) {
    this.#deps = deps;
    this.#rest = deps.rest;
    this.#orders = deps.orders;
    this.#instruments = deps.instruments;
    this.#log = deps.log;
  }

  /** A placement with this client_order_id is on its way (its postback may come before its answer). */
  isPlacing(clientId: string): boolean {
    return this.#placing.has(clientId);
  }

  place(input: OrderRequestInput): Promise<OrderSnapshot> {
    let request: OrderRequest;
    try {
      // A parsed copy: the caller's object is never touched (kiteconnect mutates what it is given).
      request = parseOrderRequest(input);
      this.#deps.usable("order");
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
    const clientId = request.client_order_id ?? newClientOrderId();
    const existing = this.#orders.orderIdOf(clientId);
    if (existing !== undefined) {
      const known = this.#orders.current(existing);
      if (known !== undefined) return Promise.resolve(known);
      // Kite has it, though it is not held (an open order beyond retention at connect): read, not placed again.
      return this.#refreshOrder(existing);
    }
    const inFlight = this.#placing.get(clientId);
    if (inFlight !== undefined) return inFlight;
    const placing = this.#place(request, clientId).finally(() => this.#placing.delete(clientId));
    this.#placing.set(clientId, placing);
    return placing;
  }

  async #place(request: OrderRequest, clientId: string): Promise<OrderSnapshot> {
    await this.#instruments.check(request.exchange, request.symbol, request);
    if (request.tag !== undefined) this.#orders.setUserTag(clientId, request.tag);
    const params = toKiteOrderParams(request, clientId, this.#deps.settings.market_protection);
    const variety = kiteVariety(request);
    const sendBy = Date.now() + this.#deps.settings.order_ttl_ms;
    this.#deps.onPlacing?.(clientId);
    let orderId: string;
    try {
      orderId = await this.#sendPlacement(params, variety);
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) {
        this.#orders.dropUserTag(clientId);
        throw err;
      }
      this.#log.warn(`placement ${clientId}: ${err.message}; looking it up by tag before reporting`);
      orderId = await this.#settlePlacement(params, variety, clientId, sendBy, err);
    }
    this.#orders.bindClientId(clientId, orderId);
    // A postback usually tells us first; then the history request (10/s shared with every other
    // read) is not spent.
    const known = this.#orders.current(orderId);
    if (known !== undefined) return known;
    return this.#refreshOrder(orderId, () => pendingSnapshot(request, clientId, orderId));
  }

  async #sendPlacement(params: object, variety: Variety): Promise<string> {
    // kiteconnect adds `variety` to what it is given: each attempt gets its own copy.
    const reply = await this.#rest.call("order", "order placement", (k) =>
      k.placeOrder(variety, { ...params }),
    );
    const id = isRecord(reply) ? reply.order_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the placement answer has no order_id");
    }
    return String(id);
  }

  /**
   * A placement whose outcome is unknown, looked up by its tag in the order book (twice,
   * ABSENT_GRACE_MS apart, since Kite may list it a moment late) or a postback's word.
   */
  #settlePlacement(
    params: { tag: string },
    variety: Variety,
    clientId: string,
    sendBy: number,
    first: BrokerError,
  ): Promise<string> {
    return settlePlacement({
      clientId,
      first,
      windowMs: this.#deps.settings.resolve_window_ms,
      sendBy,
      ttlMs: this.#deps.settings.order_ttl_ms,
      venue: "Kite",
      signal: this.#deps.signal,
      isUnknown: isUnknownOutcome,
      lookup: (remainingMs) => this.#findPlaced(clientId, remainingMs),
      isFinal: (err) => !err.retryable && !isUnknownOutcome(err),
      resend: () => this.#sendPlacement(params, variety),
      // #findPlaced waits out Kite's late listing itself.
      absentGraceMs: 0,
    });
  }

  /**
   * The Kite order id of the placement tagged `clientId`, or undefined once ABSENT_READS order book
   * reads in a row lack it (and no postback named it). Throws when that cannot be told within
   * `remainingMs`: absence is never assumed.
   */
  async #findPlaced(clientId: string, remainingMs: number): Promise<string | undefined> {
    const giveUpAt = performance.now() + remainingMs;
    for (let read = 1; ; read++) {
      const book = await this.#rest.fetchBook();
      const found = book.find(
        (o) => o.tag === clientId || (Array.isArray(o.tags) && o.tags.includes(clientId)),
      );
      if (found !== undefined) {
        this.#orders.ingest(found);
        return String(found.order_id);
      }
      const told = this.#orders.orderIdOf(clientId);
      if (told !== undefined) return told;
      if (read >= ABSENT_READS) return undefined;
      if (performance.now() + ABSENT_GRACE_MS > giveUpAt) {
        throw new BrokerError(
          "NETWORK",
          `order ${clientId} not in Kite's order book after ${read} reads; Kite may list it late`,
        );
      }
      await sleep(ABSENT_GRACE_MS, this.#deps.signal);
      // Not final: settlePlacement then says the broker closed while the outcome was unknown.
      if (this.#deps.signal.aborted) throw new BrokerError("NETWORK", `order ${clientId}: broker closing`);
    }
  }

  /**
   * The variety an order was placed with: Kite changes and cancels an order only under its own
   * variety's path (/orders/amo/…, /orders/iceberg/…). Known from the tracker, else read once from
   * the order's history; an order that cannot be read is tried as regular (Kite then says why not).
   */
  async #varietyOf(orderId: string): Promise<Variety> {
    const known = this.#orders.current(orderId);
    if (known !== undefined) return kiteVariety(known);
    try {
      return kiteVariety(await this.#refreshOrder(orderId));
    } catch {
      return "regular";
    }
  }

  /**
   * The order's latest state from its history (the last entry; the earlier ones are older than
   * what postbacks may already have told us). When that read fails, what we know, or `fallback`.
   */
  async #refreshOrder(orderId: string, fallback?: () => OrderSnapshot): Promise<OrderSnapshot> {
    try {
      const history = await this.#rest.call("request", "order history request", (k) =>
        k.getOrderHistory(orderId),
      );
      const entries = Array.isArray(history) ? history.filter(isKiteOrder) : [];
      const latest = entries[entries.length - 1];
      if (latest !== undefined) return this.#orders.ingest(latest);
    } catch (error) {
      const err = toBrokerError(error);
      if (fallback === undefined) throw err;
      this.#log.warn(`order ${orderId}: ${err.message}; answering with what is known`);
    }
    const known = this.#orders.current(orderId);
    if (known !== undefined) return known;
    if (fallback !== undefined) return this.#orders.observe(fallback(), false);
    throw new BrokerError("NOT_FOUND", `order ${orderId} not found`);
  }

  #checkOrderId(orderId: string): void {
    if (typeof orderId !== "string" || !ORDER_ID.test(orderId)) {
      throw new BrokerError("NOT_FOUND", `order ${String(orderId)} not found (not a Kite order id)`);
    }
  }

  #refuseIfEnded(orderId: string, verb: string): void {
    const known = this.#orders.current(orderId);
    if (known !== undefined && isTerminal(known.status)) {
      throw new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${known.status}; only open orders can be ${verb}`,
      );
    }
  }

  /**
   * Kite answers a change to a missing or finished order with a generic refusal; the order book
   * says which it was (NOT_FOUND, ORDER_TERMINAL), or the refusal stands.
   */
  async #explain(orderId: string, error: BrokerError, verb: string): Promise<BrokerError> {
    if (error.code !== "VALIDATION" && error.code !== "ORDER_REJECTED" && error.code !== "INTERNAL")
      return error;
    let book: KiteOrder[];
    try {
      book = await this.#rest.fetchBook();
    } catch {
      return error;
    }
    const raw = book.find((o) => String(o.order_id) === orderId);
    if (raw === undefined) return new BrokerError("NOT_FOUND", `order ${orderId} not found`);
    const order = this.#orders.ingest(raw);
    if (isTerminal(order.status)) {
      return new BrokerError(
        "ORDER_TERMINAL",
        `order ${orderId} is ${order.status}; only open orders can be ${verb}`,
      );
    }
    return error;
  }

  async modify(orderId: string, changesInput: OrderChanges): Promise<OrderSnapshot> {
    const changes = parseOrThrow(OrderChangesSchema, changesInput, "order changes");
    this.#deps.usable("order change");
    this.#checkOrderId(orderId);
    this.#refuseIfEnded(orderId, "modified");
    const params: Record<string, unknown> = {};
    // Kite's modify takes exactly the fields OrderChanges has.
    for (const key of CHANGEABLE_FIELD_NAMES) {
      if (changes[key] !== undefined) params[key] = changes[key];
    }
    if (changes.order_type === "MARKET" || changes.order_type === "SL-M") {
      params.market_protection = this.#deps.settings.market_protection;
    }
    const known = this.#orders.current(orderId);
    if (known !== undefined) await this.#instruments.check(known.exchange, known.symbol, changes);
    const landed = (order: OrderSnapshot): boolean => showsChanges(order, changes);
    const variety = await this.#varietyOf(orderId);
    return this.#changeOnce(orderId, "modified", landed, () =>
      this.#rest.call("order", "order change", (k) => k.modifyOrder(variety, orderId, { ...params })),
    );
  }

  async cancel(orderId: string): Promise<OrderSnapshot> {
    this.#deps.usable("cancellation");
    this.#checkOrderId(orderId);
    this.#refuseIfEnded(orderId, "cancelled");
    const variety = await this.#varietyOf(orderId);
    // An order that ended another way meanwhile (filled) is the answer too: nothing is left to cancel.
    return this.#changeOnce(
      orderId,
      "cancelled",
      (order) => isTerminal(order.status),
      () => this.#rest.call("order", "cancellation", (k) => k.cancelOrder(variety, orderId)),
    );
  }

  /**
   * A modification or cancellation, exactly once: an answer that does not prove Kite refused it
   * (no answer, 5xx, HTML) is settled by reading the order. When the change shows, that is the
   * answer; when it does not, it is sent once more (setting the same values or cancelling twice is
   * harmless), and if that answer is lost too the outcome is reported unknown.
   */
  async #changeOnce(
    orderId: string,
    verb: "modified" | "cancelled",
    landed: (order: OrderSnapshot) => boolean,
    send: () => Promise<unknown>,
  ): Promise<OrderSnapshot> {
    for (let attempt = 1; ; attempt++) {
      let lost: BrokerError;
      try {
        await send();
        return await this.#refreshOrder(orderId);
      } catch (error) {
        lost = toBrokerError(error);
        if (!isUnknownOutcome(lost)) throw await this.#explain(orderId, lost, verb);
      }
      this.#log.warn(`order ${orderId} to be ${verb}: ${lost.message}; reading the order before reporting`);
      let current: OrderSnapshot | undefined;
      try {
        current = await this.#refreshOrder(orderId);
      } catch {
        current = undefined;
      }
      if (current !== undefined && landed(current)) return current;
      if (current !== undefined && isTerminal(current.status)) {
        throw new BrokerError(
          "ORDER_TERMINAL",
          `order ${orderId} is ${current.status}; only open orders can be ${verb}`,
        );
      }
      if (attempt >= 2) {
        throw new BrokerError(
          "NETWORK",
          `order ${orderId}: whether it was ${verb} is unknown (${lost.message}); it will show in order events`,
          { cause: lost },
        );
      }
    }
  }

  async get(orderId: string): Promise<OrderSnapshot> {
    this.#deps.usable("order request");
    this.#checkOrderId(orderId);
    try {
      return await this.#refreshOrder(orderId);
    } catch (error) {
      const err = await this.#explain(orderId, toBrokerError(error), "read");
      if (err.code === "ORDER_TERMINAL") {
        const known = this.#orders.current(orderId);
        if (known !== undefined) return known;
      }
      throw err;
    }
  }

  async book(): Promise<OrderSnapshot[]> {
    this.#deps.usable("order book request");
    const book = await this.#rest.fetchBook();
    return book.map((raw) => this.#orders.ingest(raw));
  }

  /**
   * An order's fills (executions) from Kite's trade book, oldest first: what ORDER_PARTIALLY_FILLED
   * and ORDER_FILLED events carry in `trades`, read on demand.
   */
  async trades(orderId: string): Promise<Trade[]> {
    this.#deps.usable("order trades request");
    this.#checkOrderId(orderId);
    const reply = await this.#rest.call("request", "order trades request", (k) => k.getOrderTrades(orderId));
    const trades: Trade[] = [];
    for (const raw of Array.isArray(reply) ? reply : []) {
      const trade = toTrade(raw);
      if (trade === undefined || trade.order_id !== orderId) continue;
      trades.push({
        trade_id: trade.trade_id,
        quantity: trade.quantity,
        price: trade.price,
        timestamp: trade.timestamp,
      });
    }
    return trades.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  }
}
