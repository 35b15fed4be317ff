import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import type { Product, Side } from "../protocol/fields";
import type { InstrumentSegment } from "./instruments";
import { mulDivCeil, safeProduct } from "./money";
import type { Paise } from "./money";

/**
 * How much cash an order blocks.
 *
 * - `cash` (relaxed; the paper broker's behaviour before this model): a BUY blocks its full
 *   value whatever the product, a SELL blocks nothing, and sale proceeds are spendable at once.
 * - `kite`: what Kite applies. Only the part of an order that opens or grows a position blocks
 *   margin; the part that closes one blocks nothing. Equity CNC buys pay in full and CNC cannot
 *   sell short. Equity MIS blocks value ÷ mis_leverage on either side. Futures block
 *   futures_margin_pct of their value (Kite's SPAN + exposure, approximated by one percentage).
 *   Bought options pay the premium; written options block option_short_margin_pct of the strike
 *   value. The proceeds of a short sale are not spendable: they stay with the broker until the
 *   short is covered.
 */
export const MarginSettings = z.strictObject({
  model: z.enum(["cash", "kite"], { error: "must be cash or kite" }).default("kite"),
  /** Equity intraday leverage: 5 means MIS blocks 20% of the order's value. */
  mis_leverage: z
    .number()
    .min(1, { error: "must be at least 1" })
    .max(50, { error: "must be at most 50" })
    .default(5),
  futures_margin_pct: z.number().positive().max(100, { error: "must be at most 100" }).default(15),
  option_short_margin_pct: z.number().positive().max(100, { error: "must be at most 100" }).default(15),
});
export type MarginSettingsInput = z.input<typeof MarginSettings>;
export type MarginSettings = z.output<typeof MarginSettings>;

export interface MarginOrder {
  side: Side;
  product: Product;
  segment: InstrumentSegment;
  quantity: number;
  /** The price the order is expected to trade at (its limit, or the market plus slippage), paise. */
  price_paise: Paise;
  /** The account's net position in this instrument and product before the order (short < 0). */
  position_quantity: number;
  /** Options: the strike in paise, for the margin of a written option. */
  strike_paise?: Paise | undefined;
}

export interface MarginRequirement {
  /** Cash the order holds while it rests and its fills keep while the position is open. */
  blocked_paise: Paise;
  /** The part of the quantity that opens or grows a position. */
  opening_quantity: number;
  /** The part that reduces an existing position of the other sign. */
  closing_quantity: number;
  /** Whether the cash a SELL fill brings in may be spent (false for the opening part of a short). */
  proceeds_spendable: boolean;
}

function basisPoints(pct: number): number {
  return Math.round(pct * 100);
}

/**
 * The cash an order blocks, or the error that refuses it (a CNC sell beyond holdings). Amounts
 * are rounded up to the paisa: a broker never blocks less than the rate says.
 */
export function orderMargin(settings: MarginSettings, order: MarginOrder): MarginRequirement | BrokerError {
  const held = order.position_quantity;
  const closing_quantity =
    order.side === "BUY"
      ? Math.min(order.quantity, Math.max(0, -held))
      : Math.min(order.quantity, Math.max(0, held));
  const opening_quantity = order.quantity - closing_quantity;
  const value = (quantity: number) => safeProduct(quantity, order.price_paise, "order value");

  if (settings.model === "cash") {
    return {
      blocked_paise: order.side === "BUY" ? value(order.quantity) : 0,
      opening_quantity,
      closing_quantity,
      proceeds_spendable: true,
    };
  }

  const result = (blocked_paise: Paise): MarginRequirement => ({
    blocked_paise,
    opening_quantity,
    closing_quantity,
    proceeds_spendable: order.side === "BUY" || opening_quantity === 0,
  });
  if (opening_quantity === 0) return result(0);
  const opening = value(opening_quantity);

  switch (order.segment) {
    case "EQ":
    case "INDEX":
      if (order.product === "MIS")
        return result(mulDivCeil(opening, 10_000, basisPoints(settings.mis_leverage * 100)));
      if (order.side === "SELL") {
        return new BrokerError(
          "INSUFFICIENT_FUNDS",
          `quantity: a ${order.product} SELL of ${order.quantity} with ${Math.max(0, held)} held would sell short; ` +
            `equity ${order.product} positions cannot be short, use MIS for an intraday short`,
        );
      }
      return result(opening);
    case "FUT":
      return result(mulDivCeil(opening, basisPoints(settings.futures_margin_pct), 10_000));
    case "OPT":
      if (order.side === "BUY") return result(opening);
      if (order.strike_paise === undefined) {
        return new BrokerError("VALIDATION", "strike: a written option needs its strike to compute margin");
      }
      return result(
        mulDivCeil(
          safeProduct(opening_quantity, order.strike_paise, "option notional"),
          basisPoints(settings.option_short_margin_pct),
          10_000,
        ),
      );
  }
}
