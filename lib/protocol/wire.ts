import { z } from "zod";
import { ERROR_CODES } from "./errors";
import { AccountEvent, OrderEventType } from "./events";
import { ClientOrderId, IsoTimestamp, OrderId } from "./fields";
import { GttId, GttRequest, GttSnapshot } from "./gtt";
import { OrderChanges, OrderRequest, OrderSnapshot } from "./orders";
import { Account, Position } from "./positions";
import { Quote, SymbolList } from "./quotes";
import { TradeList } from "./trade";

/**
 * The v1 WebSocket order protocol (docs/PROTOCOL.md is its prose; a test keeps the two in step).
 * Every client message is a request with an `id`; the server answers each with exactly one
 * RESULT or ERROR carrying that id, and pushes EVENT and QUOTE messages on its own.
 */
export const PROTOCOL_VERSION = "v1";
/** Offered as the WebSocket subprotocol; the gateway also serves the protocol on path /v1. */
export const SUBPROTOCOL = "trading-broker.v1";
/**
 * Offered before SUBPROTOCOL by a client that knows v1.1. A v1.0 gateway picks SUBPROTOCOL (it
 * knows no other), so the client learns from the handshake whether AUTH may carry `options`: a
 * v1.0 gateway would refuse the unknown field.
 */
export const SUBPROTOCOL_V1_1 = "trading-broker.v1.1";

/**
 * v1.1 session options, asked for in AUTH and echoed in its result. `event_format: "delta"`: order
 * events come as EVENT_DELTA (the fields that changed since a base the client holds) wherever
 * the server knows the connection holds that base, and as full EVENTs elsewhere.
 * `answered_events: "skip"`: an order event whose snapshot the answer to this connection's own
 * request already carries rides in that RESULT's `events` instead of a frame of its own.
 */
export const SessionOptions = z.strictObject({
  event_format: z.enum(["full", "delta"]).optional(),
  answered_events: z.enum(["send", "skip"]).optional(),
});
export type SessionOptions = z.output<typeof SessionOptions>;

/** Published limits; a gateway may be configured lower, never higher. */
export const WIRE_LIMITS = {
  /** Frames above this get FRAME_TOO_LARGE (and are not parsed). */
  maxFrameBytes: 64 * 1024,
  /** Messages in one batched frame. */
  maxBatch: 100,
  /** How far a signed AUTH timestamp may be from the server's clock. */
  authWindowMs: 30_000,
  /** Most orders (GTTs) in one GET_ORDERBOOK (GET_GTTS) answer: more are read page by page. */
  maxPage: 1000,
} as const;

export const RequestId = z
  .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
  .min(1, { error: "must not be empty" })
  .max(64, { error: "must be at most 64 characters" });

function request<T extends string, S extends z.ZodRawShape>(type: T, shape: S) {
  return z.strictObject({ type: z.literal(type), id: RequestId, ...shape });
}

/**
 * Opens the session. signature = hex HMAC-SHA256(api_secret, `${api_key}\n${timestamp}\n${nonce}`).
 * A timestamp outside the auth window or a nonce seen before is refused (replay protection).
 */
export const AuthRequest = request("AUTH", {
  api_key: z.string().min(1).max(128),
  timestamp: z.number().int().positive(),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, { error: "must be 16 to 64 letters, digits, _ or -" }),
  signature: z.string().regex(/^[0-9a-f]{64}$/, { error: "must be 64 lower-case hex digits" }),
  /** v1.1: what this session asks for; absent, the session is v1.0. */
  options: SessionOptions.optional(),
});

/** On the wire the client always names its client_order_id: retries must reuse it. */
export const WireOrderRequest = OrderRequest.safeExtend({ client_order_id: ClientOrderId });

export const PlaceOrderRequest = request("PLACE_ORDER", { order: WireOrderRequest });
export const ModifyOrderRequest = request("MODIFY_ORDER", { order_id: OrderId, changes: OrderChanges });
export const CancelOrderRequest = request("CANCEL_ORDER", { order_id: OrderId });
/** Looks an order up by either id; how a client settles an order whose outcome it did not hear. */
export const GetOrderRequest = z.union([
  request("GET_ORDER", { order_id: OrderId }),
  request("GET_ORDER", { client_order_id: ClientOrderId }),
]);
/** How many a page of a list holds: GET_ORDERBOOK and GET_GTTS. */
const PageLimit = z
  .number({ error: "must be a number" })
  .int({ error: "must be an integer" })
  .min(1, { error: "must be at least 1" })
  .max(WIRE_LIMITS.maxPage, { error: `must be at most ${WIRE_LIMITS.maxPage}` });
/**
 * One page of the order book, in order_id order (plain string comparison): the orders after
 * `after`, at most `limit` of them. A page shorter than `limit` is the last one. Without `limit` a
 * book larger than WIRE_LIMITS.maxPage is refused rather than answered in one unbounded frame.
 */
