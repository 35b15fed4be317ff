// The NSE oracle fuzzer, widened (issue 12's gaps in paper-nse-oracle.property.spec): SL and SL-M
// orders (trigger, then act as LIMIT/MARKET; IOC stops try the quote that triggers them), GTTs
// (single and two-leg, firing on the last price, expiry a year on, modify and delete), a future and
// an option (lots of 65, the options charges on premium, Kite's margin: 15 % of value for a future,
// 15 % of strike × quantity for a written option), and modify of a resting order re-admitted
// (funds, CNC holdings, tick, band, trigger not through the market). Checked after every operation
// against test/support/nse-oracle.ts, written from README and docs/MARKET-RULES.md, not lib/paper.
// A second property replays a CSV over an account closed and reopened at random rows: each row is
// replayed once, in order, never an old price over the restored account.
// PAPER_FUZZ_SEEDS=N runs N seeds per property instead of the CI count; PAPER_FUZZ_SEED=S starts the
// first property from another seed; PAPER_FUZZ_SURVEY=1 counts every violation and goes on.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type {
  GttRequestInput,
  GttSnapshot,
  OrderEvent,
  OrderRequestInput,
  OrderSnapshot,
  Quote,
} from "../../lib/protocol";
import { canTransition } from "../../lib/protocol/state-machine";
import { isTerminal } from "../../lib/protocol/orders";
import {
  admission,
  currentOrNextSession,
  gttExpiry,
  gttLeg,
  isOpen,
  levelOf,
  marginPaise,
  misShut,
  orderCharges,
  stopPriceOk,
  stopReached,
  touchPaise,
  type ChargeCategory,
  type Session,
} from "../support/nse-oracle";

const SEEDS = Number(process.env.PAPER_FUZZ_SEEDS ?? 0);
const SURVEY = process.env.PAPER_FUZZ_SURVEY === "1";
const IGNORED = new Set((process.env.PAPER_FUZZ_IGNORE ?? "").split("|").filter((r) => r !== ""));

/** An equity (band ±10 %, lot 1), a future and a call option (lot 65, no band), per MARKET-RULES §3. */
const INSTRUMENTS = [
  { exchange: "NSE", symbol: "INFY", lot: 1, band: true, kind: "equity", base: 150_000 },
  { exchange: "NFO", symbol: "NIFTY26DECFUT", lot: 65, band: false, kind: "future", base: 2_600_000 },
  { exchange: "NFO", symbol: "NIFTY26DEC26000CE", lot: 65, band: false, kind: "option", base: 20_000 },
] as const;
const STRIKE_PAISE = 2_600_000;
const EXPIRY = "2026-12-29";
const START = 10_000_000;
const TOUCH = 100;
const MIN = 60_000;
const DAY = 24 * 60 * MIN;

type Side = "BUY" | "SELL";
type OrderType = "MARKET" | "LIMIT" | "SL" | "SL-M";

type Command =
  | { kind: "quote"; symbol: number; bps: number; spread: number; atTrigger: number | undefined }
  | {
      kind: "place";
      symbol: number;
      side: Side;
      lots: number;
      offLot: boolean;
      huge: boolean;
      type: OrderType;
      priceBps: number;
      triggerBps: number;
      offTick: number;
      mis: boolean;
      ioc: boolean;
      amo: boolean;
    }
  | {
      kind: "modify";
      pick: number;
      lots: number | undefined;
      huge: boolean;
      priceBps: number | undefined;
      triggerBps: number | undefined;
      offTick: number;
      ioc: boolean;
    }
  | { kind: "cancel"; pick: number }
  | {
      kind: "gtt";
      pick: number | undefined;
      symbol: number;
      two: boolean;
      lowBps: number;
      highBps: number;
      side: Side;
      lots: number;
      priceBps: number;
    }
  | { kind: "deleteGtt"; pick: number }
  | { kind: "advance"; ms: number }
  | { kind: "reopen"; closedFor: number };

// Mostly within a session, so stops and GTTs meet many quotes; now and then over a close or a weekend.
const ADVANCES = [1, MIN, MIN, 7 * MIN, 7 * MIN, 29 * MIN, 29 * MIN, 95 * MIN, 6 * 60 * MIN, DAY, 3 * DAY];

