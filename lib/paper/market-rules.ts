import type { Quote } from "../protocol";
import type { GttRequest } from "../protocol/gtt";
import { BrokerError } from "../protocol/errors";
import type { InstrumentKey } from "../protocol/instrument";
import { instrumentKey } from "../protocol/instrument";
import type { Instrument } from "../market/instruments";
import type { QuoteLiquidity } from "../market/liquidity";
import { MarketModel } from "../market/market-model";
import { gttExpiry } from "../market/trading-calendar";
import type { GttState, LiquidityTaken, OrderState, PositionState } from "./account-state";
import type { Clock } from "./clock";
import { buyLimitPaise, sellLimitPaise, toPaise } from "./money";
import type { Paise } from "./money";
import type { PaperSettings } from "./settings";

/** Why an order may not be taken (placed, or modified into what it asks to be). */
export interface Refusal {
  code: BrokerError["code"];
  message: string;
}

/** One fill the market's liquidity allows: how many at which price. */
export interface MarketFill {
  quantity: number;
  price: Paise;
}

/**
 * The paper broker's view of lib/market: NSE's rules applied to the account's orders, positions
 * and GTTs (docs/MARKET-RULES.md §8). The broker holds one only when the market is not the plain
 * `relaxed` preset, so the relaxed account does exactly what it did before, at the same speed.
 * Time comes from the broker's injectable clock.
 */
export class PaperMarket {
  readonly model: MarketModel;
  readonly #clock: Clock;
  /** The liquidity of each instrument's current quote, consumed by the orders it fills. */
  readonly #books = new Map<InstrumentKey, { quote: Quote; book: QuoteLiquidity; taken: LiquidityTaken }>();
  readonly #standIns = new Map<InstrumentKey, Instrument>();

  /** Undefined for the plain relaxed preset: the broker then skips every market rule. */
  static of(market: PaperSettings["market"], clock: Clock): PaperMarket | undefined {
    if (market === "relaxed") return undefined;
    return new PaperMarket(typeof market === "string" ? { preset: market } : market, clock);
  }

  constructor(settings: unknown, clock: Clock) {
    this.model = new MarketModel(settings);
    this.#clock = clock;
  }

  now(): number {
    return this.#clock.now();
  }

  get charges(): boolean {
    return this.model.settings.charges.enabled;
  }

  get kiteMargin(): boolean {
    return this.model.settings.margin.model === "kite";
  }

  get finiteLiquidity(): boolean {
    return !this.model.settings.liquidity.infinite;
  }

  /** Whether the market has sessions at all (not always open): timers, expiry and square-off. */
  get timed(): boolean {
    return !this.model.calendar.settings.always_open;
  }

  isOpen(ms: number): boolean {
    return !this.timed || this.model.calendar.isOpen(ms);
  }

  /**
   * The instrument an order trades. An order already in the book passed admission, but one
   * restored from a journal written under other rules may name an instrument the registry does
   * not know: it trades with a stand-in (tick 0.01, lot 1, equity) rather than break.
   */
  instrument(exchange: OrderState["exchange"], symbol: string): Instrument {
    const known = this.model.instruments.get(exchange, symbol);
    if (known !== undefined) return known;
    const key = instrumentKey(exchange, symbol);
    let standIn = this.#standIns.get(key);
    if (standIn === undefined) {
      standIn = { exchange, symbol, segment: "EQ", tradable: true, tick_size: 0.01, lot_size: 1 };
      this.#standIns.set(key, standIn);
    }
    return standIn;
  }

  /**
   * The market's admission rules for an order as it would enter (or, modified, stay in) the book:
   * the instrument (known, tradable, lot, tick, price band around the last price) and the hours.
   * The price band is measured from the last price, which stands in for the previous close the
   * paper account does not have.
   */
  refusal(order: OrderState, quote: Quote | undefined): Refusal | undefined {
    const admitted = this.model.admit(
      {
        exchange: order.exchange,
        symbol: order.symbol,
        side: order.side,
        product: order.product,
        quantity: order.quantity,
        price: order.price,
        trigger_price: order.trigger_price,
        amo: order.variety === "amo",
      },
      this.now(),
      { reference_price: quote?.last_price },
    );
    if (admitted instanceof BrokerError) return { code: admitted.code, message: admitted.message };
    return undefined;
  }

