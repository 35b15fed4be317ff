import type { GttEventType, OrderEvent, OrderEventType, OrderStatus, Quote } from "../protocol";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey } from "../protocol/instrument";
import { isTerminal } from "../protocol/orders";
import { assertTransition } from "../protocol/state-machine";
import type { Change, PaperAccount } from "./account";
import { noteChanged } from "./account";
import type { GttState, OrderState, PositionState } from "./account-state";
import { buyReference, fillPrice, triggered, triggerPassed } from "./fill-rules";
import { firedLeg } from "./gtt-book";
import { newClientOrderId } from "../common/ids";
import { copyOrderOptions, visibleQuantity } from "./order-coverage";
import { applyFill, positionKey } from "./ledger";
import type { Paise } from "./money";
import { averageRupees, sellLimitPaise, toPaise, toRupees } from "./money";
import type { PaperMarket, Refusal } from "./market-rules";
import type { PaperSettings } from "./settings";
import { gttView, laterView } from "./views";

export type { Refusal } from "./market-rules";

/**
 * The paper broker's matching engine: admission, triggering, fills, IOC, GTT firing. It changes
 * the account and notes every change and event in the operation's Change; it never writes or
 * announces anything itself.
 */
export class MatchingEngine {
  readonly #account: PaperAccount;
  readonly #settings: PaperSettings;
  /** NSE's rules (lib/market); undefined in the plain relaxed mode, which keeps the rules above. */
  readonly #market: PaperMarket | undefined;

  constructor(account: PaperAccount, settings: PaperSettings, market?: PaperMarket) {
    this.#account = account;
    this.#settings = settings;
    this.#market = market;
  }

  /**
   * The one admission rule, for a new order and for an order as a modify would leave it (`current`
   * is the order before the modify: its own reservation and quantity do not count against it).
   */
  refusal(
    order: OrderState,
    quote: Quote | undefined,
    current?: OrderState,
    marketRules = true,
  ): Refusal | undefined {
    const market = this.#market;
    if (market !== undefined && marketRules) {
      const refused = market.refusal(order, quote);
      if (refused !== undefined) return refused;
    }
    if ((order.order_type === "MARKET" || order.validity === "IOC") && quote === undefined) {
      return {
        code: "NO_QUOTE",
        message: `no price for ${order.exchange}:${order.symbol} yet, so a ${order.order_type} ${order.validity} order cannot fill`,
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
          message: `quantity: insufficient holdings: CNC sell of ${remaining} ${order.exchange}:${order.symbol} but ${Math.max(0, free)} held and not already being sold`,
        };
      }
    }
    if (market?.kiteMargin === true) return this.#marginRefusal(market, order, quote, current);
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

