// A second, independent fuzzer of the paper broker under NSE's rules: random quotes, orders,
// modifies, cancels and clock jumps across sessions, square-offs, closes, weekends and AMO windows,
// checked after every operation against an oracle written from docs/MARKET-RULES.md and README's
// fill rules (test/support/nse-oracle.ts), not from lib/paper. What it checks that
// paper.property.spec does not: the calendar (MIS flat from 15:20, DAY orders ended at their close,
// AMOs held to the open, no fill outside the session), admission by tick, band and hours with the
// field named, each charge per Zerodha's schedule to the paisa, the touch and its depth shared by
// all orders in time priority, and a reopened broker = its twin when restarts fall across those
// boundaries. PAPER_FUZZ_SEEDS=N runs N seeds per property instead of the CI count.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent, OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { canTransition } from "../../lib/protocol/state-machine";
import { isTerminal } from "../../lib/protocol/orders";
import {
  admission,
  currentOrNextSession,
  isOpen,
  lastClosedSession,
  levelOf,
  misShut,
  orderCharges,
  touchPaise,
  type Session,
} from "../support/nse-oracle";

const SEEDS = Number(process.env.PAPER_FUZZ_SEEDS ?? 0);
/** Two equities (band ±10 %, lot 1) and a future (lot 65, no band, F&O AMO hours, futures charges). */
const INSTRUMENTS = [
  { exchange: "NSE", symbol: "INFY", lot: 1, band: true, segment: "equity" },
  { exchange: "NSE", symbol: "SBIN", lot: 1, band: true, segment: "equity" },
  { exchange: "NFO", symbol: "NIFTY26DECFUT", lot: 65, band: false, segment: "derivatives" },
] as const;
const SYMBOLS = INSTRUMENTS.map((i) => i.symbol);
const FUTURE = 2;
const BASE = [150_000, 80_000, 2_600_000];
const START = 10_000_000;
const TOUCH = 100;
const MIN = 60_000;

type Side = "BUY" | "SELL";

type Command =
  | { kind: "quote"; symbol: number; bps: number; spread: number; offTick: boolean }
  | {
      kind: "place";
      symbol: number;
      side: Side;
      quantity: number;
      type: "MARKET" | "LIMIT";
      bps: number;
      offTick: boolean;
      product: "CNC" | "MIS";
      validity: "DAY" | "IOC";
      amo: boolean;
      unknown: boolean;
    }
  | { kind: "modify"; pick: number; quantity: number | undefined; bps: number | undefined; offTick: boolean }
  | { kind: "cancel"; pick: number }
  | { kind: "advance"; ms: number }
  | { kind: "reopen"; closedFor: number };

const ADVANCES = [
  1,
  MIN,
  7 * MIN,
  29 * MIN,
  95 * MIN,
  4 * 60 * MIN,
  11 * 60 * MIN,
  24 * 60 * MIN,
  3 * 24 * 60 * MIN,
];

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("quote" as const),
      symbol: fc.nat(2),
      bps: fc.integer({ min: -600, max: 600 }),
      spread: fc.nat(4),
      offTick: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("place" as const),
      symbol: fc.nat(2),
      side: fc.constantFrom<Side>("BUY", "SELL"),
      quantity: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 90, max: 700 })),
      type: fc.constantFrom("MARKET" as const, "LIMIT" as const, "LIMIT" as const),
      bps: fc.integer({ min: -1300, max: 1300 }),
      offTick: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
      product: fc.constantFrom("CNC" as const, "MIS" as const),
      validity: fc.constantFrom("DAY" as const, "DAY" as const, "IOC" as const),
      amo: fc.boolean(),
      unknown: fc.integer({ min: 0, max: 30 }).map((n) => n === 0),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("modify" as const),
      pick: fc.nat(),
      quantity: fc.option(fc.integer({ min: 1, max: 400 }), { nil: undefined }),
      bps: fc.option(fc.integer({ min: -900, max: 900 }), { nil: undefined }),
      offTick: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.constantFrom(...ADVANCES) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("reopen" as const),
      closedFor: fc.constantFrom(0, 0, MIN, 95 * MIN, 24 * 60 * MIN),
    }),
  },
);