  /**
   * A GTT's instrument and prices by the instrument rules (symbol known and tradable, lots, ticks
   * of its triggers and leg prices), checked when it is placed or modified rather than when it
   * fires. Hours and bands apply to the order it places, when it fires.
   */
  gttRefusal(request: GttRequest): BrokerError | undefined {
    const now_ms = this.now();
    for (const [i, leg] of request.orders.entries()) {
      const refused = this.model.instruments.checkOrder(
        {
          exchange: request.exchange,
          symbol: request.symbol,
          quantity: leg.quantity,
          price: leg.price,
          trigger_price: request.trigger_values[i],
        },
        { now_ms },
      );
      if (refused !== undefined) return refused;
    }
    return undefined;
  }

  /** When an accepted AMO reaches the book (the next open); undefined when it is in the book now. */
  releaseAt(order: OrderState): number | undefined {
    if (order.variety !== "amo" || !this.timed) return undefined;
    const { segment } = this.instrument(order.exchange, order.symbol);
    const session = this.model.calendar.admit(this.now(), {
      segment: segment === "FUT" || segment === "OPT" ? "derivatives" : "equity",
      amo: true,
    });
    return session.kind === "amo" ? session.session.open_ms : undefined;
  }

  /**
   * What one quote fills of an order now, within the quote's liquidity that orders before it left
   * (time priority); undefined when liquidity is infinite (the relaxed fill rules apply). `restored`
   * is what the journal says was taken from each instrument's quote before a restart.
   */
  fills(
    key: InstrumentKey,
    order: OrderState,
    quote: Quote,
    quantity: number,
    restored: ReadonlyMap<InstrumentKey, LiquidityTaken>,
  ): MarketFill[] | undefined {
    if (!this.finiteLiquidity) return undefined;
    let entry = this.#books.get(key);
    if (entry === undefined || entry.quote !== quote) {
      const book = this.model.liquidity(quote, this.instrument(order.exchange, order.symbol));
      const taken = { quote, buy: 0, sell: 0 };
      // Only for the first quote after a (re)start: a new quote in a running broker starts afresh.
      const before = entry === undefined ? restored.get(key) : undefined;
      // The restored quote object itself (the broker hands it back, see sameQuote): a new quote
      // equal to it in every field, in the same millisecond, is still a new quote.
      if (before !== undefined && before.quote === quote) {
        // Levels are always consumed front to back, so the totals taken rebuild the book exactly.
        if (before.buy > 0)
          taken.buy = book.take({ side: "BUY", order_type: "MARKET", quantity: before.buy }).filled;
        if (before.sell > 0)
          taken.sell = book.take({ side: "SELL", order_type: "MARKET", quantity: before.sell }).filled;
      }
      entry = { quote, book, taken };
      this.#books.set(key, entry);
    }
    const market = order.order_type === "MARKET" || order.order_type === "SL-M";
    const limit = order.price ?? Number.NaN;
    const result = entry.book.take({
      side: order.side,
      order_type: market ? "MARKET" : "LIMIT",
      quantity,
      limit_paise: market ? undefined : order.side === "BUY" ? buyLimitPaise(limit) : sellLimitPaise(limit),
    });
    if (order.side === "BUY") entry.taken.buy += result.filled;
    else entry.taken.sell += result.filled;
    return result.fills.map((fill) => ({ quantity: fill.quantity, price: fill.price_paise }));
  }

  /**
   * The price of the deepest level `quote` offers `side` (paise): where a square-off fills what
   * the depth could not take. Undefined with infinite liquidity (the relaxed rules fill it all).
   */
  lastLevelPrice(key: InstrumentKey, side: OrderState["side"], quote: Quote): Paise | undefined {
    if (!this.finiteLiquidity) return undefined;
    const entry = this.#books.get(key);
    const book =
      entry !== undefined && entry.quote === quote
        ? entry.book
        : this.model.liquidity(quote, this.instrument(quote.exchange, quote.symbol));
    return book.available(side).at(-1)?.price_paise;
  }

  /** What orders have taken from an instrument's current quote so far. */
  taken(key: InstrumentKey): LiquidityTaken | undefined {
    const taken = this.#books.get(key)?.taken;
    return taken === undefined ? undefined : { ...taken };
  }

  /** Forgets every quote's liquidity: the account is being restored from its journal. */
  reset(): void {
    this.#books.clear();
  }

