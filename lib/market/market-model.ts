import { BrokerError } from "../protocol/errors";
import type { Product, Side } from "../protocol/fields";
import type { OrderRequest } from "../protocol/orders";
import type { ChargeRates, Charges } from "./charges";
import { NO_CHARGES, chargeCategory, fillCharges, orderCharges } from "./charges";
import type { Instrument, InstrumentCheckContext } from "./instruments";
import { InstrumentRegistry, tickPaise } from "./instruments";
import type { LiquidityQuote } from "./liquidity";
import { QuoteLiquidity } from "./liquidity";
import type { MarginOrder, MarginRequirement } from "./margin";
import { orderMargin } from "./margin";
import { parseMarketSettings } from "./settings";
import type { MarketSettings } from "./settings";
import type { SessionAdmission } from "./trading-calendar";
import { TradingCalendar } from "./trading-calendar";

/** The order fields admission looks at: the protocol's OrderRequest, plus the AMO wish. */
export type MarketOrder = Pick<OrderRequest, "exchange" | "symbol" | "side" | "product" | "quantity"> &
  Partial<Pick<OrderRequest, "price" | "trigger_price">> & {
    /** Ask for AMO queuing when the market is closed (Kite's `amo` variety). */
    amo?: boolean | undefined;
  };

export type MarketAdmission = {
  instrument: Instrument;
  session: SessionAdmission & { kind: "open" | "amo" };
};

/**
 * One object the paper broker (and the risk guard) holds: the calendar, the instrument registry
 * and the rules for charges, margin and liquidity, built from one settings value. Stateless apart
 * from the user's instrument additions; time always comes in as an argument.
 */
export class MarketModel {
  readonly settings: MarketSettings;
  readonly calendar: TradingCalendar;
  readonly instruments: InstrumentRegistry;

  constructor(settings: unknown = {}) {
    this.settings = parseMarketSettings(settings);
    this.calendar = new TradingCalendar(this.settings.calendar);
    this.instruments = new InstrumentRegistry(this.settings.instruments);
  }

  /**
   * Whether an order may enter the book at `nowMs`: instrument rules first (a malformed order is
   * refused whatever the hour), then market hours. The one admission path for place and modify.
   */
  admit(
    order: MarketOrder,
    nowMs: number,
    context: InstrumentCheckContext = {},
  ): MarketAdmission | BrokerError {
    const instrument = this.instruments.resolve(order.exchange, order.symbol);
    if (instrument instanceof BrokerError) return instrument;
    const refused = this.instruments.checkOrder(order, { ...context, now_ms: context.now_ms ?? nowMs });
    if (refused !== undefined) return refused;
    const segment = instrument.segment === "FUT" || instrument.segment === "OPT" ? "derivatives" : "equity";
    const session = this.calendar.admit(nowMs, { segment, amo: order.amo === true });
    if (session.kind === "closed") return session.error;
    if (
      order.product === "MIS" &&
      session.session !== undefined &&
      session.kind === "open" &&
      nowMs >= session.session.square_off_ms
    ) {
      return new BrokerError(
        "ORDER_REJECTED",
        "product: MIS orders are not accepted after the intraday square-off time",
      );
    }
    return { instrument, session };
  }

  /** The charge rates for a trade in this instrument and product (all zero when charges are off). */
  rates(instrument: Instrument, product: Product): ChargeRates {
    const schedule = this.settings.charges.enabled ? this.settings.charges.schedule : NO_CHARGES;
    return schedule[chargeCategory(instrument.segment, product)];
  }

  orderCharges(instrument: Instrument, product: Product, side: Side, turnoverPaise: number): Charges {
    return orderCharges(this.rates(instrument, product), side, turnoverPaise);
  }

  fillCharges(
    instrument: Instrument,
    product: Product,
    side: Side,
    turnoverBefore: number,
    fillTurnover: number,
  ): Charges {
    return fillCharges(this.rates(instrument, product), side, turnoverBefore, fillTurnover);
  }

  margin(order: MarginOrder): MarginRequirement | BrokerError {
    return orderMargin(this.settings.margin, order);
  }

  /** A fresh liquidity view of one quote; offer it the resting orders in time priority. */
  liquidity(quote: LiquidityQuote, instrument: Instrument): QuoteLiquidity {
    const tick = this.settings.instruments.enforce_tick ? tickPaise(instrument) : 1;
    return new QuoteLiquidity(quote, this.settings.liquidity, tick);
  }
}
