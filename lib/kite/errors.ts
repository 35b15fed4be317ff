import { BrokerError } from "../protocol/errors";

/** What kiteconnect rejects with (a plain object, not an Error; KITE.md §5), or resolves on a bad reply. */
export interface KiteErrorBody {
  error_type: string;
  message?: unknown;
  data?: unknown;
}

export function isKiteErrorBody(value: unknown): value is KiteErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { error_type?: unknown }).error_type === "string"
  );
}

export const SESSION_EXPIRED = "session expired: log in to Kite again";

const TOO_MANY = /too many requests|rate limit/i;

function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  return JSON.stringify(value);
}

/**
 * Maps whatever a kiteconnect call rejected with to a BrokerError with a stable code:
 * TokenException → AUTH, InputException → VALIDATION, OrderException → ORDER_REJECTED,
 * MarginException → INSUFFICIENT_FUNDS, HoldingException → ORDER_REJECTED,
 * PermissionException → CONFIG, NetworkException → NETWORK (RATE_LIMITED for HTTP 429 "Too Many
 * Requests"), DataException → INTERNAL ("bad reply from Kite"), anything else → INTERNAL.
 */
export function mapKiteError(error: unknown, what = "Kite request"): BrokerError {
  if (error instanceof BrokerError) return error;
  if (isKiteErrorBody(error)) {
    const message = text(error.message) || error.error_type;
    switch (error.error_type) {
      case "TokenException":
        return new BrokerError("AUTH", `${SESSION_EXPIRED} (Kite: ${message})`, { cause: error });
      case "InputException":
        return new BrokerError("VALIDATION", `Kite refused the ${what}: ${message}`, { cause: error });
      case "OrderException":
        return new BrokerError("ORDER_REJECTED", `Kite rejected the ${what}: ${message}`, { cause: error });
      case "MarginException":
        return new BrokerError("INSUFFICIENT_FUNDS", `Kite: insufficient margin: ${message}`, {
          cause: error,
        });
      case "HoldingException":
        return new BrokerError("ORDER_REJECTED", `Kite: insufficient holdings: ${message}`, { cause: error });
      case "PermissionException":
        return new BrokerError(
          "CONFIG",
          `Kite refused the ${what} (permission; check the app's settings and whitelisted IP): ${message}`,
          { cause: error },
        );
      case "NetworkException":
        if (TOO_MANY.test(message)) {
          return new BrokerError("RATE_LIMITED", `Kite rate limit reached (HTTP 429): ${message}`, {
            retryAfterMs: 1000,
            cause: error,
          });
        }
        return new BrokerError("NETWORK", `${what}: Kite unreachable or no answer: ${message}`, {
          cause: error,
        });
      case "DataException":
        return new BrokerError("INTERNAL", `bad reply from Kite to the ${what}: ${message}`, {
          cause: error,
        });
      default:
        return new BrokerError("INTERNAL", `Kite ${error.error_type} on the ${what}: ${message}`, {
          cause: error,
        });
    }
  }
  if (error instanceof Error) {
    return new BrokerError("INTERNAL", `${what} failed: ${error.message}`, { cause: error });
  }
  return new BrokerError("INTERNAL", `${what} failed: ${text(error) || "unknown error"}`);
}

/** True when the request may or may not have taken effect: its answer never arrived. */
export function isUnknownOutcome(error: BrokerError): boolean {
  return error.code === "NETWORK" || error.code === "TIMEOUT";
}
