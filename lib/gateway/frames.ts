import type { ErrorCode } from "../protocol/errors";
import { formatIssues } from "../protocol/validate";
import { parseOrderRequest } from "../protocol/order-fast-path";
import type { RequestType, WireRequest, WireRequestOf } from "../protocol/wire";
import { REQUEST_SCHEMAS, REQUEST_TYPES } from "../protocol/wire";
import { isRecord } from "../common/is-record";

/** Reading requests off the wire and writing answers onto it (docs/PROTOCOL.md, frames). */

export const REQUEST_TYPE_SET: ReadonlySet<string> = new Set(REQUEST_TYPES);

/**
 * A plainly valid PLACE_ORDER without zod (~2 µs a request): the envelope checked here, the order by
 * the checked fast path of lib/protocol/order-fast-path.ts. Undefined: ask the schema, which also
 * writes the error message.
 */
function plainPlaceOrder(message: Record<string, unknown>): WireRequest | undefined {
  const { id, order } = message;
  if (typeof id !== "string" || id.length === 0 || id.length > 64) return undefined;
  let keys = 0;
  for (const key in message) {
    if (key !== "type" && key !== "id" && key !== "order") return undefined;
    keys++;
  }
  if (keys !== 3 || !isRecord(order) || typeof order.client_order_id !== "string") return undefined;
  let parsed: ReturnType<typeof parseOrderRequest>;
  try {
    parsed = parseOrderRequest(order);
  } catch {
    return undefined;
  }
  if (parsed.client_order_id === undefined) return undefined;
  return { type: "PLACE_ORDER", id, order: parsed as WireRequestOf<"PLACE_ORDER">["order"] };
}

/** The request, or a message naming the field and rule it broke. */
export function parseRequest(type: RequestType, message: Record<string, unknown>): WireRequest | string {
  if (type === "PLACE_ORDER") {
    const plain = plainPlaceOrder(message);
    if (plain !== undefined) return plain;
  }
  const result = REQUEST_SCHEMAS[type].safeParse(message);
  if (result.success) return result.data;
  if (type === "GET_ORDER" && result.error.issues.some((issue) => issue.code === "invalid_union")) {
    const hasOrderId = "order_id" in message;
    const hasClientId = "client_order_id" in message;
    if (hasOrderId === hasClientId) {
      return "order_id, client_order_id: give exactly one of order_id or client_order_id";
    }
    // Name the rule of the branch the client meant rather than zod's "Invalid input".
    const branch = REQUEST_SCHEMAS.GET_ORDER.options[hasOrderId ? 0 : 1].safeParse(message);
    if (!branch.success) return formatIssues(branch.error.issues);
  }
  return formatIssues(result.error.issues);
}

export function resultFrame(id: string, result: unknown): string {
  return JSON.stringify({ type: "RESULT", id, result });
}

export function errorFrame(
  id: string | null,
  code: ErrorCode,
  message: string,
  retryAfterMs?: number,
): string {
  const error =
    retryAfterMs === undefined ? { code, message } : { code, message, retry_after_ms: retryAfterMs };
  return JSON.stringify({ type: "ERROR", id, error });
}

/** The message's id when it is a usable RequestId, so even a refused message is answered by id. */
export function readableId(message: unknown): string | null {
  if (!isRecord(message)) return null;
  const id = message.id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : null;
}
