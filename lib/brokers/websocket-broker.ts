import { createHmac, randomBytes } from "node:crypto";
import { EventEmitter, setMaxListeners } from "node:events";
import type { z } from "zod";
import type {
  Account,
  AccountEvent,
  ConnectionState,
  GttEvent,
  GttEventType,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEvent,
  OrderEventType,
  OrderRequestInput,
  OrderSnapshot,
  OrderStatus,
  Position,
} from "../protocol";
import { BrokerError, toBrokerError } from "../protocol/errors";
import { GttRequest } from "../protocol/gtt";
import type { OrderRequest } from "../protocol/orders";
import {
  OrderChanges as OrderChangesSchema,
  OrderSnapshot as OrderSnapshotSchema,
  isTerminal,
} from "../protocol/orders";
import { SymbolList } from "../protocol/quotes";
import { orderRequestJson, parseOrderRequest } from "../protocol/order-fast-path";
import { OrderEvent as OrderEventSchema } from "../protocol/events";
import type { PlainAnsweredEntry } from "../protocol/snapshot-fast-path";
import {
  isPlainAnsweredEntry,
  isPlainOrderSnapshot,
  plainAnsweredEventOf,
  plainOrderEventOf,
} from "../protocol/snapshot-fast-path";
import { parseOrThrow } from "../protocol/validate";
import type { AuthResult, OrderEventDelta, RequestType, ResumeResult, WireResultOf } from "../protocol/wire";
import {
  RESULT_SCHEMAS,
  ResultMessage,
  SUBPROTOCOL,
  SUBPROTOCOL_V1_1,
  ServerMessage,
  WIRE_LIMITS,
  authPayload,
} from "../protocol/wire";
import { newClientOrderId } from "../common/ids";
import { isRecord } from "../common/is-record";
import { RetentionQueue } from "../common/retention-queue";
import { CircuitBreaker, linkVerdict } from "../ws/circuit-breaker";
import type { Session } from "../ws/reconnecting-client";
import { ReconnectingClient } from "../ws/reconnecting-client";
import { TokenBucket } from "../ws/token-bucket";
import type { BrokerEvents, BrokerInterface } from "./interface";
import type { BrokerLogger } from "./logger";
import { silentLogger } from "./logger";
import type { WebSocketSettings } from "./websocket-settings";
import { messageOf } from "../common/error-message";
import { loadStory, StoryKeeper } from "./websocket-story-file";
import type { StoryContents } from "./websocket-story-file";
import { IntentMark, loadIntent, websocketIntentFile } from "./websocket-intent-file";
import { isUnknownOutcome, settlePlacement, showsChanges } from "../common/unknown-outcome";

export interface WebSocketBrokerDeps {
  log?: BrokerLogger;
  /**
   * The newest protocol version to offer. "v1.1" (the default) asks a gateway that knows it for
   * order events as deltas; a v1.0 gateway is spoken to in v1.0. "v1" offers v1.0 only.
   */
  protocol?: "v1" | "v1.1";
  /**
   * v1.1: "skip" (the default) asks the gateway to put the events its answers to this client's own
   * order requests stand for inside those answers rather than in frames of their own; "send" asks
   * for every event as a push. Listeners get every event either way.
   */
  answeredEvents?: "send" | "skip";
  /**
   * Where this broker keeps its story (websocket-story-file.ts) so that a Node-RED process that
   * starts again resumes from it; read as the broker is made, written after what it counts was
   * reported. Without it the story lives only as long as the process (carryOn).
   */
  storyFile?: string;
}

/** An account event as it arrived: whole, or (v1.1) an order event's changed fields over a base. */
type IncomingEvent = AccountEvent | (OrderEventDelta & { delta: true });

/** Placements kept for the delta of their first event, and order bases kept for the next delta. */
const MAX_SENT_PLACEMENTS = 10_000;
const MAX_DELTA_BASES = 100_000;
/** GTTs remembered in all, active ones included: far beyond any account's (Kite allows a few hundred). */
const MAX_KNOWN_GTTS = 20_000;
/** How long a first session waits for the story it starts from to be written. */
const STORY_BASELINE_WAIT_MS = 1000;

/**
 * An order's observable state. Two states with the same key are one as far as the book can tell: a
 * reconcile reports no difference between them. Events are told apart by their seq, not by this.
 */
function versionKey(order: OrderSnapshot): string {
  return `${order.status}|${order.filled_quantity}|${order.quantity}|${order.price}|${order.trigger_price}|${order.timestamp}`;
}

const EVENT_FOR_STATUS: Record<OrderStatus, OrderEventType> = {
  PENDING: "ORDER_PLACED",
  OPEN: "ORDER_PLACED",
  TRIGGER_PENDING: "ORDER_PLACED",
  PARTIALLY_FILLED: "ORDER_PARTIALLY_FILLED",
  FILLED: "ORDER_FILLED",
  CANCELLED: "ORDER_CANCELLED",
  REJECTED: "ORDER_REJECTED",
  EXPIRED: "ORDER_EXPIRED",
};

/** How far along its life an order is: an event never takes an order back. */
const PROGRESS: Record<OrderStatus, number> = {
  PENDING: 0,
  OPEN: 1,
  TRIGGER_PENDING: 1,
  PARTIALLY_FILLED: 2,
  FILLED: 3,
  CANCELLED: 3,
  REJECTED: 3,
  EXPIRED: 3,
};

/** True when `next` would take an order's status or fills back from `known`, or go on after its end. */
function goesBack(known: OrderSnapshot, next: OrderSnapshot): boolean {
  if (isTerminal(known.status)) return true;
  const rank = PROGRESS[next.status] - PROGRESS[known.status];
  if (rank !== 0) return rank < 0;
  return next.filled_quantity < known.filled_quantity;
}

/**
 * True when `next` is older than `known` or repeats its end. Only for states that carry no seq of
 * their own (the book a reconcile reads): it compares timestamps, which a gateway's clock may repeat
 * within a millisecond or set back.
 */
function isStale(known: OrderSnapshot, next: OrderSnapshot): boolean {
  if (goesBack(known, next)) return true;
  const rank = PROGRESS[next.status] - PROGRESS[known.status];
  if (rank !== 0 || next.filled_quantity !== known.filled_quantity) return false;
  return Date.parse(next.timestamp) < Date.parse(known.timestamp);
}

/** What one client knew of an account, for the client that replaces it (see carryOn). */
export type WebSocketStory = StoryContents;

/**
 * BrokerInterface over the v1 WebSocket order protocol (docs/PROTOCOL.md), on the reconnecting
 * client core. It authenticates and resumes from its last event seq after every reconnect; when
 * the server no longer holds the missed events it reconciles from the order book and reports what
 * changed as synthesized events, so no fill is missed and none is reported twice. A placement whose
 * answer was lost is settled by looking the order up by client_order_id before anything is
 * reported or retried, so it yields exactly one order.
 */
export class WebSocketBroker extends EventEmitter<BrokerEvents> implements BrokerInterface {
  readonly kind = "websocket" as const;
  readonly settings: WebSocketSettings;