export const GetOrderbookRequest = request("GET_ORDERBOOK", {
  limit: PageLimit.optional(),
  after: OrderId.optional(),
});
export const PlaceGttRequest = request("PLACE_GTT", { gtt: GttRequest });
export const ModifyGttRequest = request("MODIFY_GTT", { gtt_id: GttId, gtt: GttRequest });
export const DeleteGttRequest = request("DELETE_GTT", { gtt_id: GttId });
/**
 * One page of the GTTs, in gtt_id order (plain string comparison), as GET_ORDERBOOK pages orders:
 * the GTTs after `after`, at most `limit` of them; a page shorter than `limit` is the last. Without
 * `limit` more than WIRE_LIMITS.maxPage GTTs are refused rather than answered in one unbounded frame.
 */
export const GetGttsRequest = request("GET_GTTS", {
  limit: PageLimit.optional(),
  after: GttId.optional(),
});
export const GetPositionsRequest = request("GET_POSITIONS", {});
export const GetAccountRequest = request("GET_ACCOUNT", {});
export const SubscribeRequest = request("SUBSCRIBE", { symbols: SymbolList });
export const UnsubscribeRequest = request("UNSUBSCRIBE", { symbols: SymbolList });
/** Replays the account events after `from_seq` (0 = everything the server still holds). */
export const ResumeRequest = request("RESUME", { from_seq: z.number().int().nonnegative() });
/**
 * Application-level liveness: answered at once with the account's latest pushed seq. A relay that
 * drops data frames still passes WebSocket pings, so only an answer in the data stream proves the
 * link carries messages; the seq lets a client that lost the last events notice without a new one.
 */
export const PingRequest = request("PING", {});

export const REQUEST_TYPES = [
  "AUTH",
  "PLACE_ORDER",
  "MODIFY_ORDER",
  "CANCEL_ORDER",
  "GET_ORDER",
  "GET_ORDERBOOK",
  "PLACE_GTT",
  "MODIFY_GTT",
  "DELETE_GTT",
  "GET_GTTS",
  "GET_POSITIONS",
  "GET_ACCOUNT",
  "SUBSCRIBE",
  "UNSUBSCRIBE",
  "RESUME",
  "PING",
] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

/** Each request type's schema, so the server can name the type's own rule when a field is wrong. */
export const REQUEST_SCHEMAS = {
  AUTH: AuthRequest,
  PLACE_ORDER: PlaceOrderRequest,
  MODIFY_ORDER: ModifyOrderRequest,
  CANCEL_ORDER: CancelOrderRequest,
  GET_ORDER: GetOrderRequest,
  GET_ORDERBOOK: GetOrderbookRequest,
  PLACE_GTT: PlaceGttRequest,
  MODIFY_GTT: ModifyGttRequest,
  DELETE_GTT: DeleteGttRequest,
  GET_GTTS: GetGttsRequest,
  GET_POSITIONS: GetPositionsRequest,
  GET_ACCOUNT: GetAccountRequest,
  SUBSCRIBE: SubscribeRequest,
  UNSUBSCRIBE: UnsubscribeRequest,
  RESUME: ResumeRequest,
  PING: PingRequest,
} as const satisfies Record<RequestType, z.ZodType>;

export type WireRequest = z.output<(typeof REQUEST_SCHEMAS)[RequestType]>;
export type WireRequestOf<T extends RequestType> = z.output<(typeof REQUEST_SCHEMAS)[T]>;

export const AuthResult = z.strictObject({
  account: z.string(),
  /** The last event seq the server has issued for the account. */
  seq: z.number().int().nonnegative(),
  server_time: IsoTimestamp,
  limits: z.strictObject({
    max_frame_bytes: z.number().int().positive(),
    max_batch: z.number().int().positive(),
    rate_per_second: z.number().positive(),
    burst: z.number().int().positive(),
  }),
  /** v1.1, only when AUTH carried `options`: the version and the options granted. */
  protocol: z.literal("v1.1").optional(),
  options: SessionOptions.optional(),
});
export type AuthResult = z.output<typeof AuthResult>;

export const ResumeResult = z.strictObject({
  /** Events sent before this RESULT, in seq order. */
  replayed: z.number().int().nonnegative(),
  /** True when events after from_seq are no longer held: reconcile from GET_ORDERBOOK. */
  gap: z.boolean(),
  seq: z.number().int().nonnegative(),
});
export type ResumeResult = z.output<typeof ResumeResult>;

export const SubscribeResult = z.strictObject({ symbols: z.array(z.string()) });

export const PingResult = z.object({
  /** The last event seq pushed to connections (and held for RESUME). */
  seq: z.number().int().nonnegative(),
  server_time: IsoTimestamp,
});
export type PingResult = z.output<typeof PingResult>;

