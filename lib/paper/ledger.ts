import type { Position, Side } from "../protocol";
import type { InstrumentKey } from "../protocol/instrument";
import type { PositionState } from "./account-state";
import type { Paise } from "./money";
import { averageRupees, toRupees } from "./money";

export type PositionKey = `${InstrumentKey}:${PositionState["product"]}`;

/** The last key made and its parts: a fill, its admission and its position ask for the same key. */
let lastExchange = "";
let lastSymbol = "";
let lastProduct = "";
let lastKey = "" as PositionKey;

export function positionKey(
  exchange: string,
  symbol: string,
  product: PositionState["product"],
): PositionKey {
  // A new string per call was ~110 bytes of garbage per placed order; a run of orders on one
  // instrument and product (the usual case) asks for the same key again and again.
  if (symbol === lastSymbol && exchange === lastExchange && product === lastProduct) return lastKey;
  lastKey = `${exchange}:${symbol}:${product}` as PositionKey;
  lastExchange = exchange;
  lastSymbol = symbol;
  lastProduct = product;
  return lastKey;
}

/**
 * Applies a fill to a net position, in paise. `cost` is quantity × average price (negative for a
 * short), so `starting cash = cash + Σ cost − Σ realized + Σ charges` holds exactly after every fill
 * (charges are taken from cash beside the fill, never mixed into cost or realized): adding
 * moves the cost by the fill's value; reducing takes the closed share of the cost off (rounded to
 * the paisa; the rest stays with the open quantity, so a position closed flat realizes exactly its
 * proceeds minus its cost); crossing through zero opens the rest at the fill price.
 */
export function applyFill(position: PositionState, side: Side, quantity: number, price: Paise): void {
  const sign = side === "BUY" ? 1 : -1;
  const before = position.quantity;
  if (before === 0 || Math.sign(before) === sign) {
    position.cost += sign * quantity * price;
    position.quantity = before + sign * quantity;
    return;
  }
  const closing = Math.min(Math.abs(before), quantity);
  const removed =
    closing === Math.abs(before) ? position.cost : Math.round((position.cost * closing) / Math.abs(before));
  // Cash moves by −sign × closing × price; the identity fixes what is realized.
  position.realized += -sign * closing * price - removed;
  position.cost -= removed;
  position.quantity = before + sign * closing;
  const rest = quantity - closing;
  if (rest > 0) {
    position.cost += sign * rest * price;
    position.quantity += sign * rest;
  }
}

/** With `withCharges`, the view adds the position's charges and its net P&L (gross − charges). */
export function positionView(position: PositionState, lastPrice: Paise, withCharges = false): Position {
  const view: Position = {
    symbol: position.symbol,
    exchange: position.exchange,
    product: position.product,
    quantity: position.quantity,
    average_price: averageRupees(position.cost, position.quantity),
    last_price: toRupees(lastPrice),
    realized_pnl: toRupees(position.realized),
    unrealized_pnl: toRupees(position.quantity * lastPrice - position.cost),
  };
  if (withCharges) {
    const charges = position.charges ?? 0;
    view.charges = toRupees(charges);
    view.net_pnl = toRupees(position.realized + position.quantity * lastPrice - position.cost - charges);
  }
  return view;
}
