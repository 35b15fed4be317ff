import type { BrokerInterface } from "../brokers/interface";
import type { BrokerLogger } from "../brokers/logger";
import { BrokerError } from "../protocol/errors";
import type { GttSnapshot } from "../protocol/gtt";
import type { OrderSnapshot } from "../protocol/orders";
import type { Answer, AnswerBatch } from "./answer-batch";
import type { AuthResult, RequestType, WireRequest, WireRequestOf } from "../protocol/wire";
import { CLOSE_CODES, WIRE_LIMITS } from "../protocol/wire";
import { TokenBucket } from "../ws/token-bucket";
import type { AuthVerifier } from "./auth";
import type { Client } from "./client";
import type { FrameBudget } from "./frame-budget";
import { IdPages } from "./id-pages";
import { MAX_IN_FLIGHT, MAX_LISTED_ROWS } from "./frame-budget";
import { isRecord } from "../common/is-record";
import { errorFrame, parseRequest, readableId, REQUEST_TYPE_SET, resultFrame } from "./frames";
import type { GatewaySettings } from "./options";
import type { Placements } from "./placements";
import type { RefusalLog } from "./refusal-log";
import type { Placing, Pushes } from "./pushes";
import type { QuoteSubscriptions } from "../common/quote-subscriptions";
import { setReceiveLimit } from "./receive-limit";

/** Per api key: its shared rate bucket and its authenticated connections. */
export interface KeyUsage {
  bucket: TokenBucket;
  connections: number;
}

/** Requests answered with the snapshot of the order they changed. */
const ORDER_ANSWERS: ReadonlySet<string> = new Set(["PLACE_ORDER", "MODIFY_ORDER", "CANCEL_ORDER"]);

/** Requests that change the broker's GTTs. */
const GTT_CHANGES: ReadonlySet<string> = new Set(["PLACE_GTT", "MODIFY_GTT", "DELETE_GTT"]);

/** Requests whose answer announces a change to the account. */
const MUTATING = new Set([
  "PLACE_ORDER",
  "MODIFY_ORDER",
  "CANCEL_ORDER",
  "PLACE_GTT",
  "MODIFY_GTT",
  "DELETE_GTT",
]);

export interface DispatchParts {
  readonly settings: GatewaySettings;
  readonly verifier: AuthVerifier;
  readonly budget: FrameBudget;
  readonly placements: Placements;
  readonly quotes: QuoteSubscriptions<Client>;
  readonly pushes: Pushes;
  /** Shared with the connection handling, which counts a key's connections down as they close. */
  readonly perKey: Map<string, KeyUsage>;
  /** Warnings any peer can cause at will (a refused AUTH): at most one a second. */
  readonly refusals: RefusalLog;
}

/**
 * One message to one answer: its rate, shape, type, authentication and schema are checked in the
 * caller's turn, then the broker runs it. Every request gets exactly one RESULT or ERROR.
 */
export class Dispatcher {
  readonly #parts: DispatchParts;
  readonly #broker: BrokerInterface;
  readonly #log: BrokerLogger;
  readonly #gtts: IdPages<GttSnapshot>;

