import type http from "node:http";
import { KiteConnect } from "kiteconnect";
import { BrokerError } from "../protocol/errors";
import type { KiteSettings } from "../brokers/kite-settings";
import { SESSION_EXPIRED, isKiteErrorBody, mapKiteError } from "./errors";
import type { KiteOrder, KiteTrigger } from "./mapping";
import { RateLimiter, kiteWindows } from "./rate-limiter";
import { isRecord } from "../common/is-record";
import type { AxiosLike } from "./rest-agent";
import { StaleSocketRead, agentFor, dropIdleSockets, markStaleReads } from "./rest-agent";
import { noteRetryAfter } from "./retry-after";

/** The kiteconnect methods the broker calls, typed loosely: the 5.3.0 types lag the API (KITE.md §11.8). */
export interface KiteRest {
  placeOrder(variety: string, params: object): Promise<unknown>;
  modifyOrder(variety: string, orderId: string, params: object): Promise<unknown>;
  cancelOrder(variety: string, orderId: string, params?: object): Promise<unknown>;
  getOrders(): Promise<unknown>;
  getOrderHistory(orderId: string): Promise<unknown>;
  getOrderTrades(orderId: string): Promise<unknown>;
  getTrades(): Promise<unknown>;
  getPositions(): Promise<unknown>;
  getMargins(segment?: string): Promise<unknown>;
  getProfile(): Promise<unknown>;
  getInstruments(exchange?: string): Promise<unknown>;
  getLTP(instruments: string[]): Promise<unknown>;
  getHistoricalData(
    token: number | string,
    interval: string,
    from: string | Date,
    to: string | Date,
    continuous?: boolean,
    oi?: boolean,
  ): Promise<unknown>;
  placeGTT(params: object): Promise<unknown>;
  modifyGTT(triggerId: string, params: object): Promise<unknown>;
  deleteGTT(triggerId: string): Promise<unknown>;
  getGTTs(): Promise<unknown>;
  getGTT(triggerId: string): Promise<unknown>;
  generateSession(requestToken: string, apiSecret: string): Promise<unknown>;
  setAccessToken(token: string): void;
  requestInstance: AxiosLike & {
    defaults: { httpAgent?: unknown; httpsAgent?: unknown; maxContentLength?: number };
  };
}

/** A refused token exchange is a bad or used request_token (or api secret), not an expired session. */
function loginFailure(error: unknown, what: string): BrokerError {
  const err = mapKiteError(error, what);
  if (err.code !== "AUTH") return err;
  const said = isKiteErrorBody(error) && typeof error.message === "string" ? error.message : "token refused";
  return new BrokerError("AUTH", `Kite refused the ${what}: ${said} (log in again; check the api secret)`, {
    cause: error,
  });
}

/**
 * The largest answer read from Kite. axios buffers an answer whole and by default without limit, so
 * a broken proxy or a hostile endpoint could make this process hold any size. Kite's largest real
 * answers (an exchange's instrument list) are a few MB; an answer over this fails as a network
 * error (an order's is then settled by its tag, as any lost answer).
 */
export const MAX_KITE_ANSWER_BYTES = 64 * 1024 * 1024;

/** Which of Kite's limits a call counts against (KITE.md §9). */
export type Lane = "order" | "request" | "quote" | "historical";

export function isKiteOrder(value: unknown): value is KiteOrder {
  return (
    isRecord(value) &&
    (typeof value.order_id === "string" || typeof value.order_id === "number") &&
    typeof value.tradingsymbol === "string" &&
    typeof value.transaction_type === "string"
  );
}

export function isKiteTrigger(value: unknown): value is KiteTrigger {
  return (
    isRecord(value) &&
    value.id !== undefined &&
    isRecord(value.condition) &&
    Array.isArray(value.condition.trigger_values) &&
    Array.isArray(value.orders)
  );
}

/**
 * kiteconnect's REST client behind Kite's limits: every call waits its turn in its lane's sliding
 * windows, and whatever it rejects with (or resolves with, for a wrong Content-Type) becomes a
 * BrokerError. A TokenException ends the session here: every later call fails AUTH at once with
 * the one documented message, until a new access token arrives.
 */