  /** The charges one fill adds to its order (paise), before the fill is added to the order. */
  fillCharges(order: OrderState, fillTurnover: Paise): Paise {
    if (!this.charges) return 0;
    const instrument = this.instrument(order.exchange, order.symbol);
    return this.model.fillCharges(instrument, order.product, order.side, order.filled_value, fillTurnover)
      .total;
  }

  /**
   * Cash an order's unfilled rest blocks under Kite's margin (only the part that opens or grows
   * the position `held` counts), or the refusal (a CNC sell beyond holdings).
   */
  orderMargin(order: OrderState, pricePaise: Paise, held: number): Paise | Refusal {
    const instrument = this.instrument(order.exchange, order.symbol);
    const margin = this.model.margin({
      side: order.side,
      product: order.product,
      segment: instrument.segment,
      quantity: order.quantity - order.filled_quantity,
      price_paise: pricePaise,
      position_quantity: held,
      strike_paise: instrument.strike === undefined ? undefined : toPaise(instrument.strike),
    });
    if (margin instanceof BrokerError) return { code: margin.code, message: margin.message };
    return margin.blocked_paise;
  }

  /**
   * What an open position adds to the cash that can be spent, under Kite's margin: cost − margin.
   * A long CNC position was paid in full (0); a long MIS one holds only its margin, the rest of
   * its cost is lent (positive); a short keeps its proceeds aside and blocks margin (negative).
   */
  positionCredit(position: PositionState): Paise {
    if (position.quantity === 0) return 0;
    const instrument = this.instrument(position.exchange, position.symbol);
    const quantity = Math.abs(position.quantity);
    const margin = this.model.margin({
      side: position.quantity > 0 ? "BUY" : "SELL",
      product: position.product,
      segment: instrument.segment,
      quantity: instrument.segment === "OPT" ? quantity : 1,
      // Per unit for options (the strike sets a written option's margin), the whole cost otherwise.
      price_paise:
        instrument.segment === "OPT"
          ? Math.ceil(Math.abs(position.cost) / quantity)
          : Math.abs(position.cost),
      position_quantity: 0,
      strike_paise: instrument.strike === undefined ? undefined : toPaise(instrument.strike),
    });
    // A short CNC position (from a journal written under relaxed rules) is held at its full value.
    const blocked = margin instanceof BrokerError ? Math.abs(position.cost) : margin.blocked_paise;
    return position.cost - blocked;
  }

  /** When a DAY order placed at `placedAt` expires: the close of the session it rests in. */
  dayExpiry(order: OrderState): number | undefined {
    if (!this.timed) return undefined;
    return this.model.calendar.dayOrderExpiry(Date.parse(order.placed_at));
  }

  /**
   * Whether open MIS positions must be flat at `ms`: everywhere except between a session's open
   * and its square-off (15:20 IST), so a broker that was down over the square-off squares off
   * when it comes back.
   */
  squareOffDue(ms: number): boolean {
    if (!this.timed) return false;
    const session = this.model.calendar.currentOrNextSession(ms);
    return session === undefined || !(session.open_ms <= ms && ms < session.square_off_ms);
  }

  /** The square-off of the session in progress (or next) at `sinceMs`, if it has come by `ms`. */
  squareOffPassed(sinceMs: number, ms: number): number | undefined {
    if (!this.timed) return undefined;
    const at = this.model.calendar.misSquareOff(sinceMs);
    return at !== undefined && at <= ms ? at : undefined;
  }

  gttExpiry(gtt: GttState): number | undefined {
    if (!this.timed) return undefined;
    return gttExpiry(Date.parse(gtt.created_at));
  }

  /** The next instant something falls due on the market's clock: an open, a square-off, a close. */
  nextBoundary(ms: number): number | undefined {
    if (!this.timed) return undefined;
    const calendar = this.model.calendar;
    const session = calendar.currentOrNextSession(ms);
    if (session === undefined) return undefined;
    for (const at of [session.open_ms, session.square_off_ms, session.close_ms]) if (at > ms) return at;
    return calendar.nextOpen(ms);
  }
}

/**
 * The same quote, as the journal gave it back: every field equal. On reopen the broker makes the
 * restored liquidity point at the quote object it feeds when they are equal, and fills() then
 * goes by identity.
 */
export function sameQuote(a: Quote, b: Quote): boolean {
  return (
    a.timestamp === b.timestamp &&
    a.last_price === b.last_price &&
    a.bid === b.bid &&
    a.ask === b.ask &&
    a.volume === b.volume &&
    a.symbol === b.symbol &&
    a.exchange === b.exchange
  );
}
