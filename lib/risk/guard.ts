import { EventEmitter } from "node:events";
import type { BrokerInterface } from "../brokers/interface";
import type { BrokerLogger } from "../brokers/logger";
import { silentLogger } from "../brokers/logger";
import type {
  GttRequestInput,
  GttSnapshot,
  OrderChanges as OrderChangesType,
  OrderEvent,
  OrderRequestInput,
  OrderSnapshot,
  Quote,
  Side,
} from "../protocol";
import { filledBetween } from "../common/filled-between";
import { isUnknownOutcome } from "../common/unknown-outcome";
import { BrokerError, toBrokerError } from "../protocol/errors";
import type { RiskEvent, TradingState } from "../protocol/events";
import { GttRequest } from "../protocol/gtt";
import { parseOrderRequest } from "../protocol/order-fast-path";
import { OrderChanges, isTerminal } from "../protocol/orders";
import { parseOrThrow } from "../protocol/validate";
import type { Flight, Instrument } from "./exposure";
import { Exposure, blankInstrument, instrumentOf, pendingOf, worstOf } from "./exposure";
import type { CheckedFields } from "./order-fields";
import { newCheckedFields, readCheckedFields } from "./order-fields";
import { RateWindow } from "./rate-window";
import type { RiskSettingsInput } from "./settings";
import { RiskSettings } from "./settings";
import type { RiskStateRecord } from "./state-file";
import { loadState, loadWitness, saveState, saveWitness } from "./state-file";
import { istDay, outsideWindow, sessionDay } from "./trading-day";

export interface RiskGuardOptions {
  settings?: RiskSettingsInput;
  /** Where the trading state is kept; absent keeps it in memory (tests, a gateway CLI). */
  stateFile?: string;
  /**
   * Which account the state file belongs to: a file that names another account (copied or
   * restored from elsewhere) is not believed, and trading halts until a person resumes.
   */
  account?: string;
  /** The wall clock: the trading window and the trading day follow it. */
  clock?: { now(): number };
  /**
   * Milliseconds from any fixed start, never stepping back or jumping (performance.now by
   * default): the rate windows follow it, so a wall clock stepped by NTP or by hand neither frees
   * a second burst (forward) nor blocks orders for as long as it stepped (back).
   */
  elapsed?: { now(): number };
  log?: BrokerLogger;
}

export type KillCommand = "halt" | "reduce" | "resume";
export const KILL_COMMANDS: readonly KillCommand[] = ["halt", "reduce", "resume"];

export interface KillOptions {
  /** Cancel every open order and delete every active GTT. */
  cancel?: boolean;
  /** Close every position with MARKET orders (cancels open orders first). */
  flatten?: boolean;
}

export interface KillFailure {
  /** save_state: the new state holds in this process, but the state file could not be written. */
  action: "cancel" | "delete_gtt" | "flatten" | "save_state";
  id: string;
  code: string;
  message: string;
}

/** What a kill switch did: the state it left, and every order it cancelled or placed. */
export interface KillOutcome {
  state: TradingState;
  previous: TradingState;
  by: string;
  reason: string;
  cancelled: OrderSnapshot[];
  deleted_gtts: GttSnapshot[];
  placed: OrderSnapshot[];
  failures: KillFailure[];
}

interface RiskEvents {
  event: [event: RiskEvent];
  /** The state file could not be written (why), or can be again (undefined): statuses show it. */
  unsaved: [why: string | undefined];
  /** The day's P&L cannot be relied on (why), or can again (undefined): statuses show it. */
  pnl: [why: string | undefined];
}

/** Reads of positions and the book before the guard takes them although orders kept filling. */
const SEED_ATTEMPTS = 5;

/**
 * After an unknown outcome the book is read again (a seed) to settle it: first after this long,
 * so a request still on its way has landed, then twice as long after each read that failed (up to
 * UNKNOWN_READ_MAX_MS), and after UNKNOWN_READS failed reads the guard says so and leaves it to
 * the next reconnect.
 */
const UNKNOWN_READ_MS = 200;
const UNKNOWN_READ_MAX_MS = 1600;
const UNKNOWN_READS = 5;

/**
 * A failed P&L read is tried again after pnl_check_ms, then twice as long after each further
 * failure, up to PNL_RETRY_MAX_CHECKS × pnl_check_ms (10 s by default), for as long as it fails.
 * The last good reading stays good for PNL_VALID_CHECKS × pnl_check_ms (30 s by default) after
 * the first read that failed: one failed read (a venue hiccup) must not stop a trader, but a loss
 * must not grow unseen for long either. Past that, and before any read has succeeded at all, new
 * orders are refused (max_daily_loss) until a read succeeds.
 */
const PNL_RETRY_MAX_CHECKS = 10;
const PNL_VALID_CHECKS = 30;
/**
 * A P&L read that has not answered after PNL_READ_DEADLINE_CHECKS × pnl_check_ms (10 s by default)
 * counts as failed (TIMEOUT): connect() waits for the first read's decision, and a broker whose
 * account read hangs (a REST call or a gateway that never answers) must not hang connect() and
 * every node with it. The hung read is not asked again meanwhile: retries wait on it (each with
 * its own deadline) rather than piling up reads that may never answer.
 */
const PNL_READ_DEADLINE_CHECKS = 10;

const STATE_OF: Record<KillCommand, TradingState> = { halt: "HALTED", reduce: "REDUCING", resume: "ACTIVE" };
const STRICTNESS: Record<TradingState, number> = { ACTIVE: 0, REDUCING: 1, HALTED: 2 };
const FIGURES = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

function fmt(value: number): string {
  return FIGURES.format(value);
}

/** A list as a refusal quotes it: the first ten, then an ellipsis. */
function listed(items: readonly string[]): string {
  return items.length > 10 ? `${items.slice(0, 10).join(", ")}, …` : items.join(", ");
}

/**
 * An answer that does not prove the request failed: no answer (TIMEOUT, NETWORK, what a broker
 * reports once its own lookups gave up) or a gateway that cannot tell (IDEMPOTENCY_UNKNOWN).
 */
function outcomeUnknown(error: unknown): boolean {
  const err = toBrokerError(error);
  return isUnknownOutcome(err) || err.code === "IDEMPOTENCY_UNKNOWN";
}

function signed(side: Side, quantity: number): number {
  return side === "BUY" ? quantity : -quantity;
}

/**
 * The risk guard: sits between every node and the broker, and checks each place and modify
 * against the limits and the trading state before anything leaves. A refusal is a BrokerError
 * with code RISK naming the limit and the figures, and an ORDER_DENIED event; the broker never
 * sees the order.
 *
 * It knows no concrete broker and no Node-RED: `guardBroker` puts it in front of any
 * BrokerInterface. Exposure is the broker's own (positions, open orders, orders in flight), kept
 * in step from the broker's events, which it watches by wrapping the broker's `emit` so that the
 * listeners on a broker stay exactly those of its users.
 */
