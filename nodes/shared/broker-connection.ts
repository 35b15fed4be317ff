import type { Node, NodeStatus } from "node-red";
import type { BrokerEvents, BrokerInterface } from "../../lib/brokers/interface";
import type { BrokerLogger } from "../../lib/brokers/logger";
import type { ConnectionState } from "../../lib/protocol";
import { BrokerError, toBrokerError } from "../../lib/protocol/errors";
import type { RiskEvent } from "../../lib/protocol/events";
import type { KillCommand, KillOptions, KillOutcome, RiskGuard } from "../../lib/risk/guard";
import { isGuarded } from "../../lib/risk/guard";
import { QuoteSubscriptions } from "../../lib/common/quote-subscriptions";
import { toError } from "./errors";

/** What createBroker returns: the broker, plus an account reset where the broker has one (paper). */
export type ManagedBroker = BrokerInterface & { resetAccount?(): Promise<void> };

export type BrokerListener<E extends keyof BrokerEvents> = (...args: BrokerEvents[E]) => void;
export type RiskListener = (event: RiskEvent) => void;

/** Settings that cannot make a broker: every user shows `status`, every call fails with `error`. */
export interface Unusable {
  error: BrokerError;
  status: NodeStatus;
}

export interface ConnectionOptions {
  /**
   * Names the account behind the broker (user dir, kind, account). A new broker for an account
   * waits until the previous one has closed, because both would open the same journal.
   */
  accountKey: string;
  create(): ManagedBroker;
  log: BrokerLogger;
  stateStatus(state: ConnectionState): NodeStatus;
  failedStatus(error: BrokerError): NodeStatus;
  /** Where the broker dials (a URL without user info or query), named when it cannot get there. */
  address?: string;
  /** What users show while the first connect keeps failing to reach `address` (`why`: the socket's error). */
  unreachableStatus?(why: string): NodeStatus;
  /** What users show while connected and the risk guard is not ACTIVE (a red dot when halted). */
  tradingStatus?(guard: RiskGuard): NodeStatus | undefined;
  closeTimeoutMs?: number;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

/** What a request ends with when the broker never got a connection to send it on. */
const WHILE_DIALLING: ReadonlySet<string> = new Set(["EXPIRED", "TIMEOUT", "NOT_CONNECTED", "NETWORK"]);

/** Closes still running, by account, across config-node instances (a redeploy makes new ones). */
const closing = new Map<string, Promise<void>>();

/** Resolves true when `promise` settles within `ms`, false otherwise; never leaves a timer behind. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One broker per config node, shared by every node that uses it (core MQTT's broker node:
 * register/deregister, the first user connects, the last one closes). It also owns everything
 * users hang on the broker — listeners and quote subscriptions — so that a user leaving,
 * whichever way it leaves, takes all of them with it.
 */
export class BrokerConnection {
  readonly #options: ConnectionOptions;
  readonly #unusable: Unusable | undefined;
  readonly #sessions = new Set<BrokerSession>();
  /** Quote subscriptions counted over the sessions; the broker itself does not count. */
  readonly #quotes = new QuoteSubscriptions<BrokerSession>({
    source: {
      subscribeQuotes: async (keys) => (await this.ready()).subscribeQuotes(keys),
      unsubscribeQuotes: (keys) => this.#unsubscribeOnBroker(keys),
    },
    onUnsubscribeFailed: (keys, error) =>
      this.#options.log.warn(`unsubscribing ${keys.join(", ")} failed: ${toError(error).message}`),
  });

  #broker: ManagedBroker | undefined;
  #detachBroker: (() => void) | undefined;
  #connecting: Promise<ManagedBroker> | undefined;
  #closingNow: Promise<void> | undefined;
  #closed = false;
  #lastStatus: NodeStatus = {};
  #lastFailure: string | undefined;
  /** Why the broker's last dial failed while it keeps retrying (cleared once connected). */
  #unreachable: string | undefined;
  /**
   * The live broker's credentials were refused (AUTH). Retrying the same ones cannot help, so
   * every call fails with this at once instead of dialling again; a new broker (a redeploy, or
   * the last user leaving) tries again.
   */
  #refused: BrokerError | undefined;

  constructor(options: ConnectionOptions, unusable?: Unusable) {
    this.#options = options;
    this.#unusable = unusable;
    if (unusable !== undefined) this.#lastStatus = unusable.status;
  }

  /** The live broker, if a user has brought one up (tests reach the paper broker through this). */
  get broker(): ManagedBroker | undefined {
    return this.#broker;
  }

  get userCount(): number {
    return this.#sessions.size;
  }

  /** Quote subscriptions held on the broker, by instrument key, with how many users hold each. */
  quoteHolders(): Map<string, number> {
    return this.#quotes.counts();
  }

  get status(): NodeStatus {
    return this.#lastStatus;
  }

  /**
   * What users must show whatever their own last outcome was: trading halted or reducing, or a
   * state that cannot be saved, while connected. Undefined while trading is ACTIVE (and saved).
   */
  get tradingStatus(): NodeStatus | undefined {
    const broker = this.#broker;
    if (broker === undefined || this.#refused !== undefined || broker.state !== "connected") return undefined;
    if (!isGuarded(broker) || this.#options.tradingStatus === undefined) return undefined;
    return this.#options.tradingStatus(broker.risk);
  }

  /** Adds a user node, hooking its close so it deregisters however the redeploy goes. */
  register(user: Node): BrokerSession {
    const session = new BrokerSession(this, user);
    this.#sessions.add(session);
    user.on("close", (_removed: boolean, done: () => void) => {
      void this.#deregister(session).then(done);
    });
    this.#bringUp(session);
    return session;
  }

  /** The connected broker; connects on first use and again after a failed attempt. */
  ready(): Promise<ManagedBroker> {
    if (this.#unusable !== undefined) return Promise.reject(this.#unusable.error);
    if (this.#closed) {
      return Promise.reject(new BrokerError("CLOSED", "the broker config node has been closed"));
    }
    if (this.#refused !== undefined) return Promise.reject(this.#refused);
    let broker: ManagedBroker;
    try {
      broker = this.#ensureBroker();
    } catch (error) {
      return Promise.reject(this.#failed(error));
    }
    this.#connecting ??= this.#connect(broker);
    return this.#connecting;
  }

  /** Adds `listener` to the broker for as long as `session` is registered. */
  listen<E extends keyof BrokerEvents>(
    session: BrokerSession,
    event: E,
    listener: BrokerListener<E>,
  ): () => void {
    if (this.#unusable !== undefined || this.#closed) return () => undefined;
    let broker: ManagedBroker;
    try {
      broker = this.#ensureBroker();
    } catch {
      // Nothing to listen to; the failure reaches the user through ready() and its status.
      return () => undefined;
    }
    const guarded = (...args: BrokerEvents[E]): void => {
      // A throwing flow handler must not unwind into the broker's emit and break its bookkeeping.
      try {
        listener(...args);
      } catch (error) {
        session.user.error(toError(error));
      }
    };
    const emitter = broker as unknown as NodeJS.EventEmitter;
    emitter.on(event, guarded as (...args: unknown[]) => void);
    return () => emitter.off(event, guarded as (...args: unknown[]) => void);
  }

  /** Adds `listener` to the risk guard's events (RISK_STATE_CHANGED, ORDER_DENIED) for the session. */
  listenRisk(listener: RiskListener): () => void {
    if (this.#unusable !== undefined || this.#closed) return () => undefined;
    let broker: ManagedBroker;
    try {
      broker = this.#ensureBroker();
    } catch {
      return () => undefined;
    }
    if (!isGuarded(broker)) return () => undefined;
    const guard = broker.risk;
    guard.on("event", listener);
    return () => guard.off("event", listener);
  }

  /**
   * Halts, reduces or resumes trading on the account (the kill switch and the admin endpoint).
   * With no user the broker is brought up just for this and closed again, like a reset.
   */
  async killSwitch(
    command: KillCommand,
    by: string,
    reason: string,
    options: KillOptions,
  ): Promise<KillOutcome> {
    const temporary = this.#sessions.size === 0;
    try {
      const broker = await this.ready();
      if (!isGuarded(broker)) throw new BrokerError("CONFIG", `this ${broker.kind} broker has no risk guard`);
      return await broker.risk.kill(command, by, reason, options);
    } finally {
      if (temporary && this.#sessions.size === 0) await this.#closeBroker();
    }
  }

  async subscribe(session: BrokerSession, keys: readonly string[]): Promise<void> {
    await this.#quotes.subscribe(session, keys);
  }

  async unsubscribe(session: BrokerSession, keys: readonly string[]): Promise<void> {
    await this.#quotes.unsubscribe(session, keys);
  }

  /**
   * Wipes the paper account. With no user the broker is brought up just for the reset and
   * closed again, so the journal is never held by two brokers.
   */
  async resetAccount(): Promise<void> {
    const temporary = this.#sessions.size === 0;
    try {
      const broker = await this.ready();
      if (typeof broker.resetAccount !== "function") {
        throw new BrokerError("CONFIG", `a ${broker.kind} broker has no account to reset`);
      }
      await broker.resetAccount();
    } finally {
      if (temporary && this.#sessions.size === 0) await this.#closeBroker();
    }
  }

  /** The config node's own close: the broker goes whether or not users are left. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#closeBroker();
  }

  #bringUp(session: BrokerSession): void {
    if (this.#unusable !== undefined) {
      session.user.status(this.#unusable.status);
      return;
    }
    if (this.#refused !== undefined) {
      session.user.status(this.#options.failedStatus(this.#refused));
      return;
    }
    try {
      const broker = this.#ensureBroker();
      // Before the first connect a broker says "disconnected"; it is about to connect.
      const state =
        broker.state === "disconnected" && this.#lastFailure === undefined ? "connecting" : broker.state;
      this.#lastStatus = this.#statusFor(broker, state);
      session.user.status(this.#lastStatus);
    } catch (error) {
      session.user.status(this.#options.failedStatus(this.#failed(error)));
      return;
    }
    // Failures are logged and shown by #connect; users see them again on their next call.
    this.ready().catch(() => undefined);
  }

  #ensureBroker(): ManagedBroker {
    if (this.#broker !== undefined) return this.#broker;
    const broker = this.#options.create();
    const onState = (state: ConnectionState, detail?: string): void => {
      // A broker that takes a new login without a redeploy (Kite) is usable again once connected.
      if (state === "connected" && this.#broker === broker) this.#refused = undefined;
      // Once the credentials are refused, users keep showing that rather than "disconnected".
      if (this.#refused !== undefined && this.#broker === broker) return;
      if (this.#broker === broker) {
        if (state === "connected") this.#unreachable = undefined;
        else if (state === "reconnecting" && detail !== undefined)
          this.#unreachable = detail.replace(/; retrying in \d+ ms$/, "");
      }
      this.#push(this.#statusFor(broker, state));
      // Why a remote broker dropped or is retrying; logged once per change of state, not per retry,
      // and not for the close this connection asked for itself.
      if (detail !== undefined && state !== "connected" && this.#broker === broker) {
        this.#options.log.info(`${state}: ${detail}`);
      }
    };
    const onError = (error: BrokerError): void => {
      if (error.code === "AUTH" && this.#broker === broker) {
        // A live session refused (Kite's daily token expiry): like a refusal at connect, every
        // call fails AUTH at once and nothing redials until a new broker (a redeploy) is made.
        if (this.#refused !== undefined) return;
        this.#refused = error;
        this.#failed(error);
        this.#push(this.#options.failedStatus(error));
        return;
      }
      this.#options.log.error(error.message);
    };
    // The guard's own emitter: its events are not the broker's, so broker listener counts stay.
    const onRisk = (event: RiskEvent): void => {
      if (event.type === "RISK_STATE_CHANGED" && this.#broker === broker && this.#refused === undefined) {
        this.#push(this.#statusFor(broker, broker.state));
      }
    };
    // The state file could not be written, or the P&L cannot be read (or can be again): statuses say so.
    const onUnsaved = (): void => {
      if (this.#broker === broker && this.#refused === undefined)
        this.#push(this.#statusFor(broker, broker.state));
    };
    const guard = isGuarded(broker) ? broker.risk : undefined;
    broker.on("state", onState);
    broker.on("error", onError);
    guard?.on("event", onRisk);
    guard?.on("unsaved", onUnsaved);
    guard?.on("pnl", onUnsaved);
    this.#broker = broker;
    this.#detachBroker = () => {
      broker.off("state", onState);
      broker.off("error", onError);
      guard?.off("event", onRisk);
      guard?.off("unsaved", onUnsaved);
      guard?.off("pnl", onUnsaved);
    };
    return broker;
  }

  /** The connection state, unless connected with trading halted or reducing: that shows instead. */
  #statusFor(broker: ManagedBroker, state: ConnectionState): NodeStatus {
    if (state === "connected" && isGuarded(broker) && this.#options.tradingStatus !== undefined) {
      const trading = this.#options.tradingStatus(broker.risk);
      if (trading !== undefined) return trading;
    }
    return this.#options.stateStatus(state);
  }

  async #connect(broker: ManagedBroker): Promise<ManagedBroker> {
    try {
      const previous = closing.get(this.#options.accountKey);
      if (previous !== undefined) await settlesWithin(previous, this.#closeTimeout());
      await broker.connect();
      this.#lastFailure = undefined;
      return broker;
    } catch (error) {
      const why = this.#whyUnreachable(broker, error);
      const failure = this.#failed(
        why === undefined ? error : this.#unreachableError(why, error as BrokerError),
      );
      if (this.#broker === broker) {
        this.#connecting = undefined;
        if (failure.code === "AUTH") this.#refused = failure;
      }
      const unreachable = why === undefined ? undefined : this.#options.unreachableStatus?.(why);
      this.#push(unreachable ?? this.#options.failedStatus(failure));
      throw failure;
    }
  }

  /**
   * The socket error behind a connect that failed while the broker was still dialling. Without it
   * a first run with the gateway not started read only "GET_ORDERBOOK … not sent within 5000 ms".
   */
  #whyUnreachable(broker: ManagedBroker, error: unknown): string | undefined {
    if (this.#broker !== broker || broker.state === "connected") return undefined;
    if (!(error instanceof BrokerError) || !WHILE_DIALLING.has(error.code)) return undefined;
    return this.#unreachable;
  }

  #unreachableError(why: string, error: BrokerError): BrokerError {
    const where = this.#options.address ?? "the broker";
    return new BrokerError(error.code, `cannot reach ${where} (${why}); still retrying: ${error.message}`, {
      cause: error,
    });
  }

  /** Logs a failure once per distinct message, so a retry per input does not flood the log. */
  #failed(error: unknown): BrokerError {
    const failure = toBrokerError(error, "NOT_CONNECTED");
    if (failure.message !== this.#lastFailure) {
      this.#lastFailure = failure.message;
      this.#options.log.error(failure.message);
    }
    return failure;
  }

  #push(status: NodeStatus): void {
    this.#lastStatus = status;
    for (const session of this.#sessions) session.user.status(status);
  }

  async #deregister(session: BrokerSession): Promise<void> {
    if (!this.#sessions.delete(session)) return;
    session.detachAll();
    if (this.#sessions.size === 0) {
      // The broker goes with its subscriptions: nothing to unsubscribe one by one.
      this.#quotes.clear();
      await this.#closeBroker();
      return;
    }
    // Not awaited: the broker's unsubscribe queues behind any subscribe still waiting to connect,
    // and a leaving node must not wait for that; calls still reach the broker in order.
    this.#quotes.releaseAll(session);
  }

  async #unsubscribeOnBroker(keys: readonly string[]): Promise<void> {
    const broker = this.#broker;
    // A broker that is not connected holds no subscriptions worth dropping (and would refuse).
    if (keys.length === 0 || broker === undefined || broker.state !== "connected") return;
    await broker.unsubscribeQuotes([...keys]);
  }

  #closeBroker(): Promise<void> {
    const broker = this.#broker;
    if (broker === undefined) return this.#closingNow ?? Promise.resolve();
    const detach = this.#detachBroker;
    this.#broker = undefined;
    this.#detachBroker = undefined;
    this.#connecting = undefined;
    this.#refused = undefined;
    this.#quotes.clear();

    const key = this.#options.accountKey;
    // Listeners stay until the broker has really closed: an error emitted with none would crash.
    const finished = broker.close().then(
      () => detach?.(),
      (error: unknown) => {
        this.#options.log.error(`closing the broker failed: ${toError(error).message}`);
        detach?.();
      },
    );
    closing.set(key, finished);
    void finished.then(() => {
      if (closing.get(key) === finished) closing.delete(key);
    });
    const bounded = settlesWithin(finished, this.#closeTimeout()).then((inTime) => {
      if (!inTime) this.#options.log.warn(`the broker did not close within ${this.#closeTimeout()} ms`);
      if (this.#closingNow === bounded) this.#closingNow = undefined;
    });
    this.#closingNow = bounded;
    return bounded;
  }

  #closeTimeout(): number {
    return this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  }
}

/** One user node's registration: its listeners and quote subscriptions, all dropped on close. */
export class BrokerSession {
  readonly user: Node;
  /** Instrument keys ("NSE:INFY") this user is subscribed to. */
  readonly symbols = new Set<string>();
  readonly #connection: BrokerConnection;
  #removers: (() => void)[] = [];

  constructor(connection: BrokerConnection, user: Node) {
    this.#connection = connection;
    this.user = user;
  }

  ready(): Promise<ManagedBroker> {
    return this.#connection.ready();
  }

  on<E extends keyof BrokerEvents>(event: E, listener: BrokerListener<E>): void {
    this.#removers.push(this.#connection.listen(this, event, listener));
  }

  /** The risk guard's events, for as long as this user is registered. */
  onRisk(listener: RiskListener): void {
    const guarded: RiskListener = (event) => {
      try {
        listener(event);
      } catch (error) {
        this.user.error(toError(error));
      }
    };
    this.#removers.push(this.#connection.listenRisk(guarded));
  }

  subscribe(keys: readonly string[]): Promise<void> {
    return this.#connection.subscribe(this, keys);
  }

  unsubscribe(keys: readonly string[]): Promise<void> {
    return this.#connection.unsubscribe(this, keys);
  }

  /** Back to the connection's status after the node showed something of its own. */
  restoreStatus(): void {
    this.user.status(this.#connection.status);
  }

  /**
   * Shows the outcome of the user's own request, unless trading is halted or reducing (or its
   * state unsaved): that stays shown, since an answer that comes after the state changed (an order
   * sent just before a halt) would otherwise paint a green "OPEN" over "halted".
   */
  showOutcome(status: NodeStatus): void {
    this.user.status(this.#connection.tradingStatus ?? status);
  }

  detachAll(): void {
    const removers = this.#removers;
    this.#removers = [];
    for (const remove of removers) remove();
  }
}
