import type { GttEventType, OrderEventType, OrderStatus, Quote } from "../protocol";
import type { ErrorCode } from "../protocol/errors";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey } from "../protocol/instrument";
import { isTerminal } from "../protocol/orders";
import { assertTransition } from "../protocol/state-machine";
import type { Change, PaperAccount } from "./account";
import type { GttState, OrderState } from "./account-state";
import { buyReference, fillPrice, triggered, triggerPassed } from "./fill-rules";
import { firedLeg } from "./gtt-book";
import { newClientOrderId } from "../common/ids";
import { applyFill, positionKey } from "./ledger";
import type { Paise } from "./money";
import { averageRupees, toRupees } from "./money";
import type { PaperSettings } from "./settings";
import { gttView, orderView } from "./views";

/** Why an order may not be taken (placed, or modified into what it asks to be). */
export interface Refusal {
  code: ErrorCode;
  message: string;
}

/**
 * The paper broker's matching engine: admission, triggering, fills, IOC, GTT firing. It changes
 * the account and notes every change and event in the operation's Change; it never writes or
 * announces anything itself.
 */
export class MatchingEngine {
  readonly #account: PaperAccount;
  readonly #settings: PaperSettings;

  constructor(account: PaperAccount, settings: PaperSettings) {
    this.#account = account;
    this.#settings = settings;
  }

  /**
   * The one admission rule, for a new order and for an order as a modify would leave it (`current`
   * is the order before the modify: its own reservation and quantity do not count against it).
   */
  refusal(order: OrderState, quote: Quote | undefined, current?: OrderState): Refusal | undefined {
    const where = `${order.exchange}:${order.symbol}`;
    if ((order.order_type === "MARKET" || order.validity === "IOC") && quote === undefined) {
      return {
        code: "NO_QUOTE",
        message: `no price for ${where} yet, so a ${order.order_type} ${order.validity} order cannot fill`,
      };
    }
    if (order.status === "TRIGGER_PENDING" && quote !== undefined) {
      const passed = triggerPassed(order, quote);
      if (passed !== undefined) return { code: "VALIDATION", message: passed };
    }
    const remaining = order.quantity - order.filled_quantity;
    if (order.side === "SELL" && order.product === "CNC") {
      const held =
        this.#account.positions.get(positionKey(order.exchange, order.symbol, "CNC"))?.quantity ?? 0;
      const free = held - this.#openQuantity(order, current ?? order);
      if (remaining > free) {
        return {
          code: "ORDER_REJECTED",
          message: `insufficient holdings: CNC sell of ${remaining} ${where} but ${Math.max(0, free)} held and not already being sold`,
        };
      }
    }
    if (order.side === "BUY") {
      const needed = this.reservation(order, quote);
      const available = this.#account.availableCash() + (current?.reserved ?? 0);
      if (needed > available) {
        return {
          code: "INSUFFICIENT_FUNDS",
          message: `insufficient funds: needs ${toRupees(needed)}, available ${toRupees(available)}`,
        };
      }
    }
    return undefined;
  }