  readonly #log: BrokerLogger;
  readonly #client: ReconnectingClient;
  readonly #breaker: CircuitBreaker;
  /** Last known state of each order this client has seen, for dedupe and reconciliation. */
  readonly #known = new Map<string, OrderSnapshot>();
  readonly #knownEnded = new RetentionQueue<"order">();
  /**
   * Orders whose last reported state was read from the book (a reconcile), not carried by an event.
   * The events after that read may be what the book already showed, and they can only be matched by
   * state; an order's other events each have a seq of their own and are all reported.
   */
  readonly #fromBook = new Set<string>();
  /**
   * Each GTT as this client last reported it; `fromBook` when a reconcile read it from the list
   * (the live event of that change, should it follow, is then not a second change).
   */
  readonly #gtts = new Map<string, { gtt: GttSnapshot; fromBook: boolean }>();
  /** GTTs that ended (no longer active), oldest first: past the retention bound they are forgotten. */
  readonly #gttsEnded = new RetentionQueue<"gtt">();
  readonly #subscriptions = new Set<string>();
  #lastSeq = 0;
  /**
   * Server time (ms) up to which this client has the account's story: its first AUTH, then each
   * event processed and each reconcile. An order unknown to it whose last change is older did not
   * happen in a gap: it ended before the client started, or was reported and then forgotten.
   */
  #syncedAt = 0;
  #sessions = 0;
  /** The account a story handed over by carryOn() belongs to, until the first session checks it. */
  #carriedAccount: string | undefined;
  /** The session whose loss was last counted by the breaker (see #call). */
  #droppedSession = -1;
  #account = "";
  #coolDownTimer: NodeJS.Timeout | undefined;
  #clientState: ConnectionState = "disconnected";
  #state: ConnectionState = "disconnected";
  #connectWaiters: { resolve: () => void; reject: (error: BrokerError) => void }[] = [];
  readonly #closed = new AbortController();
  /** Events that arrived while a session was catching up; see #openSession. */
  #held: IncomingEvent[] | undefined;
  readonly #protocols: string[];
  readonly #answeredEvents: "send" | "skip";
  /** Set once a server refused answered_events (it predates it): later AUTHs leave it out. */
  #answeredRefused = false;
  /** v1.1: this session's order events may come as deltas. */
  #deltas = false;
  /** order_id → the seq and snapshot of its last event processed: the base of an EVENT_DELTA. */
  readonly #bases = new Map<string, { seq: number; order: OrderSnapshot }>();
  /**
   * The answer snapshot last found plainly valid on the way in (v1.1: while taking its events out),
   * so that #call hands it on without checking the same object again. One slot is enough: the
   * client settles the waiting request right after handing the answer over, in the same call; a
   * WeakSet cost an insert and a delete per order and ephemeron work in every scavenge.
   */
  #checkedAnswer: object | undefined;
  /** v1.1 skip: answers whose events wait to be processed (see #onAnsweredEvents). */
  #answered: { message: Record<string, unknown>; plain: boolean }[] = [];
  #answeredImmediate: NodeJS.Immediate | undefined;
  /** client_order_id → the order sent in PLACE_ORDER: the base of its first EVENT_DELTA. */
  readonly #sentPlacements = new Map<string, Record<string, unknown>>();
  /** Writes the story to deps.storyFile after it changes, and at close. */
  readonly #keeper: StoryKeeper | undefined;
  /**
   * With a story file: the highest seq about to be reported is on disk before it is
   * (websocket-intent-file.ts). Events wait in #pending (in arrival order) for their mark.
   */
  #intent: IntentMark | undefined;
  readonly #pending: IncomingEvent[] = [];
  /** Highest seq in #pending (0 when it is empty). */
  #pendingTop = 0;
  /**
   * Events up to this seq may have been reported by the process that crashed before this one
   * (between its story's seq and its intent mark): reported again marked possible_duplicate.
   * Infinity until the first session when that mark could not be read (then: all it replays).
   */
  #repeatUpTo = 0;

  constructor(settings: WebSocketSettings, deps: WebSocketBrokerDeps = {}) {
    super();
    this.settings = settings;
    this.#log = deps.log ?? silentLogger;
    this.#protocols = deps.protocol === "v1" ? [SUBPROTOCOL] : [SUBPROTOCOL_V1_1, SUBPROTOCOL];
    this.#answeredEvents = deps.answeredEvents ?? "skip";
    // Every placement settling a lost answer waits on this signal: hundreds at once after a drop
    // are expected, not a leak (Node warns past 10).
    setMaxListeners(0, this.#closed.signal);
    this.#breaker = new CircuitBreaker({
      failureThreshold: settings.breaker.failure_threshold,
      coolDownMs: settings.breaker.cool_down_ms,
      onStateChange: (state) => this.#onBreaker(state),
    });
    const options: ConstructorParameters<typeof ReconnectingClient>[0] = {
      url: settings.url,
      protocols: this.#protocols,
      backoff: {
        initialMs: settings.reconnect.initial_ms,
        factor: settings.reconnect.factor,
        maxMs: settings.reconnect.max_ms,
      },
      heartbeat: { intervalMs: settings.heartbeat_ms, maxMissedPongs: 2 },
      requestTimeoutMs: settings.request_timeout_ms,
      queue: { max: settings.queue.max, ttlMs: settings.queue.ttl_ms },
      rateLimit: new TokenBucket(settings.rate_limit.per_second, settings.rate_limit.burst),
      openSession: (session) => this.#openSession(session),
      appPing: { message: () => ({ type: "PING" }), onResult: (result) => this.#onPing(result) },
    };
    if (settings.ca !== undefined) options.ca = settings.ca;
    this.#client = new ReconnectingClient(options);
    this.#client.on("state", (state, reason) => this.#onClientState(state, reason));
    this.#client.on("message", (message) => this.#onMessage(message));
    this.#client.on("error", (error) => this.#emitError(error));
    if (deps.storyFile !== undefined) {
      const loaded = loadStory(deps.storyFile, settings.url, settings.api_key);
      const intentFile = websocketIntentFile(deps.storyFile);
      let floor = 0;
      if (loaded.kind === "ok") {
        this.carryOn(loaded.story);
        floor = loaded.story.last_seq;
        const intent = loadIntent(intentFile);
        if (intent.kind === "ok" && intent.seq > floor) {
          this.#repeatUpTo = intent.seq;
          floor = intent.seq;
        } else if (intent.kind === "unknown") {
          this.#repeatUpTo = Infinity;
          this.#log.warn(
            `${intent.why}; every event reported again after the story's seq ${loaded.story.last_seq} is marked possible_duplicate`,
          );
        }
      } else if (loaded.kind === "ignored") {
        this.#log.warn(
          `${loaded.why}; it is not used: this broker starts from the gateway's present, and fills made while Node-RED was stopped are not reported`,
        );
      }
      this.#keeper = new StoryKeeper(deps.storyFile, () => this.story(), this.#log);
      this.#intent = new IntentMark(intentFile, floor, this.#log, () => this.#drainPending());
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The last event seq processed: what a RESUME after the next reconnect starts from. */
  get lastSeq(): number {
    this.#client.flushInbound();
    this.#drainAnswered();
    return this.#lastSeq;
  }

