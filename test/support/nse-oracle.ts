// An oracle for the paper broker's NSE market written from docs/MARKET-RULES.md and README's fill
// rules, not from lib/market or lib/paper: the calendar, the admission rules, the touch and depth
// a quote offers, and Zerodha's charges. Only the holiday list is taken from the code, as data.
import { NSE_HOLIDAYS_2026, NSE_HOLIDAYS_2027_PROVISIONAL } from "../../lib/market/nse-holidays";

const IST_MS = 19_800_000;
const DAY_MS = 86_400_000;
const MIN = 60_000;
const OPEN = (9 * 60 + 15) * MIN;
const SQUARE_OFF = (15 * 60 + 20) * MIN;
const CLOSE = (15 * 60 + 30) * MIN;
const AMO_FROM = 16 * 60 * MIN;
// 08:58 is the last minute accepted: up to 08:58:59.999.
const AMO_UNTIL = (8 * 60 + 59) * MIN;
const FO_AMO_FROM = (15 * 60 + 45) * MIN;
const FO_AMO_UNTIL = (9 * 60 + 11) * MIN;
const MAINTENANCE_FROM = 60 * MIN;
const MAINTENANCE_UNTIL = (5 * 60 + 30) * MIN;
const TICK = 5;

const HOLIDAYS = new Set([...NSE_HOLIDAYS_2026, ...NSE_HOLIDAYS_2027_PROVISIONAL]);

/** The IST midnight (as a UTC instant) of the IST day holding `ms`. */
function istMidnightOf(ms: number): number {
  return Math.floor((ms + IST_MS) / DAY_MS) * DAY_MS - IST_MS;
}

export function istDayOf(ms: number): string {
  return new Date(ms + IST_MS).toISOString().slice(0, 10);
}

function tradesOn(midnight: number): boolean {
  const weekday = new Date(midnight + IST_MS).getUTCDay();
  return weekday !== 0 && weekday !== 6 && !HOLIDAYS.has(istDayOf(midnight));
}

export interface Session {
  open: number;
  squareOff: number;
  close: number;
}

function sessionOn(midnight: number): Session {
  return { open: midnight + OPEN, squareOff: midnight + SQUARE_OFF, close: midnight + CLOSE };
}

/** The session in progress at `ms`, else the next one. */
export function currentOrNextSession(ms: number): Session {
  for (let midnight = istMidnightOf(ms), i = 0; i < 400; i++, midnight += DAY_MS) {
    if (!tradesOn(midnight)) continue;
    const session = sessionOn(midnight);
    if (ms < session.close) return session;
  }
  throw new Error("no trading day within 400 days");
}

/** The last session whose close is at or before `ms`. */
export function lastClosedSession(ms: number): Session {
  for (let midnight = istMidnightOf(ms), i = 0; i < 400; i++, midnight -= DAY_MS) {
    if (!tradesOn(midnight)) continue;
    const session = sessionOn(midnight);
    if (session.close <= ms) return session;
  }
  throw new Error("no trading day within 400 days");
}

export function isOpen(ms: number): boolean {
  const session = currentOrNextSession(ms);
  return session.open <= ms && ms < session.close;
}

/**
 * Kite's AMO window: equity 16:00 to 08:58:59, F&O 15:45 to 09:10:59, on trading days; all day
 * otherwise; never 01:00–05:30.
 */
export function inAmoWindow(ms: number, segment: "equity" | "derivatives"): boolean {
  const midnight = istMidnightOf(ms);
  const at = ms - midnight;
  if (at >= MAINTENANCE_FROM && at < MAINTENANCE_UNTIL) return false;
  if (!tradesOn(midnight)) return true;
  if (segment === "derivatives") return at >= FO_AMO_FROM || at < FO_AMO_UNTIL;
  return at >= AMO_FROM || at < AMO_UNTIL;
}

/** Between the 15:20 square-off of a session and the next open: MIS is flat and takes no orders. */
export function misShut(ms: number): boolean {
  const session = currentOrNextSession(ms);
  if (session.open <= ms) return ms >= session.squareOff;
  // Before today's (or the next) open: shut when the last session squared off.
  return true;
}

export type Admission =
  | { kind: "open" }
  | { kind: "amo"; session: Session }
  | { kind: "refused"; field: string; code: string; rule: RegExp };

export interface PlaceInput {
  symbol: string;
  known: boolean;
  side: "BUY" | "SELL";
  quantity: number;
  lot: number;
  order_type: "MARKET" | "LIMIT" | "SL" | "SL-M";
  pricePaise?: number;
  /** SL and SL-M orders: the trigger, which must be on the tick too (MARKET-RULES §3). */
  triggerPaise?: number;
  product: "CNC" | "MIS" | "NRML";
  amo: boolean;
  /** Absent when the instrument has no band. */
  referencePaise: number | undefined;
  segment: "equity" | "derivatives";
  /** A contract's last trading day (IST), when it has one. */
  expiry?: string;
}

