import { z } from "zod";
import { Exchange, IsoTimestamp, OrderId, Price, Product, Quantity, Side, Symbol } from "./fields";

/** An order a GTT places when it triggers. Kite allows LIMIT orders only in GTTs. */
export const GttOrder = z.strictObject({
  side: Side,
  quantity: Quantity,
  order_type: z.literal("LIMIT", { error: "must be LIMIT (GTT orders are limit orders)" }).default("LIMIT"),
  price: Price,
  product: Product.default("CNC"),
});
export type GttOrder = z.output<typeof GttOrder>;

const common = {
  symbol: Symbol,
  exchange: Exchange.default("NSE"),
  /** The last price when the GTT was placed; decides the direction a single trigger fires in. */
  last_price: Price.optional(),
};

/** Fires once when the last price reaches trigger_values[0] (from whichever side it started). */
export const GttSingleRequest = z.strictObject({
  type: z.literal("single"),
  ...common,
  trigger_values: z.tuple([Price], { error: "must hold exactly one trigger value for a single GTT" }),
  orders: z.tuple([GttOrder], { error: "must hold exactly one order for a single GTT" }),
});

/**
 * OCO: leg 0 is the stop-loss (fires when the price falls to trigger_values[0]), leg 1 the target
 * (fires when the price rises to trigger_values[1]); whichever fires first cancels the other.
 */
export const GttOcoRequest = z
  .strictObject({
    type: z.literal("two-leg"),
    ...common,
    trigger_values: z.tuple([Price, Price], {
      error: "must hold exactly two trigger values for a two-leg GTT",
    }),
    orders: z.tuple([GttOrder, GttOrder], { error: "must hold exactly two orders for a two-leg GTT" }),
  })
  .refine((g) => g.trigger_values[0] < g.trigger_values[1], {
    path: ["trigger_values"],
    message: "the stop-loss trigger (first) must be below the target trigger (second)",
  });

export const GttRequest = z.discriminatedUnion("type", [GttSingleRequest, GttOcoRequest], {
  error: (issue) => (issue.input === undefined ? "is required" : "must be single or two-leg"),
});
export type GttRequestInput = z.input<typeof GttRequest>;
export type GttRequest = z.output<typeof GttRequest>;

export const GttStatus = z.enum([
  "active",
  "triggered",
  "disabled",
  "expired",
  "cancelled",
  "rejected",
  "deleted",
]);
export type GttStatus = z.infer<typeof GttStatus>;

export const GttId = OrderId;

export const GttSnapshot = z.strictObject({
  gtt_id: GttId,
  type: z.enum(["single", "two-leg"]),
  symbol: Symbol,
  exchange: Exchange,
  last_price: Price.optional(),
  trigger_values: z.array(Price),
  orders: z.array(GttOrder),
  status: GttStatus,
  /** Index of the leg that fired, once triggered. */
  triggered_leg: z.number().int().nonnegative().optional(),
  /** Orders the GTT placed when it triggered. */
  order_ids: z.array(OrderId),
  created_at: IsoTimestamp,
  updated_at: IsoTimestamp,
});
export type GttSnapshot = z.output<typeof GttSnapshot>;

/** delete needs only the id; modify takes the id plus a whole new GttRequest (Kite replaces a GTT whole). */
export const GttRef = z.strictObject({ gtt_id: GttId });
export type GttRef = z.output<typeof GttRef>;