  constructor(parts: DispatchParts) {
    this.#parts = parts;
    this.#broker = parts.settings.broker;
    this.#log = parts.settings.log;
    const broker = this.#broker;
    this.#gtts = new IdPages({
      scan: () => broker.getGtts(),
      idOf: (gtt) => gtt.gtt_id,
      request: "GET_GTTS",
      items: "GTTs",
    });
  }

  /** The broker's GTTs changed: the next GET_GTTS page reads them again. */
  gttsChanged(): void {
    this.#gtts.changed();
  }

  /**
   * One message: rate, shape, type, authentication, schema, then the broker. Its answer fills
   * slot `index` of `batch`, now or once the broker has answered.
   */
  handle(client: Client, message: unknown, batch: AnswerBatch, index: number): void {
    const refused = this.#handle(client, message, batch, index);
    if (refused !== undefined) batch.settle(index, refused);
  }

  /** The answer when it is known at once; undefined when the request runs and settles its slot itself. */
  #handle(client: Client, message: unknown, batch: AnswerBatch, index: number): string | undefined {
    const id = readableId(message);
    const waitMs = client.bucket.take();
    if (waitMs > 0) return this.#parts.budget.rateLimited(id, waitMs);
    if (!isRecord(message) || typeof message.type !== "string") {
      return errorFrame(id, "BAD_FRAME", "a message must be a JSON object with a string type");
    }
    const type = message.type;
    if (!REQUEST_TYPE_SET.has(type)) {
      return errorFrame(id, "UNKNOWN_TYPE", `unknown message type ${JSON.stringify(type.slice(0, 64))}`);
    }
    if (client.closeCode !== undefined) {
      return errorFrame(id, "UNAUTHENTICATED", `AUTH failed on this connection; ${type} was not executed`);
    }
    if (type !== "AUTH" && !client.authenticated) {
      return errorFrame(id, "UNAUTHENTICATED", `send AUTH first; ${type} was not executed`);
    }
    if (type === "AUTH" && client.authenticated) {
      return errorFrame(
        id,
        "VALIDATION",
        "AUTH: this connection is already authenticated; a second AUTH is refused",
      );
    }
    if (client.authenticated) {
      const key = this.#parts.perKey.get(client.apiKey);
      const keyWaitMs = key === undefined ? 0 : client.keyShare.take(key.bucket, key.connections);
      if (keyWaitMs > 0) {
        return errorFrame(
          id,
          "RATE_LIMITED",
          `over the api key's rate limit of ${this.#parts.settings.keyRate.perSecond} requests/s over all its connections; not executed, retry after ${keyWaitMs} ms`,
          keyWaitMs,
        );
      }
    }
    if (type === "AUTH" && "options" in message && this.#parts.settings.protocolVersion === "v1") {
      // What a v1.0 gateway's strict AUTH schema answered.
      return errorFrame(id, "VALIDATION", 'invalid AUTH: Unrecognized key: "options"');
    }
    const parsed = parseRequest(type as RequestType, message);
    if (typeof parsed === "string") return errorFrame(id, "VALIDATION", `invalid ${type}: ${parsed}`);
    if (parsed.type === "AUTH") return this.#authenticate(client, parsed);
    if (client.inFlight.has(parsed.id)) {
      return errorFrame(
        parsed.id,
        "VALIDATION",
        `id: a request with id ${parsed.id} is still in flight on this connection; ids must be unique among requests in flight, so this ${type} was not executed`,
      );
    }
    if (client.inFlight.size >= MAX_IN_FLIGHT) {
      return errorFrame(
        parsed.id,
        "RATE_LIMITED",
        `${MAX_IN_FLIGHT} requests are in flight on this connection; not executed, retry after 100 ms`,
        100,
      );
    }
    if (parsed.type === "GET_ORDERBOOK" || parsed.type === "GET_GTTS") {
      const full = this.#noRoomForPage(client, parsed);
      if (full !== undefined) return full;
    }
    client.inFlight.add(parsed.id);
    // The raw request, not zod's output: the client lays a delta over what it sent.
    const placed =
      client.deltas && parsed.type === "PLACE_ORDER" && isRecord(message.order)
        ? this.#parts.pushes.expectPlacement(client, message.order)
        : undefined;
    void this.#execute(client, parsed, placed, batch, index);
    return undefined;
  }

  #authenticate(client: Client, request: WireRequestOf<"AUTH">): string {
    const { settings, perKey } = this.#parts;
    const outcome = this.#parts.verifier.verify(request);
    if (!outcome.ok) {
      this.#parts.refusals.warn(
        "auth",
        `gateway: AUTH refused on connection ${client.id} (${client.remote}): ${outcome.message}`,
      );
      if (outcome.retryAfterMs !== undefined) {
        // Not the credentials' fault: the client may try again later, with a new AUTH.
        client.closeCode = CLOSE_CODES.tryAgainLater;
        return errorFrame(request.id, "AUTH_RETRY", outcome.message, outcome.retryAfterMs);
      }
      client.closeCode = CLOSE_CODES.authFailed;
      return errorFrame(request.id, "AUTH", outcome.message);
    }
    let key = perKey.get(outcome.apiKey);
    if (key === undefined) {
      key = { bucket: new TokenBucket(settings.keyRate.perSecond, settings.keyRate.burst), connections: 0 };
      perKey.set(outcome.apiKey, key);
    }
    if (key.connections >= settings.maxConnectionsPerKey) {
      client.closeCode = CLOSE_CODES.tryAgainLater;
      const message = `api key already has ${key.connections} connections (the most allowed); retry later`;
      this.#parts.refusals.warn(
        "auth",
        `gateway: AUTH refused on connection ${client.id} (${client.remote}): ${message}`,
      );
      return errorFrame(request.id, "AUTH_RETRY", message, 1000);
    }
    key.connections += 1;
    client.apiKey = outcome.apiKey;
    client.authenticated = true;
    setReceiveLimit(client.ws, settings.maxPayloadBytes);
    client.account = outcome.account;
    this.#log.info(
      `gateway: connection ${client.id} (${client.remote}) authenticated for ${outcome.account}`,
    );
    if (client.authTimer !== undefined) clearTimeout(client.authTimer);
    client.authTimer = undefined;
    const seq = this.#parts.pushes.seq;
    client.heldFrom = seq;
    const result: AuthResult = {
      account: outcome.account,
      seq,
      server_time: new Date(settings.now()).toISOString(),
      limits: {
        max_frame_bytes: settings.maxFrameBytes,
        max_batch: settings.maxBatch,
        rate_per_second: settings.rate.perSecond,
        burst: settings.rate.burst,
      },
    };
    // v1.1 fields only for a client that asked in v1.1: a v1.0 client's schema refuses unknown ones.
    if (request.options !== undefined) {
      const eventFormat = request.options.event_format ?? "full";
      const answeredEvents = request.options.answered_events ?? "send";
      client.deltas = eventFormat === "delta";
      client.skipAnswered = answeredEvents === "skip";
      result.protocol = "v1.1";
      // A client that did not name answered_events may be older than it: echo only what was asked.
      result.options =
        request.options.answered_events === undefined
          ? { event_format: eventFormat }
          : { event_format: eventFormat, answered_events: answeredEvents };
    }
    return resultFrame(request.id, result);
  }

  /**
   * Runs the request and settles its slot with the framed outcome; `placed` is what
   * Pushes.expectPlacement registered, withdrawn once it has answered. Never rejects: every
   * outcome, a fault included, is an answer.
   */
  async #execute(
    client: Client,
    request: Exclude<WireRequest, { type: "AUTH" }>,
    placed: Placing | undefined,
    batch: AnswerBatch,
    index: number,
  ): Promise<void> {
    let answer: Answer;
    try {
      // PLACE_ORDER straight to its placement: through #dispatch it cost an async frame and the
      // three microtask hops of an async function returning a promise.
      const result =
        request.type === "PLACE_ORDER"
          ? await this.#parts.placements.place(request.order)
          : await this.#dispatch(client, request);
      if (MUTATING.has(request.type)) {
        // PLACE_ORDER has already waited for its idempotency intent (fsync'd while the broker
        // placed it, Placements.place); an answer from memory waits for nothing, not even a microtask.
        const durable = this.#parts.settings.durable;
        if (durable !== undefined) await durable();
      }
      answer =
        client.skipAnswered && ORDER_ANSWERS.has(request.type)
          ? { id: request.id, order: result as OrderSnapshot }
          : request.type === "GET_ORDERBOOK" || request.type === "GET_GTTS"
            ? this.#listed(client, request.type, result as unknown[], request.id, batch)
            : resultFrame(request.id, result);
    } catch (error) {
      answer = this.#failure(request, error);
    }
    // Whatever its outcome (a timeout may still have changed it), a GTT request made the list
    // pages were read from old; the broker's event may come later than this answer, or never.
    if (GTT_CHANGES.has(request.type)) this.#gtts.changed();
    // Likewise an order request the book's pages (its order's event marks them old too, if it comes).
    else if (ORDER_ANSWERS.has(request.type)) this.#parts.placements.bookChanged();
    client.inFlight.delete(request.id);
    if (placed !== undefined) this.#parts.pushes.placementAnswered(placed);
    batch.settle(index, answer);
  }

  /**
   * A page refused before the list is scanned: a page of `limit` (without it, of as many rows as
   * the last scan found, at most a page) would take the connection past MAX_LISTED_ROWS. A
   * refusal after the scan cost what a whole scan and sort cost (~100 ms for 30,000 rows) for
   * nothing, each time the list had changed. #listed still judges the rows actually listed.
   */
  #noRoomForPage(
    client: Client,
    request: WireRequestOf<"GET_ORDERBOOK"> | WireRequestOf<"GET_GTTS">,
  ): string | undefined {
    const lastSize =
      request.type === "GET_ORDERBOOK" ? this.#parts.placements.orderbookLastSize : this.#gtts.lastSize;
    const rows = request.limit ?? Math.min(lastSize, WIRE_LIMITS.maxPage);
    if (client.listedRows + rows <= MAX_LISTED_ROWS) return undefined;
    return errorFrame(
      request.id,
      "RATE_LIMITED",
      `${request.type}: ${client.listedRows} order book and GTT rows listed on this connection are not yet sent (the most is ${MAX_LISTED_ROWS}); this page of up to ${rows} was not answered, retry after 100 ms`,
      100,
    );
  }

  /**
   * A page's answer, counted against the connection's rows listed and not yet handed to its socket
   * as the rows it holds (before it is serialized, so a refused page costs no JSON): a peer that
   * reads nothing can make the gateway hold at most MAX_LISTED_ROWS rows, and one that asks without
   * `limit` of a small book is not charged the 1,000 rows a page might have held.
   */
  #listed(client: Client, type: string, rows: unknown[], id: string, batch: AnswerBatch): string {
    if (client.listedRows + rows.length > MAX_LISTED_ROWS) {
      return errorFrame(
        id,
        "RATE_LIMITED",
        `${type}: ${client.listedRows} order book and GTT rows listed on this connection are not yet sent (the most is ${MAX_LISTED_ROWS}); this page of ${rows.length} was not answered, retry after 100 ms`,
        100,
      );
    }
    client.listedRows += rows.length;
    batch.listedRows += rows.length;
    return resultFrame(id, rows);
  }

  #failure(request: Exclude<WireRequest, { type: "AUTH" }>, error: unknown): string {
    if (error instanceof BrokerError) {
      return errorFrame(request.id, error.code, error.message, error.retryAfterMs);
    }
    try {
      this.#log.error(
        `gateway: ${request.type} ${request.id} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    } catch {
      // A logger that throws must not cost the request its answer.
    }
    return errorFrame(request.id, "INTERNAL", `${request.type} failed on the gateway; see its log`);
  }

  /** Runs a request against the broker. Anything before its first await runs in the caller's turn. */
  async #dispatch(client: Client, request: Exclude<WireRequest, { type: "AUTH" }>): Promise<unknown> {
    const broker = this.#broker;
    const { placements, quotes, pushes } = this.#parts;
    switch (request.type) {
      case "PLACE_ORDER":
        return placements.place(request.order); // #execute calls it directly; here for the switch's completeness
      case "MODIFY_ORDER":
        return broker.modifyOrder(request.order_id, request.changes);
      case "CANCEL_ORDER":
        return broker.cancelOrder(request.order_id);
      case "GET_ORDER":
        return "order_id" in request
          ? broker.getOrder(request.order_id)
          : placements.byClientOrderId(request.client_order_id);
      case "GET_ORDERBOOK":
        return placements.orderbookPage(request.limit, request.after);
      case "PLACE_GTT":
        return broker.placeGtt(request.gtt);
      case "MODIFY_GTT":
        return broker.modifyGtt(request.gtt_id, request.gtt);
      case "DELETE_GTT":
        return broker.deleteGtt(request.gtt_id);
      case "GET_GTTS":
        return this.#gtts.page(request.limit, request.after);
      case "GET_POSITIONS":
        return broker.getPositions();
      case "GET_ACCOUNT":
        return broker.getAccount();
      case "SUBSCRIBE":
        return { symbols: await quotes.subscribe(client, request.symbols) };
      case "UNSUBSCRIBE":
        return { symbols: await quotes.unsubscribe(client, request.symbols) };
      case "RESUME":
        return pushes.resume(client, request.from_seq);
      case "PING":
        client.pings = true;
        return { seq: pushes.seq, server_time: new Date(this.#parts.settings.now()).toISOString() };
    }
  }
}