  get stats(): ReconnectingClient["stats"] & { circuit: string } {
    return { ...this.#client.stats, circuit: this.#breaker.state };
  }

  // #region lifecycle

  /**
   * Starts the connection. Resolves once connected, or once the first attempt has failed (the
   * client keeps reconnecting and queues requests meanwhile); rejects when the credentials are
   * refused, since retrying them cannot help.
   */
  connect(): Promise<void> {
    if (this.#clientState === "connected") return Promise.resolve();
    const settled = new Promise<void>((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
    this.#client.start();
    return settled;
  }

  async close(): Promise<void> {
    // Events that arrived are reported, even if the check phase that would have taken them is gone.
    this.#client.flushInbound();
    this.#drainAnswered();
    clearImmediate(this.#answeredImmediate);
    this.#answeredImmediate = undefined;
    // Placements waiting to ask again about a lost answer stop waiting, and end CLOSED.
    this.#closed.abort();
    clearTimeout(this.#coolDownTimer);
    await this.#client.close();
    this.#settleConnectWaiters(new BrokerError("CLOSED", "WebSocket broker closed before it connected"));
    // Events waiting for their intent mark are reported before the story that counts them.
    if (this.#pendingTop > 0) await this.#intent?.reach(this.#pendingTop);
    this.#drainPending();
    // Last: no event can arrive any more, so the story written is all that was reported.
    await this.#keeper?.flush();
    await this.#intent?.close();
  }

  #onClientState(state: ConnectionState, reason?: string): void {
    this.#clientState = state;
    if (state === "connected" || state === "reconnecting") this.#settleConnectWaiters();
    if (state === "disconnected" && reason !== undefined && this.#connectWaiters.length > 0) {
      this.#settleConnectWaiters(new BrokerError(this.#client.fatalError?.code ?? "AUTH", reason));
    }
    this.#publishState(reason);
  }

  #onBreaker(state: string): void {
    if (state === "open") {
      this.#log.warn(`circuit open: failing fast for ${this.settings.breaker.cool_down_ms} ms`);
      // The breaker has no timer of its own; without this the flow would see "circuit open" until
      // the next request, long after the cool-down.
      clearTimeout(this.#coolDownTimer);
      this.#coolDownTimer = setTimeout(() => this.#publishState(), this.settings.breaker.cool_down_ms + 1);
      this.#coolDownTimer.unref();
    }
    this.#publishState();
  }

  /** The client's state, unless the breaker is open: then the flow should see that instead. */
  #publishState(reason?: string): void {
    const next: ConnectionState =
      this.#clientState === "connected" && this.#breaker.state === "open"
        ? "circuit-open"
        : this.#clientState;
    if (next === this.#state) return;
    this.#state = next;
    this.emit("state", next, reason);
  }

  #settleConnectWaiters(error?: BrokerError): void {
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const waiter of waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }

  /**
   * Runs on every (re)connect before queued requests go out: authenticate, then catch up on the
   * events missed while away (replayed, or reconciled from the order book when too old).
   */
  async #openSession(session: Session): Promise<void> {
    // What the last connection delivered goes first.
    this.#drainAnswered();
    // The server pushes live events as soon as AUTH succeeds, so one can overtake the replay of
    // what was missed; handled first, it would move lastSeq past the replay, whose events would
    // then be dropped as already seen. Events wait here until the session has caught up.
    const held: IncomingEvent[] = [];
    this.#held = held;
    try {
      const auth = await this.#authenticate(session);
      this.#sessions += 1;
      const story = this.#sessions === 1 && this.#carriedAccount !== undefined;
      const carried = story && auth.account === this.#carriedAccount;
      // A story of another account (the gateway now serves a different one) says nothing here.
      if (story && !carried) this.#forgetStory();
      this.#carriedAccount = undefined;
      if (this.#repeatUpTo === Infinity) {
        // What the crashed process may have reported is at most what the server had by now.
        this.#repeatUpTo = auth.seq;
        this.#intent?.raiseFloor(auth.seq);
      }
      // A story at seq 0 (an account without events yet) is resumed from too: what came since is news.
      if (this.#sessions === 1 && this.#known.size === 0 && !carried) {
        // A fresh client starts from now: replaying the account's history would re-announce old fills.
        this.#lastSeq = auth.seq;
        this.#syncedAt = Math.max(this.#syncedAt, Date.parse(auth.server_time));
        // Where it starts from is written before anything is reported: a crash before the first
        // write after an event would otherwise make the next process start from its own present.
        // Bounded, so a slow disk cannot hold the session past its open timeout.
        this.#keeper?.touch();
        await this.#keeper?.flushWithin(STORY_BASELINE_WAIT_MS);
      } else {
        await this.#resume((message) => session.request(message), auth.seq);
      }
      this.#keeper?.touch();
    } finally {
      // On failure the held events are dropped: the next session resumes from the same seq.
      if (this.#held === held) this.#held = undefined;
    }
    this.#release(held);
    if (this.#subscriptions.size > 0) await this.#resubscribe(session);
  }

  /**
   * Asks again for the quotes subscribed before the reconnect. A refusal (the api key's symbol cap
   * taken by its other connections meanwhile, a rate limit) is reported and the session goes on:
   * failing it would only reconnect to be refused again, forever, with every order waiting. The
   * symbols stay subscribed here, so the next reconnect asks for them again.
   */
  async #resubscribe(session: Session): Promise<void> {
    const symbols = Array.from(this.#subscriptions);
    try {
      await session.request({ type: "SUBSCRIBE", symbols });
    } catch (error) {
      const err = toBrokerError(error);
      // The connection itself failed: the next session tries again.
      if (isUnknownOutcome(err) || err.code === "CLOSED" || err.code === "NOT_CONNECTED") throw err;
      const named =
        symbols.slice(0, 5).join(", ") + (symbols.length > 5 ? ` and ${symbols.length - 5} more` : "");
      this.#emitError(
        new BrokerError(
          err.code,
          `the server refused to subscribe again after the reconnect to quotes for ${named}: ${err.message}; no quotes for them until the next reconnect`,
        ),
      );
    }
  }

  /**
   * What this client knows of the account's story: the last seq processed, how far in time, and
   * the last state of each order and GTT it reported. Undefined before any session told it the
   * account. No secret is in it.
   */
  story(): WebSocketStory | undefined {
    const account = this.#account !== "" ? this.#account : this.#carriedAccount;
    if (account === undefined) return undefined;
    return {
      url: this.settings.url,
      api_key: this.settings.api_key,
      account,
      last_seq: this.lastSeq,
      synced_at: this.#syncedAt,
      orders: Array.from(this.#known.values()),
      gtts: Array.from(this.#gtts.values(), (known) => known.gtt),
    };
  }

  /**
   * Takes up the story of the broker this one replaces (a redeploy makes a new broker for the same
   * config): the first session then resumes from where that one stopped, so what happened while
   * neither was connected is reported (replayed, or reconciled from the book), and what it
   * reported is not reported again. Ignored once connected, or for another server or api key.
   */
  carryOn(story: WebSocketStory): void {
    if (this.#sessions > 0 || this.#account !== "") return;
    if (story.url !== this.settings.url || story.api_key !== this.settings.api_key) return;
    this.#forgetStory();
    this.#carriedAccount = story.account;
    this.#lastSeq = story.last_seq;
    this.#syncedAt = story.synced_at;
    for (const order of story.orders) this.#remember(order);
    for (const gtt of story.gtts) this.#rememberGtt(gtt, false);
  }

  #forgetStory(): void {
    this.#known.clear();
    this.#knownEnded.clear();
    this.#fromBook.clear();
    this.#gtts.clear();
    this.#gttsEnded.clear();
    this.#bases.clear();
    this.#lastSeq = 0;
    this.#syncedAt = 0;
    this.#repeatUpTo = 0;
  }

  /** A signed AUTH with a fresh nonce; v1.1 options only when the server picked v1.1. */
  #authRequest(v11: boolean, nameAnswered: boolean): { type: string; [key: string]: unknown } {
    const timestamp = Date.now();
    const nonce = randomBytes(16).toString("hex");
    const signature = createHmac("sha256", this.settings.api_secret)
      .update(authPayload(this.settings.api_key, timestamp, nonce))
      .digest("hex");
    const request: { type: string; [key: string]: unknown } = {
      type: "AUTH",
      api_key: this.settings.api_key,
      timestamp,
      nonce,
      signature,
    };
    if (v11) {
      request.options = nameAnswered
        ? { event_format: "delta", answered_events: this.#answeredEvents }
        : { event_format: "delta" };
    }
    return request;
  }

  async #authenticate(session: Session): Promise<AuthResult> {
    // Options only to a server that picked v1.1: a v1.0 gateway refuses an AUTH with unknown fields.
    const v11 = session.protocol === SUBPROTOCOL_V1_1;
    const nameAnswered = v11 && !this.#answeredRefused;
    let raw: unknown;
    try {
      raw = await session.request(this.#authRequest(v11, nameAnswered));
    } catch (error) {
      const err = toBrokerError(error);
      // A v1.1 gateway built before answered_events refuses it with its strict options schema; it
      // still speaks v1.1 otherwise, so the session goes on in "send" mode (every event pushed).
      if (!nameAnswered || err.code !== "VALIDATION" || !err.message.includes("answered_events")) throw err;
      this.#answeredRefused = true;
      this.#log.warn(
        `the server refused answered_events (${err.message}); it predates that option, so every event is pushed to this client`,
      );
      raw = await session.request(this.#authRequest(v11, false));
    }
    const auth = parseResult("AUTH", raw);
    this.#deltas = v11 && auth.options?.event_format === "delta";
    this.#account = auth.account;
    this.#client.setLimits({ maxBatch: auth.limits.max_batch, maxFrameBytes: auth.limits.max_frame_bytes });
    return auth;
  }

  async #resume(send: Send, serverSeq: number): Promise<void> {
    if (serverSeq < this.#lastSeq) {
      // The server's account is behind what we processed (a reset or a different account): only
      // the order book can say what is true now.
      this.#log.warn(`server seq ${serverSeq} is behind the last processed ${this.#lastSeq}; reconciling`);
      await this.#reconcile(send, serverSeq);
      return;
    }
    const resumed: ResumeResult = parseResult(
      "RESUME",
      await send({ type: "RESUME", from_seq: this.#lastSeq }),
    );
    if (resumed.gap) {
      this.#log.warn(
        `events after seq ${this.#lastSeq} are no longer held by the server; reconciling from the order book`,
      );
      await this.#reconcile(send, resumed.seq);
    }
  }

  /**
   * A seq gap on a live connection (a relay dropped frames, or the last events never came): hold
   * what arrives, RESUME from the last seq processed (reconciling if the server no longer holds it),
   * then process the held events in order. On failure the held events are dropped, the last seq
   * stays where it was, and the next event or PING starts a new repair from it.
   */
  #repairGap(trigger: IncomingEvent | undefined, why: string): void {
    if (this.#held !== undefined) {
      if (trigger !== undefined) this.#held.push(trigger);
      return;
    }
    const held: IncomingEvent[] = trigger === undefined ? [] : [trigger];
    this.#held = held;
    const from = this.#lastSeq;
    this.#log.warn(`${why}; resuming from seq ${from}`);
    this.#resume((message) => this.#client.request(message), from).then(
      () => {
        if (this.#held !== held) return;
        this.#held = undefined;
        this.#release(held);
      },
      (error: unknown) => {
        if (this.#held === held) this.#held = undefined;
        this.#log.warn(
          `repairing the gap after seq ${from} failed (${messageOf(error)}); trying again on the next event`,
        );
      },
    );
  }

  /**
   * Processes held events in seq order; one that opens a new gap holds the rest again. A whole
   * event goes before a delta of the same seq: a RESUME re-sends as whole the delta that had no base.
   */
  #release(held: IncomingEvent[]): void {
    held.sort((a, b) => a.seq - b.seq || ("delta" in a ? 1 : 0) - ("delta" in b ? 1 : 0));
    for (const event of held) {
      if (this.#held !== undefined) this.#held.push(event);
      else this.#onEvent(event);
    }
  }

  #onPing(raw: unknown): void {
    // The seq compared below counts the events of answers that came before this one.
    this.#drainAnswered();
    const parsed = RESULT_SCHEMAS.PING.safeParse(raw);
    if (!parsed.success || this.#held !== undefined) return;
    // The server sent every event up to its seq before this answer: a higher seq means lost events.
    if (parsed.data.seq > Math.max(this.#lastSeq, this.#pendingTop)) {
      this.#repairGap(
        undefined,
        `server is at seq ${parsed.data.seq} but the last event received was ${this.#lastSeq}`,
      );
    }
  }

  /** Compares the order book and GTTs with what this client last saw and reports the differences. */
  async #reconcile(send: Send, serverSeq: number): Promise<void> {
    // The events a reconcile skips are bases this client never got; and a reset account reuses
    // seqs and order ids, so a kept base could match a delta it does not belong to.
    this.#bases.clear();
    const book = await readBook(async (page) =>
      parseResult("GET_ORDERBOOK", await send({ type: "GET_ORDERBOOK", ...page })),
    );
    const gtts = await readGtts(async (page) =>
      parseResult("GET_GTTS", await send({ type: "GET_GTTS", ...page })),
    );
    // What it reports carries the server's seq: that mark goes on disk first, and the events that
    // wait for a mark go before the comparison, which then sees them reported.
    const mayRepeat = this.#lastSeq < this.#repeatUpTo;
    if (this.#intent !== undefined) {
      await this.#intent.reach(Math.max(serverSeq, this.#pendingTop));
      this.#drainPending();
    }
    const now = new Date().toISOString();
    let newest = this.#syncedAt;
    for (const order of book) {
      const changedAt = Date.parse(order.timestamp);
      if (changedAt > newest) newest = changedAt;
      const known = this.#known.get(order.order_id);
      // Not this client's news: it ended (or last changed) before the client's story began.
      if (known === undefined && changedAt < this.#syncedAt) continue;
      if (known !== undefined && (versionKey(known) === versionKey(order) || isStale(known, order))) continue;
      const type: OrderEventType =
        known !== undefined &&
        known.status === order.status &&
        known.filled_quantity === order.filled_quantity
          ? "ORDER_MODIFIED"
          : EVENT_FOR_STATUS[order.status];
      this.#emitOrder({ type, seq: serverSeq, order, synthesized: true, timestamp: now }, mayRepeat);
      this.#fromBook.add(order.order_id);
    }
    for (const gtt of gtts) {
      const type = this.#gttChange(this.#gtts.get(gtt.gtt_id)?.gtt, gtt);
      if (type !== undefined) this.#emitGtt({ type, seq: serverSeq, gtt, timestamp: now }, true, mayRepeat);
    }
    this.#syncedAt = newest;
    if (serverSeq > this.#lastSeq) this.#lastSeq = serverSeq;
    this.#keeper?.touch();
  }

  // #endregion

  // #region inbound

  #onMessage(raw: unknown): void {
    if (isRecord(raw) && raw.type === "RESULT") {
      // Late answers nobody waits for any more, and (v1.1) answers carrying the events they stand
      // for: those events are processed at the answer's place in the stream.
      if (raw.events !== undefined) this.#onAnsweredEvents(raw);
      return;
    }
    // Whatever came after an answer is processed after the events that answer carried.
    if (this.#answered.length > 0) this.#drainAnswered();
    // Most traffic is order events: a plainly valid one skips zod (see snapshot-fast-path.ts).
    const plain = plainOrderEventOf(raw) ?? plainDeltaOf(raw);
    if (plain !== undefined) {
      if (this.#held !== undefined) this.#held.push(plain);
      else this.#onEvent(plain);
      return;
    }
    const parsed = ServerMessage.safeParse(raw);
    if (!parsed.success) {
      this.#emitError(
        new BrokerError(
          "BAD_FRAME",
          `server sent a message that is not protocol v1: ${parsed.error.issues[0]?.message ?? "?"}`,
        ),
      );
      return;
    }
    const message = parsed.data;
    if (message.type === "QUOTE") {
      this.emit("quote", message.quote);
      return;
    }
    if (message.type !== "EVENT" && message.type !== "EVENT_DELTA") return;
    const event: IncomingEvent =
      message.type === "EVENT" ? message.event : Object.assign(message.event, { delta: true as const });
    if (this.#held !== undefined) this.#held.push(event);
    else this.#onEvent(event);
  }

  /**
   * An answer carrying the events it stands for (v1.1 skip). Its snapshot is checked now, so the
   * waiting request can take it; the events wait for the check phase (or for whatever arrives or
   * asks next, whichever comes first). So the caller's next request goes out before they are made
   * whole and emitted, as it does when they come as pushes of their own after the answer ("send"),
   * and they are still processed at the answer's place in the stream.
   */
  #onAnsweredEvents(message: Record<string, unknown>): void {
    const plain = Array.isArray(message.events) && isPlainOrderSnapshot(message.result);
    this.#checkedAnswer = plain ? (message.result as object) : undefined;
    this.#answered.push({ message, plain });
    this.#answeredImmediate ??= setImmediate(this.#drainAnsweredLater);
  }

  readonly #drainAnsweredLater = (): void => {
    this.#answeredImmediate = undefined;
    this.#drainAnswered();
  };

  /** Processes the answered events still waiting, in the order their answers came. */
  #drainAnswered(): void {
    const answers = this.#answered;
    if (answers.length === 0) return;
    this.#answered = [];
    for (const { message, plain } of answers) this.#takeAnsweredEvents(message, plain);
  }

  /**
   * The events an answer stands for, made whole (the answer's snapshot with each event's fields laid
   * over it) and handled like pushed ones: seq order, gaps, dedupe. One that does not check out is
   * reported and skipped; the seq gap it leaves is repaired by RESUME like a lost frame.
   */
  #takeAnsweredEvents(message: Record<string, unknown>, plain: boolean): void {
    let events = message.events;
    let snapshot = message.result;
    if (!plain) {
      const parsed = ResultMessage.safeParse(message);
      const order = OrderSnapshotSchema.safeParse(message.result);
      if (!parsed.success || !order.success) {
        this.#emitError(
          new BrokerError(
            "BAD_FRAME",
            `server's answer ${String(message.id)} carries events that are not protocol v1.1: ${(parsed.error ?? order.error)?.issues[0]?.message ?? "?"}`,
          ),
        );
        return;
      }
      events = parsed.data.events ?? [];
      snapshot = order.data;
    }
    const list = events as unknown[];
    const skipped = plain ? this.#passOverSuperseded(snapshot as OrderSnapshot, list) : 0;
    for (let i = skipped; i < list.length; i++) {
      const answered = list[i];
      const event =
        (plain ? plainAnsweredEventOf(snapshot as OrderSnapshot, answered) : undefined) ??
        answeredEventOf(snapshot as Record<string, unknown>, answered);
      if (event === undefined) {
        this.#emitError(
          new BrokerError(
            "BAD_FRAME",
            `server's answer ${String(message.id)} carries an event that is not protocol v1.1`,
          ),
        );
        continue;
      }
      if (this.#held !== undefined) this.#held.push(event);
      else this.#onEvent(event);
    }
  }

  /**
   * With nobody listening for order events, an answered event that the next one in the same answer
   * supersedes is never looked at: the last one leaves the order's state as processing them all
   * would. So those only move the seq on, and are not made whole. Only when nothing could differ:
   * every entry plainly valid, seqs following on from the last processed, nothing held, and no
   * superseded one ending the order. Returns how many were passed over.
   */
  #passOverSuperseded(snapshot: OrderSnapshot, list: unknown[]): number {
    const last = list.length - 1;
    if (last < 1 || this.#held !== undefined || this.#pendingTop > 0 || this.listenerCount("order") > 0) {
      return 0;
    }
    for (let i = 0; i <= last; i++) {
      const entry = list[i];
      if (!isPlainAnsweredEntry(entry) || entry.seq !== this.#lastSeq + 1 + i) return 0;
      if (i < last && isTerminal(entry.order?.status ?? snapshot.status)) return 0;
    }
    const final = list[last] as PlainAnsweredEntry;
    for (let i = 0; i < last; i++) {
      const at = Date.parse((list[i] as PlainAnsweredEntry).timestamp);
      if (at > this.#syncedAt) this.#syncedAt = at;
    }
    this.#lastSeq = final.seq - 1;
    this.#keeper?.touch();
    return last;
  }

  /**
   * An event goes on at once when its seq is under the intent mark on disk and none waits before
   * it; otherwise it waits for the next mark, which every event arriving meanwhile shares.
   */
  #onEvent(incoming: IncomingEvent): void {
    const intent = this.#intent;
    if (intent === undefined || (this.#pendingTop === 0 && incoming.seq <= intent.durable)) {
      this.#process(incoming);
      return;
    }
    this.#pending.push(incoming);
    if (incoming.seq > this.#pendingTop) this.#pendingTop = incoming.seq;
    intent.want(incoming.seq);
  }

  /** Processes, in arrival order, the waiting events the mark on disk now covers. */
  #drainPending(): void {
    const durable = this.#intent?.durable ?? Infinity;
    let ready = 0;
    while (ready < this.#pending.length && this.#pending[ready]!.seq <= durable) ready += 1;
    if (ready === 0) return;
    const events = this.#pending.splice(0, ready);
    if (this.#pending.length === 0) this.#pendingTop = 0;
    for (const event of events) this.#process(event);
  }

  #process(incoming: IncomingEvent): void {
    // At-most-once per seq: a replayed or duplicated event has a seq already processed.
    if (incoming.seq <= this.#lastSeq) return;
    if (incoming.seq > this.#lastSeq + 1) {
      this.#repairGap(incoming, `event seq jumped from ${this.#lastSeq} to ${incoming.seq}`);
      return;
    }
    let event: AccountEvent;
    if ("delta" in incoming) {
      const whole = this.#applyDelta(incoming);
      if (whole === undefined) {
        // Its base is not here (forgotten, or skipped by a reconcile): a RESUME from the last
        // seq processed gets this event whole, since its base is at or before that seq.
        this.#repairGap(incoming, `no base for the delta of event ${incoming.seq}`);
        return;
      }
      event = whole;
    } else event = incoming;
    if ("order" in event) this.#keepBase(event.seq, event.order);
    this.#lastSeq = event.seq;
    const at = Date.parse(event.timestamp);
    if (at > this.#syncedAt) this.#syncedAt = at;
    if ("order" in event) this.#emitOrder(event);
    else this.#emitGtt(event);
    // After the listeners have it: a crash before the write reports it again, never skips it.
    this.#keeper?.touch();
  }

  /**
   * Emits an order event unless it would take the order backwards, or its state was already
   * reported from the book. An event's seq (checked before this) is what makes it new: the gateway
   * sends each event once per seq, and RESUME replays only seqs after the last processed, so two
   * events that leave the order with the same fields (a modify to the values it has, in the
   * millisecond of its last event) are two events, both reported. What has no seq of its own is a
   * state read from the book by a reconcile (`synthesized`) and the events after that read, which
   * the book may already show: those are matched by state (versionKey) and age, until one event
   * matches the book's state or is newer than it.
   */
  #emitOrder(event: OrderEvent, mayRepeat = event.seq <= this.#repeatUpTo): void {
    const id = event.order.order_id;
    const known = this.#known.get(id);
    if (known !== undefined) {
      if (event.synthesized === true || this.#fromBook.has(id)) {
        if (versionKey(known) === versionKey(event.order)) {
          if (event.synthesized !== true) this.#fromBook.delete(id);
          return;
        }
        if (isStale(known, event.order)) return;
      } else if (goesBack(known, event.order)) return;
    }
    if (event.synthesized !== true) this.#fromBook.delete(id);
    this.#remember(event.order);
    this.emit("order", mayRepeat ? { ...event, possible_duplicate: true } : event);
  }

  /** The whole event a delta stands for, or undefined when its base is not held (or it does not check out). */
  #applyDelta(delta: OrderEventDelta): OrderEvent | undefined {
    const changes = delta.order as Record<string, unknown>;
    let base: Record<string, unknown> | undefined;
    if (delta.base === "request") {
      const clientOrderId = changes.client_order_id;
      base = typeof clientOrderId === "string" ? this.#sentPlacements.get(clientOrderId) : undefined;
    } else {
      const known = this.#bases.get(delta.order.order_id);
      if (known !== undefined && known.seq === delta.base) base = known.order;
    }
    if (base === undefined) return undefined;
    // Field by field: an object spread takes a slow path in V8.
    const order: Record<string, unknown> = {};
    for (const key in base) if (base[key] !== undefined) order[key] = base[key];
    for (const key in changes) order[key] = changes[key];
    const event: Record<string, unknown> = {
      type: delta.type,
      seq: delta.seq,
      order,
      timestamp: delta.timestamp,
    };
    if (delta.trades !== undefined) event.trades = delta.trades;
    const plain = plainOrderEventOf({ type: "EVENT", event });
    if (plain !== undefined) return plain;
    const parsed = OrderEventSchema.safeParse(event);
    if (parsed.success) return parsed.data;
    this.#emitError(
      new BrokerError(
        "BAD_FRAME",
        `server's delta for event ${delta.seq} does not make an order event: ${parsed.error.issues[0]?.message ?? "?"}`,
      ),
    );
    return undefined;
  }

  /** The base of the order's next delta (the server forgets ended orders' bases too). */
  #keepBase(seq: number, order: OrderSnapshot): void {
    this.#sentPlacements.delete(order.client_order_id);
    this.#bases.delete(order.order_id);
    if (!this.#deltas || isTerminal(order.status)) return;
    this.#bases.set(order.order_id, { seq, order });
    if (this.#bases.size > MAX_DELTA_BASES) this.#bases.delete(this.#bases.keys().next().value ?? "");
  }

  /**
   * What a reconcile reports of a GTT the list shows as `gtt`, given what this client last reported
   * of it: only a change made while it was away. A GTT it never heard of that last changed before its
   * story began (#syncedAt) is no news, whatever its status: it was there (or ended) before the client.
   */
  #gttChange(known: GttSnapshot | undefined, gtt: GttSnapshot): GttEventType | undefined {
    const changedAt = Date.parse(gtt.updated_at);
    if (known === undefined && changedAt < this.#syncedAt) return undefined;
    if (known !== undefined && known.status === gtt.status) {
      // Still active, changed since it was reported: modified while away.
      return gtt.status === "active" && changedAt > Date.parse(known.updated_at) ? "GTT_MODIFIED" : undefined;
    }
    if (gtt.status === "triggered") return "GTT_TRIGGERED";
    if (gtt.status === "deleted") return "GTT_DELETED";
    if (gtt.status !== "active" || known !== undefined) return undefined;
    // Unheard of and active: placed while away, or placed before the client and modified since.
    return Date.parse(gtt.created_at) < this.#syncedAt ? "GTT_MODIFIED" : "GTT_PLACED";
  }

  #emitGtt(event: GttEvent, fromBook = false, mayRepeat = event.seq <= this.#repeatUpTo): void {
    const known = this.#gtts.get(event.gtt.gtt_id);
    if (known !== undefined) {
      if (event.type !== "GTT_MODIFIED") {
        if (known.gtt.status === event.gtt.status) return;
      } else if (known.fromBook && known.gtt.updated_at === event.gtt.updated_at) return;
    }
    this.#rememberGtt(event.gtt, fromBook);
    this.emit("gtt", mayRepeat ? { ...event, possible_duplicate: true } : event);
  }

  /**
   * Ended GTTs past the retention bound are forgotten, as ended orders are: a reconcile then skips
   * one unless the list shows it changed after the story's time (#gttChange), so none is reported
   * twice. Active ones are kept (a server caps how many an account has); past MAX_KNOWN_GTTS in all
   * (a server that never ends them) the oldest go too, and their later events are still reported.
   */
  #rememberGtt(gtt: GttSnapshot, fromBook: boolean): void {
    const before = this.#gtts.get(gtt.gtt_id);
    this.#gtts.set(gtt.gtt_id, { gtt, fromBook });
    if (gtt.status !== "active" && (before === undefined || before.gtt.status === "active")) {
      this.#gttsEnded.push(gtt.gtt_id, "gtt");
      this.#gttsEnded.trim(this.settings.retention, (id) => {
        if (this.#gtts.get(id)?.gtt.status !== "active") this.#gtts.delete(id);
      });
    }
    if (this.#gtts.size > MAX_KNOWN_GTTS) this.#gtts.delete(this.#gtts.keys().next().value ?? "");
  }

  #remember(order: OrderSnapshot): void {
    const before = this.#known.get(order.order_id);
    this.#known.set(order.order_id, order);
    if (isTerminal(order.status) && (before === undefined || !isTerminal(before.status))) {
      this.#knownEnded.push(order.order_id, "order");
      this.#knownEnded.trim(this.settings.retention, (id) => {
        this.#known.delete(id);
        this.#fromBook.delete(id);
      });
    }
  }

