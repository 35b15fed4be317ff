import { z } from "zod";
import {
  ClientOrderId,
  Exchange,
  IsoTimestamp,
  OrderId,
  OrderType,
  Price,
  Product,
  Quantity,
  Side,
  Symbol,
  Tag,
  Validity,
  Variety,
} from "./fields";

export const OrderStatus = z.enum([
  "PENDING",
  "OPEN",
  "TRIGGER_PENDING",
  "PARTIALLY_FILLED",
  "FILLED",
  "CANCELLED",
  "REJECTED",
  "EXPIRED",
]);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set<OrderStatus>([
  "FILLED",
  "CANCELLED",
  "REJECTED",
  "EXPIRED",
]);

export function isTerminal(status: OrderStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** Which price fields an order type needs and which it must not carry. */
function checkPriceFields(
  value: {
    side?: "BUY" | "SELL" | undefined;
    order_type?: OrderType | undefined;
    price?: number | undefined;
    trigger_price?: number | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const type = value.order_type;
  if (type === undefined) return;
  const needsPrice = type === "LIMIT" || type === "SL";
  const needsTrigger = type === "SL" || type === "SL-M";
  if (needsPrice && value.price === undefined) {
    ctx.addIssue({ code: "custom", path: ["price"], message: `is required for ${type} orders` });
  }
  if (!needsPrice && value.price !== undefined) {
    ctx.addIssue({ code: "custom", path: ["price"], message: `must not be set for ${type} orders` });
  }
  if (needsTrigger && value.trigger_price === undefined) {
    ctx.addIssue({ code: "custom", path: ["trigger_price"], message: `is required for ${type} orders` });
  }
  if (!needsTrigger && value.trigger_price !== undefined) {
    ctx.addIssue({ code: "custom", path: ["trigger_price"], message: `must not be set for ${type} orders` });
  }
  const { price, trigger_price: trigger } = value;
  if (type === "SL" && price !== undefined && trigger !== undefined) {
    // A stop-limit whose limit is beyond its trigger could never fill where it triggers.
    if (value.side === "BUY" && price < trigger) {
      ctx.addIssue({
        code: "custom",
        path: ["price"],
        message: "must be at least trigger_price for an SL BUY",
      });
    }
    if (value.side === "SELL" && price > trigger) {
      ctx.addIssue({
        code: "custom",
        path: ["price"],
        message: "must be at most trigger_price for an SL SELL",
      });
    }
  }
}

const orderFields = {
  symbol: Symbol,
  exchange: Exchange.default("NSE"),
  side: Side,
  quantity: Quantity,
  order_type: OrderType.default("MARKET"),
  price: Price.optional(),
  trigger_price: Price.optional(),
  product: Product.default("MIS"),
  validity: Validity.default("DAY"),
  variety: Variety.optional(),
  tag: Tag.optional(),
  client_order_id: ClientOrderId.optional(),
};

/** What a flow (msg.payload), the TypeScript API and the wire send to place an order. */
export const OrderRequest = z.strictObject(orderFields).superRefine(checkPriceFields);
/** The request as given (defaults not yet applied). */
export type OrderRequestInput = z.input<typeof OrderRequest>;
/** The request after validation: defaults applied. */
export type OrderRequest = z.output<typeof OrderRequest>;

export const OrderChanges = z
  .strictObject({
    quantity: Quantity.optional(),
    order_type: OrderType.optional(),
    price: Price.optional(),
    trigger_price: Price.optional(),
    validity: Validity.optional(),
  })
  .refine((changes) => Object.values(changes).some((v) => v !== undefined), {
    message: "must change at least one of quantity, order_type, price, trigger_price, validity",
  });
export type OrderChanges = z.output<typeof OrderChanges>;

/** modify-order's payload: which order, and what to change. */
export const ModifyRequest = z.strictObject({
  order_id: OrderId,
  quantity: Quantity.optional(),
  order_type: OrderType.optional(),
  price: Price.optional(),
  trigger_price: Price.optional(),
  validity: Validity.optional(),
});
export type ModifyRequest = z.output<typeof ModifyRequest>;

export const CancelRequest = z.strictObject({ order_id: OrderId });
export type CancelRequest = z.output<typeof CancelRequest>;

export const OrderSnapshot = z.strictObject({
  order_id: OrderId,
  client_order_id: ClientOrderId,
  symbol: Symbol,
  exchange: Exchange,
  side: Side,
  quantity: Quantity,
  order_type: OrderType,
  price: Price.optional(),
  trigger_price: Price.optional(),
  product: Product,
  validity: Validity,
  variety: Variety.optional(),
  tag: Tag.optional(),
  status: OrderStatus,
  filled_quantity: z.number().int().nonnegative(),
  average_price: z.number().nonnegative(),
  status_message: z.string().optional(),
  /** Set on orders a GTT placed when it triggered. */
  gtt_id: z.string().optional(),
  placed_at: IsoTimestamp,
  timestamp: IsoTimestamp,
});
export type OrderSnapshot = z.output<typeof OrderSnapshot>;