export class RiskGuard extends EventEmitter<RiskEvents> {
  readonly settings: RiskSettings;
  readonly broker: BrokerInterface;
  readonly #stateFile: string | undefined;
  readonly #account: string | undefined;
  /**
   * Why the trading state cannot be saved (the last write failed), or undefined. While set, new
   * exposure is refused: a halt or a day's loss that would not survive a restart must not be
   * silently forgotten by the next process.
   */
  #unsaved: string | undefined;
  /** A retry of that write, while one runs. */
  #retrying: Promise<void> | undefined;
  #retryAgain = false;
  readonly #clock: { now(): number };
  readonly #elapsed: { now(): number };
  readonly #log: BrokerLogger;
  readonly #exposure = new Exposure();
  readonly #rates = new RateWindow();
  readonly #countRates: boolean;
  /** Whether an order needs the wall clock at all (a trading window is set). */
  readonly #windowed: boolean;
  /** Where each order's checked fields are read to: one object, not one per order. */
  readonly #fields: CheckedFields = newCheckedFields();
  readonly #allowed: ReadonlySet<string> | undefined;
  #record: RiskStateRecord;
  #loaded: Promise<void> | undefined;
  /** The state file has been read: a change of state can then be made synchronously. */
  #isLoaded = false;
  #writing: Promise<void> = Promise.resolve();
  /** Writes of the state's second witness (the .halted file), in the order states changed. */
  #witnessing: Promise<void> = Promise.resolve();
  #seeded = false;
  #reseedOnConnect = false;
  /** The seed being read, and whether another must follow it (a reconnect came meanwhile). */
  #seeding: Promise<void> | undefined;
  #seedAgain = false;
  /** The daily-loss check running, if one is, and when the last one begun has compared the loss. */
  #pnlCheck: Promise<void> | undefined;
  #pnlDecision: Promise<void> | undefined;
  /** The broker's account read, while one has not answered: at most one is in flight. */
  #pnlRead: ReturnType<BrokerInterface["getAccount"]> | undefined;
  /** Armed for pnl_check_ms after each check; fills and quotes meanwhile only mark one as due. */
  #pnlTimer: NodeJS.Timeout | undefined;
  #pnlDue = false;
  /** The last P&L this process read, and the IST day of the check that read it. */
  #lastPnl: { day: string; pnl: number; at?: string } | undefined;
  /** A save of the last P&L is running, and whether another must follow it. */
  #pnlSaving = false;
  #pnlSaveAgain = false;
  /**
   * Why the day's P&L is not known well enough to trade on, or undefined: set from the start when
   * max_daily_loss is, until a read succeeds; set again when reads have failed for longer than a
   * last good reading stays valid. While set, no new exposure goes out.
   */
  #pnlUnread: string | undefined;
  /** Whether any read has succeeded; reads failed in a row, and the last one's cause. */
  #pnlEverRead = false;
  #pnlFailures = 0;
  #pnlFailedWhy = "";
  /** The next try after a failed read, and when the last good reading stops being good. */
  #pnlRetryTimer: NodeJS.Timeout | undefined;
  #pnlValidTimer: NodeJS.Timeout | undefined;
  /** The read that will settle unknown outcomes, while one is due; and the reads failed since. */
  #unknownTimer: NodeJS.Timeout | undefined;
  #unknownReadsFailed = 0;
  #closed = false;