  #emitError(error: BrokerError): void {
    // An 'error' event without a listener would throw; the log is the fallback.
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else this.#log.warn(error.message);
  }

  // #endregion

  // #region requests

  /** One request through the breaker; unknown outcomes count as failures, final answers as health. */
  #call<T extends RequestType>(
    type: T,
    body: Record<string, unknown>,
    ttlMs?: number,
    settling = false,
  ): Promise<WireResultOf<T>> {
    return new Promise((resolve, reject) =>
      this.#send(type, body, ttlMs, resolve, reject, undefined, settling),
    );
  }

  /**
   * #call without a promise of its own: exactly one callback runs, once. `onResult` runs while the
   * answer's frame is handled, so placeOrder resolves the caller's promise there, one microtask
   * before the caller continues (awaiting the client's promise, then #call's, cost two more).
   */
  #send<T extends RequestType>(
    type: T,
    body: Record<string, unknown>,
    ttlMs: number | undefined,
    onResult: (result: WireResultOf<T>) => void,
    onError: (error: BrokerError) => void,
    /** The message's JSON text but its opening brace, when the caller wrote it (see orderRequestJson). */
    jsonTail?: string,
    /**
     * A read that settles a request whose answer was lost (see #settlePlacement). It goes through
     * an open circuit: a burst of timeouts is what opens it, and refusing the lookups then would
     * report orders that exist as "outcome unknown" and invite the flow to place them again. The
     * load stays bounded without the breaker: each unsettled request has at most one lookup in
     * flight, paced by the settle loop, and only for its resolve window. It never serves as the
     * half-open trial (its ticket is 0), so it neither closes the circuit nor shortens the cool-down.
     */
    settling = false,
  ): void {
    let ticket = 0;
    if (!settling) {
      try {
        ticket = this.#breaker.check();
      } catch (error) {
        onError(toBrokerError(error));
        return;
      }
    }
    // Callers pass a fresh object; adding `type` to it avoids a spread, which is slow in V8.
    const message = Object.assign(body, { type });
    const onAnswer = (raw: unknown): void => {
      this.#breaker.success(ticket);
      let result: WireResultOf<T>;
      try {
        result = this.#resultOf(type, raw);
      } catch (error) {
        // A garbled answer still crossed the link; it was counted as that just above.
        onError(toBrokerError(error));
        return;
      }
      onResult(result);
    };
    const onFailure = (error: BrokerError): void => onError(this.#failed(error, ticket));
    const options = ttlMs === undefined ? undefined : { ttlMs };
    if (jsonTail === undefined) this.#client.send(message, options, onAnswer, onFailure);
    else this.#client.sendJson(message, jsonTail, options, onAnswer, onFailure);
  }

  #resultOf<T extends RequestType>(type: T, raw: unknown): WireResultOf<T> {
    // Marked: a plainly valid order snapshot, which is what an order request's answer must be.
    const checked = this.#checkedAnswer;
    this.#checkedAnswer = undefined;
    if (checked !== undefined && checked === raw && ORDER_RESULTS.has(type)) return raw as WireResultOf<T>;
    return parseResult(type, raw);
  }

  /**
   * Counts a failed request with the breaker (linkVerdict says what each code proves); returns its
   * error. `ticket` is the one #send got: only the half-open trial's own outcome moves the circuit.
   */
  #failed(err: BrokerError, ticket: number): BrokerError {
    if (err.code === "NETWORK" && ticket === 0) {
      // One dropped connection fails every request it carried at once: that is one failure, not
      // one per request, or a blip with a few orders in flight would open the circuit (and block
      // the lookups that settle those orders) long after the link is back.
      if (this.#droppedSession !== this.#sessions) {
        this.#droppedSession = this.#sessions;
        this.#breaker.failure(ticket);
      }
      return err;
    }
    const verdict = linkVerdict(err.code);
    if (verdict === "healthy") this.#breaker.success(ticket);
    else if (err.code === "TIMEOUT" || err.code === "NETWORK" || (verdict === "unhealthy" && ticket !== 0)) {
      this.#breaker.failure(ticket);
    } else {
      // While closed, an answer like INTERNAL neither proves the gateway healthy (no reset) nor
      // counts toward opening: the circuit is for a link that stops answering, and the gateway
      // answered. A neutral end gives a trial's slot back for the next caller.
      this.#breaker.release(ticket);
    }
    return err;
  }

  placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    let order: OrderRequest & { client_order_id: string };
    try {
      const request = parseOrderRequest(input);
      // The id exists before anything is sent, so a lost answer can always be looked up.
      // `request` is our own parsed copy, so it may gain the id in place (a spread is slow in V8).
      request.client_order_id ??= newClientOrderId();
      order = request as OrderRequest & { client_order_id: string };
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
    const sendBy = Date.now() + this.settings.queue.ttl_ms;
    if (this.#deltas) {
      // Kept until the order's first event: the delta that event may come as is over this request.
      this.#sentPlacements.set(order.client_order_id, order);
      if (this.#sentPlacements.size > MAX_SENT_PLACEMENTS) {
        this.#sentPlacements.delete(this.#sentPlacements.keys().next().value ?? "");
      }
    }
    // Written by concatenation when it can be (the same text JSON.stringify would give).
    const orderJson = orderRequestJson(order);
    const jsonTail = orderJson === undefined ? undefined : `"order":${orderJson},"type":"PLACE_ORDER"}`;
    return new Promise<OrderSnapshot>((resolve, reject) => {
      this.#send(
        "PLACE_ORDER",
        { order },
        undefined,
        (snapshot) => resolve(this.#accepted(snapshot)),
        (err) => {
          if (!isUnknownOutcome(err)) {
            reject(err);
            return;
          }
          // Settled from a microtask, as when this was awaited: the lookups it sends must not run
          // inside the client's handling of the failure (a deadline or a dropped link).
          resolve(
            Promise.resolve(err).then((first) => {
              this.#log.warn(
                `placement ${order.client_order_id}: ${first.message}; looking it up before reporting`,
              );
              return this.#settlePlacement(order, sendBy, first);
            }),
          );
        },
        jsonTail,
      );
    });
  }

  /** A placement whose answer was lost, looked up by its client_order_id (lib/common/unknown-outcome). */
  #settlePlacement(
    order: OrderRequest & { client_order_id: string },
    sendBy: number,
    first: BrokerError,
  ): Promise<OrderSnapshot> {
    return settlePlacement({
      clientId: order.client_order_id,
      first,
      windowMs: this.settings.resolve_window_ms,
      sendBy,
      ttlMs: this.settings.queue.ttl_ms,
      venue: "the server",
      signal: this.#closed.signal,
      isUnknown: isUnknownOutcome,
      lookup: async (remainingMs) => {
        try {
          return await this.#call("GET_ORDER", { client_order_id: order.client_order_id }, remainingMs, true);
        } catch (error) {
          if (toBrokerError(error).code === "NOT_FOUND") return undefined;
          throw error;
        }
      },
      // Final answers about the id itself: it was used before (today), for this or another order.
      isFinal: (err) =>
        err.code === "CLOSED" || err.code === "DUPLICATE_ORDER" || err.code === "IDEMPOTENCY_MISMATCH",
      resend: (ttl) => this.#call("PLACE_ORDER", { order }, ttl),
    });
  }

  /**
   * An answer is the request's outcome, not an order event: #known holds only what was reported
   * as events, so a reconcile still reports a fill whose answer arrived but whose events were lost
   * (a gateway killed between sending the two).
   */
  #accepted(order: OrderSnapshot): OrderSnapshot {
    return order;
  }

  async modifyOrder(orderId: string, changesInput: OrderChanges): Promise<OrderSnapshot> {
    const changes = parseOrThrow(OrderChangesSchema, changesInput, "order changes");
    const sendBy = Date.now() + this.settings.queue.ttl_ms;
    try {
      return this.#accepted(await this.#call("MODIFY_ORDER", { order_id: orderId, changes }));
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) throw err;
      this.#log.warn(`modify of order ${orderId}: ${err.message}; looking the order up before reporting`);
      return this.#accepted(await this.#settleModify(orderId, changes, sendBy, err));
    }
  }

  /**
   * A modify whose answer was lost, settled by reading the order (the placement's rule, in
   * lib/common/unknown-outcome): an order that shows the change (showsChanges) is the answer; an
   * order that ended without it was not modified (ORDER_TERMINAL, "not applied"); an open order
   * without it is sent the same modify again while its time to live lasts: the modify was lost on
   * its way, or is still being carried out behind the gateway, and setting the same values twice
   * is harmless. Still unknown when the resolve window ends: NETWORK, as before.
   */
  #settleModify(
    orderId: string,
    changes: OrderChanges,
    sendBy: number,
    first: BrokerError,
  ): Promise<OrderSnapshot> {
    return settlePlacement({
      clientId: orderId,
      subject: `the modify of order ${orderId}`,
      done: "applied",
      first,
      windowMs: this.settings.resolve_window_ms,
      sendBy,
      ttlMs: this.settings.queue.ttl_ms,
      venue: "the server",
      signal: this.#closed.signal,
      isUnknown: isUnknownOutcome,
      lookup: async (remainingMs) => {
        const order = await this.#call("GET_ORDER", { order_id: orderId }, remainingMs, true);
        if (showsChanges(order, changes)) return order;
        if (isTerminal(order.status)) {
          throw new BrokerError(
            "ORDER_TERMINAL",
            `order ${orderId} is ${order.status} without the change (${first.message}): the modify was not applied`,
          );
        }
        return undefined;
      },
      isFinal: (err) => err.code === "CLOSED" || err.code === "NOT_FOUND" || err.code === "ORDER_TERMINAL",
      resend: (ttl) => this.#call("MODIFY_ORDER", { order_id: orderId, changes }, ttl),
    });
  }

  async cancelOrder(orderId: string): Promise<OrderSnapshot> {
    const sendBy = Date.now() + this.settings.queue.ttl_ms;
    try {
      return this.#accepted(await this.#call("CANCEL_ORDER", { order_id: orderId }));
    } catch (error) {
      const err = toBrokerError(error);
      if (!isUnknownOutcome(err)) throw err;
      this.#log.warn(`cancel of order ${orderId}: ${err.message}; looking the order up before reporting`);
      return this.#accepted(await this.#settleCancel(orderId, sendBy, err));
    }
  }

  /**
   * A cancel whose answer was lost, settled by the placement's rule (lib/common/unknown-outcome):
   * an order that ended is the answer, however it ended (a cancel wants the order to stop working,
   * and an order that filled meanwhile has stopped: its snapshot says FILLED, as Kite's cancel
   * says); an open order is sent the cancel again while its time to live lasts (cancelling twice
   * is harmless), EXPIRED after that; NETWORK when it cannot be read within the resolve window.
   */
  #settleCancel(orderId: string, sendBy: number, first: BrokerError): Promise<OrderSnapshot> {
    const ended = async (remainingMs: number): Promise<OrderSnapshot | undefined> => {
      const order = await this.#call("GET_ORDER", { order_id: orderId }, remainingMs, true);
      return isTerminal(order.status) ? order : undefined;
    };
    return settlePlacement({
      clientId: orderId,
      subject: `the cancel of order ${orderId}`,
      done: "cancelled",
      first,
      windowMs: this.settings.resolve_window_ms,
      sendBy,
      ttlMs: this.settings.queue.ttl_ms,
      venue: "the server",
      signal: this.#closed.signal,
      isUnknown: isUnknownOutcome,
      lookup: ended,
      isFinal: (err) => err.code === "CLOSED" || err.code === "NOT_FOUND",
      resend: async (ttl) => {
        try {
          return await this.#call("CANCEL_ORDER", { order_id: orderId }, ttl);
        } catch (error) {
          // It ended between the lookup and this cancel (filled, or the first cancel landed late):
          // how it ended is the answer, as it would have been to the lookup.
          if (toBrokerError(error).code !== "ORDER_TERMINAL") throw error;
          const order = await ended(this.settings.request_timeout_ms);
          if (order === undefined) throw error;
          return order;
        }
      },
    });
  }

  async getOrder(orderId: string): Promise<OrderSnapshot> {
    return this.#call("GET_ORDER", { order_id: orderId });
  }

  async getOrderbook(): Promise<OrderSnapshot[]> {
    return readBook((page) => this.#call("GET_ORDERBOOK", { ...page }));
  }

  async placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    const gtt = parseOrThrow(GttRequest, input, "GTT");
    return this.#call("PLACE_GTT", { gtt });
  }

  async modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const gtt = parseOrThrow(GttRequest, input, "GTT");
    return this.#call("MODIFY_GTT", { gtt_id: gttId, gtt });
  }

  async deleteGtt(gttId: string): Promise<GttSnapshot> {
    return this.#call("DELETE_GTT", { gtt_id: gttId });
  }

  async getGtts(): Promise<GttSnapshot[]> {
    return readGtts((page) => this.#call("GET_GTTS", { ...page }));
  }

  async getPositions(): Promise<Position[]> {
    return this.#call("GET_POSITIONS", {});
  }

  async getAccount(): Promise<Account> {
    return this.#call("GET_ACCOUNT", {});
  }

  async subscribeQuotes(symbols: string[]): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    const added = list.filter((symbol) => !this.#subscriptions.has(symbol));
    for (const symbol of added) this.#subscriptions.add(symbol);
    try {
      await this.#call("SUBSCRIBE", { symbols: list });
    } catch (error) {
      // Refused: not subscribed, so not asked for again at every reconnect (where a refusal of the
      // same cap would come back each time). An unknown outcome keeps them: the next session asks.
      if (!isUnknownOutcome(toBrokerError(error)))
        for (const symbol of added) this.#subscriptions.delete(symbol);
      throw error;
    }
  }

  async unsubscribeQuotes(symbols: string[]): Promise<void> {
    const list = parseOrThrow(SymbolList, symbols, "symbols");
    for (const symbol of list) this.#subscriptions.delete(symbol);
    await this.#call("UNSUBSCRIBE", { symbols: list });
  }

  /** The account name the gateway reported at AUTH. */
  get account(): string {
    return this.#account;
  }

  // #endregion
}

