import { BrokerError } from "../protocol/errors";
import { isUnknownOutcome as isNoAnswer } from "../common/unknown-outcome";

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

/**
 * The one message every node shows once Kite's session has ended (its tokens die around 06:00 IST
 * and on logout): short enough for a node status, the same on every node (issue 10, defect 5).
 * What Kite said is logged once, beside it.
 */
export const SESSION_EXPIRED = "Kite session expired: log in again";

/** Why a broker started without an access token refuses everything: what the user must do. */
export const KITE_LOGIN_NEEDED =
  'not logged in to Kite yet: press "Log in to Kite" in the trading broker config (API key and API secret entered)';

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
 * PermissionException → CONFIG, UserException → ORDER_REJECTED, NetworkException → NETWORK
 * (RATE_LIMITED for HTTP 429 "Too Many Requests"), DataException → INTERNAL ("bad reply from
 * Kite"), anything else (GeneralException: Kite's HTTP 500) → INTERNAL.
 */
export function mapKiteError(error: unknown, what = "Kite request"): BrokerError {
  if (error instanceof BrokerError) return error;
  if (isKiteErrorBody(error)) {
    const message = text(error.message) || error.error_type;
    switch (error.error_type) {
      case "TokenException":
        return new BrokerError("AUTH", SESSION_EXPIRED, { cause: error });
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
      case "UserException":
        return new BrokerError("ORDER_REJECTED", `Kite refused the ${what} (user account): ${message}`, {
          cause: error,
        });
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

/**
 * True when the request may or may not have taken effect: only a refusal Kite spelled out
 * (InputException, OrderException, MarginException, ... or a 429) proves it did not. No answer, a
 * 5xx (GeneralException, NetworkException from Kite's gateway), a body that is not Kite's JSON
 * (HTML from a proxy, DataException) or a success without the expected id all leave the outcome
 * open, to be settled by looking before anything is reported (issue 10, defect 1).
 */
export function isUnknownOutcome(error: BrokerError): boolean {
  return isNoAnswer(error) || error.code === "INTERNAL";
}
