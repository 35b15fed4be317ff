import type { Exchange, Position, Product, Side } from "../protocol";
import type { InstrumentKey } from "../protocol/instrument";

/** One net position as the paper account keeps it (plain data: it goes into the journal as is). */
export interface PositionState {
  symbol: string;
  exchange: Exchange;
  product: Product;
  quantity: number;
  average_price: number;
  realized_pnl: number;
}

export type PositionKey = `${InstrumentKey}:${Product}`;

export function positionKey(exchange: Exchange, symbol: string, product: Product): PositionKey {
  return `${exchange}:${symbol}:${product}`;
}

function roundMoney(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * Applies a fill to a net position. Adding to a position moves its average price; reducing it
 * realizes P&L against the average; crossing through zero opens the rest at the fill price.
 */
export function applyFill(position: PositionState, side: Side, quantity: number, price: number): void {
  const signed = side === "BUY" ? quantity : -quantity;
  const before = position.quantity;
  if (before === 0 || Math.sign(before) === Math.sign(signed)) {
    const total = Math.abs(before) + quantity;
    position.average_price = (position.average_price * Math.abs(before) + price * quantity) / total;
    position.quantity = before + signed;
    return;
  }
  const closing = Math.min(Math.abs(before), quantity);
  const direction = Math.sign(before);
  position.realized_pnl = roundMoney(
    position.realized_pnl + (price - position.average_price) * closing * direction,
  );
  position.quantity = before + signed;
  if (position.quantity === 0) position.average_price = 0;
  else if (Math.sign(position.quantity) !== direction) position.average_price = price;
}

export function positionView(position: PositionState, lastPrice: number): Position {
  return {
    symbol: position.symbol,
    exchange: position.exchange,
    product: position.product,
    quantity: position.quantity,
    average_price: Math.round(position.average_price * 10_000) / 10_000,
    last_price: lastPrice,
    realized_pnl: position.realized_pnl,
    unrealized_pnl:
      position.quantity === 0 ? 0 : roundMoney((lastPrice - position.average_price) * position.quantity),
  };
}