type Send = (message: { type: string; [key: string]: unknown }) => Promise<unknown>;

const ANSWERED_KEYS: ReadonlySet<string> = new Set(["type", "seq", "order", "trades", "timestamp"]);

/** An answered event made whole over its answer's snapshot, checked (fast path, then the schema); undefined if it is not one. */
function answeredEventOf(snapshot: Record<string, unknown>, raw: unknown): OrderEvent | undefined {
  if (!isRecord(raw)) return undefined;
  for (const key in raw) if (!ANSWERED_KEYS.has(key)) return undefined;
  const changes = raw.order;
  if (changes !== undefined && !isRecord(changes)) return undefined;
  // A copy, field by field (a spread is slow in V8): listeners must not share the caller's answer.
  const order: Record<string, unknown> = {};
  for (const key in snapshot) if (snapshot[key] !== undefined) order[key] = snapshot[key];
  if (changes !== undefined) for (const key in changes) order[key] = changes[key];
  const event: Record<string, unknown> = { type: raw.type, seq: raw.seq, order, timestamp: raw.timestamp };
  if (raw.trades !== undefined) event.trades = raw.trades;
  const plain = plainOrderEventOf({ type: "EVENT", event });
  if (plain !== undefined) return plain;
  const parsed = OrderEventSchema.safeParse(event);
  return parsed.success ? parsed.data : undefined;
}