/** What RESULT.result holds for each request type. */
export const RESULT_SCHEMAS = {
  AUTH: AuthResult,
  PLACE_ORDER: OrderSnapshot,
  MODIFY_ORDER: OrderSnapshot,
  CANCEL_ORDER: OrderSnapshot,
  GET_ORDER: OrderSnapshot,
  GET_ORDERBOOK: z.array(OrderSnapshot),
  PLACE_GTT: GttSnapshot,
  MODIFY_GTT: GttSnapshot,
  DELETE_GTT: GttSnapshot,
  GET_GTTS: z.array(GttSnapshot),
  GET_POSITIONS: z.array(Position),
  GET_ACCOUNT: Account,
  SUBSCRIBE: SubscribeResult,
  UNSUBSCRIBE: SubscribeResult,
  RESUME: ResumeResult,
  PING: PingResult,
} as const satisfies Record<RequestType, z.ZodType>;

export type WireResultOf<T extends RequestType> = z.output<(typeof RESULT_SCHEMAS)[T]>;

export const WireError = z.strictObject({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  /** With RATE_LIMITED: wait at least this long before sending again. */
  retry_after_ms: z.number().int().nonnegative().optional(),
});
export type WireError = z.output<typeof WireError>;

/**
 * v1.1, `answered_events: "skip"` only: an order event the RESULT it rides in stands for. Its
 * order is the RESULT's snapshot with `order`'s fields laid over it (absent: the snapshot itself).
 */
export const AnsweredEvent = z.strictObject({
  type: OrderEventType,
  seq: z.number().int().positive(),
  order: OrderSnapshot.partial().optional(),
  /** The fills this event reports, as on a whole EVENT (§2.3). */
  trades: TradeList.optional(),
  timestamp: IsoTimestamp,
});
export type AnsweredEvent = z.output<typeof AnsweredEvent>;

export const ResultMessage = z.strictObject({
  type: z.literal("RESULT"),
  id: RequestId,
  result: z.unknown(),
  /** v1.1, `answered_events: "skip"` only: the order events this answer stands for, in seq order. */
  events: z.array(AnsweredEvent).optional(),
});
/** `id` is null when the failing frame had no readable id (malformed JSON, say). */
export const ErrorMessage = z.strictObject({
  type: z.literal("ERROR"),
  id: RequestId.nullable(),
  error: WireError,
});
export const EventMessage = z.strictObject({ type: z.literal("EVENT"), event: AccountEvent });
export const QuoteMessage = z.strictObject({ type: z.literal("QUOTE"), quote: Quote });

/** The fields of an order snapshot that changed since the delta's base; `order_id` always. */
export const OrderDelta = OrderSnapshot.partial().required({ order_id: true });
export type OrderDelta = z.output<typeof OrderDelta>;

/**
 * v1.1, `event_format: "delta"` only: an order event as the fields that changed. `base` names the
 * snapshot they apply to: the seq of the order's previous event (which the connection was sent),
 * or "request": the PLACE_ORDER this connection sent with the order's `client_order_id` (always
 * in `order` then). The full snapshot is the base with `order`'s fields laid over it.
 */
export const EventDeltaMessage = z.strictObject({
  type: z.literal("EVENT_DELTA"),
  event: z.strictObject({
    type: OrderEventType,
    seq: z.number().int().positive(),
    base: z.union([z.number().int().positive(), z.literal("request")]),
    order: OrderDelta,
    /** The fills this event reports, as on a whole EVENT (§2.3): event fields, not the order's. */
    trades: TradeList.optional(),
    timestamp: IsoTimestamp,
  }),
});
export type EventDeltaMessage = z.output<typeof EventDeltaMessage>;
export type OrderEventDelta = EventDeltaMessage["event"];

export const ServerMessage = z.discriminatedUnion("type", [
  ResultMessage,
  ErrorMessage,
  EventMessage,
  QuoteMessage,
  EventDeltaMessage,
]);
export type ServerMessage = z.output<typeof ServerMessage>;
export type ResultMessage = z.output<typeof ResultMessage>;
export type ErrorMessage = z.output<typeof ErrorMessage>;
export type EventMessage = z.output<typeof EventMessage>;
export type QuoteMessage = z.output<typeof QuoteMessage>;

/** Close codes the gateway uses (4000–4999 is the application range). */
export const CLOSE_CODES = {
  /** AUTH failed or never came: the client must not reconnect with the same credentials blindly. */
  authFailed: 4001,
  authTimeout: 4002,
  /** The gateway is shutting down; reconnect later. */
  goingAway: 1001,
  /** The connection kept breaking the protocol's limits (unauthenticated frames, rate, sizes). */
  policy: 1008,
  /** A retryable refusal (AUTH_RETRY): reconnect after a while. */
  tryAgainLater: 1013,
} as const;

/** The string an AUTH signature covers. */
export function authPayload(apiKey: string, timestamp: number, nonce: string): string {
  return `${apiKey}\n${timestamp}\n${nonce}`;
}
