import { z } from "zod";
import { Exchange, Product, Symbol } from "./fields";

/** A net position per symbol/exchange/product. quantity < 0 is short. P&L in the account currency. */
export const Position = z.strictObject({
  symbol: Symbol,
  exchange: Exchange,
  product: Product,
  quantity: z.number().int(),
  average_price: z.number().nonnegative(),
  last_price: z.number().nonnegative(),
  realized_pnl: z.number(),
  unrealized_pnl: z.number(),
  /** Charges paid on the fills of this position (brokers that model them; absent = not modelled). */
  charges: z.number().nonnegative().optional(),
  /** realized + unrealized − charges, when charges are modelled. */
  net_pnl: z.number().optional(),
});
export type Position = z.output<typeof Position>;

export const Account = z.strictObject({
  cash: z.number(),
  realized_pnl: z.number(),
  unrealized_pnl: z.number(),
  equity: z.number(),
  /**
   * What may still be spent on new orders: cash less what open orders hold back (and, under Kite's
   * margin, plus what MIS longs lend, less what shorts keep aside). Absent = not modelled.
   */
  available: z.number().optional(),
  /** Σ charges paid (brokers that model them; absent = not modelled). */
  charges: z.number().nonnegative().optional(),
  /** realized + unrealized − charges, when charges are modelled. */
  net_pnl: z.number().optional(),
});
export type Account = z.output<typeof Account>;
