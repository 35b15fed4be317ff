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
import { CHANGEABLE_FIELD_NAMES, showsChanges } from "../common/unknown-outcome";
import { BoundedIds, DAY_IDS_CAP } from "./bounded-ids";
import { SESSION_EXPIRED, isUnknownOutcome } from "./errors";
import type { KiteInstruments } from "./kite-instruments";
import type { KiteOrder } from "./mapping";
import { kiteVariety, toKiteOrderParams } from "./mapping";
import type { BaselineMemory, OrderTracker } from "./order-tracker";
import type { KiteRestClient } from "./rest-client";
import { isKiteOrder } from "./rest-client";
import { pendingSnapshot } from "./snapshots";
import { toTrade } from "./trade-reporter";

/** Kite order ids are digits; this also keeps ids from breaking kiteconnect's unescaped URL paths. */
const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether a Kite order carries our client_order_id (its `tag`, or among its `tags`). */
function hasTag(order: KiteOrder, clientId: string): boolean {
  return order.tag === clientId || (Array.isArray(order.tags) && order.tags.includes(clientId));
}
/** A retry of a client_order_id whose order has left retention: refused, never placed again. */
function usedBy(clientId: string, orderId: string): BrokerError {
  return new BrokerError(
    "DUPLICATE_ORDER",
    `client_order_id ${clientId} was already used today by order ${orderId}, which has left the order book's retention; it is not placed again`,
  );
}

/** How far apart the order book is read while a lost placement is looked for. */
const LOOKUP_EVERY_MS = 300;
/**
 * After its window, a placement whose outcome stayed unknown is still looked for this often, and
 * this long, so that Kite listing it late is reported (once) even when no postback comes.
 */
const WATCH_EVERY_MS = 1000;
const WATCH_FOR_MS = 10 * 60_000;

/** A placement whose outcome is unknown, while the order book is watched for it. */
interface Unresolved {
  /** Until when (performance.now()) the order book is read for it. */
  watchUntil: number;
  /**
   * Set while nobody has been told its outcome is unknown (its request was cut off by close(), or
   * by a session expiry): when the book has not listed it by then, NETWORK is reported, once.
   */
  tellAt?: number;
}

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
  /** Told when Kite refused a placement outright: no order was made, the id may be used again. */
  onRefused?: (clientId: string) => void;
  /** Told once a placement's outcome has been reported unknown (NETWORK), so no restart repeats it. */
  onToldUnknown?: (clientId: string) => void;
  /** Reports what no caller waits for (the outcome of a placement a restart or a redeploy cut off). */
  onError?: (error: BrokerError) => void;
  /**
   * Whether a placement with this client_order_id was sent earlier today, by an earlier run too
   * (the reported ledger): one that is not in Kite's book now is never sent again.
   */
  sentBefore?: (clientId: string) => boolean;
  /** What the flows were told of this order by this broker config, today (the reported ledger). */
  reportedOf?: (orderId: string) => BaselineMemoryEntry | undefined;
  /** Whether today's placements are on disk (the reported ledger is open): sentBefore is then whole. */
  durable?: () => boolean;
}

type BaselineMemoryEntry = NonNullable<ReturnType<BaselineMemory["reportedOf"]>>;

/**
 * Placing, changing, cancelling and reading Kite orders, each exactly once.
 *
 * - Our client_order_id travels in Kite's `tag`. A placement whose answer does not prove Kite
 *   refused it (no answer, 5xx, an HTML page) is looked up by tag in the order book before
 *   anything is reported, and is never sent again: Kite may list a new order any number of reads
 *   late, so absence proves nothing (issue kite10, item 1). Not found within resolve_window_ms,
 *   its outcome is reported unknown (NETWORK); it is still looked for a while, and once Kite
 *   lists it (or a postback names it) it is reported, once. Modifications and cancellations are
 *   settled by reading the order.
 * - A client_order_id is used once a day: a retry of one whose order retention let go answers
 *   DUPLICATE_ORDER, one whose placement's outcome is unknown IDEMPOTENCY_UNKNOWN (today's reported
 *   ledger says which were sent, across restarts); neither is placed again.
 * - Kite's vague refusals of a change are explained from the order book (NOT_FOUND, ORDER_TERMINAL).
 */