  constructor(broker: BrokerInterface, options: RiskGuardOptions = {}) {
    super();
    this.broker = broker;
    this.settings = parseOrThrow(RiskSettings, options.settings ?? {}, "risk settings");
    this.#stateFile = options.stateFile;
    this.#account = options.account;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#elapsed = options.elapsed ?? performance;
    this.#log = options.log ?? silentLogger;
    this.#allowed =
      this.settings.allowed_symbols === undefined ? undefined : new Set(this.settings.allowed_symbols);
    this.#countRates =
      this.settings.max_orders_per_second !== undefined || this.settings.max_orders_per_minute !== undefined;
    this.#windowed = this.settings.trading_window !== undefined;
    // No order goes out on a daily-loss limit nobody has checked: not before the first read.
    if (this.settings.max_daily_loss !== undefined) this.#pnlUnread = "P&L not read yet";
    this.#record = {
      version: 1,
      state: "ACTIVE",
      by: "default",
      reason: "no state saved yet",
      at: this.#iso(),
      ...(options.account === undefined ? {} : { account: options.account }),
    };
    this.#watch();
  }

  get tradingState(): TradingState {
    return this.#record.state;
  }

  /** Who set the current state and why (shown in statuses and the admin endpoint). */
  get stateRecord(): Readonly<RiskStateRecord> {
    return this.#record;
  }

  /**
   * What the guard holds per instrument: net position, and quantity open and in flight per side
   * (for the admin view and for tests that compare it with the broker's own account).
   */
  exposure(): { instrument: string; net: number; buy: number; sell: number }[] {
    return this.#exposure
      .instruments()
      .map((entry) => ({
        instrument: entry.key,
        net: entry.net,
        buy: entry.openBuy + entry.flightBuy,
        sell: entry.openSell + entry.flightSell,
      }))
      .filter((row) => row.net !== 0 || row.buy !== 0 || row.sell !== 0);
  }

  /** Reads the saved state once; a file that cannot be understood halts trading and says why. */
  load(): Promise<void> {
    this.#loaded ??= this.#load().finally(() => {
      this.#isLoaded = true;
    });
    return this.#loaded;
  }

  async connect(): Promise<void> {
    await this.load();
    await this.broker.connect();
    if (!this.#seeded) await this.#seed();
    this.#checkPnl();
    // Nothing goes out before the first daily-loss check has compared: a redeploy that tightened
    // max_daily_loss below the day's loss (or a restart after the loss grew) must refuse the first
    // order, not only those after the read. It waits for the decision, not for a halt's save.
    await this.#pnlDecision;
  }

  /** Placements and enlarging modifies whose outcome is not known yet: they count as exposure. */
  get unknownOutcomes(): number {
    return this.#exposure.unknownOutcomes;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#pnlTimer);
    this.#pnlTimer = undefined;
    clearTimeout(this.#unknownTimer);
    this.#unknownTimer = undefined;
    clearTimeout(this.#pnlRetryTimer);
    this.#pnlRetryTimer = undefined;
    clearTimeout(this.#pnlValidTimer);
    this.#pnlValidTimer = undefined;
    await this.broker.close();
    await this.#pnlCheck;
    await this.#writing;
    await this.#witnessing;
  }

  // #region state

  /**
   * Why the trading state cannot be saved ("cannot save the trading state to <file>: <cause>"),
   * or undefined: while set, no new exposure goes out and every node's status says so.
   */
  get unsaved(): string | undefined {
    return this.#unsaved;
  }

  /**
   * Why the day's P&L cannot be relied on ("P&L not read yet: <cause>", "P&L not read for 30 s:
   * <cause>"), or undefined: while set, with max_daily_loss, no new orders go out.
   */
  get pnlUnread(): string | undefined {
    return this.#pnlUnread;
  }

  /**
   * Moves to `state`, durably first: the change is reported once it survives a restart. A
   * stricter state the disk cannot keep still holds in this process and is reported (so every
   * status shows it), and then rejects RISK naming the file; a looser one is not made at all.
   */
  async setState(state: TradingState, by: string, reason: string): Promise<void> {
    const unsaved = await this.#changeState(state, by, reason);
    if (unsaved !== undefined) throw unsaved;
  }

  /** setState, with a stricter state the disk could not keep answered (not thrown) as the error. */
  async #changeState(state: TradingState, by: string, reason: string): Promise<BrokerError | undefined> {
    // Once loaded, a stricter state is made in the caller's own turn: an order placed right after
    // a halt was asked for (or decided by the daily-loss check) must not find the state unchanged.
    if (!this.#isLoaded) await this.load();
    const previous = this.#record.state;
    const next: RiskStateRecord = { ...this.#record, state, by, reason, at: this.#iso() };
    let unsaved: BrokerError | undefined;
    if (STRICTNESS[state] >= STRICTNESS[previous]) {
      // Stricter at once, even if the disk then fails: refusing is the safe side.
      this.#record = next;
      try {
        await this.#persist();
        this.#witness(next);
      } catch (error) {
        this.#witness(next);
        unsaved = new BrokerError(
          "RISK",
          `trading is ${state} in this process only: ${this.#unsaved ?? toBrokerError(error).message}; a restart would not keep it, and no new orders go out until it is saved (state_file)`,
        );
      }
    } else {
      // Looser only once it is saved: a resume the disk did not keep would be undone by a restart.
      try {
        await this.#persist(next);
      } catch (error) {
        throw new BrokerError(
          "RISK",
          `trading stays ${previous}: ${this.#unsaved ?? toBrokerError(error).message}; it becomes ${state} only once that can be saved (state_file)`,
        );
      }
      this.#record = { ...next, ...this.#dayOf(this.#record) };
      this.#witness(next);
    }
    const line = `trading ${state} (was ${previous}) by ${by}: ${reason}`;
    if (state === "ACTIVE") this.#log.info(line);
    else this.#log.warn(line);
    this.emit("event", {
      type: "RISK_STATE_CHANGED",
      state,
      previous,
      by,
      reason,
      timestamp: this.#record.at,
    });
    return unsaved;
  }

  /**
   * The kill switch: halt, reduce or resume, optionally cancelling every open order (and active
   * GTT) and closing every position with MARKET orders. The state changes first, so nothing new
   * slips out while orders are being cancelled.
   */
  async kill(
    command: KillCommand,
    by: string,
    reason: string,
    options: KillOptions = {},
  ): Promise<KillOutcome> {
    if (!KILL_COMMANDS.includes(command)) {
      throw new BrokerError("VALIDATION", `command: must be one of ${KILL_COMMANDS.join(", ")}`);
    }
    const previous = this.tradingState;
    // A halt the disk cannot keep still holds here: the cancels and closes asked for go ahead.
    const unsaved = await this.#changeState(STATE_OF[command], by, reason);
    const outcome: KillOutcome = {
      state: this.tradingState,
      previous,
      by,
      reason,
      cancelled: [],
      deleted_gtts: [],
      placed: [],
      failures: [],
    };
    if (unsaved !== undefined) {
      outcome.failures.push({
        action: "save_state",
        id: this.#stateFile ?? "",
        code: unsaved.code,
        message: unsaved.message,
      });
    }
    if (options.cancel === true || options.flatten === true) await this.#cancelEverything(outcome);
    if (options.flatten === true) await this.#flatten(outcome, by);
    return outcome;
  }

  // #endregion

  // #region orders

  /** Not async: the checks run synchronously and the broker's promise is passed on as it is. */
  placeOrder(input: OrderRequestInput): Promise<OrderSnapshot> {
    let fields: CheckedFields;
    let request: OrderRequestInput = input;
    let instrument: Instrument;
    // One read of each clock serves the window, the rate check and the rate record of this order,
    // and none is made when no limit needs it (a read costs about 0.1 µs on a virtual machine).
    const now = this.#windowed ? this.#clock.now() : 0;
    const tick = this.#countRates ? this.#tick() : 0;
    try {
      let read = readCheckedFields(input, this.#fields);
      if (read === undefined) {
        // Not plainly well-formed: the schema decides, and names the field when it refuses.
        request = parseOrderRequest(input);
        read = request as CheckedFields;
      }
      fields = read;
      const known = this.#exposure.find(fields.exchange, fields.symbol);
      // An instrument never seen is judged as a blank and only held once an order goes out, so
      // refused orders for made-up symbols leave nothing behind.
      instrument = known ?? blankInstrument(fields.exchange, fields.symbol);
      const refusal = this.#placeRefusal(fields, instrument, now, tick);
      if (refusal !== undefined) throw this.#deny("placeOrder", refusal, fields.symbol, request);
      if (known === undefined) instrument = this.#exposure.instrument(fields.exchange, fields.symbol);
    } catch (error) {
      return Promise.reject(toBrokerError(error));
    }
    return this.#send(instrument, fields, request, tick);
  }

  async modifyOrder(orderId: string, input: OrderChangesType): Promise<OrderSnapshot> {
    const changes = parseOrThrow(OrderChanges, input, "order changes");
    const order = await this.broker.getOrder(orderId);
    const refusal = isTerminal(order.status) ? undefined : this.#modifyRefusal(order, changes);
    if (refusal !== undefined) {
      throw this.#deny("modifyOrder", refusal, order.symbol, { order_id: orderId, ...changes });
    }
    if (this.#countRates) this.#rates.record(this.#tick());
    // What the modify adds counts from now until it is answered: modifies checked meanwhile (and
    // places) see it, as they see an order in flight.
    const exposure = this.#exposure;
    const added = (changes.quantity ?? order.quantity) - order.quantity;
    const instrument = added > 0 ? exposure.instrument(order.exchange, order.symbol) : undefined;
    if (instrument !== undefined) exposure.hold(instrument, order.side, added);
    let snapshot: OrderSnapshot;
    try {
      snapshot = await this.broker.modifyOrder(orderId, changes);
    } catch (error) {
      if (instrument !== undefined) {
        if (outcomeUnknown(error)) {
          exposure.keepUnknown(instrument, order.side, added, false);
          this.#readAfterUnknown();
        } else exposure.release(instrument, order.side, added);
      }
      throw error;
    }
    if (instrument !== undefined) exposure.release(instrument, order.side, added);
    exposure.onOrder(snapshot);
    return snapshot;
  }

  async cancelOrder(orderId: string): Promise<OrderSnapshot> {
    // Cancels are always allowed: they only ever take exposure away.
    const snapshot = await this.broker.cancelOrder(orderId);
    this.#exposure.onOrder(snapshot);
    return snapshot;
  }

  async placeGtt(input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    const refusal = this.#gttRefusal(request);
    if (refusal !== undefined) throw this.#deny("placeGtt", refusal, request.symbol, request);
    return this.broker.placeGtt(request);
  }

  async modifyGtt(gttId: string, input: GttRequestInput): Promise<GttSnapshot> {
    const request = parseOrThrow(GttRequest, input, "GTT");
    const refusal = this.#gttRefusal(request);
    if (refusal !== undefined) {
      throw this.#deny("modifyGtt", refusal, request.symbol, { gtt_id: gttId, ...request });
    }
    return this.broker.modifyGtt(gttId, request);
  }

  /** Wipes the paper account, and the exposure the guard had of it. */
  async resetAccount(): Promise<void> {
    const broker = this.broker as BrokerInterface & { resetAccount?(): Promise<void> };
    if (typeof broker.resetAccount !== "function") {
      throw new BrokerError("CONFIG", `a ${broker.kind} broker has no account to reset`);
    }
    await broker.resetAccount();
    await this.#seed();
  }

  // #endregion

  // #region checks

  #placeRefusal(
    request: CheckedFields,
    instrument: Instrument,
    now: number,
    tick: number,
  ): { limit: string; message: string } | undefined {
    const s = this.settings;
    const { side, quantity } = request;
    if (this.#unsaved !== undefined) return this.#unsavedRefusal("no new orders");
    const state = this.#record.state;
    if (state === "HALTED") {
      return { limit: "trading_state", message: `trading is HALTED (${this.#record.reason}): no new orders` };
    }
    if (state === "REDUCING") {
      const why = this.#notReducing(instrument, side, quantity, 0);
      if (why !== undefined) return { limit: "trading_state", message: `trading is REDUCING: ${why}` };
    }
    if (this.#pnlUnread !== undefined) return this.#pnlRefusal("no new orders");
    const common = this.#commonRefusal(request.symbol, request.exchange, instrument.key, now);
    if (common !== undefined) return common;
    if (s.max_order_quantity !== undefined && quantity > s.max_order_quantity) {
      return {
        limit: "max_order_quantity",
        message: `max order quantity ${fmt(s.max_order_quantity)}: order is for ${fmt(quantity)} ${request.symbol}`,
      };
    }
    const priced = this.#priceRefusal(
      request.order_type,
      request.price,
      request.trigger_price,
      quantity,
      instrument,
    );
    if (priced !== undefined) return priced;
    const position = this.#positionRefusal(instrument, side, quantity);
    if (position !== undefined) return position;
    if (s.max_open_orders !== undefined && this.#exposure.openOrders + 1 > s.max_open_orders) {
      return {
        limit: "max_open_orders",
        message: `max open orders ${fmt(s.max_open_orders)}: ${fmt(this.#exposure.openOrders)} open or in flight`,
      };
    }
    return this.#rateRefusal(tick);
  }

  #modifyRefusal(
    order: OrderSnapshot,
    changes: OrderChangesType,
  ): { limit: string; message: string } | undefined {
    const instrument = this.#exposure.instrument(order.exchange, order.symbol);
    const quantity = changes.quantity ?? order.quantity;
    const added = quantity - order.quantity;
    const state = this.#record.state;
    if (state === "HALTED" || this.#unsaved !== undefined || this.#pnlUnread !== undefined) {
      const onlyLess =
        added <= 0 &&
        changes.price === undefined &&
        changes.trigger_price === undefined &&
        changes.order_type === undefined;
      if (!onlyLess) {
        if (this.#unsaved !== undefined) return this.#unsavedRefusal("only cancels and quantity reductions");
        if (state !== "HALTED") return this.#pnlRefusal("only cancels and quantity reductions");
        return {
          limit: "trading_state",
          message: `trading is HALTED (${this.#record.reason}): only cancels and quantity reductions are allowed`,
        };
      }
      return undefined;
    }
    if (state === "REDUCING") {
      const remaining = Math.max(0, order.quantity - order.filled_quantity);
      const why = this.#notReducing(instrument, order.side, quantity - order.filled_quantity, remaining);
      if (why !== undefined) return { limit: "trading_state", message: `trading is REDUCING: ${why}` };
    }
    const s = this.settings;
    if (s.max_order_quantity !== undefined && quantity > s.max_order_quantity) {
      return {
        limit: "max_order_quantity",
        message: `max order quantity ${fmt(s.max_order_quantity)}: order would be for ${fmt(quantity)} ${order.symbol}`,
      };
    }
    const type = changes.order_type ?? order.order_type;
    const needsPrice = type === "LIMIT" || type === "SL";
    const price = needsPrice ? (changes.price ?? order.price) : undefined;
    const trigger =
      type === "SL" || type === "SL-M" ? (changes.trigger_price ?? order.trigger_price) : undefined;
    const priced = this.#priceRefusal(type, price, trigger, quantity, instrument);
    if (priced !== undefined) return priced;
    if (added > 0) {
      const position = this.#positionRefusal(instrument, order.side, added);
      if (position !== undefined) return position;
    }
    return this.#countRates ? this.#rateRefusal(this.#tick()) : undefined;
  }

  #gttRefusal(request: GttRequest): { limit: string; message: string } | undefined {
    if (this.#unsaved !== undefined) return this.#unsavedRefusal("no new GTTs");
    const state = this.#record.state;
    if (state !== "ACTIVE") {
      return {
        limit: "trading_state",
        message: `trading is ${state} (${this.#record.reason}): no new GTTs (they place orders later)`,
      };
    }
    if (this.#pnlUnread !== undefined) return this.#pnlRefusal("no new GTTs");
    const key = instrumentOf(request.exchange, request.symbol);
    const common = this.#commonRefusal(request.symbol, request.exchange, key, this.#clock.now());
    if (common !== undefined) return common;
    const s = this.settings;
    for (const leg of request.orders) {
      if (s.max_order_quantity !== undefined && leg.quantity > s.max_order_quantity) {
        return {
          limit: "max_order_quantity",
          message: `max order quantity ${fmt(s.max_order_quantity)}: GTT order is for ${fmt(leg.quantity)} ${request.symbol}`,
        };
      }
      if (s.max_order_value !== undefined && leg.quantity * leg.price > s.max_order_value) {
        return {
          limit: "max_order_value",
          message: `max order value ${fmt(s.max_order_value)}: GTT order is worth ${fmt(leg.quantity * leg.price)}`,
        };
      }
    }
    return undefined;
  }

  /** The state file cannot be written: refuse, and try the write again (one try at a time). */
  #unsavedRefusal(allowed: string): { limit: string; message: string } {
    const why = this.#unsaved!;
    this.#retrySave();
    const state = this.#record.state;
    const held = state === "ACTIVE" ? "" : `trading is ${state} (${this.#record.reason}) and `;
    return { limit: "state_file", message: `${held}${why}; ${allowed} until it can be saved` };
  }

  /** The day's P&L is not known: the daily-loss limit cannot be checked, so refuse. */
  #pnlRefusal(allowed: string): { limit: string; message: string } {
    return {
      limit: "max_daily_loss",
      message: `max daily loss ${fmt(this.settings.max_daily_loss ?? 0)}: ${this.#pnlUnread!}; ${allowed} until the account's P&L can be read`,
    };
  }

  /**
   * One save retry at a time. A refusal while one runs asks for one more after it: that retry may
   * have met the full disk just before it was mended, and the state would otherwise stay unsaved
   * (every node red) until some later order came.
   */
  #retrySave(): void {
    if (this.#closed) return;
    if (this.#retrying !== undefined) {
      this.#retryAgain = true;
      return;
    }
    this.#retryAgain = false;
    this.#retrying = this.#persist()
      .catch(() => undefined)
      .finally(() => {
        this.#retrying = undefined;
        if (this.#retryAgain && this.#unsaved !== undefined) this.#retrySave();
      });
  }

  /** Allowed symbols and the trading window: the same for orders and GTTs. */
  #commonRefusal(
    symbol: string,
    exchange: string,
    key: string,
    now: number,
  ): { limit: string; message: string } | undefined {
    const s = this.settings;
    if (this.#allowed !== undefined && !this.#allowed.has(symbol) && !this.#allowed.has(key)) {
      return {
        limit: "allowed_symbols",
        message: `allowed symbols: ${exchange}:${symbol} is not one of ${listed(s.allowed_symbols ?? [])}`,
      };
    }
    if (s.trading_window !== undefined) {
      const why = outsideWindow(s.trading_window, now);
      if (why !== undefined) return { limit: "trading_window", message: why };
    }
    return undefined;
  }

  /** Order value and the price band; both need a price to judge the order by. */
  #priceRefusal(
    type: string,
    price: number | undefined,
    trigger: number | undefined,
    quantity: number,
    instrument: Instrument,
  ): { limit: string; message: string } | undefined {
    const s = this.settings;
    const key = instrument.key;
    const last = instrument.last > 0 ? instrument.last : undefined;
    if (s.price_band_pct !== undefined && price !== undefined) {
      if (last === undefined) {
        return {
          limit: "price_band_pct",
          message: `price band ${fmt(s.price_band_pct)} %: no last price known for ${key} to check ${fmt(price)} against (subscribe to its quotes)`,
        };
      }
      const away = (Math.abs(price - last) / last) * 100;
      if (away > s.price_band_pct) {
        return {
          limit: "price_band_pct",
          message: `price band ${fmt(s.price_band_pct)} %: price ${fmt(price)} is ${fmt(away)} % from the last price ${fmt(last)} of ${key}`,
        };
      }
    }
    if (s.max_order_value !== undefined) {
      const reference = price ?? last ?? (type === "SL-M" ? trigger : undefined);
      if (reference === undefined) {
        return {
          limit: "max_order_value",
          message: `max order value ${fmt(s.max_order_value)}: no last price known for ${key} to value a ${type} order (subscribe to its quotes)`,
        };
      }
      const value = quantity * reference;
      if (value > s.max_order_value) {
        return {
          limit: "max_order_value",
          message: `max order value ${fmt(s.max_order_value)}: ${fmt(quantity)} × ${fmt(reference)} = ${fmt(value)}`,
        };
      }
    }
    return undefined;
  }

  /**
   * Max position, counting open and in-flight orders on the order's side as if they filled. An
   * order that brings the worst case nearer zero is let through even when it stays over the
   * limit (limits lowered while a position was open), since refusing it would trap the position.
   */
  #positionRefusal(
    instrument: Instrument,
    side: Side,
    quantity: number,
  ): { limit: string; message: string } | undefined {
    const s = this.settings;
    if (s.max_position_quantity === undefined && s.max_position_value === undefined) return undefined;
    const key = instrument.key;
    const before = worstOf(instrument, side);
    const after = before + signed(side, quantity);
    if (Math.abs(after) <= Math.abs(before)) return undefined;
    const net = instrument.net;
    const withOpen = before === net ? "" : `, with open orders ${fmt(before)}`;
    if (s.max_position_quantity !== undefined && Math.abs(after) > s.max_position_quantity) {
      return {
        limit: "max_position_quantity",
        message: `max position ${key} ${fmt(s.max_position_quantity)}: current ${fmt(net)}${withOpen}, order would make ${fmt(after)}`,
      };
    }
    if (s.max_position_value !== undefined) {
      const last = instrument.last;
      if (last === 0) {
        return {
          limit: "max_position_value",
          message: `max position value ${key} ${fmt(s.max_position_value)}: no last price known to value it (subscribe to its quotes)`,
        };
      }
      const value = Math.abs(after) * last;
      if (value > s.max_position_value) {
        return {
          limit: "max_position_value",
          message: `max position value ${key} ${fmt(s.max_position_value)}: order would make ${fmt(after)} × ${fmt(last)} = ${fmt(value)}`,
        };
      }
    }
    return undefined;
  }

  /** `tick`: the elapsed clock's time, not the wall clock's. */
  #rateRefusal(tick: number): { limit: string; message: string } | undefined {
    if (!this.#countRates) return undefined;
    const s = this.settings;
    if (s.max_orders_per_second !== undefined) {
      const sent = this.#rates.count(tick, 1000);
      if (sent >= s.max_orders_per_second) {
        return {
          limit: "max_orders_per_second",
          message: `max orders per second ${fmt(s.max_orders_per_second)}: ${fmt(sent)} sent in the last second`,
        };
      }
    }
    if (s.max_orders_per_minute !== undefined) {
      const sent = this.#rates.count(tick, 60_000);
      if (sent >= s.max_orders_per_minute) {
        return {
          limit: "max_orders_per_minute",
          message: `max orders per minute ${fmt(s.max_orders_per_minute)}: ${fmt(sent)} sent in the last minute`,
        };
      }
    }
    return undefined;
  }

  /** Why an order of `quantity` on `side` (replacing `replaced` already pending) would not reduce. */
  #notReducing(instrument: Instrument, side: Side, quantity: number, replaced: number): string | undefined {
    const net = instrument.net;
    const reduces = (net > 0 && side === "SELL") || (net < 0 && side === "BUY");
    const pending = pendingOf(instrument, side) - replaced;
    if (reduces && pending + quantity <= Math.abs(net)) return undefined;
    return `a ${side} of ${fmt(quantity)} would not reduce the ${instrument.key} position (net ${fmt(net)}${pending > 0 ? `, ${fmt(pending)} already on the way` : ""})`;
  }

  #deny(
    action: string,
    refusal: { limit: string; message: string },
    symbol: string,
    request: object,
  ): BrokerError {
    const error = new BrokerError("RISK", `${refusal.message} (${refusal.limit})`);
    this.emit("event", {
      type: "ORDER_DENIED",
      action,
      limit: refusal.limit,
      message: error.message,
      symbol,
      request: { ...request },
      timestamp: this.#iso(),
    });
    return error;
  }

  // #endregion

  // #region exposure

  /**
   * Sends an order, counting it as in flight until the broker answers. The caller gets the
   * broker's own promise: the guard's bookkeeping is registered on it first, so it runs before
   * the caller's continuation without adding a promise hop to every placement.
   */
  #send(
    instrument: Instrument,
    fields: { side: Side; quantity: number },
    request: OrderRequestInput,
    tick: number,
  ): Promise<OrderSnapshot> {
    if (this.#countRates) this.#rates.record(tick);
    const { side, quantity } = fields;
    const exposure = this.#exposure;
    const clientId = (request as { client_order_id?: unknown }).client_order_id;
    if (typeof clientId === "string") {
      const flight = exposure.sendTracked(instrument, side, quantity, clientId);
      if (flight !== undefined) return this.#sendTracked(flight, request);
    } else exposure.send(instrument, side, quantity);
    let placed: Promise<OrderSnapshot>;
    try {
      placed = this.broker.placeOrder(request);
    } catch (error) {
      exposure.settle(instrument, side, quantity);
      return Promise.reject(toBrokerError(error));
    }
    placed.then(
      (snapshot) => {
        exposure.settle(instrument, side, quantity);
        exposure.onOrder(snapshot);
      },
      (error: unknown) => {
        // The order may exist: it counts until the broker's own book shows whether it does.
        if (outcomeUnknown(error)) {
          exposure.keepUnknown(instrument, side, quantity, true);
          this.#readAfterUnknown();
        } else exposure.settle(instrument, side, quantity);
      },
    );
    return placed;
  }

  /** #send for an order with a client_order_id: its first event may settle it before the answer. */
  #sendTracked(flight: Flight, request: OrderRequestInput): Promise<OrderSnapshot> {
    const exposure = this.#exposure;
    let placed: Promise<OrderSnapshot>;
    try {
      placed = this.broker.placeOrder(request);
    } catch (error) {
      exposure.land(flight);
      return Promise.reject(toBrokerError(error));
    }
    placed.then(
      (snapshot) => {
        exposure.land(flight);
        exposure.onOrder(snapshot);
      },
      (error: unknown) => {
        if (outcomeUnknown(error)) {
          exposure.keepUnknownFlight(flight);
          this.#readAfterUnknown();
        } else exposure.land(flight);
      },
    );
    return placed;
  }

  /** Takes the broker's view (one seed at a time; a request meanwhile runs another after it). */
  #seed(): Promise<void> {
    if (this.#seeding !== undefined) {
      this.#seedAgain = true;
      return this.#seeding;
    }
    const run = async (): Promise<void> => {
      do {
        this.#seedAgain = false;
        await this.#seedOnce();
      } while (this.#seedAgain && !this.#closed);
    };
    const seeding = run().finally(() => {
      this.#seeding = undefined;
    });
    this.#seeding = seeding;
    return seeding;
  }

  /**
   * Positions and the order book are two reads, and a fill can land between them: positions read
   * before it and a book read after it would hide that fill for good (the book says it is counted,
   * the positions never had it). So the book is read on both sides of the positions, and the three
   * are used only when no order filled in between; otherwise they are read again.
   */
  async #seedOnce(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const read = this.#exposure.beginRead();
      const before = await this.broker.getOrderbook();
      const positions = await this.broker.getPositions();
      const after = await this.broker.getOrderbook();
      const moved = filledBetween(before, after);
      if (moved === undefined || attempt >= SEED_ATTEMPTS) {
        if (moved !== undefined) {
          this.#log.warn(
            `risk guard: order ${moved} kept filling while positions were read (${SEED_ATTEMPTS} tries); using the last read`,
          );
        }
        this.#exposure.seed(positions, after, read);
        if (!this.#seeded && this.#countRates) this.#countSentBefore(after);
        this.#seeded = true;
        return;
      }
    }
  }

  /**
   * A new guard (a restart, a redeploy) starts with empty rate windows, which would make the
   * orders the last one sent just before it a free burst. The book says when its orders were
   * placed: those placed within the last minute count again, as sent that long ago. Judged
   * conservatively: an order placed "in the future" (the wall clock stepped back since) counts as
   * sent now, and an open order changed since its placement counts once more (it may have been
   * modified; a fill changes it too, and the surplus leaves the window within the minute).
   */
  #countSentBefore(book: readonly OrderSnapshot[]): void {
    const wall = this.#clock.now();
    const ago: number[] = [];
    const within = (at: string): void => {
      const age = wall - Date.parse(at);
      if (age < 60_000) ago.push(Math.max(0, age));
    };
    for (const order of book) {
      within(order.placed_at);
      if (!isTerminal(order.status) && order.timestamp !== order.placed_at) within(order.timestamp);
    }
    if (ago.length === 0) return;
    const tick = this.#tick();
    // Oldest first: the window takes its times in order.
    ago.sort((a, b) => b - a);
    for (const age of ago) this.#rates.record(tick - age);
    this.#log.info(
      `risk guard: ${ago.length} orders the book shows sent within the last minute count towards the rate limits`,
    );
  }

  #watch(): void {
    const broker = this.broker;
    const emit = broker.emit.bind(broker) as (event: string | symbol, ...args: unknown[]) => boolean;
    const exposure = this.#exposure;
    const guard = this; // eslint-disable-line @typescript-eslint/no-this-alias -- `this` inside is the broker
    // A plain function and `arguments`, not rest parameters: no array per event, and the broker's
    // emit sees exactly the arguments it was given.
    const watched = function (this: unknown, event: string | symbol, first?: unknown): boolean {
      // The guard counts first, so a user reacting to this event already sees it in the exposure.
      if (event === "order") {
        const order = (first as OrderEvent).order;
        exposure.onOrder(order);
        if (order.filled_quantity > 0) guard.#pnlMoved();
      } else if (event === "quote") {
        exposure.onQuote(first as Quote);
        guard.#pnlMoved();
      } else if (event === "state") {
        guard.#onState(first);
      }
      return arguments.length === 2
        ? emit(event, first)
        : // eslint-disable-next-line prefer-rest-params -- see above
          (Reflect.apply(emit, undefined, arguments) as boolean);
    };
    broker.emit = watched as typeof broker.emit;
  }

  /**
   * An outcome is unknown: read the book again soon rather than at the next reconnect, which may
   * never come (a lost answer on a live link). Until then the order counts, so waiting only ever
   * refuses too much; but an order with no client_order_id has no event to settle it, and would
   * otherwise hold its quantity against every limit for as long as the connection stays up.
   */
  #readAfterUnknown(): void {
    if (this.#unknownTimer !== undefined || this.#closed || this.#exposure.unknownOutcomes === 0) return;
    const delay = Math.min(UNKNOWN_READ_MS * 2 ** this.#unknownReadsFailed, UNKNOWN_READ_MAX_MS);
    this.#unknownTimer = setTimeout(() => {
      this.#unknownTimer = undefined;
      if (this.#closed || this.#exposure.unknownOutcomes === 0) return;
      // Not connected: the reconnect's own read settles them.
      if (this.broker.state !== "connected") return;
      this.#seed().then(
        () => {
          this.#unknownReadsFailed = 0;
          // Those that came during the read wait for the next one.
          this.#readAfterUnknown();
        },
        (error: unknown) => {
          this.#unknownReadsFailed += 1;
          const why = toBrokerError(error).message;
          if (this.#unknownReadsFailed < UNKNOWN_READS) this.#readAfterUnknown();
          else {
            this.#log.error(
              `risk guard: ${this.#exposure.unknownOutcomes} orders of unknown outcome still count as exposure: ` +
                `${UNKNOWN_READS} reads of the book failed (last: ${why}); the next reconnect reads it again`,
            );
            this.#unknownReadsFailed = 0;
          }
        },
      );
    }, delay);
    this.#unknownTimer.unref();
  }

  #onState(state: unknown): void {
    if (state === "connected" && this.#pnlRetryTimer !== undefined) {
      // Reads failed (the link was down, most likely): read now, not when the backoff ends.
      clearTimeout(this.#pnlRetryTimer);
      this.#pnlRetryTimer = undefined;
      this.#checkPnl();
    }
    if (state !== "connected") this.#reseedOnConnect = this.#seeded;
    else if (this.#reseedOnConnect) {
      this.#reseedOnConnect = false;
      // Fills may have happened while the connection was down: take the broker's view again.
      this.#seed().catch((error: unknown) =>
        this.#log.warn(
          `risk guard: cannot re-read positions after a reconnect: ${toBrokerError(error).message}`,
        ),
      );
    }
  }

  // #endregion

  // #region daily loss

  /** A fill or a quote moved the P&L: check now, or when the interval since the last check ends. */
  #pnlMoved(): void {
    // While reads fail, the retry's backoff paces them, not the market.
    if (this.#pnlTimer !== undefined || this.#pnlRetryTimer !== undefined) this.#pnlDue = true;
    else this.#checkPnl();
  }

  /**
   * Asks the broker for the day's P&L, at most every pnl_check_ms; halts at max_daily_loss. A move
   * within the interval is checked when it ends, so the last fill or quote before a quiet spell is
   * never left unchecked. Paced by a timer rather than by reading the clock on every fill and
   * quote: that read was a tenth of the guard's cost per order.
   */
  #checkPnl(): void {
    const max = this.settings.max_daily_loss;
    if (max === undefined || this.#closed) return;
    this.#pnlDue = false;
    if (this.#pnlCheck === undefined) {
      let decided!: () => void;
      this.#pnlDecision = new Promise<void>((resolve) => (decided = resolve));
      this.#pnlCheck = this.#dailyLoss(max, this.#clock.now(), decided)
        .catch((error: unknown) =>
          this.#log.warn(`risk guard: cannot check the daily loss: ${toBrokerError(error).message}`),
        )
        .finally(() => {
          decided();
          this.#pnlCheck = undefined;
        });
    } else this.#pnlDue = true; // one is still running: check again when the interval ends
    clearTimeout(this.#pnlTimer);
    this.#pnlTimer = setTimeout(() => {
      this.#pnlTimer = undefined;
      if (this.#pnlDue && this.#pnlRetryTimer === undefined) this.#checkPnl();
    }, this.settings.pnl_check_ms);
    this.#pnlTimer.unref();
  }

  /** `decided` is called once the loss has been compared (and a halt, if due, made). */
  async #dailyLoss(max: number, now: number, decided: () => void): Promise<void> {
    let account: Awaited<ReturnType<BrokerInterface["getAccount"]>>;
    try {
      account = await this.#readAccount();
    } catch (error) {
      this.#pnlReadFailed(error);
      return;
    }
    this.#pnlReadOk();
    const pnl = account.realized_pnl + account.unrealized_pnl;
    // From the read to the halt nothing below yields: an order placed after this read and before
    // the state changed would go out although the loss was already known.
    // A P&L the venue starts again each session (Kite) has its day begin at the venue's reset, not
    // at midnight, and no floor in the last session's last reading, this process's or an earlier
    // one's: a profitable yesterday would read as today's loss, a losing one as today's cushion.
    const resets = this.broker.pnlResetsDaily === true;
    const day = resets ? sessionDay(now) : istDay(now);
    const last = resets ? undefined : (this.#lastPnl ?? this.#savedLastPnl());
    this.#lastPnl = { day, pnl };
    let kept = this.#record.day;
    let save = this.#record.last_pnl !== pnl;
    this.#record = { ...this.#record, last_pnl: pnl, last_pnl_at: this.#iso(now) };
    if (kept === undefined || this.#record.day_start_pnl === undefined || day > kept) {
      // The day starts where the P&L stood at midnight. The first read of the day comes after the
      // move that asked for it (a fill or a quote after midnight), or after a restart that found
      // Node-RED down at midnight, so taken alone as the start it would forgive every loss since
      // the last read of an earlier day, this process's or a previous one's (the state file keeps
      // it). That last read is the P&L nothing had moved since, as far as anyone saw; the higher
      // of the two counts the move today. With no earlier read at all (a first run), the first
      // read is all there is.
      const start = last !== undefined && last.day < day ? Math.max(last.pnl, pnl) : pnl;
      if (last !== undefined && last.day < day && last.pnl > pnl && last.at !== undefined) {
        this.#log.warn(
          `risk guard: ${day} starts at the P&L last seen (${fmt(last.pnl)} at ${last.at}), not at the first read today (${fmt(pnl)}): what was lost while nothing watched counts today`,
        );
      }
      this.#record = { ...this.#record, day, day_start_pnl: start };
      kept = day;
      save = true;
    }
    // Not awaited before the check below: the halt must not wait for the disk. A start (or last
    // P&L) that cannot be saved blocks new orders (#unsaved); the loss is still checked.
    if (save) this.#saveLastPnl();
    // The clock stepped back over midnight: the day already begun goes on; counting it again
    // would forget its loss (and count a second start when the clock comes forward).
    if (day < kept) {
      this.#log.warn(
        `risk guard: the clock reads ${day}, before the trading day ${kept} already begun; keeping ${kept}`,
      );
    }
    const loss = this.#record.day_start_pnl! - pnl;
    if (loss < max || this.#record.state !== "ACTIVE" || this.#closed) return;
    const reason = `daily loss ${fmt(max)} reached (lost ${fmt(loss)} since the start of ${kept})`;
    // kill() makes the halt before it first yields; its save and flatten are not waited for here.
    const halting = this.kill("halt", "risk guard", reason, { flatten: this.settings.flatten_on_daily_loss });
    decided();
    await halting;
  }

  /**
   * The broker's account, or TIMEOUT after PNL_READ_DEADLINE_CHECKS × pnl_check_ms. A read still
   * unanswered from an earlier check is waited on again, not doubled; when it answers late while
   * a retry is pending, the P&L is read again at once rather than when the backoff ends.
   */
  #readAccount(): ReturnType<BrokerInterface["getAccount"]> {
    let read = this.#pnlRead;
    if (read === undefined) {
      const started = this.broker.getAccount();
      read = started;
      this.#pnlRead = started;
      started.then(
        () => {
          if (this.#pnlRead === started) this.#pnlRead = undefined;
          this.#lateAnswer();
        },
        () => {
          if (this.#pnlRead === started) this.#pnlRead = undefined;
        },
      );
    }
    const ms = PNL_READ_DEADLINE_CHECKS * this.settings.pnl_check_ms;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BrokerError("TIMEOUT", `getAccount: no answer in ${fmt(ms)} ms`)),
        ms,
      );
      timer.unref();
    });
    return Promise.race([read, deadline]).finally(() => clearTimeout(timer));
  }

  /**
   * A read answered. If no check waits on it, a check gave up on it (TIMEOUT) and a retry is
   * pending: read again now, not when the backoff ends.
   */
  #lateAnswer(): void {
    if (this.#closed || this.#pnlRetryTimer === undefined || this.#pnlCheck !== undefined) return;
    clearTimeout(this.#pnlRetryTimer);
    this.#pnlRetryTimer = undefined;
    this.#checkPnl();
  }

  /** A read answered: the P&L is known again, and any refusal for want of it ends. */
  #pnlReadOk(): void {
    this.#pnlEverRead = true;
    this.#pnlFailures = 0;
    clearTimeout(this.#pnlRetryTimer);
    this.#pnlRetryTimer = undefined;
    clearTimeout(this.#pnlValidTimer);
    this.#pnlValidTimer = undefined;
    if (this.#pnlUnread === undefined) return;
    this.#pnlUnread = undefined;
    this.#log.info("risk guard: the P&L is read again; orders may go out");
    this.emit("pnl", undefined);
  }

  /**
   * A read failed: try again with backoff. Before any read succeeded orders stay refused; after
   * one, its reading stays good for PNL_VALID_CHECKS checks' time, then orders are refused too.
   */
  #pnlReadFailed(error: unknown): void {
    if (this.#closed) return;
    const why = toBrokerError(error).message;
    const check = this.settings.pnl_check_ms;
    this.#pnlFailures += 1;
    this.#pnlFailedWhy = why;
    if (!this.#pnlEverRead) {
      const first = this.#pnlFailures === 1;
      this.#setPnlUnread(`P&L not read yet: ${why}`);
      if (first) this.#log.warn(`risk guard: cannot read the P&L (${why}); no new orders until it is read`);
    } else if (this.#pnlUnread === undefined && this.#pnlValidTimer === undefined) {
      const valid = PNL_VALID_CHECKS * check;
      this.#log.warn(
        `risk guard: cannot read the P&L (${why}); the last reading stays good for ${fmt(valid / 1000)} s while it is read again`,
      );
      this.#pnlValidTimer = setTimeout(() => {
        this.#pnlValidTimer = undefined;
        if (this.#closed || this.#pnlFailures === 0) return;
        this.#setPnlUnread(this.#staleText(this.#pnlFailedWhy));
        this.#log.error(`risk guard: ${this.#pnlUnread!}; no new orders until it is read`);
      }, valid);
      this.#pnlValidTimer.unref();
    } else if (this.#pnlUnread !== undefined) this.#setPnlUnread(this.#staleText(why));
    clearTimeout(this.#pnlRetryTimer);
    const delay = Math.min(check * 2 ** (this.#pnlFailures - 1), PNL_RETRY_MAX_CHECKS * check);
    this.#pnlRetryTimer = setTimeout(() => {
      this.#pnlRetryTimer = undefined;
      this.#checkPnl();
    }, delay);
    this.#pnlRetryTimer.unref();
  }

  #staleText(why: string): string {
    return `P&L not read for over ${fmt((PNL_VALID_CHECKS * this.settings.pnl_check_ms) / 1000)} s: ${why}`;
  }

  #setPnlUnread(why: string): void {
    if (this.#pnlUnread === why) return;
    this.#pnlUnread = why;
    this.emit("pnl", why);
  }

  /**
   * The last P&L an earlier process read, as its IST day: the state file's last_pnl, or, in a file
   * written before that was kept, the start of the last day it knew (a reading of that day too).
   */
  #savedLastPnl(): { day: string; pnl: number; at?: string } | undefined {
    const record = this.#record;
    if (record.last_pnl !== undefined && record.last_pnl_at !== undefined) {
      return { day: istDay(Date.parse(record.last_pnl_at)), pnl: record.last_pnl, at: record.last_pnl_at };
    }
    if (record.day !== undefined && record.day_start_pnl !== undefined) {
      return { day: record.day, pnl: record.day_start_pnl, at: `the start of ${record.day}` };
    }
    return undefined;
  }

  /**
   * Saves the record with the newest P&L read. One such save at a time: checks during a slow
   * write only mark another as due, which then writes whatever is newest, so a slow disk never
   * queues one write per check.
   */
  #saveLastPnl(): void {
    if (this.#pnlSaving) {
      this.#pnlSaveAgain = true;
      return;
    }
    this.#pnlSaving = true;
    this.#pnlSaveAgain = false;
    this.#persist()
      .catch(() => undefined)
      .finally(() => {
        this.#pnlSaving = false;
        if (this.#pnlSaveAgain) this.#saveLastPnl();
      });
  }

  // #endregion

  // #region kill switch

  async #cancelEverything(outcome: KillOutcome): Promise<void> {
    const book = await this.broker.getOrderbook();
    for (const order of book) {
      if (isTerminal(order.status)) continue;
      try {
        outcome.cancelled.push(await this.cancelOrder(order.order_id));
      } catch (error) {
        const failure = toBrokerError(error);
        // Filled or cancelled meanwhile: nothing is left to cancel, which is what was wanted.
        if (failure.code === "ORDER_TERMINAL") continue;
        outcome.failures.push({
          action: "cancel",
          id: order.order_id,
          code: failure.code,
          message: failure.message,
        });
      }
    }
    for (const gtt of await this.broker.getGtts()) {
      if (gtt.status !== "active") continue;
      try {
        outcome.deleted_gtts.push(await this.broker.deleteGtt(gtt.gtt_id));
      } catch (error) {
        const failure = toBrokerError(error);
        if (failure.code === "ORDER_TERMINAL") continue;
        outcome.failures.push({
          action: "delete_gtt",
          id: gtt.gtt_id,
          code: failure.code,
          message: failure.message,
        });
      }
    }
  }

  /** Closes every position with a MARKET order; these bypass the limits, being the way out. */
  async #flatten(outcome: KillOutcome, by: string): Promise<void> {
    for (const position of await this.broker.getPositions()) {
      if (position.quantity === 0) continue;
      const side: Side = position.quantity > 0 ? "SELL" : "BUY";
      const quantity = Math.abs(position.quantity);
      const instrument = this.#exposure.instrument(position.exchange, position.symbol);
      const key = instrument.key;
      try {
        const request: OrderRequestInput = {
          symbol: position.symbol,
          exchange: position.exchange,
          side,
          quantity,
          order_type: "MARKET",
          product: position.product,
          tag: "killswitch",
        };
        outcome.placed.push(
          await this.#send(
            instrument,
            { ...position, side, quantity },
            request,
            this.#countRates ? this.#tick() : 0,
          ),
        );
      } catch (error) {
        const failure = toBrokerError(error);
        outcome.failures.push({ action: "flatten", id: key, code: failure.code, message: failure.message });
        this.#log.error(`kill switch (${by}): cannot close ${key}: ${failure.message}`);
      }
    }
  }

  // #endregion

  async #load(): Promise<void> {
    if (this.#stateFile === undefined) return;
    const loaded = await loadState(this.#stateFile);
    if (
      loaded.kind === "ok" &&
      this.#account !== undefined &&
      loaded.record.account !== undefined &&
      loaded.record.account !== this.#account
    ) {
      await this.#haltUnread(
        `${this.#stateFile} belongs to account ${loaded.record.account}, not ${this.#account} (state_file)`,
      );
      return;
    }
    if (loaded.kind === "ok") {
      this.#record =
        this.#account === undefined ? loaded.record : { ...loaded.record, account: this.#account };
      if (loaded.record.state !== "ACTIVE") {
        // A file written before the witness was kept: give it one now.
        this.#witness(loaded.record);
        this.#log.warn(
          `trading is ${loaded.record.state} since ${loaded.record.at} (${loaded.record.by}: ${loaded.record.reason})`,
        );
      }
      return;
    }
    if (loaded.kind === "corrupt") {
      await this.#haltUnread(loaded.why);
      return;
    }
    // No state file: unless its witness says trading was stopped, this is a first run.
    const witness = await loadWitness(this.#stateFile);
    if (witness === undefined) return;
    const reason = `state file ${this.#stateFile} is missing, ${witness.said}: ${witness.state} until a person resumes`;
    this.#log.error(reason);
    this.#record = {
      version: 1,
      state: witness.state,
      by: "risk guard",
      reason,
      at: this.#iso(),
      ...(this.#account === undefined ? {} : { account: this.#account }),
    };
    await this.#persist().catch((error: unknown) => this.#log.error(toBrokerError(error).message));
  }

  /**
   * Writes the second witness of the state just decided (or removes it for ACTIVE), after the
   * writes before it. Not waited for by the change: the state file is the record; a witness that
   * cannot be written is logged.
   */
  #witness(record: RiskStateRecord): void {
    const file = this.#stateFile;
    if (file === undefined) return;
    this.#witnessing = this.#witnessing.then(() =>
      saveWitness(file, record).catch((error: unknown) =>
        this.#log.error(
          `risk guard: cannot write the halt witness of ${file}: ${toBrokerError(error).message}`,
        ),
      ),
    );
  }

  /** Not knowing whether a person halted trading must not mean trading: halt, and say why. */
  async #haltUnread(why: string): Promise<void> {
    const reason = `state file unreadable, halted until a person resumes: ${why}`;
    this.#log.error(reason);
    this.#record = {
      version: 1,
      state: "HALTED",
      by: "risk guard",
      reason,
      at: this.#iso(),
      ...(this.#account === undefined ? {} : { account: this.#account }),
    };
    this.#witness(this.#record);
    await this.#persist().catch((error: unknown) => this.#log.error(toBrokerError(error).message));
  }

  /** The day's P&L baseline of `record` and the last P&L read, to carry over when the state is replaced. */
  #dayOf(
    record: RiskStateRecord,
  ): Pick<RiskStateRecord, "day" | "day_start_pnl" | "last_pnl" | "last_pnl_at"> {
    return {
      ...(record.day === undefined || record.day_start_pnl === undefined
        ? {}
        : { day: record.day, day_start_pnl: record.day_start_pnl }),
      ...(record.last_pnl === undefined || record.last_pnl_at === undefined
        ? {}
        : { last_pnl: record.last_pnl, last_pnl_at: record.last_pnl_at }),
    };
  }

  /**
   * Writes the current record (or `record`, a change not made yet); writes are queued so the file
   * always ends with the newest. A failed write blocks new exposure until a write succeeds.
   */
  #persist(record?: RiskStateRecord): Promise<void> {
    const file = this.#stateFile;
    if (file === undefined) return Promise.resolve();
    const save = (): Promise<void> => saveState(file, record ?? this.#record);
    const write = this.#writing.then(save, save);
    this.#writing = write.catch(() => undefined);
    return write.then(
      () => {
        if (this.#unsaved === undefined) return;
        this.#log.info(`risk guard: the trading state is saved to ${file} again`);
        this.#unsaved = undefined;
        this.emit("unsaved", undefined);
      },
      (error: unknown) => {
        const why = `cannot save the trading state to ${file}: ${toBrokerError(error).message}`;
        const first = this.#unsaved === undefined;
        this.#unsaved = why;
        if (first) {
          this.#log.error(why);
          this.emit("unsaved", why);
        }
        // RISK, not INTERNAL: the guard refuses because of it, and says which file.
        throw new BrokerError("RISK", `${why} (state_file)`);
      },
    );
  }

  /** The elapsed clock in whole milliseconds: orders within one share an entry of the rate window. */
  #tick(): number {
    return Math.floor(this.#elapsed.now());
  }

  #iso(at = this.#clock.now()): string {
    return new Date(at).toISOString();
  }
}