  /** Kite's margin: the opening part of the order's rest must fit in the cash that can be spent. */
  #marginRefusal(
    market: PaperMarket,
    order: OrderState,
    quote: Quote | undefined,
    current: OrderState | undefined,
  ): Refusal | undefined {
    const needed = market.orderMargin(order, this.#referencePaise(order, quote), this.#held(order));
    if (typeof needed !== "number") return needed;
    const available = this.available() + (current?.reserved ?? 0);
    // An order that only closes blocks nothing (MARKET-RULES §5), so it is never refused for funds,
    // even when what may be spent is below zero: else the 15:20 square-off itself was refused.
    if (needed <= 0 || needed <= available) return undefined;
    return {
      code: "INSUFFICIENT_FUNDS",
      message: `insufficient funds: margin needed ${toRupees(needed)}, available ${toRupees(available)}`,
    };
  }

  /** Cash that may be spent: under Kite's margin, open positions lend (MIS longs) or hold (shorts). */
  available(): Paise {
    const account = this.#account;
    const market = this.#market;
    if (market?.kiteMargin !== true) return account.availableCash();
    let credit = 0;
    for (const position of account.positions.values()) credit += market.positionCredit(position);
    return account.availableCash() + credit;
  }

  #held(order: OrderState): number {
    return (
      this.#account.positions.get(positionKey(order.exchange, order.symbol, order.product))?.quantity ?? 0
    );
  }

  /** The price one unit of the order is expected to trade at: its limit, its trigger, or the market. */
  #referencePaise(order: OrderState, quote: Quote | undefined): Paise {
    if (order.side === "BUY") return buyReference(order, quote, this.#settings.slippage_bps);
    if (order.price !== undefined) return sellLimitPaise(order.price);
    const slip = 1 - this.#settings.slippage_bps / 10_000;
    if (order.trigger_price !== undefined) return toPaise(order.trigger_price * slip);
    if (quote === undefined) return 0;
    return quote.bid !== undefined ? toPaise(quote.bid) : toPaise(quote.last_price * slip);
  }

  /** Cash a live order holds back for its unfilled rest: a BUY's cost, or Kite's margin. */
  reservation(order: OrderState, quote: Quote | undefined): Paise {
    if (isTerminal(order.status)) return 0;
    const market = this.#market;
    if (market?.kiteMargin === true) {
      const margin = market.orderMargin(order, this.#referencePaise(order, quote), this.#held(order));
      return typeof margin === "number" ? margin : 0;
    }
    if (order.side !== "BUY") return 0;
    return (order.quantity - order.filled_quantity) * buyReference(order, quote, this.#settings.slippage_bps);
  }

  /**
   * Takes a new order into the book, from a request or a GTT: refused outright (REJECTED), or
   * placed and matched against the current quote at once; IOC leftovers are cancelled.
   */
  admit(change: Change, order: OrderState, quote: Quote | undefined, marketRules = true): void {
    this.#account.add(order);
    change.fresh.push(order);
    const refusal = this.refusal(order, quote, undefined, marketRules);
    if (refusal !== undefined) {
      order.status = "REJECTED";
      order.status_message = refusal.message;
      this.#account.retire(change, order);
      this.touch(change, order, "ORDER_REJECTED");
      return;
    }
    // An AMO taken while the market is closed waits for the open (match() holds it back).
    const release = marketRules ? this.#market?.releaseAt(order) : undefined;
    if (release !== undefined) order.release_at = release;
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
    noteChanged(change.fresh, order);
    order.quantity = next.quantity;
    order.order_type = next.order_type;
    order.validity = next.validity;
    order.status = next.status;
    if (next.price === undefined) delete order.price;
    else order.price = next.price;
    if (next.trigger_price === undefined) delete order.trigger_price;
    else order.trigger_price = next.trigger_price;
    copyOrderOptions(next, order);
    this.#account.setReserved(order, this.reservation(order, quote));
    this.touch(change, order, "ORDER_MODIFIED");
    if (quote !== undefined) this.match(change, order, quote);
    this.#cancelUnfilledIoc(change, order);
  }

  cancel(change: Change, order: OrderState): void {
    this.#end(change, order, "CANCELLED", "ORDER_CANCELLED", "cancelled by the user");
  }

  /** A TTL order whose minutes have run out: what is left of it ends EXPIRED. */
  expire(change: Change, order: OrderState): void {
    if (isTerminal(order.status)) return;
    this.#end(change, order, "EXPIRED", "ORDER_EXPIRED", `TTL: ${order.validity_ttl ?? 0} minutes passed`);
  }

  /** A quote for one instrument: resting orders in time priority, then the instrument's GTTs. */
  onQuote(change: Change, key: InstrumentKey, quote: Quote, gtts: GttState[]): void {
    // Outside market hours a quote moves the price but trades nothing (no fill, no GTT trigger).
    const market = this.#market;
    if (market !== undefined && !market.isOpen(market.now())) return;
    const resting = this.#account.resting.get(key);
    if (resting !== undefined && resting.size > 0) {
      for (const order of Array.from(resting)) this.match(change, order, quote);
    }
    for (const gtt of gtts) this.#checkGtt(change, gtt, quote);
  }

  /** Triggers and fills one order against one quote, as far as the quote allows. */
  match(change: Change, order: OrderState, quote: Quote): void {
    if (isTerminal(order.status)) return;
    if (order.release_at !== undefined) {
      this.#release(change, order, quote);
      return;
    }
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

  /** A waiting AMO: nothing before its open; from then on it is a regular order (IOC: once). */
  #release(change: Change, order: OrderState, quote: Quote | undefined): void {
    const due = order.release_at;
    if (due === undefined || (this.#market !== undefined && this.#market.now() < due)) return;
    delete order.release_at;
    noteChanged(change.orders, order);
    // A broker closed over the AMO's whole session releases it after the close: it had its chance
    // while the market was open and trades nothing now (an IOC one ends; a DAY one expires).
    if (quote === undefined || (this.#market !== undefined && !this.#market.isOpen(this.#market.now()))) {
      this.#cancelUnfilledIoc(change, order);
      return;
    }
    this.match(change, order, quote);
    if (order.status !== "TRIGGER_PENDING") this.#cancelUnfilledIoc(change, order);
  }

  #fillFrom(change: Change, order: OrderState, quote: Quote): void {
    const market = this.#market;
    if (market?.finiteLiquidity === true) {
      this.#fillFromBook(change, order, quote, market);
      return;
    }
    const price = fillPrice(order, quote, this.#settings.slippage_bps);
    if (price === undefined) return;
    // An iceberg shows one leg at a time: a quote fills at most what is left of that leg.
    const remaining = visibleQuantity(order);
    const limit = this.#settings.max_fill_per_quote;
    const short = this.#fill(change, order, limit > 0 ? Math.min(limit, remaining) : remaining, price, quote);
    // What the money paid for is filled; the rest, which it cannot hold for, is cancelled.
    if (short && this.available() < 0) this.#cancelForFunds(change, order, price);
  }

  /** Finite liquidity: the quote's touch (and, for MARKET, its depth) left by the orders before. */
  #fillFromBook(change: Change, order: OrderState, quote: Quote, market: PaperMarket): void {
    // An iceberg offers only its current leg to the book, as in #fillFrom.
    const remaining = visibleQuantity(order);
    const limit = this.#settings.max_fill_per_quote;
    const wanted = limit > 0 ? Math.min(limit, remaining) : remaining;
    const key = instrumentKey(order.exchange, order.symbol);
    const fills = market.fills(key, order, quote, wanted, this.#account.liquidity) ?? [];
    if (fills.length === 0) return;
    const taken = market.taken(key);
    if (taken !== undefined) this.#account.noteLiquidity(change, key, taken);
    let short = false;
    let price = 0;
    for (const fill of fills) {
      if (this.#fill(change, order, fill.quantity, fill.price, quote)) short = true;
      price = fill.price;
    }
    // The money ran out on the way up: the rest, which it cannot hold for, is cancelled.
    if (short && this.available() < 0) this.#cancelForFunds(change, order, price);
  }

  /**
   * A fill, as far as the money covers it: a fill that opens or grows a position may not take what
   * may be spent below zero. When the order's held cash (kept at its reference price, which a later
   * quote may have left far behind) and the spendable money cannot pay for this fill and hold the
   * rest, the order takes what they pay for outright at this price and true is returned: the
   * caller then cancels the rest for funds (#cancelForFunds), as Kite's market protection ends a
   * market order's remainder rather than let it fill at any price.
   */
  #fill(change: Change, order: OrderState, quantity: number, price: Paise, quote: Quote): boolean {
    if (isTerminal(order.status)) return false;
    const covered = this.#covered(order, quantity, price, quote);
    if (covered === undefined) {
      this.#applyFill(change, order, quantity, price, quote);
      return false;
    }
    if (covered > 0) this.#applyFill(change, order, covered, price, quote);
    return true;
  }

  #cancelForFunds(change: Change, order: OrderState, price: Paise): void {
    if (isTerminal(order.status)) return;
    const rest = order.quantity - order.filled_quantity;
    this.#end(
      change,
      order,
      "CANCELLED",
      "ORDER_CANCELLED",
      `insufficient funds: the remaining ${rest} cannot be paid for at ${toRupees(price)} (available ${toRupees(this.available() + order.reserved)}); cancelled`,
    );
  }

  /**
   * Undefined when the money covers a fill of `quantity` at `price` with the order's rest still held
   * for; else how much of it the money pays for outright (the rest of the order is then cancelled).
   */
  #covered(order: OrderState, quantity: number, price: Paise, quote: Quote): number | undefined {
    const held = this.#held(order);
    const opens =
      held === 0 || Math.sign(held) === (order.side === "BUY" ? 1 : -1) || quantity > Math.abs(held);
    if (!opens) return undefined;
    const before = this.available();
    const full = this.#availableAfter(order, quantity, price, quote, before, true);
    if (full >= 0 || full >= before) return undefined;
    // The rest will be cancelled, so it holds nothing: the most that fits with nothing held after.
    // Lots: F&O fills stay whole lots (an equity's lot is 1).
    let lot = this.#market?.instrument(order.exchange, order.symbol).lot_size ?? 1;
    if (!(lot >= 1)) lot = 1;
    let low = 0;
    let high = Math.floor(quantity / lot);
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (this.#availableAfter(order, mid * lot, price, quote, before, false) >= 0) low = mid;
      else high = mid - 1;
    }
    return low * lot;
  }

  /**
   * What may be spent after a fill of `quantity` at `price` (`before`: what may be spent now), the
   * order then holding for its rest (`keep`) or nothing. Works on copies; changes nothing.
   */
  #availableAfter(
    order: OrderState,
    quantity: number,
    price: Paise,
    quote: Quote,
    before: Paise,
    keep: boolean,
  ): Paise {
    const market = this.#market;
    const charges = market === undefined ? 0 : market.fillCharges(order, quantity * price);
    let after = before + order.reserved + (order.side === "BUY" ? -1 : 1) * quantity * price - charges;
    const rest = order.quantity - order.filled_quantity - quantity;
    if (market?.kiteMargin !== true) {
      // reservation() of the order after the fill, without a copy of it (this runs on every fill).
      if (keep && rest > 0 && order.side === "BUY")
        after -= rest * buyReference(order, quote, this.#settings.slippage_bps);
      return after;
    }
    // Kite's margin: the position the fill leaves lends or holds differently; the rest blocks margin.
    const now = this.#account.positions.get(positionKey(order.exchange, order.symbol, order.product));
    const next: PositionState =
      now === undefined
        ? {
            symbol: order.symbol,
            exchange: order.exchange,
            product: order.product,
            quantity: 0,
            cost: 0,
            realized: 0,
          }
        : { ...now };
    const credit = now === undefined ? 0 : market.positionCredit(now);
    applyFill(next, order.side, quantity, price);
    after += market.positionCredit(next) - credit;
    if (keep && rest > 0) {
      const filledAfter = { ...order, filled_quantity: order.filled_quantity + quantity };
      const margin = market.orderMargin(filledAfter, this.#referencePaise(filledAfter, quote), next.quantity);
      if (typeof margin === "number") after -= margin;
    }
    return after;
  }

  #applyFill(change: Change, order: OrderState, quantity: number, price: Paise, quote: Quote): void {
    const account = this.#account;
    // Charges first: they are the order's charges after this fill minus before (per-order caps).
    const charges = this.#market === undefined ? 0 : this.#market.fillCharges(order, quantity * price);
    const filled = order.filled_quantity + quantity;
    order.filled_value += quantity * price;
    order.filled_quantity = filled;
    order.average_price = averageRupees(order.filled_value, filled);
    const done = filled >= order.quantity;
    this.#transition(order, done ? "FILLED" : "PARTIALLY_FILLED");
    const position = account.position(order.exchange, order.symbol, order.product);
    applyFill(position, order.side, quantity, price);
    noteChanged(change.positions, position);
    account.cash += (order.side === "BUY" ? -1 : 1) * quantity * price;
    if (charges > 0) {
      account.cash -= charges;
      order.charges = (order.charges ?? 0) + charges;
      position.charges = (position.charges ?? 0) + charges;
    }
    // A partly filled BUY keeps holding cash for its rest, at this quote (MARKET) or its limit.
    if (done) account.retire(change, order);
    else account.setReserved(order, this.reservation(order, quote));
    this.touch(change, order, done ? "ORDER_FILLED" : "ORDER_PARTIALLY_FILLED", quantity, price);
  }

  /** IOC: whatever did not fill at once is cancelled, as exchanges do. A pending stop waits. */
  #cancelUnfilledIoc(change: Change, order: OrderState): void {
    if (
      order.validity !== "IOC" ||
      isTerminal(order.status) ||
      order.status === "TRIGGER_PENDING" ||
      order.release_at !== undefined
    )
      return;
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

  /**
   * What the market's clock makes due at `nowMs`: DAY orders past their session's close expire,
   * AMOs due join the book, MIS positions outside open..square-off are closed at market, and GTTs
   * a year old expire (announced as GTT_DELETED with status "expired").
   */
  sessionTick(change: Change, nowMs: number, quoteOf: (key: InstrumentKey) => Quote | undefined): void {
    const market = this.#market;
    if (market === undefined) return;
    // Asked before anything here touches an order: this tick's own events would hide the miss.
    const missed = this.#missedSquareOff(market, nowMs);
    // The missed square-off came before the closes and opens since: it goes first, as it would have.
    if (missed !== undefined) this.#squareOff(change, missed, quoteOf);
    for (const [key, resting] of this.#account.resting) {
      for (const order of Array.from(resting)) {
        if (isTerminal(order.status)) continue;
        const expiry = market.dayExpiry(order);
        if (order.validity === "DAY" && expiry !== undefined && expiry <= nowMs) {
          this.#end(
            change,
            order,
            "EXPIRED",
            "ORDER_EXPIRED",
            "DAY order expired at the close of its session",
          );
        } else if (order.release_at !== undefined && order.release_at <= nowMs) {
          this.#release(change, order, quoteOf(key));
        }
      }
    }
    if (market.squareOffDue(nowMs)) this.#squareOff(change, nowMs, quoteOf);
    for (const gtt of Array.from(this.#account.gtts.values())) {
      if (gtt.status !== "active") continue;
      const expiry = market.gttExpiry(gtt);
      if (expiry === undefined || expiry > nowMs) continue;
      gtt.status = "expired";
      gtt.updated_at = change.now;
      this.#account.retireGtt(change, gtt);
      this.touchGtt(change, gtt, "GTT_DELETED");
    }
  }

  /**
   * A broker closed over a square-off may come back inside a later session's open..15:20 with an
   * earlier session's MIS positions or orders: their square-off was missed. Every fill is an order event, so
   * the latest order timestamp bounds when any position last changed; a square-off after it that
   * has passed by now was missed. Returns that square-off's instant.
   */
  #missedSquareOff(market: PaperMarket, nowMs: number): number | undefined {
    let open = false;
    for (const position of this.#account.positions.values()) {
      if (position.product === "MIS" && position.quantity !== 0) {
        open = true;
        break;
      }
    }
    // A live MIS order is cancelled by the square-off too, position or not.
    for (const resting of open ? [] : this.#account.resting.values()) {
      for (const order of resting) {
        if (order.product === "MIS" && !isTerminal(order.status)) {
          open = true;
          break;
        }
      }
      if (open) break;
    }
    if (!open) return undefined;
    let last = 0;
    for (const order of this.#account.orders.values()) {
      const at = Date.parse(order.timestamp);
      if (at > last) last = at;
    }
    return market.squareOffPassed(last, nowMs);
  }

  /**
   * Kite's intraday square-off: live MIS orders are cancelled, open MIS positions closed at market.
   * Its orders, fills and events carry `atMs`, the time it ran for (15:20 IST), not the time a
   * reopened broker caught it up: P&L by time and the trade log must read as the market ran.
   */
  #squareOff(change: Change, atMs: number, quoteOf: (key: InstrumentKey) => Quote | undefined): void {
    const now = change.now;
    const at = new Date(atMs).toISOString();
    if (at < now) change.now = at;
    try {
      this.#squareOffAt(change, atMs, quoteOf);
    } finally {
      change.now = now;
    }
  }

  #squareOffAt(change: Change, atMs: number, quoteOf: (key: InstrumentKey) => Quote | undefined): void {
    for (const resting of this.#account.resting.values()) {
      for (const order of Array.from(resting)) {
        // An MIS AMO for the next session is not today's business, nor, when a missed square-off
        // is caught up, one placed after it (only AMOs can be).
        if (order.product !== "MIS" || isTerminal(order.status)) continue;
        if (order.release_at !== undefined && order.release_at > atMs) continue;
        if (Date.parse(order.placed_at) > atMs) continue;
        this.#end(
          change,
          order,
          "CANCELLED",
          "ORDER_CANCELLED",
          "MIS square-off: intraday orders are cancelled",
        );
      }
    }
    for (const position of Array.from(this.#account.positions.values())) {
      if (position.product !== "MIS" || position.quantity === 0) continue;
      const order: OrderState = {
        order_id: this.#account.newOrderId(),
        client_order_id: newClientOrderId(),
        symbol: position.symbol,
        exchange: position.exchange,
        side: position.quantity > 0 ? "SELL" : "BUY",
        quantity: Math.abs(position.quantity),
        order_type: "MARKET",
        product: "MIS",
        validity: "DAY",
        tag: "SQUAREOFF",
        status: "OPEN",
        filled_quantity: 0,
        average_price: 0,
        placed_at: change.now,
        timestamp: change.now,
        reserved: 0,
        filled_value: 0,
        client_id_given: false,
      };
      // Past the square-off time the market rules refuse MIS orders: this one is the broker's own.
      const key = instrumentKey(position.exchange, position.symbol);
      const quote = quoteOf(key);
      this.admit(change, order, quote, false);
      // Closed at market means closed: what the quote's depth could not take fills at its last
      // level, or the position would ride overnight as MIS (and a resting remainder expire at 15:30).
      if (isTerminal(order.status) || quote === undefined) continue;
      const price = this.#market?.lastLevelPrice(key, order.side, quote);
      if (price !== undefined)
        this.#fill(change, order, order.quantity - order.filled_quantity, price, quote);
    }
  }

  /** Notes an order event; `fillQuantity` > 0 is the fill it reports, at `fillPrice` paise. */
  touch(
    change: Change,
    order: OrderState,
    type: OrderEventType,
    fillQuantity = 0,
    fillPrice: Paise = 0,
  ): void {
    order.timestamp = change.now;
    noteChanged(change.orders, order);
    const seq = ++this.#account.seq;
    if (change.defer) {
      change.events.defer(type, seq, order, change.now, fillQuantity, fillPrice);
      return;
    }
    const event: OrderEvent = { type, seq, order: laterView(order), timestamp: change.now };
    if (fillQuantity > 0) {
      // The id names the order and its filled quantity after this fill, which only grows: unique, and
      // the same when a journal replay rebuilds the order.
      event.trades = [
        {
          trade_id: `${order.order_id}-${order.filled_quantity}`,
          quantity: fillQuantity,
          price: toRupees(fillPrice),
          timestamp: change.now,
        },
      ];
    }
    change.events.push(event);
  }

  touchGtt(change: Change, gtt: GttState, type: GttEventType): void {
    noteChanged(change.gtts, gtt);
    change.events.push({ type, seq: ++this.#account.seq, gtt: gttView(gtt), timestamp: change.now });
  }
}