/** Violations per rule over every run, so the report can say what broke how often. */
export const violations = new Map<string, number>();
const tally = {
  seeds: 0,
  operations: 0,
  fills: 0,
  refused: 0,
  amos: 0,
  squareOffs: 0,
  expired: 0,
  reopens: 0,
  twinSkipped: 0,
  refusedModifies: 0,
};

// PAPER_FUZZ_SURVEY=1 counts every violation and goes on, to tell how often each rule breaks.
const SURVEY = process.env.PAPER_FUZZ_SURVEY === "1";
const firstSeen = new Map<string, string>();
class RuleBroken extends Error {}
// PAPER_FUZZ_IGNORE="rule a|rule b" lets the fuzzer look past known breaks to find the next.
const IGNORED = new Set((process.env.PAPER_FUZZ_IGNORE ?? "").split("|").filter((r) => r !== ""));
function rule(ok: boolean, name: string, detail: () => string): void {
  if (ok || IGNORED.has(name)) return;
  violations.set(name, (violations.get(name) ?? 0) + 1);
  if (!firstSeen.has(name)) firstSeen.set(name, detail());
  if (!SURVEY) throw new RuleBroken(`${name}: ${detail()}`);
}

interface Window {
  quote: { bid?: number; ask?: number; last: number };
  /** Filled per side and depth level (paise → quantity) since this quote. */
  taken: Record<Side, Map<number, number>>;
  at: number;
}

interface Known {
  placedAt: number;
  amoSession: Session | undefined;
  session: Session;
  modified: boolean;
}

/** Runs commands on one broker and checks every documented rule after each. */
class Driver {
  readonly events: OrderEvent[] = [];
  readonly #windows = new Map<string, Window>();
  readonly #orders = new Map<string, Known>();
  readonly #turnover = new Map<
    string,
    { paise: number; side: Side; product: string; future: boolean; at: number }
  >();
  broker: PaperBroker;

  constructor(
    readonly make: () => PaperBroker,
    readonly clock: ManualClock,
  ) {
    this.broker = this.#listen(make());
  }

  #listen(broker: PaperBroker): PaperBroker {
    broker.on("order", (event) => this.#onEvent(event));
    return broker;
  }

  readonly #lastStatus = new Map<string, OrderSnapshot["status"]>();
  /** Σ over orders of the schedule's charges on each order's turnover, kept as fills arrive. */
  #expectedCharges = 0n;

  /** A rule an event broke: thrown by the next check, not into the broker's emit. */
  #broken: Error | undefined;

