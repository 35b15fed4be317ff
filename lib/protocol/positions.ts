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
});
export type Position = z.output<typeof Position>;

export const Account = z.strictObject({
  cash: z.number(),
  realized_pnl: z.number(),
  unrealized_pnl: z.number(),
  equity: z.number(),
});
export type Account = z.output<typeof Account>;