/** Band edges in paise: ±10 % of the reference, onto the tick grid inward. */
export function band(referencePaise: number): { low: number; high: number } {
  const low = Math.ceil((referencePaise * 90) / 100 / TICK) * TICK;
  const high = Math.floor((referencePaise * 110) / 100 / TICK) * TICK;
  return { low, high };
}

/**
 * What the documents say a placement at `now` gets, leaving funds aside. The instrument rules come
 * first (MARKET-RULES §3's order), then the hours (§2, README's "Admission").
 */
export function admission(order: PlaceInput, now: number): Admission {
  if (!order.known)
    return { kind: "refused", field: "symbol", code: "VALIDATION", rule: /not a known instrument/ };
  if (order.expiry !== undefined && istDayOf(now) > order.expiry)
    return { kind: "refused", field: "symbol", code: "VALIDATION", rule: /expired on/ };
  if (order.quantity % order.lot !== 0)
    return { kind: "refused", field: "quantity", code: "VALIDATION", rule: /lot size/ };
  if (order.pricePaise !== undefined && order.pricePaise % TICK !== 0)
    return { kind: "refused", field: "price", code: "VALIDATION", rule: /tick size/ };
  if (order.triggerPaise !== undefined && order.triggerPaise % TICK !== 0)
    return { kind: "refused", field: "trigger_price", code: "VALIDATION", rule: /tick size/ };
  // The band applies to a LIMIT's and an SL's `price` (§3), never to a trigger.
  if (
    (order.order_type === "LIMIT" || order.order_type === "SL") &&
    order.pricePaise !== undefined &&
    order.referencePaise !== undefined
  ) {
    const { low, high } = band(order.referencePaise);
    if (order.pricePaise < low || order.pricePaise > high)
      return { kind: "refused", field: "price", code: "ORDER_REJECTED", rule: /price band/ };
  }
  if (isOpen(now)) {
    if (order.product === "MIS" && misShut(now))
      return { kind: "refused", field: "product", code: "ORDER_REJECTED", rule: /MIS|square/i };
    return { kind: "open" };
  }
  if (order.amo && inAmoWindow(now, order.segment))
    return { kind: "amo", session: currentOrNextSession(now) };
  return { kind: "refused", field: "market hours", code: "ORDER_REJECTED", rule: /market hours/ };
}

/** The touch a quote offers a taker, in paise: asks up onto the tick, bids down. */
export function touchPaise(
  side: "BUY" | "SELL",
  quote: { bid?: number; ask?: number; last: number },
): number {
  const raw = Math.round((side === "BUY" ? (quote.ask ?? quote.last) : (quote.bid ?? quote.last)) * 100);
  return side === "BUY" ? Math.ceil(raw / TICK) * TICK : Math.floor(raw / TICK) * TICK;
}

/** The depth level (0 = the touch) a fill price stands at, or undefined when it is none of them. */
export function levelOf(
  side: "BUY" | "SELL",
  touch: number,
  pricePaise: number,
  levels = 5,
): number | undefined {
  const away = side === "BUY" ? pricePaise - touch : touch - pricePaise;
  if (away < 0 || away % TICK !== 0) return undefined;
  const level = away / TICK;
  return level <= levels ? level : undefined;
}

// ---- Zerodha's charges (MARKET-RULES §4), integer paise, BigInt so nothing is lost ----

function halfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

export type ChargeCategory = "intraday" | "delivery" | "futures" | "options";

export interface ChargeLines {
  brokerage: bigint;
  stt: bigint;
  exchange: bigint;
  sebi: bigint;
  stamp: bigint;
  gst: bigint;
  total: bigint;
}