/** A broker behind a guard: the broker's own API (and class), with its orders checked first. */
export type Guarded<T extends BrokerInterface> = T & { readonly risk: RiskGuard };

const GUARDED_METHODS = [
  "connect",
  "close",
  "placeOrder",
  "modifyOrder",
  "cancelOrder",
  "placeGtt",
  "modifyGtt",
  "resetAccount",
] as const;

/**
 * Puts a RiskGuard in front of `broker`. The result is still `broker` to everything else (its
 * class, its events, its listeners, its extra methods such as the paper broker's setPrice), so
 * nodes and tests keep working unchanged; only the order path goes through the guard.
 */
export function guardBroker<T extends BrokerInterface>(
  broker: T,
  options: RiskGuardOptions = {},
): Guarded<T> {
  const guard = new RiskGuard(broker, options);
  const overrides = new Map<PropertyKey, unknown>([["risk", guard]]);
  for (const name of GUARDED_METHODS) {
    if (name === "resetAccount" && typeof (broker as { resetAccount?: unknown }).resetAccount !== "function")
      continue;
    overrides.set(name, (guard[name] as (...args: unknown[]) => unknown).bind(guard));
  }
  const place = overrides.get("placeOrder");
  // Bound once per function: the broker's private fields need `this` to be the broker itself.
  const bound = new WeakMap<object, unknown>();
  return new Proxy(broker, {
    get(target, property) {
      // Placing is the hot path: answer it before any lookup.
      if (property === "placeOrder") return place;
      if (overrides.has(property)) return overrides.get(property);
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      let fn = bound.get(value);
      if (fn === undefined) {
        fn = (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(value, fn);
      }
      return fn;
    },
    has(target, property) {
      return overrides.has(property) || Reflect.has(target, property);
    },
  }) as Guarded<T>;
}

export function isGuarded(broker: unknown): broker is Guarded<BrokerInterface> {
  return (
    typeof broker === "object" && broker !== null && (broker as { risk?: unknown }).risk instanceof RiskGuard
  );
}
