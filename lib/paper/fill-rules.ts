import type { OrderSnapshot, Quote } from "../protocol";
import type { Paise } from "./money";
import { buyLimitPaise, sellLimitPaise, toPaise } from "./money";

// The paper broker's fill rules (README "The paper broker's fill rules"), as pure functions in paise.

type Priced = Pick<OrderSnapshot, "side" | "order_type" | "price" | "trigger_price">;

export const STOP_TYPES: ReadonlySet<string> = new Set(["SL", "SL-M"]);

export function isStop(order: Pick<OrderSnapshot, "order_type">): boolean {
  return STOP_TYPES.has(order.order_type);
}

/** MARKET (and a triggered SL-M) pay the touch, or the last price ± slippage when there is no book. */
function marketPrice(side: OrderSnapshot["side"], quote: Quote, slippageBps: number): Paise {
  const slip = slippageBps / 10_000;
  if (side === "BUY")
    return quote.ask !== undefined ? toPaise(quote.ask) : toPaise(quote.last_price * (1 + slip));
  return quote.bid !== undefined ? toPaise(quote.bid) : toPaise(quote.last_price * (1 - slip));
}

/** The price this quote fills the order at, or undefined when it is not marketable. */
export function fillPrice(order: Priced, quote: Quote, slippageBps: number): Paise | undefined {
  if (order.order_type === "MARKET" || order.order_type === "SL-M") {
    return marketPrice(order.side, quote, slippageBps);
  }
  const limit = order.price ?? Number.NaN;
  if (order.side === "BUY") {
    const offer = toPaise(quote.ask ?? quote.last_price);
    return offer <= buyLimitPaise(limit) ? offer : undefined;
  }
  const bid = toPaise(quote.bid ?? quote.last_price);
  return bid >= sellLimitPaise(limit) ? bid : undefined;
}

/** A stop triggers when the last price reaches its trigger from the side it was placed on. */
export function triggered(order: Priced, quote: Quote): boolean {
  const trigger = order.trigger_price ?? Number.NaN;
  return order.side === "BUY" ? quote.last_price >= trigger : quote.last_price <= trigger;
}

/** Why a stop's trigger is already on the wrong side of the market, or undefined when it is not. */
export function triggerPassed(order: Priced, quote: Quote): string | undefined {
  const trigger = order.trigger_price;
  if (trigger === undefined) return undefined;
  const last = quote.last_price;
  if (order.side === "BUY" && trigger <= last) {
    return `trigger_price ${trigger} must be above the last price ${last} for a BUY stop order`;
  }
  if (order.side === "SELL" && trigger >= last) {
    return `trigger_price ${trigger} must be below the last price ${last} for a SELL stop order`;
  }
  return undefined;
}

/** What one unit of a BUY is expected to cost, for the cash it holds back: its limit, or the market. */
export function buyReference(order: Priced, quote: Quote | undefined, slippageBps: number): Paise {
  if (order.price !== undefined) return buyLimitPaise(order.price);
  if (order.order_type === "SL-M" && order.trigger_price !== undefined) {
    return toPaise(order.trigger_price * (1 + slippageBps / 10_000));
  }
  return quote === undefined ? 0 : marketPrice("BUY", quote, slippageBps);
}