/** One order's charges on its whole filled turnover (paise); `tradedAt` picks the F&O STT rate. */
export function orderCharges(
  category: ChargeCategory,
  side: "BUY" | "SELL",
  turnoverPaise: number,
  tradedAt: number,
): ChargeLines {
  const t = BigInt(turnoverPaise);
  if (t === 0n) return { brokerage: 0n, stt: 0n, exchange: 0n, sebi: 0n, stamp: 0n, gst: 0n, total: 0n };
  const capped = (rate: bigint) => {
    const b = halfUp(t * rate, 10_000n);
    return b < 2000n ? b : 2000n;
  };
  const sttRupees = (perHundredThousand: bigint) => halfUp(t * perHundredThousand, 100_000n * 100n) * 100n;
  let brokerage = 0n;
  let stt = 0n;
  let exchangePerCrore = 297n;
  let stamp = 0n;
  if (category === "intraday") {
    brokerage = capped(3n);
    if (side === "SELL") stt = sttRupees(25n);
    if (side === "BUY") stamp = halfUp(t * 3n, 100_000n);
  } else if (category === "delivery") {
    stt = sttRupees(100n);
    if (side === "BUY") stamp = halfUp(t * 15n, 100_000n);
  } else if (category === "options") {
    // On premium turnover: flat ₹20 per executed order, STT 0.15 % sell, NSE 0.03503 %, stamp 0.003 % buy.
    brokerage = 2000n;
    exchangePerCrore = 3503n;
    if (side === "SELL") stt = sttRupees(150n);
    if (side === "BUY") stamp = halfUp(t * 3n, 100_000n);
  } else {
    brokerage = capped(3n);
    exchangePerCrore = 173n;
    // One rate whatever the trade's date (MARKET-RULES §4): the 2026 Budget's 0.05 %.
    void tradedAt;
    if (side === "SELL") stt = sttRupees(50n);
    if (side === "BUY") stamp = halfUp(t * 2n, 100_000n);
  }
  const exchange = halfUp(t * exchangePerCrore, 10_000_000n);
  const sebi = halfUp(t * 10n, 10_000_000n);
  const gst = halfUp((brokerage + exchange + sebi) * 18n, 100n);
  return {
    brokerage,
    stt,
    exchange,
    sebi,
    stamp,
    gst,
    total: brokerage + stt + exchange + sebi + stamp + gst,
  };
}

// ---- Stops (README "SL / SL-M"), GTTs (README "GTTs", MARKET-RULES §2 "GTT expiry") ----

/**
 * Whether a last price has reached a stop's trigger: at or above for a BUY, at or below for a SELL.
 * A stop placed, or whose trigger is moved, where the last price has reached it is refused.
 */
export function stopReached(side: "BUY" | "SELL", triggerPaise: number, lastPaise: number): boolean {
  return side === "BUY" ? lastPaise >= triggerPaise : lastPaise <= triggerPaise;
}

/** An SL BUY's price must be at least its trigger, an SL SELL's at most. */
export function stopPriceOk(side: "BUY" | "SELL", pricePaise: number, triggerPaise: number): boolean {
  return side === "BUY" ? pricePaise >= triggerPaise : pricePaise <= triggerPaise;
}

/**
 * The leg a GTT fires at a last price, or undefined. A single GTT fires when the price reaches its
 * trigger from the side it started on (its `last_price`); a two-leg GTT's leg 0 at or below the
 * first trigger, leg 1 at or above the second. `null` when the documents do not say (a single GTT
 * placed exactly at its trigger).
 */
export function gttLeg(
  g: { type: "single" | "two-leg"; startPaise: number; triggersPaise: number[] },
  lastPaise: number,
): number | undefined | null {
  const [first, second] = g.triggersPaise as [number, number | undefined];
  if (g.type === "two-leg") {
    if (lastPaise <= first) return 0;
    if (second !== undefined && lastPaise >= second) return 1;
    return undefined;
  }
  if (g.startPaise === first) return null;
  if (g.startPaise < first) return lastPaise >= first ? 0 : undefined;
  return lastPaise <= first ? 0 : undefined;
}

/** One year after `created` at the same IST wall clock; 29 February becomes 28 February. */
export function gttExpiry(created: number): number {
  const wall = new Date(created + IST_MS);
  const month = wall.getUTCMonth();
  let day = wall.getUTCDate();
  const year = wall.getUTCFullYear() + 1;
  if (month === 1 && day === 29) day = 28;
  return (
    Date.UTC(
      year,
      month,
      day,
      wall.getUTCHours(),
      wall.getUTCMinutes(),
      wall.getUTCSeconds(),
      wall.getUTCMilliseconds(),
    ) - IST_MS
  );
}

// ---- Kite's margin (README "Margin as Kite applies it", MARKET-RULES §5) ----

export type MarginKind = "equity" | "future" | "option";

/**
 * Cash an order blocks for its opening quantity, in paise: equity MIS value ÷ 5, CNC BUY in full,
 * futures 15 % of value, an option BUY its premium, a written option 15 % of strike × quantity.
 * Rounded up to the paisa.
 */
export function marginPaise(o: {
  kind: MarginKind;
  product: "CNC" | "MIS" | "NRML";
  side: "BUY" | "SELL";
  openingQuantity: number;
  pricePaise: number;
  strikePaise?: number;
}): number {
  const value = o.openingQuantity * o.pricePaise;
  if (o.openingQuantity <= 0) return 0;
  if (o.kind === "future") return Math.ceil((value * 15) / 100);
  if (o.kind === "option")
    return o.side === "BUY" ? value : Math.ceil((o.openingQuantity * (o.strikePaise ?? 0) * 15) / 100);
  if (o.product === "MIS") return Math.ceil(value / 5);
  return o.side === "BUY" ? value : 0;
}