const DELTA_KEYS: ReadonlySet<string> = new Set(["type", "seq", "base", "order", "trades", "timestamp"]);

/** A plainly shaped EVENT_DELTA's event (its order is checked once the delta is applied); undefined: ask the schema. */
function plainDeltaOf(message: unknown): IncomingEvent | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  const m = message as Record<string, unknown>;
  if (m.type !== "EVENT_DELTA" || Object.keys(m).length !== 2) return undefined;
  const e = m.event;
  if (typeof e !== "object" || e === null || Object.getPrototypeOf(e) !== Object.prototype) return undefined;
  const event = e as Record<string, unknown>;
  for (const key in event) if (!DELTA_KEYS.has(key)) return undefined;
  const { seq, base, order } = event;
  const ok =
    typeof event.type === "string" &&
    typeof event.timestamp === "string" &&
    typeof seq === "number" &&
    Number.isSafeInteger(seq) &&
    seq > 0 &&
    (base === "request" || (typeof base === "number" && Number.isSafeInteger(base) && base > 0)) &&
    typeof order === "object" &&
    order !== null &&
    Object.getPrototypeOf(order) === Object.prototype &&
    typeof (order as Record<string, unknown>).order_id === "string";
  // Type, timestamp and the order's fields are checked on the whole event the delta makes.
  return ok ? Object.assign(event as unknown as OrderEventDelta, { delta: true as const }) : undefined;
}