export class OrderDesk {
  readonly #deps: OrderDeskDeps;
  readonly #rest: KiteRestClient;
  readonly #orders: OrderTracker;
  readonly #instruments: KiteInstruments;
  readonly #log: BrokerLogger;
  readonly #placing = new Map<string, Promise<OrderSnapshot>>();
  /** Placements reported unknown, and until when each is still looked for in the order book. */
  readonly #unresolved = new BoundedIds<Unresolved>(DAY_IDS_CAP);
  #watching: Promise<void> | undefined;

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

  /**
   * Placements an earlier run sent whose order Kite's book did not list at this start (the
   * reported ledger's): each is watched for as a lost one is, and one whose outcome nobody was
   * told (`tell`: the request was cut off by close(), a redeploy) gets NETWORK reported once if
   * the book has not listed it within resolve_window_ms (issue kite11, item 2).
   */
  resume(placements: readonly { clientId: string; tell: boolean }[]): void {
    for (const { clientId, tell } of placements) this.#stillUnknown(clientId, tell);
  }

  /** Resolves once the watch for placements reported unknown has stopped (the broker closed). */
  async idle(): Promise<void> {
    await this.#watching;
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
    const ended = this.#orders.endedOrderIdOf(clientId);
    if (ended !== undefined) {
      return Promise.reject(usedBy(clientId, ended));
    }
    const used = this.#unresolved.has(clientId) || this.#deps.sentBefore?.(clientId) === true;
    // Without the ledger, memory is all there is: once it has let ids go past its cap (more than
    // 10,000 ended orders in a day, more than Kite allows), a new id is looked for in Kite's book
    // before it is sent (issue kite11, item 3).
    const forgot =
      !used && this.#deps.durable?.() !== true && (this.#orders.forgotEnded || this.#unresolved.dropped > 0);
    const placing = (
      used || forgot ? this.#sentEarlier(request, clientId, used) : this.#place(request, clientId)
    ).finally(() => this.#placing.delete(clientId));
    this.#placing.set(clientId, placing);
    return placing;
  }

  /**
   * A client_order_id sent earlier today whose order is not known here: Kite's book says whether
   * it made one (reported now, once, if it was never seen); otherwise its outcome is still
   * unknown, and it is not sent again.
   */
  async #sentEarlier(request: OrderRequest, clientId: string, sent: boolean): Promise<OrderSnapshot> {
    const book = await this.#rest.fetchBook();
    const found = book.find((o) => hasTag(o, clientId));
    const known = this.#orders.orderIdOf(clientId);
    if (found === undefined && known === undefined) {
      if (!sent) return this.#place(request, clientId);
      throw new BrokerError(
        "IDEMPOTENCY_UNKNOWN",
        `client_order_id ${clientId} was sent to Kite earlier today and whether it made an order is still unknown (Kite's order book does not list it); it is not placed again, and will show in order events if Kite has it`,
      );
    }
    this.#unresolved.delete(clientId);
    if (found !== undefined) {
      const orderId = String(found.order_id);
      const told = this.#deps.reportedOf?.(orderId);
      if (!this.#orders.has(orderId) && (told !== undefined || !sent)) {
        // An order the flows were told of (the ledger says so), or may have been (memory let its
        // id go): taken in as it was told, so nothing is reported twice, and never placed again.
        this.#orders.baseline(
          [found],
          told === undefined ? undefined : { reportedOf: () => told, wasPlacing: () => false },
        );
        const now = this.#orders.current(orderId);
        if (now !== undefined && !isTerminal(now.status)) return now;
        throw usedBy(clientId, orderId);
      }
      const order = this.#orders.ingest(found);
      this.#orders.bindClientId(clientId, order.order_id);
      return order;
    }
    return this.#refreshOrder(known!);
  }

  async #place(request: OrderRequest, clientId: string): Promise<OrderSnapshot> {
    await this.#instruments.check(request.exchange, request.symbol, request);
    if (request.tag !== undefined) this.#orders.setUserTag(clientId, request.tag);
    const params = toKiteOrderParams(request, clientId, this.#deps.settings.market_protection);
    const variety = kiteVariety(request);
    this.#deps.onPlacing?.(clientId);
    let orderId: string;
    let sent = false;
    try {
      orderId = await this.#sendPlacement(params, variety, () => (sent = true));
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) {
        this.#orders.dropUserTag(clientId);
        // CLOSED after the request went out (the broker closed during it) is no refusal: Kite may
        // have placed it, and the next start looks for it. Closed before it went out, it is.
        if (err.code !== "CLOSED" || !sent) this.#deps.onRefused?.(clientId);
        throw err;
      }
      this.#log.warn(`placement ${clientId}: ${err.message}; looking it up by tag before reporting`);
      orderId = await this.#settlePlacement(clientId, err);
    }
    this.#orders.bindClientId(clientId, orderId);
    // A postback usually tells us first; then the history request (10/s shared with every other
    // read) is not spent.
    const known = this.#orders.current(orderId);
    if (known !== undefined) return known;
    return this.#refreshOrder(orderId, () => pendingSnapshot(request, clientId, orderId));
  }

  async #sendPlacement(params: object, variety: Variety, onSend: () => void): Promise<string> {
    // kiteconnect adds `variety` to what it is given: each attempt gets its own copy.
    const reply = await this.#rest.call(
      "order",
      "order placement",
      (k) => k.placeOrder(variety, { ...params }),
      { freshConnection: true, onSend },
    );
    const id = isRecord(reply) ? reply.order_id : undefined;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new BrokerError("INTERNAL", "bad reply from Kite: the placement answer has no order_id");
    }
    return String(id);
  }

  /**
   * The Kite order id of a placement whose outcome is unknown: its tag is looked for in the order
   * book, LOOKUP_EVERY_MS apart, or a postback names it, within resolve_window_ms. It is never sent
   * again (absence from the book proves nothing: Kite lists late). Not found: NETWORK, the outcome
   * unknown, and the watch goes on looking (#watch).
   */
  async #settlePlacement(clientId: string, first: BrokerError): Promise<string> {
    const windowMs = this.#deps.settings.resolve_window_ms;
    const giveUpAt = performance.now() + windowMs;
    const signal = this.#deps.signal;
    let last = first;
    let reads = 0;
    for (;;) {
      if (signal.aborted) {
        this.#stillUnknown(clientId, true);
        throw new BrokerError(
          "CLOSED",
          `broker closed while order ${clientId}'s outcome was unknown (${last.message}); it was not sent again, and will show in order events if Kite placed it`,
        );
      }
      let pause = LOOKUP_EVERY_MS;
      try {
        const book = await this.#rest.fetchBook();
        reads++;
        const found = book.find((o) => hasTag(o, clientId));
        if (found !== undefined) {
          this.#orders.ingest(found);
          return String(found.order_id);
        }
      } catch (error) {
        last = toBrokerError(error);
        if (last.code === "AUTH") {
          // The session ended (or Kite refused the token): no lookup can succeed before a new
          // login, so the user is told now, not at the window's end, and the book is read for it
          // once logged in again (issue kite11, item 4).
          this.#stillUnknown(clientId, true);
          throw new BrokerError(
            "AUTH",
            `${SESSION_EXPIRED}. Order ${clientId} was sent and whether Kite placed it is unknown; it is not sent again, and after the login Kite's order book is read for it (order events report it if placed)`,
            { cause: last },
          );
        }
        if (last.retryAfterMs !== undefined) pause = Math.max(pause, last.retryAfterMs);
      }
      const told = this.#orders.orderIdOf(clientId);
      if (told !== undefined) return told;
      if (performance.now() + pause > giveUpAt) break;
      await sleep(pause, signal);
    }
    this.#stillUnknown(clientId, false);
    this.#deps.onToldUnknown?.(clientId);
    throw new BrokerError(
      "NETWORK",
      `order ${clientId}: outcome still unknown after ${windowMs} ms (${last.message}; ${reads} order book reads did not list it); it was not sent again, and will show in order events if Kite placed it`,
      { cause: last },
    );
  }

  /**
   * A placement whose outcome is unknown: a retry of it is not sent, and the order book is watched
   * for it. With `tell`, nobody has been told yet: NETWORK is reported if the book has not listed it
   * within resolve_window_ms (counted from when the book can be read: not while logged out).
   */
  #stillUnknown(clientId: string, tell: boolean): void {
    const now = performance.now();
    this.#unresolved.set(clientId, {
      watchUntil: now + WATCH_FOR_MS,
      ...(tell ? { tellAt: now + this.#deps.settings.resolve_window_ms } : {}),
    });
    if (this.#deps.signal.aborted) return;
    this.#watching ??= this.#watch().finally(() => {
      this.#watching = undefined;
    });
  }

  /** Whether Kite's order for this client_order_id is known here (seen in the book or a postback). */
  #known(clientId: string): boolean {
    return (
      this.#orders.orderIdOf(clientId) !== undefined || this.#orders.endedOrderIdOf(clientId) !== undefined
    );
  }

  /**
   * Reads the order book every WATCH_EVERY_MS while placements reported unknown are watched: one
   * Kite lists late is ingested, so it is reported (ORDER_PLACED and what followed) once, even
   * with no postback. Each is watched WATCH_FOR_MS; a retry of it still asks the book itself. One
   * nobody was told of is reported NETWORK (onError) once its time comes unlisted. While the session
   * is over, nothing can be read: every deadline starts again after the login.
   */
  async #watch(): Promise<void> {
    const signal = this.#deps.signal;
    const windowMs = this.#deps.settings.resolve_window_ms;
    for (;;) {
      const now = performance.now();
      const watched = new Set<string>();
      for (const clientId of this.#unresolved.keys()) {
        const entry = this.#unresolved.get(clientId)!;
        if (this.#known(clientId)) continue;
        if (entry.watchUntil > now || entry.tellAt !== undefined) watched.add(clientId);
      }
      if (watched.size === 0 || signal.aborted) return;
      await sleep(WATCH_EVERY_MS, signal);
      if (signal.aborted) return;
      let book: KiteOrder[];
      try {
        book = await this.#rest.fetchBook();
      } catch (error) {
        const err = toBrokerError(error);
        if (err.code === "AUTH") {
          const after = performance.now();
          for (const clientId of watched) {
            const entry = this.#unresolved.get(clientId);
            if (entry === undefined) continue;
            entry.watchUntil = Math.max(entry.watchUntil, after + WATCH_FOR_MS);
            if (entry.tellAt !== undefined) entry.tellAt = after + windowMs;
          }
        } else if (err.code !== "CLOSED") {
          this.#log.warn(`looking for placements whose outcome is unknown: ${err.message}`);
        }
        continue;
      }
      if (signal.aborted) return;
      for (const raw of book) {
        const tag = typeof raw.tag === "string" ? raw.tag : undefined;
        if (tag === undefined || !watched.has(tag)) continue;
        this.#orders.ingest(raw);
        this.#unresolved.delete(tag);
      }
      const read = performance.now();
      for (const clientId of watched) {
        const entry = this.#unresolved.get(clientId);
        if (entry?.tellAt === undefined || entry.tellAt > read || this.#known(clientId)) continue;
        delete entry.tellAt;
        this.#deps.onToldUnknown?.(clientId);
        this.#deps.onError?.(
          new BrokerError(
            "NETWORK",
            `order ${clientId}: its placement was sent to Kite and its answer never came (a redeploy, a restart or a session expiry cut it off); Kite's order book has not listed it within ${windowMs} ms, so whether Kite placed it is unknown. It is not sent again, and will show in order events if Kite placed it`,
          ),
        );
      }
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