export class KiteRestClient {
  readonly #kite: KiteRest;
  readonly #agent: http.Agent;
  readonly #loginKite: KiteRest;
  readonly #loginAgent: http.Agent;
  /** Order placements, each on a connection of its own (see the constructor). */
  readonly #placeKite: KiteRest;
  readonly #lanes: Record<Lane, RateLimiter>;
  readonly #signal: AbortSignal;
  readonly #onExpired: (detail: BrokerError) => void;
  #expired: BrokerError | undefined;
  /** How many access tokens this client has had: tells a request sent with a replaced one. */
  #tokens = 0;

  constructor(
    settings: KiteSettings,
    signal: AbortSignal,
    onExpired: (detail: BrokerError) => void,
    maxAnswerBytes: number = MAX_KITE_ANSWER_BYTES,
  ) {
    this.#signal = signal;
    this.#onExpired = onExpired;
    this.#kite = new KiteConnect({
      api_key: settings.api_key,
      access_token: settings.access_token,
      root: settings.root,
      timeout: settings.timeout_ms,
    }) as unknown as KiteRest;
    // Our own agent, so close() can destroy every kept-alive socket (the global agent would keep them).
    this.#agent = agentFor(settings.root, true);
    this.#kite.requestInstance.defaults.httpAgent = this.#agent;
    this.#kite.requestInstance.defaults.httpsAgent = this.#agent;
    this.#kite.requestInstance.defaults.maxContentLength = maxAnswerBytes;
    markStaleReads(this.#kite.requestInstance);
    noteRetryAfter(this.#kite.requestInstance);
    // The login's exchange goes on a connection of its own, never a kept-alive one: a server
    // closes an idle connection when its keep-alive timeout runs out (Node's after 5 s), and a
    // request sent on it before this process has read the close is reset. For the one call that
    // carries a single-use request_token that cost the whole login (the kite-login e2e failed so
    // when the login came about 5 s after the broker's last read), and a retry cannot know
    // whether Kite used the token.
    this.#loginKite = new KiteConnect({
      api_key: settings.api_key,
      root: settings.root,
      timeout: settings.timeout_ms,
    }) as unknown as KiteRest;
    this.#loginAgent = agentFor(settings.root, false);
    this.#loginKite.requestInstance.defaults.httpAgent = this.#loginAgent;
    this.#loginKite.requestInstance.defaults.httpsAgent = this.#loginAgent;
    this.#loginKite.requestInstance.defaults.maxContentLength = maxAnswerBytes;
    // Placements too: one reset on a kept-alive socket the server had just closed cannot be told
    // from Kite placing the order and the answer being lost, and a placement whose outcome is
    // unknown is never sent again (order-desk.ts). A fresh connection costs a handshake per order;
    // a placement left unknown costs the order.
    this.#placeKite = new KiteConnect({
      api_key: settings.api_key,
      access_token: settings.access_token,
      root: settings.root,
      timeout: settings.timeout_ms,
    }) as unknown as KiteRest;
    this.#placeKite.requestInstance.defaults.httpAgent = this.#loginAgent;
    this.#placeKite.requestInstance.defaults.httpsAgent = this.#loginAgent;
    this.#placeKite.requestInstance.defaults.maxContentLength = maxAnswerBytes;
    noteRetryAfter(this.#placeKite.requestInstance);
    const limits = settings.rate_limit;
    const wait = limits.max_wait_ms;
    const margin = limits.margin_ms;
    this.#lanes = {
      order: new RateLimiter(
        "order",
        kiteWindows(limits.orders_per_second, margin, limits.orders_per_minute),
        wait,
      ),
      request: new RateLimiter("request", kiteWindows(limits.requests_per_second, margin), wait),
      quote: new RateLimiter("quote", kiteWindows(limits.quotes_per_second, margin), wait),
      historical: new RateLimiter("historical data", kiteWindows(limits.historical_per_second, margin), wait),
    };
  }

  /** The AUTH error every call fails with while the session is over; undefined while it lasts. */
  get expired(): BrokerError | undefined {
    return this.#expired;
  }

  /** Declares the session over (Kite refused the token); returns false when it already was. */
  expire(detail: BrokerError): boolean {
    if (this.#expired !== undefined) return false;
    this.#expired = new BrokerError("AUTH", SESSION_EXPIRED, { cause: detail });
    return true;
  }

  setAccessToken(token: string): void {
    this.#kite.setAccessToken(token);
    this.#placeKite.setAccessToken(token);
    this.#tokens += 1;
    this.#expired = undefined;
  }

  /** One kiteconnect call: rate-limited, its rejection (or resolved error body) made a BrokerError. */
  async call(
    lane: Lane,
    what: string,
    call: (kite: KiteRest) => Promise<unknown>,
    options: {
      freshConnection?: boolean;
      /** Told just before the request goes out: a CLOSED before then proves it was never sent. */
      onSend?: () => void;
    } = {},
  ): Promise<unknown> {
    const kite = options.freshConnection === true ? this.#placeKite : this.#kite;
    let staleRetried = false;
    for (let attempt = 1; ; attempt++) {
      if (this.#signal.aborted) throw new BrokerError("CLOSED", `Kite broker is closed; ${what} not sent`);
      if (this.#expired !== undefined) throw this.#expired;
      const release = await this.#lanes[lane].acquire(this.#signal);
      // The session may have died while this waited its turn: Kite would refuse it, so it is not
      // sent, and its place goes back at once rather than to a request that cannot succeed.
      const diedMeanwhile = this.expired;
      if (diedMeanwhile !== undefined) {
        release(true);
        throw diedMeanwhile;
      }
      const sentWith = this.#tokens;
      let result: unknown;
      try {
        options.onSend?.();
        result = await call(kite);
      } catch (error) {
        // Sent with a token a login replaced while it was on its way: Kite refused the old token
        // and did nothing, and the new session is not over. Once more, with the new token.
        if (sentWith !== this.#tokens && attempt < 3 && mapKiteError(error, what).code === "AUTH") continue;
        if (error instanceof StaleSocketRead) {
          // A read written on a kept-alive socket the server had just closed never reached it:
          // once more on a fresh socket, taking its own place in the lane again. Never an order
          // (only GETs are marked stale, and never on the order lane): its outcome is settled by
          // the order desk, not by sending it again.
          dropIdleSockets(this.#agent);
          if (!staleRetried && lane !== "order") {
            staleRetried = true;
            continue;
          }
          throw this.#failure(error.kiteBody, what);
        }
        throw this.#failure(error, what);
      } finally {
        release();
      }
      // A 2xx reply with the wrong Content-Type resolves with a DataException body (KITE.md §5).
      if (isKiteErrorBody(result)) throw this.#failure(result, what);
      return result;
    }
  }

  /**
   * A call made without a session (the login's token exchange): no auth gate, same error mapping,
   * on a fresh connection (see the constructor), and ahead of every ordinary request waiting in
   * its lane, so a login is never queued behind (or refused because of) the background reads a
   * broker keeps making.
   */
  async unauthenticated(what: string, call: (kite: KiteRest) => Promise<unknown>): Promise<unknown> {
    if (this.#signal.aborted) throw new BrokerError("CLOSED", `Kite broker is closed; ${what} not sent`);
    const release = await this.#lanes.request.acquire(this.#signal, true);
    let result: unknown;
    try {
      result = await call(this.#loginKite);
    } catch (error) {
      throw loginFailure(error, what);
    } finally {
      release();
    }
    if (isKiteErrorBody(result)) throw loginFailure(result, what);
    return result;
  }

  #failure(error: unknown, what: string): BrokerError {
    if (this.#signal.aborted && !(error instanceof BrokerError)) {
      return new BrokerError("CLOSED", `Kite broker closed during the ${what}`, { cause: error });
    }
    const err = mapKiteError(error, what);
    if (err.code === "AUTH") {
      this.#onExpired(err);
      return this.#expired ?? err;
    }
    return err;
  }

  async fetchBook(): Promise<KiteOrder[]> {
    const book = await this.call("request", "order book request", (k) => k.getOrders());
    if (!Array.isArray(book))
      throw new BrokerError("INTERNAL", "bad reply from Kite: the order book is not a list");
    return book.filter(isKiteOrder);
  }

  async fetchGtts(): Promise<KiteTrigger[]> {
    const list = await this.call("request", "GTT list request", (k) => k.getGTTs());
    if (!Array.isArray(list))
      throw new BrokerError("INTERNAL", "bad reply from Kite: the GTT list is not a list");
    return list.filter(isKiteTrigger);
  }

  /** Ends every kept-alive REST socket. */
  destroy(): void {
    this.#agent.destroy();
    this.#loginAgent.destroy();
  }
}