/** The whole order book, page by page (the gateway answers at most WIRE_LIMITS.maxPage at once). */
function readBook(
  fetchPage: (page: { limit: number; after?: string }) => Promise<OrderSnapshot[]>,
): Promise<OrderSnapshot[]> {
  return readPages(fetchPage, (order) => order.order_id);
}

/**
 * Every GTT, page by page. A gateway older than GET_GTTS paging refuses `limit` as an unknown
 * key: it is asked once without it, as it always was, and answers the whole list.
 */
async function readGtts(
  fetchPage: (page: { limit?: number; after?: string }) => Promise<GttSnapshot[]>,
): Promise<GttSnapshot[]> {
  try {
    return await readPages(fetchPage, (gtt) => gtt.gtt_id);
  } catch (error) {
    if (!(error instanceof BrokerError && error.code === "VALIDATION" && UNPAGED_GTTS.test(error.message))) {
      throw error;
    }
    return fetchPage({});
  }
}

/** What a gateway without GET_GTTS paging answers to `limit`: its strict schema's unknown field. */
const UNPAGED_GTTS = /^invalid GET_GTTS: (limit: unknown field|.*Unrecognized keys?: "limit")/;

/** A whole list in id order, a page at a time; a page shorter than asked for is the last. */
async function readPages<T>(
  fetchPage: (page: { limit: number; after?: string }) => Promise<T[]>,
  idOf: (item: T) => string,
): Promise<T[]> {
  const limit = WIRE_LIMITS.maxPage;
  const list: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await fetchPage(after === undefined ? { limit } : { limit, after });
    for (const item of page) list.push(item);
    const last = page[page.length - 1];
    if (page.length < limit || last === undefined) return list;
    after = idOf(last);
  }
}

/** Checks a RESULT against the request type's schema: a peer's bad answer is an error, not data. */
const ORDER_RESULTS: ReadonlySet<RequestType> = new Set([
  "PLACE_ORDER",
  "MODIFY_ORDER",
  "CANCEL_ORDER",
  "GET_ORDER",
]);

function parseResult<T extends RequestType>(type: T, raw: unknown): WireResultOf<T> {
  if (ORDER_RESULTS.has(type) && isPlainOrderSnapshot(raw)) return raw as WireResultOf<T>;
  const schema = RESULT_SCHEMAS[type] as unknown as z.ZodType<WireResultOf<T>>;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new BrokerError(
    "BAD_FRAME",
    `server's answer to ${type} is not protocol v1: ${parsed.error.issues[0]?.message ?? "?"}`,
  );
}
