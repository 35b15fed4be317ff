import http from "node:http";
import https from "node:https";

/**
 * How long a kept-alive REST socket may sit idle before we close it ourselves. Servers close idle
 * connections after their own keep-alive timeout (Node's 5 s, many proxies 5-60 s); a request
 * written on a socket the server has just closed, before this process has read the close, is
 * reset. Closing first, below the shortest common server timeout, makes that race rare (4 s is
 * agentkeepalive's default for the same reason); retryStaleReads covers what is left.
 */
export const IDLE_SOCKET_MS = 4000;

/**
 * The REST agent. With keepAlive, Node's Agent applies `timeout` to free sockets only and destroys
 * one when it fires; a request in flight gets the request's own timeout (axios sets kiteconnect's
 * timeout_ms on each request), so a slow answer is not cut at IDLE_SOCKET_MS.
 */
export function agentFor(root: string, keepAlive: boolean): http.Agent {
  const options: http.AgentOptions = keepAlive ? { keepAlive, timeout: IDLE_SOCKET_MS } : { keepAlive };
  return root.startsWith("https:") ? new https.Agent(options) : new http.Agent(options);
}

/**
 * A GET that failed because the kept-alive socket it was written on had been closed by the server
 * (ECONNRESET/EPIPE on a reused socket): the server never read it, so sending it once more on a
 * fresh socket is safe. Carries kiteconnect's own description of the failure for when it is not
 * retried.
 */
export class StaleSocketRead extends Error {
  readonly kiteBody: { error_type: "NetworkException"; message: string; data: null };

  constructor(code: string) {
    const message = `No response from server with error code: ${code}`;
    super(message);
    this.name = "StaleSocketRead";
    this.kiteBody = { error_type: "NetworkException", message, data: null };
  }
}

/**
 * An answer larger than the REST client's bound, not read. Shaped as a Kite NetworkException body
 * (kiteconnect passes an error without `request` or `response` through unchanged), so it maps to
 * NETWORK with this message instead of kiteconnect's "No response … ERR_BAD_RESPONSE".
 */
export class AnswerTooLarge extends Error {
  readonly error_type = "NetworkException";
  readonly data = null;

  constructor(bound: number) {
    super(`the answer was larger than ${bound} bytes; not read`);
    this.name = "AnswerTooLarge";
  }
}

/** The slice of an axios instance this needs (axios is kiteconnect's, not a dependency of ours). */
export interface AxiosLike {
  interceptors: { response: { handlers?: unknown[] } };
}

interface Rejected {
  code?: unknown;
  config?: { method?: unknown };
  request?: { reusedSocket?: unknown; _currentRequest?: { reusedSocket?: unknown } };
}

/**
 * Makes a GET that died on a stale kept-alive socket reject with StaleSocketRead. It must see the
 * axios error before kiteconnect's own interceptor, which flattens every socket error into a
 * NetworkException body without the request: hence first in the chain. kiteconnect passes an
 * error with neither `request` nor `response` through unchanged. The request is follow-redirects'
 * wrapper (kiteconnect leaves axios's redirects on), whose current http.ClientRequest knows
 * whether its socket was reused.
 */
export function markStaleReads(instance: AxiosLike): void {
  const handlers = instance.interceptors.response.handlers;
  // Without the list (an axios that keeps it elsewhere) stale reads fail NETWORK as they did before
  // this retry existed, rather than the Kite broker failing to start; kite-rest-keepalive.spec
  // fails on such an axios, so an upgrade cannot lose the retry unnoticed.
  if (!Array.isArray(handlers)) return;
  handlers.unshift({
    fulfilled: (response: unknown) => response,
    rejected: (error: unknown) => {
      if (isStaleRead(error)) throw new StaleSocketRead(String(error.code));
      const bound = overBound(error);
      if (bound !== undefined) {
        // kiteconnect would say only "No response from server with error code: ERR_BAD_RESPONSE".
        throw new AnswerTooLarge(bound);
      }
      throw error;
    },
    synchronous: false,
    runWhen: null,
  });
}

/** The bound an answer passed, when axios stopped reading it at `maxContentLength` (MAX_KITE_ANSWER_BYTES). */
function overBound(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, config } = error as {
    code?: unknown;
    message?: unknown;
    config?: { maxContentLength?: unknown };
  };
  if (code !== "ERR_BAD_RESPONSE" || typeof message !== "string" || !message.startsWith("maxContentLength")) {
    return undefined;
  }
  return typeof config?.maxContentLength === "number" ? config.maxContentLength : undefined;
}

function isStaleRead(error: unknown): error is Rejected {
  if (typeof error !== "object" || error === null) return false;
  const { code, config, request } = error as Rejected;
  if (code !== "ECONNRESET" && code !== "EPIPE") return false;
  if (String(config?.method).toLowerCase() !== "get") return false;
  return request?.reusedSocket === true || request?._currentRequest?.reusedSocket === true;
}

/**
 * Destroys every idle socket of the agent: when the server closed one idle connection it has
 * likely closed the others idle as long, and the retry must go on a fresh one.
 */
export function dropIdleSockets(agent: http.Agent): void {
  for (const sockets of Object.values(agent.freeSockets)) {
    for (const socket of sockets ?? []) socket.destroy();
  }
}
