import { sleep } from "../common/sleep";
import { isRecord } from "../common/is-record";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { RETRY_AFTER } from "./retry-after";

/** How long connect() keeps reading again, and how it paces the tries. */
export interface StartupRetry {
  /** Start-up reads that keep failing transiently give up after this long (from connect()). */
  budgetMs: number;
  /** The first pause after a transient failure that says nothing of when to try; doubled each time. */
  initialMs: number;
  /** The longest pause between two tries. */
  maxMs: number;
}

/**
 * A deploy right after another app's burst on the same API key meets 429s for up to a second or
 * so; Kite's gateway may also answer 502/503 for a moment. 15 s rides that out without keeping a
 * deploy waiting long on a Kite that is really down.
 */
export const STARTUP_RETRY: StartupRetry = { budgetMs: 15_000, initialMs: 250, maxMs: 2000 };

const NOTHING_THERE = /ECONNREFUSED|ENOTFOUND/;

/**
 * True for a failure another try may not meet: Kite's 429 (or our own limiter's refusal to wait
 * that long), no answer, a gateway 5xx (NETWORK), or Kite's own 500 (GeneralException). A refused
 * token, a bad reply's shape, a closed broker are final.
 */
export function isTransientRead(error: BrokerError): boolean {
  // Nothing listening at the address, or no such host: a wrong root URL or a machine offline. Waiting
  // 15 s before saying so helps nobody; the deploy (or the user) tries again.
  if (error.code === "NETWORK" && NOTHING_THERE.test(error.message)) return false;
  if (error.code === "RATE_LIMITED" || error.code === "NETWORK" || error.code === "TIMEOUT") return true;
  return error.code === "INTERNAL" && isRecord(error.cause) && error.cause.error_type === "GeneralException";
}

/**
 * One of connect()'s start-up reads (a GET: sending it again is safe), tried again after a
 * transient failure until `deadline` (performance.now() time). A 429 waits what Kite's Retry-After
 * asked for when it sent one; otherwise a doubling pause from `initialMs` up to `maxMs`. Every try
 * still takes its turn in the rate limiter, so the tries themselves stay inside Kite's limits. Once
 * the budget cannot cover the next pause, fails with the last error's code, naming the endpoint
 * and the budget.
 */
export async function startupRead<T>(
  endpoint: string,
  what: string,
  read: () => Promise<T>,
  options: {
    retry: StartupRetry;
    deadline: number;
    signal: AbortSignal;
    /** Told of each retry, so a deploy sitting in "connecting" says why. */
    warn?: (message: string) => void;
    /** Who reads, for the messages ("Kite start-up" unless said). */
    label?: string;
    /** What the budget covers, for the messages ("start-up reads" unless said). */
    reads?: string;
  },
): Promise<T> {
  const { retry, deadline, signal } = options;
  const label = options.label ?? "Kite start-up";
  const reads = options.reads ?? "start-up reads";
  let pause = retry.initialMs;
  for (let attempt = 1; ; attempt++) {
    let err: BrokerError;
    try {
      return await read();
    } catch (error) {
      err = toBrokerError(error);
    }
    if (!isTransientRead(err) || signal.aborted) throw err;
    // Kite's own word is honoured whole (the budget still bounds it); the backoff is capped.
    const wait = retryAfterOf(err) ?? pause;
    pause = Math.min(pause * 2, retry.maxMs);
    if (performance.now() + wait > deadline) {
      throw new BrokerError(
        err.code,
        `${label}: the ${what} (${endpoint}) still failed after ${attempt} ${attempt === 1 ? "try" : "tries"}; ${reads} are tried again for at most ${retry.budgetMs} ms: ${err.message}`,
        { cause: err, ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) },
      );
    }
    options.warn?.(
      `${label}: the ${what} (${endpoint}) failed (${err.message}); reading again in ${wait} ms`,
    );
    await sleep(wait, signal);
    if (signal.aborted)
      throw new BrokerError(
        "CLOSED",
        options.label === undefined
          ? `Kite broker closed while connecting (${what})`
          : `Kite broker closed during the ${what}`,
      );
  }
}

/**
 * How long the failure itself says to wait: Kite's Retry-After (read by the REST client), or our
 * limiter's own estimate. kiteconnect's 429 carries neither, and mapKiteError's 1 s default is a
 * guess, not Kite's word: the backoff decides then.
 */
function retryAfterOf(error: BrokerError): number | undefined {
  if (error.code !== "RATE_LIMITED" || error.retryAfterMs === undefined) return undefined;
  const fromKite = isRecord(error.cause);
  if (!fromKite) return error.retryAfterMs;
  const said = (error.cause as Record<string, unknown>)[RETRY_AFTER];
  return typeof said === "number" ? said : undefined;
}

/** What a read made in the background (the catch-up after a ticker reconnect, the GTT poll) retries by. */
export interface ReadRetry {
  retry: StartupRetry;
  /** Aborted when the broker closes: a pause under way ends, CLOSED. */
  signal: AbortSignal;
  warn: (message: string) => void;
}

/**
 * A read no caller waits for, under the start-up reads' rules (transient failures only, Kite's
 * Retry-After honoured, a doubling pause otherwise, a warning per retry), with a budget of its
 * own: one 429 or a passing 5xx must not cost the fills made while the ticker was down.
 */
export function backgroundRead<T>(
  endpoint: string,
  what: string,
  label: string,
  read: () => Promise<T>,
  reads: ReadRetry,
): Promise<T> {
  return startupRead(endpoint, what, read, {
    retry: reads.retry,
    deadline: performance.now() + reads.retry.budgetMs,
    signal: reads.signal,
    warn: reads.warn,
    label,
    reads: "background reads",
  });
}