  #onEvent(event: OrderEvent): void {
    try {
      this.#checkEvent(event);
    } catch (error) {
      this.#broken ??= error instanceof Error ? error : new Error(String(error));
    }
  }

  #checkEvent(event: OrderEvent): void {
    const previous = this.events.at(-1);
    rule(
      previous === undefined || event.seq === previous.seq + 1,
      "seq without gaps",
      () => `seq ${event.seq} after ${previous?.seq}`,
    );
    this.events.push(event);
    const order = event.order;
    // Status sequences, checked as events arrive: legal steps, nothing after the terminal one.
    const before = this.#lastStatus.get(order.order_id);
    if (before !== undefined) {
      rule(
        !isTerminal(before),
        "one terminal event per order, nothing after it",
        () => `${order.order_id}: ${event.type} after ${before}`,
      );
      rule(
        canTransition(before, order.status),
        "legal transitions",
        () => `${order.order_id}: ${before} → ${order.status}`,
      );
    }
    this.#lastStatus.set(order.order_id, order.status);
    if (event.type === "ORDER_EXPIRED") tally.expired++;
    if (order.tag === "SQUAREOFF" && event.type === "ORDER_FILLED") tally.squareOffs++;
    for (const trade of event.trades ?? []) {
      tally.fills++;
      const price = Math.round(trade.price * 100);
      const at = Date.parse(trade.timestamp);
      const t = this.#turnover.get(order.order_id) ?? {
        paise: 0,
        side: order.side,
        product: order.product,
        future: order.exchange === "NFO",
        at,
      };
      const category = t.future ? "futures" : t.product === "CNC" ? "delivery" : "intraday";
      this.#expectedCharges -= orderCharges(category, t.side, t.paise, t.at).total;
      t.paise += price * trade.quantity;
      this.#expectedCharges += orderCharges(category, t.side, t.paise, t.at).total;
      this.#turnover.set(order.order_id, t);
      const squareOff = order.tag === "SQUAREOFF";
      rule(
        squareOff || isOpen(at),
        "no fill outside the session",
        () => `${order.order_id} filled at ${trade.timestamp}`,
      );
      const known = this.#orders.get(order.order_id);
      if (known?.amoSession !== undefined)
        rule(
          at >= known.amoSession.open,
          "an AMO waits for its open",
          () =>
            `${order.order_id} filled at ${trade.timestamp}, its session opens ${new Date(known.amoSession!.open).toISOString()}`,
        );
      // Square-offs at a catch-up may meet no window of their own; every other fill is liquidity.
      const window = this.#windows.get(order.symbol);
      if (window === undefined) continue;
      const touch = touchPaise(order.side, window.quote);
      const level = levelOf(order.side, touch, price);
      rule(
        level !== undefined,
        "fills at the touch or its depth",
        () => `${order.order_id} ${order.side} ${order.order_type} at ${price} paise; the touch is ${touch}`,
      );
      if (order.order_type === "LIMIT")
        rule(level === 0, "a LIMIT takes only the touch", () => `${order.order_id} at level ${level}`);
      const taken = window.taken[order.side];
      taken.set(level!, (taken.get(level!) ?? 0) + trade.quantity);
      // The broker's own square-off closes the whole position: past the depth, at its last level.
      rule(
        squareOff || taken.get(level!)! <= TOUCH,
        "one quote's size at each level",
        () => `${order.symbol} ${order.side} level ${level}: ${taken.get(level!)} taken of ${TOUCH}`,
      );
      for (let below = 0; below < level!; below++)
        rule(
          taken.get(below) === TOUCH,
          "a MARKET walks only past an emptied level",
          () =>
            `${order.order_id} took level ${level} while level ${below} had ${TOUCH - (taken.get(below) ?? 0)} left`,
        );
    }
  }

  async start(): Promise<void> {
    await this.broker.connect();
  }

  /** A new broker on the same journal, as after a redeploy; it catches up on connect. */
  async reopen(): Promise<void> {
    this.broker = this.#listen(this.make());
    await this.start();
    await this.broker.flush();
  }

  #reference(symbol: string): number | undefined {
    const window = this.#windows.get(symbol);
    return window === undefined ? undefined : Math.round(window.quote.last * 100);
  }

  async run(c: Command): Promise<void> {
    tally.operations++;
    const broker = this.broker;
    const now = this.clock.now();
    switch (c.kind) {
      case "quote": {
        const symbol = SYMBOLS[c.symbol]!;
        const instrument = INSTRUMENTS[c.symbol]!;
        const base = this.#reference(symbol) ?? BASE[c.symbol]!;
        let last = Math.max(500, Math.round((base * (10_000 + c.bps)) / 10_000 / 5) * 5);
        if (c.offTick) last += 2;
        const quote = {
          last: last / 100,
          bid: (last - c.spread * 5) / 100,
          ask: (last + c.spread * 5) / 100,
        };
        const before = await this.#live(symbol);
        this.#windows.set(symbol, { quote, at: now, taken: { BUY: new Map(), SELL: new Map() } });
        broker.setPrice(`${instrument.exchange}:${symbol}`, quote.last, { bid: quote.bid, ask: quote.ask });
        await broker.flush();
        await this.#checkPriority(symbol, before, now);
        return;
      }
      case "place": {
        const instrument = INSTRUMENTS[c.symbol]!;
        const future = c.symbol === FUTURE && !c.unknown;
        const symbol = c.unknown ? "ZZZZ" : instrument.symbol;
        const reference = this.#reference(symbol);
        // A future trades in whole lots of 65 (NRML for carried positions); one in seven is not.
        const quantity =
          future && c.quantity % 7 !== 0 ? (1 + (c.quantity % 3)) * instrument.lot : c.quantity;
        const product = future && c.product === "CNC" ? "NRML" : c.product;
        const request: OrderRequestInput = {
          symbol,
          exchange: c.unknown ? "NSE" : instrument.exchange,
          side: c.side,
          quantity,
          order_type: c.type,
          product,
          validity: c.validity,
        };
        let pricePaise: number | undefined;
        if (c.type === "LIMIT") {
          pricePaise = Math.max(
            5,
            Math.round(((reference ?? BASE[c.symbol]!) * (10_000 + c.bps)) / 10_000 / 5) * 5,
          );
          if (c.offTick) pricePaise += 3;
          request.price = pricePaise / 100;
        }
        if (c.amo) request.variety = "amo";
        const expected = admission(
          {
            symbol,
            known: !c.unknown,
            side: c.side,
            quantity,
            lot: c.unknown ? 1 : instrument.lot,
            order_type: c.type,
            ...(pricePaise === undefined ? {} : { pricePaise }),
            product,
            amo: c.amo,
            referencePaise: c.unknown || instrument.band ? reference : undefined,
            segment: future ? "derivatives" : "equity",
            ...(future ? { expiry: "2026-12-29" } : {}),
          },
          now,
        );
        const eventsBefore = this.events.length;
        let order: OrderSnapshot | undefined;
        let error: { code?: string; message: string } | undefined;
        try {
          order = await broker.placeOrder(request);
        } catch (e) {
          error = e as { code?: string; message: string };
        }
        const mine = this.events.slice(eventsBefore).filter((e) => e.order.order_id === order?.order_id);
        if (expected.kind === "refused") {
          tally.refused++;
          const message = order?.status_message ?? error?.message ?? "";
          rule(
            order === undefined || order.status === "REJECTED",
            `refused: ${expected.field}`,
            () => `${JSON.stringify(request)} at ${new Date(now).toISOString()} was ${order?.status}`,
          );
          rule(
            expected.rule.test(message),
            `refusal names the rule: ${expected.field}`,
            () => `${JSON.stringify(request)}: "${message}"`,
          );
          if (order !== undefined)
            rule(
              mine.length === 1 && mine[0]!.type === "ORDER_REJECTED",
              "one outcome per request",
              () => `${order.order_id}: ${mine.map((e) => e.type).join(",")}`,
            );
          return;
        }
        // Funds aside, the documents admit it: it must not be refused for tick, band, hours.
        if (order === undefined) {
          rule(
            false,
            "an admissible order is placed",
            () => `${JSON.stringify(request)}: ${error?.code} ${error?.message}`,
          );
          return;
        }
        rule(
          order.status !== "REJECTED" || /funds|margin|short|held|cash/i.test(order.status_message ?? ""),
          `admitted: ${expected.kind}`,
          () => `${JSON.stringify(request)} at ${new Date(now).toISOString()}: ${order.status_message}`,
        );
        rule(
          mine.length >= 1 && ["ORDER_PLACED", "ORDER_REJECTED"].includes(mine[0]!.type),
          "one outcome per request",
          () => `${order.order_id}: ${mine.map((e) => e.type).join(",")}`,
        );
        if (order.status === "REJECTED") return;
        if (expected.kind === "amo") {
          tally.amos++;
          rule(
            order.filled_quantity === 0 && order.status === "OPEN",
            "an AMO is held OPEN",
            () => `${order.order_id} is ${order.status} with ${order.filled_quantity} filled`,
          );
        }
        this.#orders.set(order.order_id, {
          placedAt: now,
          amoSession: expected.kind === "amo" ? expected.session : undefined,
          session: expected.kind === "amo" ? expected.session : currentOrNextSession(now),
          modified: false,
        });
        return;
      }
      case "modify":
      case "cancel": {
        const live = (await broker.getOrderbook()).filter((o) => !isTerminal(o.status));
        const order = live[c.pick % Math.max(1, live.length)];
        if (order === undefined) return;
        if (c.kind === "cancel") {
          await broker.cancelOrder(order.order_id);
          return;
        }
        const changes: Record<string, unknown> = {};
        if (c.quantity !== undefined) changes.quantity = c.quantity;
        let pricePaise = order.price === undefined ? undefined : Math.round(order.price * 100);
        if (c.bps !== undefined && order.order_type === "LIMIT" && pricePaise !== undefined) {
          pricePaise = Math.max(5, Math.round((pricePaise * (10_000 + c.bps)) / 10_000 / 5) * 5);
          if (c.offTick) pricePaise += 3;
          changes.price = pricePaise / 100;
        }
        if (Object.keys(changes).length === 0) return;
        const known = this.#orders.get(order.order_id);
        if (known !== undefined) known.modified = true;
        // One admission for place and modify: the order as it would be, checked now.
        const quantity = c.quantity ?? order.quantity;
        const expected = admission(
          {
            symbol: order.symbol,
            known: true,
            side: order.side,
            quantity,
            lot: order.exchange === "NFO" ? 65 : 1,
            order_type: order.order_type,
            ...(pricePaise === undefined ? {} : { pricePaise }),
            product: order.product,
            amo: order.variety === "amo",
            referencePaise: order.exchange === "NFO" ? undefined : this.#reference(order.symbol),
            segment: order.exchange === "NFO" ? "derivatives" : "equity",
            ...(order.exchange === "NFO" ? { expiry: "2026-12-29" } : {}),
          },
          now,
        );
        const before = this.events.length;
        let error: { code?: string; message: string } | undefined;
        try {
          await broker.modifyOrder(order.order_id, changes);
        } catch (e) {
          error = e as { code?: string; message: string };
          rule(this.events.length === before, "a refused modify changes nothing", () => error!.message);
        }
        const what = () =>
          `modify ${order.order_id} ${JSON.stringify(changes)} at ${new Date(now).toISOString()}: ${error?.code} ${error?.message}`;
        if (expected.kind === "refused" && quantity > order.filled_quantity) {
          tally.refusedModifies++;
          rule(error?.code === expected.code, `modify refused: ${expected.field}`, what);
          rule(
            expected.rule.test(error?.message ?? ""),
            `modify refusal names the rule: ${expected.field}`,
            what,
          );
        } else if (expected.kind !== "refused" && error !== undefined) {
          rule(
            error.code === "INSUFFICIENT_FUNDS" ||
              /already filled/.test(error.message) ||
              (error.code === "ORDER_REJECTED" &&
                /^order \S+ not modified: quantity: insufficient holdings/.test(error.message)),
            `an admissible modify is made: ${expected.kind}`,
            what,
          );
        }
        return;
      }
      case "advance": {
        this.clock.advance(c.ms);
        await broker.flush();
        return;
      }
      case "reopen":
        return;
    }
  }

  /** Live orders of a symbol before a quote, oldest first, with what they had filled. */
  async #live(symbol: string): Promise<OrderSnapshot[]> {
    return (await this.broker.getOrderbook()).filter((o) => o.symbol === symbol && !isTerminal(o.status));
  }

  /**
   * Time priority and no liquidity wasted: after a quote in session, if a level-0 touch had size
   * left on a side, every unmodified order resting there that the touch satisfies is filled; and an
   * order is never filled from the quote while an older eligible one is left unfilled.
   */
  async #checkPriority(symbol: string, before: OrderSnapshot[], now: number): Promise<void> {
    if (!isOpen(now)) return;
    const window = this.#windows.get(symbol)!;
    const after = new Map((await this.broker.getOrderbook()).map((o) => [o.order_id, o]));
    for (const side of ["BUY", "SELL"] as const) {
      const touch = touchPaise(side, window.quote);
      const eligible = before.filter((o) => {
        const known = this.#orders.get(o.order_id);
        if (known === undefined || known.modified || o.side !== side || o.order_type !== "LIMIT")
          return false;
        if (known.amoSession !== undefined && now < known.amoSession.open) return false;
        const limit = Math.round(o.price! * 100);
        return side === "BUY" ? limit >= touch : limit <= touch;
      });
      let starved: OrderSnapshot | undefined;
      for (const o of eligible) {
        const later = after.get(o.order_id);
        if (later === undefined) continue;
        const got = later.filled_quantity - o.filled_quantity;
        if (starved !== undefined && got > 0)
          rule(
            false,
            "time priority",
            () => `${o.order_id} filled ${got} while older ${starved!.order_id} was left`,
          );
        if (later.status === "CANCELLED") continue;
        if (later.filled_quantity < later.quantity && starved === undefined) starved = o;
      }
      const left = TOUCH - (window.taken[side].get(0) ?? 0);
      if (starved !== undefined)
        rule(
          left === 0,
          "a touch with size left fills the orders it satisfies",
          () =>
            `${starved.order_id} ${side} ${starved.price} left with ${left} at ${touch / 100} on the touch`,
        );
    }
  }

  /** The rules that hold between any two operations. */
  async checkInvariants(): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    const broker = this.broker;
    const now = this.clock.now();
    const [account, positions, book] = [
      await broker.getAccount(),
      await broker.getPositions(),
      await broker.getOrderbook(),
    ];
    let held = 0;
    let realized = 0;
    let charges = 0;
    for (const p of positions) {
      held += Math.round(p.quantity * p.average_price * 100);
      realized += Math.round(p.realized_pnl * 100);
      charges += Math.round((p.charges ?? 0) * 100);
      rule(p.product !== "CNC" || p.quantity >= 0, "CNC never short", () => `${p.symbol} ${p.quantity}`);
      if (p.product === "MIS")
        rule(
          !misShut(now) || p.quantity === 0,
          "MIS flat from 15:20 to the open",
          () => `${p.symbol} MIS ${p.quantity} at ${new Date(now).toISOString()}`,
        );
    }
    rule(
      Math.round(account.cash * 100) + held - realized + charges === START * 100,
      "starting cash = cash + Σ qty×avg − Σ realized + Σ charges",
      () => `cash ${account.cash} held ${held} realized ${realized} charges ${charges}`,
    );
    const expectedCharges = this.#expectedCharges;
    rule(
      BigInt(charges) === expectedCharges,
      "charges per Zerodha's schedule, per order",
      () => `positions show ${charges} paise, the schedule gives ${expectedCharges}`,
    );
    rule(
      Math.round((account.charges ?? Number.NaN) * 100) === charges,
      "account charges = Σ positions'",
      () => `${account.charges} vs ${charges / 100}`,
    );
    for (const order of book) {
      if (isTerminal(order.status)) continue;
      rule(
        order.validity !== "IOC" || order.variety === "amo",
        "IOC never rests",
        () => `${order.order_id} ${order.status}`,
      );
      if (order.product === "MIS")
        rule(
          !misShut(now) || this.#orders.get(order.order_id)?.amoSession !== undefined,
          "no live MIS order from 15:20",
          () => `${order.order_id} ${order.status} at ${new Date(now).toISOString()}`,
        );
      const known = this.#orders.get(order.order_id);
      if (known !== undefined && order.validity === "DAY")
        rule(
          now < known.session.close,
          "DAY orders end at their session's close",
          () =>
            `${order.order_id} placed ${new Date(known.placedAt).toISOString()} still ${order.status} at ${new Date(now).toISOString()}, close was ${new Date(known.session.close).toISOString()}`,
        );
    }
  }

  /** State to compare with a twin: everything but instants a catch-up may legitimately move. */
  async state(): Promise<unknown> {
    const broker = this.broker;
    return {
      account: await broker.getAccount(),
      positions: await broker.getPositions(),
      // Generated client ids carry a per-instance prefix; the order ids are what must agree.
      // A square-off made on a catch-up is placed when the broker came back, not at 15:20.
      orders: (await broker.getOrderbook()).map(({ timestamp: _t, client_order_id: _c, placed_at, ...o }) =>
        o.tag === "SQUAREOFF" ? o : { ...o, placed_at },
      ),
      seq: broker.lastSeq,
    };
  }
}

