import type { Exchange, OrderType, Side } from "../protocol";
import { Exchange as ExchangeSchema, OrderType as OrderTypeSchema } from "../protocol/fields";
import { OrderRequest } from "../protocol/orders";

/** The fields of an order request the guard checks, and nothing else. */
export interface CheckedFields {
  symbol: string;
  exchange: Exchange;
  side: Side;
  quantity: number;
  order_type: OrderType;
  /** Only for LIMIT / SL. */
  price: number | undefined;
  /** Only for SL / SL-M. */
  trigger_price: number | undefined;
}

const EXCHANGES: ReadonlySet<string> = new Set<string>(ExchangeSchema.options);
const ORDER_TYPES: ReadonlySet<string> = new Set<string>(OrderTypeSchema.options);
// From the schema, so the guard checks an order with the exchange and type the broker will use.
const DEFAULT_EXCHANGE = OrderRequest.shape.exchange.parse(undefined);
const DEFAULT_ORDER_TYPE = OrderRequest.shape.order_type.parse(undefined);

/** An object for readCheckedFields to fill (any values; each read sets every field). */
export function newCheckedFields(): CheckedFields {
  return {
    symbol: "",
    exchange: DEFAULT_EXCHANGE,
    side: "BUY",
    quantity: 0,
    order_type: DEFAULT_ORDER_TYPE,
    price: undefined,
    trigger_price: undefined,
  };
}

function isPrice(value: unknown): value is number {
  return typeof value === "number" && value > 0 && value <= 1e12;
}

/**
 * Reads the fields the guard checks into `into`, with plain type checks, and returns it; undefined
 * when any of them is not plainly well-formed, and the request then goes through the full schema
 * instead. `into` is reused from order to order: an object per order was a fifth of what the guard
 * allocates per order, and everything it allocates is paid again in garbage collection.
 *
 * Why not the full validation: the broker behind the guard validates every request anyway, and
 * validating twice was a fifth of the guard's cost per order. What the guard reads here is
 * exactly what the schema would make of those fields (same enums, same defaults), so an order
 * the broker accepts is the order the guard checked; one the broker refuses for a field the guard
 * does not read (a bad tag, an unknown key) fails there with the broker's field-naming error and
 * fills nothing.
 */
export function readCheckedFields(input: unknown, into: CheckedFields): CheckedFields | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const raw = input as Record<string, unknown>;
  const symbol = raw.symbol;
  if (typeof symbol !== "string" || symbol.length === 0 || symbol.length > 64) return undefined;
  const side = raw.side;
  if (side !== "BUY" && side !== "SELL") return undefined;
  const quantity = raw.quantity;
  if (typeof quantity !== "number" || !Number.isInteger(quantity) || quantity <= 0 || quantity > 10_000_000)
    return undefined;
  const exchange = raw.exchange ?? DEFAULT_EXCHANGE;
  if (typeof exchange !== "string" || !EXCHANGES.has(exchange)) return undefined;
  const type = raw.order_type ?? DEFAULT_ORDER_TYPE;
  if (typeof type !== "string" || !ORDER_TYPES.has(type)) return undefined;
  let price: number | undefined;
  let trigger: number | undefined;
  if (type === "LIMIT" || type === "SL") {
    price = raw.price as number;
    if (!isPrice(price)) return undefined;
  }
  if (type === "SL" || type === "SL-M") {
    trigger = raw.trigger_price as number;
    if (!isPrice(trigger)) return undefined;
  }
  into.symbol = symbol;
  into.exchange = exchange as Exchange;
  into.side = side;
  into.quantity = quantity;
  into.order_type = type as OrderType;
  into.price = price;
  into.trigger_price = trigger;
  return into;
}
