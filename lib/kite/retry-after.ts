import type { AxiosLike } from "./rest-agent";

/** Where a 429's Retry-After (in ms) is noted on the error body kiteconnect rejects with. */
export const RETRY_AFTER = "__retryAfterMs";

interface Rejected {
  response?: { status?: unknown; statusText?: unknown; headers?: Record<string, unknown>; data?: unknown };
}

/**
 * kiteconnect rejects with the body alone (KITE.md §5): a 429's Retry-After header would be lost.
 * This notes it, as a non-enumerable RETRY_AFTER on the body, before kiteconnect's interceptor
 * sees the error. A body without error_type is replaced by the very object kiteconnect would make
 * of it ({message: statusText, error_type: NetworkException, data: null}), so it can carry the note.
 */
export function noteRetryAfter(instance: AxiosLike): void {
  const handlers = instance.interceptors.response.handlers;
  if (!Array.isArray(handlers)) return;
  handlers.unshift({
    fulfilled: (response: unknown) => response,
    rejected: (error: unknown) => {
      const response = typeof error === "object" && error !== null ? (error as Rejected).response : undefined;
      if (response?.status === 429) {
        const ms = retryAfterMs(response.headers?.["retry-after"], Date.now());
        if (ms !== undefined) {
          const data = response.data;
          const body =
            typeof data === "object" && data !== null && "error_type" in data
              ? data
              : { message: response.statusText, error_type: "NetworkException", data: null };
          Object.defineProperty(body, RETRY_AFTER, { value: ms, enumerable: false });
          response.data = body;
        }
      }
      throw error;
    },
    synchronous: false,
    runWhen: null,
  });
}

const HTTP_DATE = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Retry-After as delay-seconds or an HTTP date, in ms from `now`; undefined when unreadable. */
export function retryAfterMs(header: unknown, now: number): number | undefined {
  if (typeof header !== "string" || header.trim() === "") return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only the HTTP date form (IMF-fixdate): Date.parse takes "-1" or "1.5" as dates too.
  if (!HTTP_DATE.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