  /** Unfilled CNC sells of the same instrument, other than `except`. */
  #openQuantity(order: OrderState, except: OrderState): number {
    let total = 0;
    for (const other of this.#account.resting.get(instrumentKey(order.exchange, order.symbol)) ?? []) {
      if (other !== except && other.side === "SELL" && other.product === "CNC") {
        total += other.quantity - other.filled_quantity;
      }
    }
    return total;
  }

  /** Cash a live BUY holds back for its unfilled rest. */
  reservation(order: OrderState, quote: Quote | undefined): Paise {
    if (order.side !== "BUY" || isTerminal(order.status)) return 0;
    return (order.quantity - order.filled_quantity) * buyReference(order, quote, this.#settings.slippage_bps);
  }

  /**
   * Takes a new order into the book, from a request or a GTT: refused outright (REJECTED), or
   * placed and matched against the current quote at once; IOC leftovers are cancelled.
   */
  admit(change: Change, order: OrderState, quote: Quote | undefined): void {
    this.#account.add(order);
    const refusal = this.refusal(order, quote);
    if (refusal !== undefined) {
      order.status = "REJECTED";
      order.status_message = refusal.message;
      this.#account.retire(change, order);
      this.touch(change, order, "ORDER_REJECTED");
      return;
    }
    this.#account.setReserved(order, this.reservation(order, quote));
    this.touch(change, order, "ORDER_PLACED");
    if (quote !== undefined) this.match(change, order, quote);
    this.#cancelUnfilledIoc(change, order);
    // Resting for later quotes only if still live: most MARKET orders never need it.
    if (!isTerminal(order.status)) this.#account.rest(order);
  }

  /** Applies a modify the caller has already checked with refusal(): then matches, and IOC never rests. */
  modify(change: Change, order: OrderState, next: OrderState, quote: Quote | undefined): void {
    assertTransition(order.status, next.status, order.order_id);
    order.quantity = next.quantity;
    order.order_type = next.order_type;
    order.validity = next.validity;
    order.status = next.status;
    if (next.price === undefined) delete order.price;
    else order.price = next.price;
    if (next.trigger_price === undefined) delete order.trigger_price;
    else order.trigger_price = next.trigger_price;
    this.#account.setReserved(order, this.reservation(order, quote));
    this.touch(change, order, "ORDER_MODIFIED");
    if (quote !== undefined) this.match(change, order, quote);
    this.#cancelUnfilledIoc(change, order);
  }

  cancel(change: Change, order: OrderState): void {
    this.#end(change, order, "CANCELLED", "ORDER_CANCELLED", "cancelled by the user");
  }

  /** A quote for one instrument: resting orders in time priority, then the instrument's GTTs. */
  onQuote(change: Change, key: InstrumentKey, quote: Quote, gtts: GttState[]): void {
    const resting = this.#account.resting.get(key);
    if (resting !== undefined && resting.size > 0) {
      for (const order of Array.from(resting)) this.match(change, order, quote);
    }
    for (const gtt of gtts) this.#checkGtt(change, gtt, quote);
  }

  /** Triggers and fills one order against one quote, as far as the quote allows. */
  match(change: Change, order: OrderState, quote: Quote): void {
    if (isTerminal(order.status)) return;
    if (order.status === "TRIGGER_PENDING") {
      if (!triggered(order, quote)) return;
      this.#transition(order, "OPEN");
      this.#account.setReserved(order, this.reservation(order, quote));
      this.touch(change, order, "ORDER_TRIGGERED");
      // A triggered stop acts as its MARKET/LIMIT order at this quote; an IOC one then never rests.
      this.#fillFrom(change, order, quote);
      this.#cancelUnfilledIoc(change, order);
      return;
    }
    this.#fillFrom(change, order, quote);
  }

  #fillFrom(change: Change, order: OrderState, quote: Quote): void {
    const price = fillPrice(order, quote, this.#settings.slippage_bps);
    if (price === undefined) return;
    const remaining = order.quantity - order.filled_quantity;
    const limit = this.#settings.max_fill_per_quote;
    this.#fill(change, order, limit > 0 ? Math.min(limit, remaining) : remaining, price, quote);
  }

  #fill(change: Change, order: OrderState, quantity: number, price: Paise, quote: Quote): void {
    const account = this.#account;
    const filled = order.filled_quantity + quantity;
    order.filled_value += quantity * price;
    order.filled_quantity = filled;
    order.average_price = averageRupees(order.filled_value, filled);
    const done = filled >= order.quantity;
    this.#transition(order, done ? "FILLED" : "PARTIALLY_FILLED");
    const position = account.position(order.exchange, order.symbol, order.product);
    applyFill(position, order.side, quantity, price);
    change.positions.add(position);
    account.cash += (order.side === "BUY" ? -1 : 1) * quantity * price;
    // A partly filled BUY keeps holding cash for its rest, at this quote (MARKET) or its limit.
    if (done) account.retire(change, order);
    else account.setReserved(order, this.reservation(order, quote));
    this.touch(change, order, done ? "ORDER_FILLED" : "ORDER_PARTIALLY_FILLED");
  }

  /** IOC: whatever did not fill at once is cancelled, as exchanges do. A pending stop waits. */
  #cancelUnfilledIoc(change: Change, order: OrderState): void {
    if (order.validity !== "IOC" || isTerminal(order.status) || order.status === "TRIGGER_PENDING") return;
    this.#end(change, order, "CANCELLED", "ORDER_CANCELLED", "IOC: unfilled quantity cancelled");
  }

  #end(change: Change, order: OrderState, status: OrderStatus, event: OrderEventType, message: string): void {
    this.#transition(order, status);
    order.status_message = message;
    this.#account.retire(change, order);
    this.touch(change, order, event);
  }

  #transition(order: OrderState, to: OrderStatus): void {
    assertTransition(order.status, to, order.order_id);
    order.status = to;
  }

  /** Fires a GTT whose condition the quote meets; an OCO fires one leg and the other is void. */
  #checkGtt(change: Change, gtt: GttState, quote: Quote): void {
    if (gtt.status !== "active") return;
    const leg = firedLeg(gtt, quote.last_price);
    const legOrder = leg === undefined ? undefined : gtt.orders[leg];
    if (leg === undefined || legOrder === undefined) return;
    gtt.status = "triggered";
    gtt.triggered_leg = leg;
    gtt.updated_at = change.now;
    this.#account.retireGtt(change, gtt);
    const order: OrderState = {
      order_id: this.#account.newOrderId(),
      client_order_id: newClientOrderId(),
      symbol: gtt.symbol,
      exchange: gtt.exchange,
      side: legOrder.side,
      quantity: legOrder.quantity,
      order_type: legOrder.order_type,
      price: legOrder.price,
      product: legOrder.product,
      validity: "DAY",
      status: "OPEN",
      filled_quantity: 0,
      average_price: 0,
      gtt_id: gtt.gtt_id,
      placed_at: change.now,
      timestamp: change.now,
      reserved: 0,
      filled_value: 0,
      client_id_given: false,
    };
    this.admit(change, order, quote);
    gtt.order_ids = [order.order_id];
    this.touchGtt(change, gtt, "GTT_TRIGGERED");
  }

  touch(change: Change, order: OrderState, type: OrderEventType): void {
    order.timestamp = change.now;
    change.orders.add(order);
    change.events.push({ type, seq: ++this.#account.seq, order: orderView(order), timestamp: change.now });
  }

  touchGtt(change: Change, gtt: GttState, type: GttEventType): void {
    change.gtts.add(gtt);
    change.events.push({ type, seq: ++this.#account.seq, gtt: gttView(gtt), timestamp: change.now });
  }
}