const gttFields = {
  symbol: fc.nat(2),
  two: fc.boolean(),
  lowBps: fc.integer({ min: -600, max: -1 }),
  highBps: fc.integer({ min: 1, max: 600 }),
  side: fc.constantFrom<Side>("BUY", "SELL"),
  lots: fc.integer({ min: 1, max: 4 }),
  priceBps: fc.integer({ min: -300, max: 300 }),
};

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({
      kind: fc.constant("quote" as const),
      symbol: fc.nat(2),
      bps: fc.integer({ min: -400, max: 400 }),
      spread: fc.nat(3),
      // Now and then the last price lands exactly on a live stop's or GTT's trigger: the boundary.
      atTrigger: fc.option(fc.nat(), { nil: undefined, freq: 3 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("place" as const),
      symbol: fc.nat(2),
      side: fc.constantFrom<Side>("BUY", "SELL"),
      lots: fc.integer({ min: 1, max: 8 }),
      offLot: fc.integer({ min: 0, max: 12 }).map((n) => n === 0),
      huge: fc.integer({ min: 0, max: 15 }).map((n) => n === 0),
      type: fc.constantFrom<OrderType>("MARKET", "LIMIT", "SL", "SL", "SL-M", "SL-M"),
      priceBps: fc.integer({ min: -300, max: 300 }),
      triggerBps: fc.integer({ min: -150, max: 150 }),
      offTick: fc.integer({ min: 0, max: 15 }),
      mis: fc.boolean(),
      ioc: fc.integer({ min: 0, max: 2 }).map((n) => n === 0),
      amo: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("modify" as const),
      pick: fc.nat(),
      lots: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
      huge: fc.integer({ min: 0, max: 8 }).map((n) => n === 0),
      priceBps: fc.option(fc.integer({ min: -300, max: 300 }), { nil: undefined }),
      triggerBps: fc.option(fc.integer({ min: -400, max: 400 }), { nil: undefined }),
      offTick: fc.integer({ min: 0, max: 15 }),
      // A modify that makes an order IOC: what does not fill at once is cancelled.
      ioc: fc.integer({ min: 0, max: 6 }).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("gtt" as const),
      pick: fc.option(fc.nat(), { nil: undefined, freq: 3 }),
      ...gttFields,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteGtt" as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        { weight: 30, arbitrary: fc.constantFrom(...ADVANCES) },
        // A year and a day: GTTs expire (and the contracts with them).
        { weight: 1, arbitrary: fc.constant(366 * DAY) },
      )
      .map((ms) => ({ kind: "advance" as const, ms })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(0, 0, 0, MIN, 95 * MIN, DAY, 366 * DAY)
      .map((closedFor) => ({ kind: "reopen" as const, closedFor })),
  },
);

const violations = new Map<string, number>();
const firstSeen = new Map<string, string>();
const tally = {
  seeds: 0,
  operations: 0,
  fills: 0,
  stopsPlaced: 0,
  stopsTriggered: 0,
  iocStopsTriggered: 0,
  stopsRefused: 0,
  gttsPlaced: 0,
  gttsFired: 0,
  gttsExpired: 0,
  gttsModified: 0,
  fundsRefusalsDue: 0,
  holdingsRefusalsDue: 0,
  modifies: 0,
  optionFills: 0,
  futureFills: 0,
  reopens: 0,
  csvRows: 0,
  marginAdmitsDue: 0,
  marginShorts: 0,
  csvReopens: 0,
};
class RuleBroken extends Error {}
const outcomes = new Map<string, number>();
function rule(ok: boolean, name: string, detail: () => string): void {
  if (ok || IGNORED.has(name)) return;
  violations.set(name, (violations.get(name) ?? 0) + 1);
  if (!firstSeen.has(name)) firstSeen.set(name, detail());
  if (!SURVEY) throw new RuleBroken(`${name}: ${detail()}`);
}

const paise = (rupees: number): number => Math.round(rupees * 100);
const onTick = (p: number): number => Math.max(5, Math.round(p / 5) * 5);
const scale = (p: number, bps: number): number => onTick((p * (10_000 + bps)) / 10_000);
const iso = (ms: number): string => new Date(ms).toISOString();

interface Window {
  quote: { bid: number; ask: number; last: number };
  taken: Record<Side, Map<number, number>>;
}

interface Known {
  session: Session;
  amo: boolean;
}

function instrumentOf(symbol: string): (typeof INSTRUMENTS)[number] {
  return INSTRUMENTS.find((i) => i.symbol === symbol)!;
}

function chargeCategory(o: { symbol: string; product: string }): ChargeCategory {
  const kind = instrumentOf(o.symbol).kind;
  return kind === "future"
    ? "futures"
    : kind === "option"
      ? "options"
      : o.product === "MIS"
        ? "intraday"
        : "delivery";
}

class Driver {
  readonly events: OrderEvent[] = [];
  readonly #windows = new Map<string, Window>();
  readonly #orders = new Map<string, Known>();
  readonly #turnover = new Map<string, { paise: number; side: Side; category: ChargeCategory; at: number }>();
  readonly #lastStatus = new Map<string, OrderSnapshot["status"]>();
  #expectedCharges = 0n;
  readonly #expiredSeen = new Set<string>();
  #broken: Error | undefined;
  broker: PaperBroker;

  constructor(
    readonly make: () => PaperBroker,
    readonly clock: ManualClock,
  ) {
    this.broker = this.#listen(make());
  }

  #listen(broker: PaperBroker): PaperBroker {
    broker.on("order", (event) => this.#guard(() => this.#checkEvent(event)));
    // GTT events share the account's seq with order events.
    broker.on("gtt", (event: { seq: number }) => this.#guard(() => this.#checkSeq(event.seq)));
    return broker;
  }

  #guard(check: () => void): void {
    try {
      check();
    } catch (error) {
      this.#broken ??= error instanceof Error ? error : new Error(String(error));
    }
  }

  #lastSeq: number | undefined;

  #checkSeq(seq: number): void {
    const previous = this.#lastSeq;
    rule(
      previous === undefined || seq === previous + 1,
      "seq without gaps",
      () => `${seq} after ${previous}`,
    );
    this.#lastSeq = seq;
  }

  #checkEvent(event: OrderEvent): void {
    if (process.env.PAPER_FUZZ_DEBUG === "1")
      console.log(
        `${event.order.timestamp} ${event.type} ${event.order.order_id} ${event.order.side} ${event.order.product} ${event.order.symbol} ${event.order.tag ?? ""} ${event.order.status} ${event.order.filled_quantity}/${event.order.quantity} ${event.order.status_message ?? ""}`,
      );
    this.#checkSeq(event.seq);
    this.events.push(event);
    const order = event.order;
    const before = this.#lastStatus.get(order.order_id);
    if (before !== undefined) {
      rule(
        !isTerminal(before),
        "one terminal event per order",
        () => `${order.order_id}: ${event.type} after ${before}`,
      );
      rule(
        canTransition(before, order.status),
        "legal transitions",
        () => `${order.order_id}: ${before} → ${order.status}`,
      );
    }
    this.#lastStatus.set(order.order_id, order.status);
    for (const trade of event.trades ?? []) {
      tally.fills++;
      const kind = instrumentOf(order.symbol).kind;
      if (kind === "option") tally.optionFills++;
      if (kind === "future") tally.futureFills++;
      const price = paise(trade.price);
      const at = Date.parse(trade.timestamp);
      const t = this.#turnover.get(order.order_id) ?? {
        paise: 0,
        side: order.side,
        category: chargeCategory(order),
        at,
      };
      this.#expectedCharges -= orderCharges(t.category, t.side, t.paise, t.at).total;
      t.paise += price * trade.quantity;
      this.#expectedCharges += orderCharges(t.category, t.side, t.paise, t.at).total;
      this.#turnover.set(order.order_id, t);
      const squareOff = order.tag === "SQUAREOFF";
      rule(
        squareOff || isOpen(at),
        "no fill outside the session",
        () => `${order.order_id} at ${trade.timestamp}`,
      );
      const window = this.#windows.get(order.symbol);
      if (window === undefined || squareOff) continue;
      const touch = touchPaise(order.side, window.quote);
      const level = levelOf(order.side, touch, price);
      rule(
        level !== undefined,
        "fills at the touch or its depth",
        () => `${order.order_id} ${order.order_type} at ${price}; touch ${touch}`,
      );
      if (order.order_type === "LIMIT" || order.order_type === "SL")
        rule(
          level === 0,
          "a LIMIT or triggered SL takes only the touch",
          () => `${order.order_id} ${order.order_type} at level ${level}`,
        );
      if (order.price !== undefined && (order.order_type === "LIMIT" || order.order_type === "SL"))
        rule(
          order.side === "BUY" ? price <= paise(order.price) : price >= paise(order.price),
          "fills at its limit or better",
          () => `${order.order_id} ${order.side} ${order.order_type} ${order.price} filled at ${price / 100}`,
        );
      const taken = window.taken[order.side];
      taken.set(level!, (taken.get(level!) ?? 0) + trade.quantity);
      rule(
        taken.get(level!)! <= TOUCH,
        "one quote's size at each level",
        () => `${order.symbol} ${order.side} level ${level}: ${taken.get(level!)}`,
      );
    }
  }

  async start(): Promise<void> {
    await this.broker.connect();
  }

  async reopen(): Promise<void> {
    this.broker = this.#listen(this.make());
    await this.broker.connect();
    await this.broker.flush();
  }

  #last(symbol: string): number | undefined {
    const w = this.#windows.get(symbol);
    return w === undefined ? undefined : paise(w.quote.last);
  }

  /** A generous ceiling on what may be spent: cash plus every long's cost (the most margin can lend back). */
  async #spendableCeiling(): Promise<number> {
    const account = await this.broker.getAccount();
    let ceiling = paise(account.cash);
    for (const p of await this.broker.getPositions())
      ceiling += Math.abs(Math.round(p.quantity * p.average_price * 100));
    return ceiling;
  }

  /** CNC quantity of a symbol held and not already being sold by other live CNC SELL orders. */
  async #sellable(symbol: string, except?: string): Promise<number> {
    const held =
      (await this.broker.getPositions()).find((p) => p.symbol === symbol && p.product === "CNC")?.quantity ??
      0;
    let selling = 0;
    for (const o of await this.broker.getOrderbook())
      if (
        o.symbol === symbol &&
        o.product === "CNC" &&
        o.side === "SELL" &&
        !isTerminal(o.status) &&
        o.order_id !== except
      )
        selling += o.quantity - o.filled_quantity;
    return held - selling;
  }

  async #position(symbol: string, product: string): Promise<number> {
    return (
      (await this.broker.getPositions()).find((p) => p.symbol === symbol && p.product === product)
        ?.quantity ?? 0
    );
  }

  /** The least margin the order can block: its opening part, valued at half its price (bid/ask aside). */
  async #marginFloor(o: {
    symbol: string;
    side: Side;
    product: "CNC" | "MIS" | "NRML";
    quantity: number;
    pricePaise: number;
  }): Promise<number> {
    const position = await this.#position(o.symbol, o.product);
    const opening =
      o.side === "BUY" ? o.quantity - Math.max(0, -position) : o.quantity - Math.max(0, position);
    return marginPaise({
      kind: instrumentOf(o.symbol).kind,
      product: o.product,
      side: o.side,
      openingQuantity: Math.max(0, opening),
      pricePaise: Math.floor(o.pricePaise / 2),
      strikePaise: STRIKE_PAISE,
    });
  }

  async run(c: Command): Promise<void> {
    tally.operations++;
    if (process.env.PAPER_FUZZ_DEBUG === "1") console.log(`@${iso(this.clock.now())} ${JSON.stringify(c)}`);
    const now = this.clock.now();
    switch (c.kind) {
      case "quote":
        return this.#quote(c, now);
      case "place":
        return this.#place(c, now);
      case "modify":
        return this.#modify(c, now);
      case "cancel": {
        const live = (await this.broker.getOrderbook()).filter((o) => !isTerminal(o.status));
        const order = live[c.pick % Math.max(1, live.length)];
        if (order !== undefined) await this.broker.cancelOrder(order.order_id);
        return;
      }
      case "gtt":
        return this.#gtt(c, now);
      case "deleteGtt": {
        const active = (await this.broker.getGtts()).filter((g) => g.status === "active");
        const g = active[c.pick % Math.max(1, active.length)];
        if (g === undefined) return;
        const after = await this.broker.deleteGtt(g.gtt_id);
        rule(
          after.status !== "active",
          "a deleted GTT is no longer active",
          () => `${g.gtt_id} ${after.status}`,
        );
        return;
      }
      case "advance":
        this.clock.advance(c.ms);
        await this.broker.flush();
        return;
      case "reopen": {
        tally.reopens++;
        const before = await this.state();
        await this.broker.close();
        // Closed over a span: the broker catches up when it connects; only the rules are checked.
        if (c.closedFor > 0) {
          this.clock.advance(c.closedFor);
          await this.reopen();
          return;
        }
        await this.reopen();
        const after = await this.state();
        let same = true;
        try {
          assert.deepEqual(after, before);
        } catch {
          same = false;
        }
        rule(
          same,
          "reopen gives back exactly the state before",
          () => `${JSON.stringify(before)}\n vs ${JSON.stringify(after)}`,
        );
        return;
      }
    }
  }

  async #quote(c: Extract<Command, { kind: "quote" }>, now: number): Promise<void> {
    const instrument = INSTRUMENTS[c.symbol]!;
    let last = Math.max(500, scale(this.#last(instrument.symbol) ?? instrument.base, c.bps));
    if (c.atTrigger !== undefined) {
      const triggers = [
        ...(await this.broker.getOrderbook())
          .filter((o) => o.symbol === instrument.symbol && o.status === "TRIGGER_PENDING")
          .map((o) => paise(o.trigger_price!)),
        ...(await this.broker.getGtts())
          .filter((g) => g.symbol === instrument.symbol && g.status === "active")
          .flatMap((g) => g.trigger_values.map(paise)),
      ];
      if (triggers.length > 0) last = triggers[c.atTrigger % triggers.length]!;
    }
    const quote = { last: last / 100, bid: (last - c.spread * 5) / 100, ask: (last + c.spread * 5) / 100 };
    const book = (await this.broker.getOrderbook()).filter((o) => o.symbol === instrument.symbol);
    const gtts = (await this.broker.getGtts()).filter(
      (g) => g.symbol === instrument.symbol && g.status === "active",
    );
    this.#windows.set(instrument.symbol, { quote, taken: { BUY: new Map(), SELL: new Map() } });
    this.broker.setPrice(`${instrument.exchange}:${instrument.symbol}`, quote.last, {
      bid: quote.bid,
      ask: quote.ask,
    });
    await this.broker.flush();
    const open = isOpen(now);
    const after = new Map((await this.broker.getOrderbook()).map((o) => [o.order_id, o]));
    const window = this.#windows.get(instrument.symbol)!;
    for (const o of book) {
      if (o.status !== "TRIGGER_PENDING") continue;
      const later = after.get(o.order_id);
      if (later === undefined || later.status === "CANCELLED" || later.status === "EXPIRED") {
        // Ended by something else than the quote (the clock, a square-off) unless it triggered.
        if (later === undefined || !open) continue;
      }
      const known = this.#orders.get(o.order_id);
      const held = known?.amo === true && now < known.session.open;
      const reached = stopReached(o.side, paise(o.trigger_price!), last);
      const what = () =>
        `${o.order_id} ${o.side} ${o.order_type} ${o.validity} trigger ${o.trigger_price} price ${o.price}, last ${quote.last} at ${iso(now)}: ${later.status} filled ${later.filled_quantity}`;
      if (!open || held) {
        rule(later.filled_quantity === o.filled_quantity, "a stop fills nothing outside the session", what);
        continue;
      }
      if (!reached) {
        rule(
          later.status === "TRIGGER_PENDING" && later.filled_quantity === 0,
          "a stop waits for its trigger",
          what,
        );
        continue;
      }
      tally.stopsTriggered++;
      rule(later.status !== "TRIGGER_PENDING", "a stop triggers when the last price reaches it", what);
      if (o.validity === "IOC") {
        tally.iocStopsTriggered++;
        rule(isTerminal(later.status), "IOC never rests: a triggered IOC stop ends at its quote", what);
      }
      // Triggered, it acts as its MARKET or LIMIT order at this quote: with the touch satisfying it
      // and size left there after the quote, it must have taken some.
      const touch = touchPaise(o.side, window.quote);
      const satisfied =
        o.order_type === "SL-M" || (o.side === "BUY" ? paise(o.price!) >= touch : paise(o.price!) <= touch);
      const left = TOUCH - (window.taken[o.side].get(0) ?? 0);
      if (satisfied && left > 0 && later.status !== "REJECTED")
        rule(
          // README: a fill that opens a position takes only what may be spent pays for, and the
          // rest is cancelled for funds (an opening stop whose margin grew with the price).
          later.filled_quantity > 0 ||
            (later.status === "CANCELLED" && /^insufficient funds: /.test(later.status_message ?? "")),
          "a triggered stop tries to fill at its quote",
          () => `${what()}; touch ${touch / 100} with ${left} left`,
        );
    }
    for (const g of gtts) {
      const later = (await this.broker.getGtts()).find((x) => x.gtt_id === g.gtt_id);
      if (later === undefined) continue;
      const leg = gttLeg(
        { type: g.type, startPaise: paise(g.last_price!), triggersPaise: g.trigger_values.map(paise) },
        last,
      );
      const what = () =>
        `${g.gtt_id} ${g.type} from ${g.last_price} triggers ${g.trigger_values.join("/")} at last ${quote.last} ${iso(now)}: ${later.status} leg ${later.triggered_leg}`;
      if (leg === null || later.status === "expired") continue;
      if (!open || leg === undefined) {
        rule(
          later.status === "active",
          open ? "a GTT fires only at its trigger" : "no GTT fires outside the session",
          what,
        );
        continue;
      }
      tally.gttsFired++;
      rule(
        later.status === "triggered" || later.status === "rejected",
        "a GTT fires when the last price reaches it",
        what,
      );
      if (later.status !== "triggered") continue;
      rule(later.triggered_leg === leg, "a GTT fires the leg the price reached", what);
      const placed = later.order_ids.map((id) => after.get(id));
      const spec = g.orders[leg]!;
      rule(
        placed.length === 1 &&
          placed[0] !== undefined &&
          placed[0].gtt_id === g.gtt_id &&
          placed[0].order_type === "LIMIT" &&
          placed[0].side === spec.side &&
          placed[0].quantity === spec.quantity &&
          placed[0].price === spec.price,
        "a fired GTT places its leg's LIMIT order",
        () => `${what()}: ${JSON.stringify(placed)}`,
      );
    }
  }

  #admission(
    o: {
      symbol: string;
      side: Side;
      quantity: number;
      type: OrderType;
      pricePaise?: number;
      triggerPaise?: number;
      product: "CNC" | "MIS" | "NRML";
      amo: boolean;
    },
    now: number,
  ) {
    const instrument = instrumentOf(o.symbol);
    return admission(
      {
        symbol: o.symbol,
        known: true,
        side: o.side,
        quantity: o.quantity,
        lot: instrument.lot,
        order_type: o.type,
        ...(o.pricePaise === undefined ? {} : { pricePaise: o.pricePaise }),
        ...(o.triggerPaise === undefined ? {} : { triggerPaise: o.triggerPaise }),
        product: o.product,
        amo: o.amo,
        referencePaise: instrument.band ? this.#last(o.symbol) : undefined,
        segment: instrument.kind === "equity" ? "equity" : "derivatives",
        ...(instrument.kind === "equity" ? {} : { expiry: EXPIRY }),
      },
      now,
    );
  }

  async #place(c: Extract<Command, { kind: "place" }>, now: number): Promise<void> {
    const instrument = INSTRUMENTS[c.symbol]!;
    const last = this.#last(instrument.symbol) ?? instrument.base;
    const quantity = (c.huge ? 1000 : c.lots) * instrument.lot + (c.offLot && instrument.lot > 1 ? 7 : 0);
    const product = c.mis ? "MIS" : instrument.kind === "equity" ? "CNC" : "NRML";
    const stop = c.type === "SL" || c.type === "SL-M";
    let triggerPaise: number | undefined;
    let pricePaise: number | undefined;
    if (stop) {
      // Mostly on the waiting side of the market: a BUY stop above the last price, a SELL below.
      const away = Math.abs(c.triggerBps) * (c.triggerBps % 5 === 0 ? -1 : 1);
      triggerPaise = scale(last, c.side === "BUY" ? away : -away);
      if (c.offTick === 1) triggerPaise += 2;
    }
    if (c.type === "LIMIT") pricePaise = scale(last, c.priceBps);
    if (c.type === "SL") {
      // Mostly on the right side of the trigger; a negative priceBps below −250 crosses it.
      const off = c.priceBps < -250 ? -60 : Math.abs(c.priceBps) % 150;
      pricePaise = scale(triggerPaise!, c.side === "BUY" ? off : -off);
    }
    if (pricePaise !== undefined && c.offTick === 2) pricePaise += 3;
    const request: OrderRequestInput = {
      symbol: instrument.symbol,
      exchange: instrument.exchange,
      side: c.side,
      quantity,
      order_type: c.type,
      product,
      validity: c.ioc ? "IOC" : "DAY",
      ...(pricePaise === undefined ? {} : { price: pricePaise / 100 }),
      ...(triggerPaise === undefined ? {} : { trigger_price: triggerPaise / 100 }),
      ...(c.amo ? { variety: "amo" as const } : {}),
    };
    if (stop) tally.stopsPlaced++;
    const expected = this.#admission(
      {
        symbol: instrument.symbol,
        side: c.side,
        quantity,
        type: c.type,
        ...(pricePaise === undefined ? {} : { pricePaise }),
        ...(triggerPaise === undefined ? {} : { triggerPaise }),
        product,
        amo: c.amo,
      },
      now,
    );
    const wrongSide = c.type === "SL" && !stopPriceOk(c.side, pricePaise!, triggerPaise!);
    // Held as an AMO or not, a stop the last price has already reached (README: at its trigger
    // included, as Kite wants a SELL stop's trigger below the last price) is refused.
    const passed = stop && stopReached(c.side, triggerPaise!, last);
    const marginFloor = await this.#marginFloor({
      symbol: instrument.symbol,
      side: c.side,
      product,
      quantity,
      pricePaise: pricePaise ?? triggerPaise ?? last,
    });
    const ceiling = await this.#spendableCeiling();
    const sellable =
      product === "CNC" && c.side === "SELL" ? await this.#sellable(instrument.symbol) : Infinity;
    let order: OrderSnapshot | undefined;
    let error: { code?: string; message: string } | undefined;
    try {
      order = await this.broker.placeOrder(request);
    } catch (e) {
      error = e as { code?: string; message: string };
    }
    const refused = order === undefined || order.status === "REJECTED";
    const message = order?.status_message ?? error?.message ?? "";
    if (process.env.PAPER_FUZZ_DEBUG === "1") {
      const k = `${c.type} ${order?.status ?? error?.code} ${message.replace(/[0-9.:-]+/g, "#").slice(0, 50)}`;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
    const what = () =>
      `${JSON.stringify(request)} last ${last / 100} at ${iso(now)}: ${order?.status} ${error?.code ?? ""} "${message}"`;
    if (wrongSide) {
      tally.stopsRefused++;
      rule(
        refused && /trigger/.test(message),
        "an SL's price on the wrong side of its trigger is refused",
        what,
      );
      return;
    }
    if (expected.kind === "refused") {
      rule(refused, `refused: ${expected.field}`, what);
      rule(expected.rule.test(message), `refusal names the rule: ${expected.field}`, what);
      return;
    }
    if (passed) {
      tally.stopsRefused++;
      rule(refused && /trigger/.test(message), "a stop whose trigger the market passed is refused", what);
      return;
    }
    if (marginFloor > ceiling) {
      tally.fundsRefusalsDue++;
      rule(
        refused,
        "an order beyond the funds is refused (place)",
        () => `${what()}; margin ≥ ${marginFloor / 100}, spendable ≤ ${ceiling / 100}`,
      );
    }
    if (quantity > sellable) {
      tally.holdingsRefusalsDue++;
      rule(
        refused && /holdings/.test(message),
        "a CNC SELL beyond holdings is refused (place)",
        () => `${what()}; sellable ${sellable}`,
      );
    }
    if (order === undefined) {
      rule(false, "an admissible order is placed", what);
      return;
    }
    if (refused) {
      rule(
        /funds|margin|short|held|holdings|cash|trigger/i.test(message),
        `admitted: ${expected.kind}`,
        what,
      );
      return;
    }
    if (stop && expected.kind === "open" && !stopReached(c.side, triggerPaise!, last))
      rule(order.status === "TRIGGER_PENDING", "a stop waits TRIGGER_PENDING", what);
    this.#orders.set(order.order_id, {
      amo: expected.kind === "amo",
      session: expected.kind === "amo" ? expected.session : currentOrNextSession(now),
    });
  }

  async #modify(c: Extract<Command, { kind: "modify" }>, now: number): Promise<void> {
    const live = (await this.broker.getOrderbook()).filter(
      (o) => !isTerminal(o.status) && o.tag !== "SQUAREOFF",
    );
    const order = live[c.pick % Math.max(1, live.length)];
    if (order === undefined) return;
    const instrument = instrumentOf(order.symbol);
    const last = this.#last(order.symbol) ?? instrument.base;
    const changes: Record<string, unknown> = {};
    let quantity = order.quantity;
    if (c.lots !== undefined) {
      quantity = (c.huge ? 1000 : c.lots) * instrument.lot + (c.offTick === 3 && instrument.lot > 1 ? 7 : 0);
      changes.quantity = quantity;
    }
    let pricePaise = order.price === undefined ? undefined : paise(order.price);
    let triggerPaise = order.trigger_price === undefined ? undefined : paise(order.trigger_price);
    if (c.priceBps !== undefined && pricePaise !== undefined) {
      pricePaise = scale(pricePaise, c.priceBps);
      if (c.offTick === 2) pricePaise += 3;
      changes.price = pricePaise / 100;
    }
    if (c.triggerBps !== undefined && triggerPaise !== undefined && order.status === "TRIGGER_PENDING") {
      triggerPaise = scale(triggerPaise, c.triggerBps);
      if (c.offTick === 1) triggerPaise += 2;
      changes.trigger_price = triggerPaise / 100;
    }
    if (c.ioc && order.validity !== "IOC") changes.validity = "IOC";
    if (Object.keys(changes).length === 0) return;
    tally.modifies++;
    const type = order.order_type;
    const expected = this.#admission(
      {
        symbol: order.symbol,
        side: order.side,
        quantity,
        type,
        ...(pricePaise === undefined ? {} : { pricePaise }),
        ...(triggerPaise === undefined ? {} : { triggerPaise }),
        product: order.product,
        amo: order.variety === "amo",
      },
      now,
    );
    const wrongSide = type === "SL" && !stopPriceOk(order.side, pricePaise!, triggerPaise!);
    const throughMarket = changes.trigger_price !== undefined && stopReached(order.side, triggerPaise!, last);
    const growth = quantity - order.quantity;
    const priceFor = pricePaise ?? triggerPaise ?? last;
    const marginFloor =
      growth > 0
        ? await this.#marginFloor({
            symbol: order.symbol,
            side: order.side,
            product: order.product,
            quantity: growth,
            pricePaise: priceFor,
          })
        : 0;
    const ceiling = await this.#spendableCeiling();
    const sellable =
      order.product === "CNC" && order.side === "SELL"
        ? await this.#sellable(order.symbol, order.order_id)
        : Infinity;
    const before = await this.state();
    const eventsBefore = this.events.length;
    let error: { code?: string; message: string } | undefined;
    try {
      await this.broker.modifyOrder(order.order_id, changes);
    } catch (e) {
      error = e as { code?: string; message: string };
    }
    const what = () =>
      `modify ${order.order_id} ${order.side} ${order.order_type} ${order.product} ${order.status} q ${order.quantity}/${order.filled_quantity} p ${order.price} t ${order.trigger_price} by ${JSON.stringify(changes)}, last ${last / 100} at ${iso(now)}: ${error?.code ?? "made"} ${error?.message ?? ""}`;
    if (error !== undefined) {
      let same = this.events.length === eventsBefore;
      try {
        assert.deepEqual(await this.state(), before);
      } catch {
        same = false;
      }
      rule(same, "a refused modify changes nothing", what);
    }
    if (quantity <= order.filled_quantity) return;
    if (wrongSide) {
      rule(
        error !== undefined && /trigger/.test(error.message),
        "an SL's price on the wrong side of its trigger is refused (modify)",
        what,
      );
      return;
    }
    if (expected.kind === "refused") {
      rule(error?.code === expected.code, `modify refused: ${expected.field}`, what);
      rule(
        expected.rule.test(error?.message ?? ""),
        `modify refusal names the rule: ${expected.field}`,
        what,
      );
      return;
    }
    if (throughMarket) {
      rule(
        error !== undefined && /trigger/.test(error.message),
        "a modify may not move a trigger through the market",
        what,
      );
      return;
    }
    if (marginFloor > ceiling && order.filled_quantity < quantity) {
      tally.fundsRefusalsDue++;
      rule(
        error !== undefined,
        "an order beyond the funds is refused (modify)",
        () => `${what()}; margin of the growth ≥ ${marginFloor / 100}, spendable ≤ ${ceiling / 100}`,
      );
    }
    if (quantity - order.filled_quantity > sellable) {
      tally.holdingsRefusalsDue++;
      rule(
        error !== undefined && /holdings/.test(error.message),
        "a CNC SELL beyond holdings is refused (modify)",
        () => `${what()}; sellable ${sellable}`,
      );
    }
  }

  async #gtt(c: Extract<Command, { kind: "gtt" }>, now: number): Promise<void> {
    const instrument = INSTRUMENTS[c.symbol]!;
    const last = this.#last(instrument.symbol) ?? instrument.base;
    const low = scale(last, c.lowBps);
    const high = scale(last, c.highBps);
    const quantity = c.lots * instrument.lot;
    const product: "CNC" | "NRML" = instrument.kind === "equity" ? "CNC" : "NRML";
    const leg = (bps: number) => ({
      side: c.side,
      quantity,
      price: scale(last, bps + c.priceBps) / 100,
      product,
    });
    const request: GttRequestInput = c.two
      ? {
          type: "two-leg",
          symbol: instrument.symbol,
          exchange: instrument.exchange,
          last_price: last / 100,
          trigger_values: [low / 100, high / 100],
          orders: [leg(c.lowBps), leg(c.highBps)],
        }
      : {
          type: "single",
          symbol: instrument.symbol,
          exchange: instrument.exchange,
          last_price: last / 100,
          trigger_values: [(c.lowBps % 2 === 0 ? low : high) / 100],
          orders: [leg(c.lowBps % 2 === 0 ? c.lowBps : c.highBps)],
        };
    if (c.pick === undefined) {
      try {
        const g = await this.broker.placeGtt(request);
        tally.gttsPlaced++;
        rule(g.status === "active", "a placed GTT is active", () => `${JSON.stringify(g)}`);
      } catch {
        // A GTT the broker refuses (an expired contract) is no GTT: nothing to check.
      }
      return;
    }
    const active = (await this.broker.getGtts()).filter((g) => g.status === "active");
    const target = active[c.pick % Math.max(1, active.length)];
    if (target === undefined) return;
    const others = (await this.broker.getGtts()).filter((g) => g.gtt_id !== target.gtt_id);
    let error: Error | undefined;
    let after: GttSnapshot | undefined;
    try {
      after = await this.broker.modifyGtt(target.gtt_id, {
        ...request,
        symbol: target.symbol,
        exchange: target.exchange,
      });
      tally.gttsModified++;
    } catch (e) {
      error = e as Error;
    }
    const now2 = (await this.broker.getGtts()).find((g) => g.gtt_id === target.gtt_id);
    const what = () =>
      `modifyGtt ${target.gtt_id} ${JSON.stringify(request)} at ${iso(now)}: ${error?.message ?? ""} ${JSON.stringify(now2)}`;
    if (error !== undefined)
      rule(JSON.stringify(now2) === JSON.stringify(target), "a refused GTT modify leaves it as it was", what);
    else
      rule(
        after !== undefined &&
          JSON.stringify(after.trigger_values) === JSON.stringify(request.trigger_values) &&
          after.type === request.type &&
          after.orders.every(
            (o, i) => o.price === request.orders[i]!.price && o.quantity === request.orders[i]!.quantity,
          ),
        "a modified GTT is the new request",
        what,
      );
    rule(
      JSON.stringify((await this.broker.getGtts()).filter((g) => g.gtt_id !== target.gtt_id)) ===
        JSON.stringify(others),
      "a GTT modify touches no other GTT",
      what,
    );
  }

  /** What may be spent, and the positions, at the last invariant check (paise; symbol:product → quantity). */
  #lastAvailable = START * 100;
  readonly #lastPositions = new Map<string, number>();

  async checkInvariants(): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    const now = this.clock.now();
    const [account, positions, book, gtts] = [
      await this.broker.getAccount(),
      await this.broker.getPositions(),
      await this.broker.getOrderbook(),
      await this.broker.getGtts(),
    ];
    let held = 0;
    let realized = 0;
    let charges = 0;
    for (const p of positions) {
      held += Math.round(p.quantity * p.average_price * 100);
      realized += paise(p.realized_pnl);
      charges += paise(p.charges ?? 0);
      rule(p.product !== "CNC" || p.quantity >= 0, "CNC never short", () => `${p.symbol} ${p.quantity}`);
      if (p.product === "MIS")
        rule(
          !misShut(now) || p.quantity === 0,
          "MIS flat from 15:20 to the open",
          () => `${p.symbol} ${p.quantity} at ${iso(now)}`,
        );
    }
    // README: what may be spent never goes below zero through a fill that opens or grows a
    // position (the rest of such an order is cancelled for funds); only a loss a closing order
    // realizes may take it there, as at Kite.
    const available = account.available === undefined ? undefined : paise(account.available);
    rule(available !== undefined, "the account shows what may be spent", () => JSON.stringify(account));
    const grew = positions.filter((p) => {
      const before = this.#lastPositions.get(`${p.symbol}:${p.product}`) ?? 0;
      return Math.abs(p.quantity) > Math.abs(before) || Math.sign(p.quantity) * Math.sign(before) < 0;
    });
    if (available !== undefined && grew.length > 0)
      rule(
        available >= 0 || available >= this.#lastAvailable,
        "spendable ≥ 0 after a fill that opens or grows a position",
        () =>
          `available ${available / 100} (before ${this.#lastAvailable / 100}) after ${grew.map((p) => `${p.symbol} ${p.product} ${p.quantity}`).join(", ")} at ${iso(now)}`,
      );
    if (available !== undefined) this.#lastAvailable = available;
    this.#lastPositions.clear();
    for (const p of positions) this.#lastPositions.set(`${p.symbol}:${p.product}`, p.quantity);
    rule(
      paise(account.cash) + held - realized + charges === START * 100,
      "starting cash = cash + Σ qty×avg − Σ realized + Σ charges",
      () => `cash ${account.cash} held ${held} realized ${realized} charges ${charges}`,
    );
    rule(
      BigInt(charges) === this.#expectedCharges,
      "charges per Zerodha's schedule, per order",
      () => `positions ${charges}, schedule ${this.#expectedCharges}`,
    );
    for (const o of book) {
      if (isTerminal(o.status)) continue;
      const known = this.#orders.get(o.order_id);
      rule(
        o.validity !== "IOC" || o.status === "TRIGGER_PENDING" || known?.amo === true,
        "IOC never rests",
        () => `${o.order_id} ${o.order_type} ${o.status} filled ${o.filled_quantity}/${o.quantity}`,
      );
      if (known !== undefined && o.validity === "DAY")
        rule(
          now < known.session.close,
          "DAY orders end at their session's close",
          () => `${o.order_id} ${o.status} at ${iso(now)}`,
        );
    }
    for (const g of gtts) {
      const expiry = gttExpiry(Date.parse(g.created_at));
      if (g.status === "active")
        rule(
          now < expiry,
          "a GTT expires a year after it was created",
          () => `${g.gtt_id} created ${g.created_at} active at ${iso(now)}`,
        );
      if (g.status === "expired") {
        if (!this.#expiredSeen.has(g.gtt_id)) tally.gttsExpired++;
        this.#expiredSeen.add(g.gtt_id);
        rule(
          now >= expiry,
          "a GTT does not expire before its year",
          () => `${g.gtt_id} created ${g.created_at} expired at ${iso(now)}`,
        );
      }
    }
  }

  async state(): Promise<unknown> {
    return {
      account: await this.broker.getAccount(),
      positions: await this.broker.getPositions(),
      orders: (await this.broker.getOrderbook()).map(({ timestamp: _t, ...o }) => o),
      gtts: await this.broker.getGtts(),
      seq: this.broker.lastSeq,
    };
  }
}