const OPENING: Command[] = [
  { kind: "quote", symbol: 0, bps: 0, spread: 1, offTick: false },
  { kind: "quote", symbol: 1, bps: 0, spread: 0, offTick: false },
  { kind: "quote", symbol: 2, bps: 0, spread: 2, offTick: false },
];

function emptyCsv(dir: string): string {
  const file = path.join(dir, "none.csv");
  // One row of an instrument the runs never trade: the replay needs a row, the runs no feed.
  fs.writeFileSync(file, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
  return file;
}

describe("paper broker under NSE's rules, against an oracle written from the documents", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "nse-oracle-"));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (violations.size > 0 || process.env.PAPER_FUZZ_SEEDS !== undefined)
      console.log(
        `nse oracle: ${JSON.stringify(tally)} violations ${JSON.stringify([...violations])} first ${JSON.stringify([...firstSeen], null, 1)}`,
      );
  });

  function settings(retention: number): PaperSettingsInput {
    return {
      starting_cash: START,
      quote_source: "csv",
      csv_file: emptyCsv(dir),
      replay_loop: false,
      slippage_bps: 0,
      market: "nse",
      retention,
    };
  }

  it("keeps every documented NSE rule through sessions, square-offs, AMOs and closes", async function () {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10, maxLength: 60 }), async (commands) => {
        tally.seeds++;
        const clock = new ManualClock();
        const driver = new Driver(() => new PaperBroker(settings(10_000), { clock }), clock);
        await driver.start();
        try {
          for (const c of [...OPENING, ...commands]) {
            await driver.run(c);
            await driver.checkInvariants();
          }
        } finally {
          await driver.broker.close();
        }
      }),
      { numRuns: SEEDS || 300, seed: 5120 },
    );
    // What the runs exercised, so a property that passes by doing nothing is caught.
    assert.ok(
      tally.fills > 1000 &&
        tally.amos > 50 &&
        tally.squareOffs > 100 &&
        tally.expired > 30 &&
        tally.refused > 300,
      JSON.stringify(tally),
    );
  });

  // Money to the paisa after 10,000s of operations: fills, charges, square-offs and expiries.
  it("keeps the cash identity and every charge to the paisa over 10,000 operations in one account", async function () {
    const before = { ...tally };
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10_000, maxLength: 10_000 }), async (commands) => {
        tally.seeds++;
        const clock = new ManualClock();
        const driver = new Driver(() => new PaperBroker(settings(200), { clock }), clock);
        await driver.start();
        try {
          for (const c of [...OPENING, ...commands]) {
            await driver.run(c);
            await driver.checkInvariants();
          }
        } finally {
          await driver.broker.close();
        }
      }),
      { numRuns: Math.max(1, Math.floor(SEEDS / 100)), seed: 5122, endOnFailure: true },
    );
    const done = Object.fromEntries(
      Object.entries(tally).map(([k, v]) => [k, v - before[k as keyof typeof tally]]),
    );
    assert.ok(
      done.fills! > 1000 && done.squareOffs! > 50 && done.operations! >= 10_000,
      JSON.stringify(done),
    );
  });

  it("reopened anywhere, over boundaries and many times, with a small retention, it is its never-restarted twin", async function () {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10, maxLength: 60 }), async (commands) => {
        tally.seeds++;
        const file = path.join(dir, `twin-${run++}.jsonl`);
        const clock = new ManualClock();
        const journaled = new Driver(
          () => new PaperBroker(settings(10), { clock, journalFile: file, compactEvery: 5 }),
          clock,
        );
        const twin = new Driver(() => new PaperBroker(settings(10), { clock }), clock);
        await journaled.start();
        await twin.start();
        let sessionMissed = false;
        try {
          for (const c of [...OPENING, ...commands]) {
            if (c.kind === "reopen") {
              tally.reopens++;
              await journaled.broker.close();
              // The twin lives through the closed span; the journaled broker catches up on connect.
              // When a whole session passed meanwhile the twin traded in it (an AMO at its open) and
              // the closed broker could not: then only the rules are checked, not equality.
              const from = clock.now();
              clock.advance(c.closedFor);
              if (c.closedFor > 0 && lastClosedSession(clock.now()).open > from) sessionMissed = true;
              await twin.broker.flush();
              await journaled.reopen();
            } else {
              await journaled.run(c);
              await twin.run(c);
            }
            await journaled.checkInvariants();
            await twin.checkInvariants();
          }
          const [a, b] = [await journaled.state(), await twin.state()];
          let same = true;
          try {
            assert.deepEqual(a, b);
          } catch {
            same = false;
          }
          if (sessionMissed) tally.twinSkipped++;
          else
            rule(
              same,
              "reopen = never-restarted twin",
              () => `${JSON.stringify(a)}\n vs ${JSON.stringify(b)}`,
            );
        } finally {
          await journaled.broker.close();
          await twin.broker.close();
        }
      }),
      { numRuns: SEEDS || 60, seed: 5121 },
    );
    assert.ok(tally.reopens > 30, JSON.stringify(tally));
  });
});
