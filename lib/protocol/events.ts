import { z } from "zod";
import { IsoTimestamp } from "./fields";
import { GttSnapshot } from "./gtt";
import { OrderSnapshot } from "./orders";
import { Quote } from "./quotes";
import { TradeList } from "./trade";

export const OrderEventType = z.enum([
  "ORDER_PLACED",
  "ORDER_MODIFIED",
  "ORDER_TRIGGERED",
  "ORDER_PARTIALLY_FILLED",
  "ORDER_FILLED",
  "ORDER_CANCELLED",
  "ORDER_REJECTED",
  "ORDER_EXPIRED",
]);
export type OrderEventType = z.infer<typeof OrderEventType>;

export const GttEventType = z.enum(["GTT_PLACED", "GTT_MODIFIED", "GTT_TRIGGERED", "GTT_DELETED"]);
export type GttEventType = z.infer<typeof GttEventType>;

/** `seq` increases by one per account event (orders and GTTs share it), so a gap is visible. */
export const OrderEvent = z.strictObject({
  type: OrderEventType,
  seq: z.number().int().positive(),
  order: OrderSnapshot,
  /** Set on events a client made up after a reconnect from the order book, not received live. */
  synthesized: z.boolean().optional(),
  /**
   * Set on an event a client reports again after a crash of the process that may have reported it
   * already (same seq): a flow that acted on it then must not act twice. Never set on a new event.
   */
  possible_duplicate: z.literal(true).optional(),
  /**
   * On ORDER_PARTIALLY_FILLED / ORDER_FILLED: the fills this event reports (those since the order's
   * previous event), oldest first. Absent when the broker could not learn them (docs/PROTOCOL.md §2.3).
   */
  trades: TradeList.optional(),
  timestamp: IsoTimestamp,
});
export type OrderEvent = z.output<typeof OrderEvent>;

export const GttEvent = z.strictObject({
  type: GttEventType,
  seq: z.number().int().positive(),
  gtt: GttSnapshot,
  /**
   * Set on an event a client reports again after a crash of the process that may have reported it
   * already (same seq): a flow that acted on it then must not act twice. Never set on a new event.
   */
  possible_duplicate: z.literal(true).optional(),
  timestamp: IsoTimestamp,
});
export type GttEvent = z.output<typeof GttEvent>;

export const QuoteEvent = z.strictObject({ type: z.literal("QUOTE"), quote: Quote });
export type QuoteEvent = z.output<typeof QuoteEvent>;

/** Everything that changes an account, in `seq` order. */
export const AccountEvent = z.union([OrderEvent, GttEvent]);
export type AccountEvent = OrderEvent | GttEvent;

export const ConnectionState = z.enum([
  "connecting",
  "connected",
  "reconnecting",
  "disconnected",
  "circuit-open",
]);
export type ConnectionState = z.infer<typeof ConnectionState>;

/** The risk guard's trading state: REDUCING lets only position-reducing orders (and cancels) through. */
export const TradingState = z.enum(["ACTIVE", "REDUCING", "HALTED"]);
export type TradingState = z.infer<typeof TradingState>;

/** Every change of trading state, with who asked and why (a person, a kill switch, the guard itself). */
export const RiskStateChangedEvent = z.strictObject({
  type: z.literal("RISK_STATE_CHANGED"),
  state: TradingState,
  previous: TradingState,
  by: z.string(),
  reason: z.string(),
  timestamp: IsoTimestamp,
});
export type RiskStateChangedEvent = z.output<typeof RiskStateChangedEvent>;

/** An order, modify or GTT the risk guard refused; nothing of it reached the broker. */
export const OrderDeniedEvent = z.strictObject({
  type: z.literal("ORDER_DENIED"),
  /** placeOrder, modifyOrder, placeGtt or modifyGtt. */
  action: z.string(),
  /** The limit that refused it, e.g. max_position_quantity or trading_state. */
  limit: z.string(),
  message: z.string(),
  symbol: z.string().optional(),
  request: z.record(z.string(), z.unknown()),
  timestamp: IsoTimestamp,
});
export type OrderDeniedEvent = z.output<typeof OrderDeniedEvent>;

export const RiskEvent = z.discriminatedUnion("type", [RiskStateChangedEvent, OrderDeniedEvent]);
export type RiskEvent = RiskStateChangedEvent | OrderDeniedEvent;
/**
 * The broker's login session (Kite: the daily access token). SESSION_EXPIRED: the broker refuses
 * the token (Kite's tokens die around 06:00 IST and on logout); every call fails AUTH until a new
 * login. SESSION_STARTED: a new login took effect without a redeploy. Not account events: no seq.
 */
export const SessionEventType = z.enum(["SESSION_EXPIRED", "SESSION_STARTED"]);
export type SessionEventType = z.infer<typeof SessionEventType>;

export const SessionEvent = z.strictObject({
  type: SessionEventType,
  /** For SESSION_EXPIRED: the message every node shows. */
  message: z.string().optional(),
  user_id: z.string().optional(),
  user_name: z.string().optional(),
  /** When the session began (ISO 8601 UTC), when known. */
  login_time: IsoTimestamp.optional(),
  timestamp: IsoTimestamp,
});
export type SessionEvent = z.output<typeof SessionEvent>;