const OPENING: Command[] = [
  { kind: "quote", symbol: 0, bps: 0, spread: 1, atTrigger: undefined },
  { kind: "quote", symbol: 1, bps: 0, spread: 2, atTrigger: undefined },
  { kind: "quote", symbol: 2, bps: 0, spread: 1, atTrigger: undefined },
];

describe("paper broker under NSE's rules, widened: stops, GTTs, F&O, modify admission, CSV resume", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "nse-wide-"));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (violations.size > 0 || process.env.PAPER_FUZZ_SEEDS !== undefined)
      console.log(
        `nse oracle (wide): ${JSON.stringify(
          [...outcomes].sort((a, b) => b[1] - a[1]),
          null,
          0,
        )} ${JSON.stringify(tally)} violations ${JSON.stringify([...violations])} first ${JSON.stringify([...firstSeen], null, 1)}`,
      );
  });

  function emptyCsv(): string {
    const file = path.join(dir, "none.csv");
    fs.writeFileSync(file, "timestamp,symbol,price\n2026-01-05T03:45:00Z,TCS,3000\n");
    return file;
  }

  it("keeps the stop, GTT, F&O, margin and modify rules through sessions and reopens", async function () {
    let run = 0;
    await fc.assert(
      // PAPER_FUZZ_CASE=file.json replays one command list (a shrunk counterexample) as it is.
      fc.asyncProperty(
        process.env.PAPER_FUZZ_CASE === undefined
          ? fc.array(command, { minLength: 30, maxLength: 100 })
          : fc.constant(JSON.parse(fs.readFileSync(process.env.PAPER_FUZZ_CASE, "utf8")) as Command[]),
        async (commands) => {
          tally.seeds++;
          const file = path.join(dir, `wide-${run++}.jsonl`);
          const clock = new ManualClock();
          const settings: PaperSettingsInput = {
            starting_cash: START,
            quote_source: "csv",
            csv_file: emptyCsv(),
            replay_loop: false,
            slippage_bps: 0,
            market: "nse",
          };
          const driver = new Driver(
            () => new PaperBroker(settings, { clock, journalFile: file, compactEvery: 7 }),
            clock,
          );
          await driver.start();
          try {
            for (const c of [...OPENING, ...commands]) {
              await driver.run(c);
              await driver.checkInvariants();
            }
          } finally {
            await driver.broker.close();
            fs.rmSync(file, { force: true });
          }
        },
      ),
      { numRuns: SEEDS || 400, seed: Number(process.env.PAPER_FUZZ_SEED ?? 5130) },
    );
    // What the runs exercised, so a property that passes by doing nothing is caught.
    if (process.env.PAPER_FUZZ_CASE === undefined)
      assert.ok(
        tally.stopsTriggered > 100 &&
          tally.iocStopsTriggered > 20 &&
          tally.gttsFired > 50 &&
          tally.optionFills > 100 &&
          tally.futureFills > 100 &&
          tally.fundsRefusalsDue > 20 &&
          tally.reopens > 50,
        JSON.stringify(tally),
      );
  });

  // Kite's margin at the boundary: in a fresh account (after at most one filled opening order of
  // another instrument), an order blocking at most 97 % of what is left is admitted, one blocking
  // more than all of it is refused. What is left: starting cash − the first order's margin (a
  // short's proceeds are not spendable) − its charges (under 0.3 % of the account).
  it("admits by Kite's margin: futures 15 %, written options 15 % of strike, MIS ÷ 5, short proceeds aside", async function () {
    const side = fc.constantFrom<Side>("BUY", "SELL");
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.record({ symbol: fc.nat(2), side, mis: fc.boolean() }), { nil: undefined }),
        fc.record({
          symbol: fc.nat(2),
          side,
          mis: fc.boolean(),
          limit: fc.boolean(),
          ratio: fc.integer({ min: 50, max: 150 }),
        }),
        async (first, second) => {
          tally.seeds++;
          if (first !== undefined && first.symbol === second.symbol) return;
          const clock = new ManualClock();
          const broker = new PaperBroker(
            {
              starting_cash: START,
              quote_source: "csv",
              csv_file: emptyCsv(),
              replay_loop: false,
              slippage_bps: 0,
              market: "nse",
            },
            { clock },
          );
          await broker.connect();
          try {
            for (const i of INSTRUMENTS) {
              const last = i.base;
              broker.setPrice(`${i.exchange}:${i.symbol}`, last / 100, {
                bid: (last - 5) / 100,
                ask: (last + 5) / 100,
              });
            }
            await broker.flush();
            const productOf = (symbol: number, mis: boolean, side: Side): "CNC" | "MIS" | "NRML" =>
              mis || (INSTRUMENTS[symbol]!.kind === "equity" && side === "SELL")
                ? "MIS"
                : INSTRUMENTS[symbol]!.kind === "equity"
                  ? "CNC"
                  : "NRML";
            const touch = (symbol: number, side: Side) =>
              INSTRUMENTS[symbol]!.base + (side === "BUY" ? 5 : -5);
            const margin = (
              symbol: number,
              side: Side,
              product: "CNC" | "MIS" | "NRML",
              quantity: number,
              pricePaise: number,
            ) =>
              marginPaise({
                kind: INSTRUMENTS[symbol]!.kind,
                product,
                side,
                openingQuantity: quantity,
                pricePaise,
                strikePaise: STRIKE_PAISE,
              });
            let left = START * 100;
            if (first !== undefined) {
              const i = INSTRUMENTS[first.symbol]!;
              const product = productOf(first.symbol, first.mis, first.side);
              const quantity = i.lot === 1 ? 100 : i.lot;
              const o = await broker.placeOrder({
                symbol: i.symbol,
                exchange: i.exchange,
                side: first.side,
                quantity,
                order_type: "MARKET",
                product,
              });
              if (o.status !== "FILLED") return;
              left -= margin(first.symbol, first.side, product, quantity, touch(first.symbol, first.side));
              left -= Math.round((await broker.getAccount()).charges! * 100);
              tally.marginShorts += first.side === "SELL" ? 1 : 0;
            }
            const i = INSTRUMENTS[second.symbol]!;
            const product = productOf(second.symbol, second.mis, second.side);
            const price = second.limit
              ? scale(i.base, second.side === "BUY" ? -100 : 100)
              : touch(second.symbol, second.side);
            const perLot = margin(second.symbol, second.side, product, i.lot, price);
            const lots = Math.max(1, Math.round((left * second.ratio) / 100 / perLot));
            const need = perLot * lots;
            const request: OrderRequestInput = {
              symbol: i.symbol,
              exchange: i.exchange,
              side: second.side,
              quantity: lots * i.lot,
              order_type: second.limit ? "LIMIT" : "MARKET",
              ...(second.limit ? { price: price / 100 } : {}),
              product,
            };
            const o = await broker.placeOrder(request);
            const what = () =>
              `${first === undefined ? "" : `after ${JSON.stringify(first)}, `}${JSON.stringify(request)} blocks ${need / 100} of ${left / 100} left: ${o.status} ${o.status_message ?? ""}`;
            const refusedForFunds = o.status === "REJECTED" && /funds|margin/i.test(o.status_message ?? "");
            if (need <= (left * 97) / 100) {
              tally.marginAdmitsDue++;
              rule(!refusedForFunds, "an order within the margin left is admitted", what);
            } else if (need > left) {
              tally.fundsRefusalsDue++;
              rule(refusedForFunds, "an order beyond the margin left is refused", what);
            }
          } finally {
            await broker.close();
          }
        },
      ),
      { numRuns: SEEDS || 300, seed: 5132 },
    );
    assert.ok(tally.marginAdmitsDue > 30 && tally.marginShorts > 10, JSON.stringify(tally));
  });

  it("a CSV replay closed and reopened at random rows replays each row once, in order, over the restored account", async function () {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 5, max: 60 }),
        // −1 closes and reopens at once, −2 closes for 3 s (rows fall due meanwhile).
        fc.array(fc.oneof(fc.constantFrom(-1, -2), fc.integer({ min: 1, max: 5_000 })), {
          minLength: 3,
          maxLength: 25,
        }),
        async (rows, steps) => {
          tally.seeds++;
          const id = run++;
          const csv = path.join(dir, `replay-${id}.csv`);
          const journal = path.join(dir, `replay-${id}.jsonl`);
          const start = Date.UTC(2026, 0, 5, 4, 0);
          // Row i is at start + i seconds, priced 1500 + i × 0.05: its price names it.
          const lines = ["timestamp,symbol,price"];
          for (let i = 0; i < rows; i++)
            lines.push(`${new Date(start + i * 1000).toISOString()},INFY,${(150_000 + i * 5) / 100}`);
          fs.writeFileSync(csv, `${lines.join("\n")}\n`);
          const clock = new ManualClock(start - 500);
          const seen: number[] = [];
          const open = async (): Promise<PaperBroker> => {
            const broker = new PaperBroker(
              {
                starting_cash: START,
                quote_source: "csv",
                csv_file: csv,
                replay_loop: false,
                replay_speed: 1,
                market: "nse",
              },
              { clock, journalFile: journal },
            );
            broker.on("quote", (q: Quote) => seen.push(Math.round((q.last_price * 100 - 150_000) / 5)));
            await broker.connect();
            await broker.subscribeQuotes(["NSE:INFY"]);
            await broker.flush();
            return broker;
          };
          let broker = await open();
          try {
            for (const step of [...steps, 60_000]) {
              if (step < 0) {
                tally.csvReopens++;
                await broker.close();
                if (step === -2) clock.advance(3_000);
                broker = await open();
              } else {
                clock.advance(step);
                await broker.flush();
              }
              for (let i = 1; i < seen.length; i++)
                rule(
                  seen[i]! === seen[i - 1]! + 1,
                  "a replay goes on after the last row it replayed",
                  () => `rows seen ${seen.join(",")}`,
                );
            }
            tally.csvRows += seen.length;
            rule(
              seen.length === rows && seen[0] === 0,
              "a replay replays every row once",
              () => `${rows} rows, seen ${seen.join(",")}`,
            );
          } finally {
            await broker.close();
          }
        },
      ),
      { numRuns: SEEDS || 100, seed: 5131 },
    );
    assert.ok(tally.csvReopens > 40, JSON.stringify(tally));
  });
});
