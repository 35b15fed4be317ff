/**
 * Errors are values with a stable `code` (what a flow or a wire peer can switch on) and a human
 * message. `retryable` marks the network family: the outcome of the request is unknown or it may
 * succeed later; everything else is a final answer from the broker or from validation.
 */
export const ERROR_CODES = [
  "VALIDATION",
  "NOT_FOUND",
  "ORDER_TERMINAL",
  "ORDER_REJECTED",
  "ILLEGAL_TRANSITION",
  "INSUFFICIENT_FUNDS",
  "DUPLICATE_ORDER",
  "NO_QUOTE",
  "NOT_CONNECTED",
  "CLOSED",
  "TIMEOUT",
  "NETWORK",
  "RATE_LIMITED",
  "CIRCUIT_OPEN",
  "QUEUE_FULL",
  "EXPIRED",
  "AUTH",
  "CONFIG",
  "INTERNAL",
  // A client_order_id reused with different order parameters.
  "IDEMPOTENCY_MISMATCH",
  // AUTH could not be checked now (too many in the window); retry after retry_after_ms.
  "AUTH_RETRY",
  // Wire-level answers from the gateway (docs/PROTOCOL.md).
  "UNAUTHENTICATED",
  "BAD_FRAME",
  "UNKNOWN_TYPE",
  "FRAME_TOO_LARGE",
  "BATCH_TOO_LARGE",
  // The risk guard refused: a limit or the trading state (lib/risk).
  "RISK",
  // The gateway stopped mid-placement and cannot tell whether that client_order_id made an order.
  "IDEMPOTENCY_UNKNOWN",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "TIMEOUT",
  "NETWORK",
  "RATE_LIMITED",
  "NOT_CONNECTED",
  "AUTH_RETRY",
]);

export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** For RATE_LIMITED: milliseconds after which a retry may succeed. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BrokerError";
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** Plain JSON for msg properties, the debug sidebar and the wire. */
  toJSON(): { code: ErrorCode; message: string; retry_after_ms?: number } {
    return this.retryAfterMs === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retry_after_ms: this.retryAfterMs };
  }
}

export function isBrokerError(value: unknown): value is BrokerError {
  return value instanceof BrokerError;
}

/** Wraps anything thrown into a BrokerError without losing an existing code. */
export function toBrokerError(value: unknown, fallback: ErrorCode = "INTERNAL"): BrokerError {
  if (value instanceof BrokerError) return value;
  if (value instanceof Error) return new BrokerError(fallback, value.message, { cause: value });
  return new BrokerError(fallback, String(value));
}
