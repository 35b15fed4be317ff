import { z } from "zod";
import type { Product, Side } from "../protocol/fields";
import { IsoDate } from "./ist";
import type { InstrumentSegment } from "./instruments";
import { mulDivRound } from "./money";
import type { Paise } from "./money";
import { deepFreeze } from "./freeze";

/**
 * Rates on turnover are written as rupees per crore of turnover (1 crore = ₹1,00,00,000), the unit
 * Indian fee schedules use: an integer for every published rate (0.00297% = ₹297/crore), so the
 * computation is exact integer arithmetic: paise × rate / 10^7.
 */
const PerCrore = z
  .number({ error: "must be a number (rupees per crore of turnover)" })
  .int({ error: "must be a whole number of rupees per crore (0.01% = 1000)" })
  .min(0, { error: "must be at least 0" })
  .max(10_000_000, { error: "must be at most 10000000 (100%)" });
const PaiseAmount = z.number().int({ error: "must be a whole number of paise" }).min(0).max(1e9);
const CRORE = 10_000_000;

export const ChargeRates = z.strictObject({
  /** Brokerage as a rate on the order's turnover, capped per executed order (0 = none). */
  brokerage_per_crore: PerCrore,
  /** Cap per executed order, paise (₹20 = 2000); absent = no cap. */
  brokerage_cap_paise: PaiseAmount.optional(),
  /** A flat fee per executed order instead of the rate (options: ₹20 = 2000). */
  brokerage_flat_paise: PaiseAmount.optional(),
  stt_buy_per_crore: PerCrore,
  stt_sell_per_crore: PerCrore,
  exchange_per_crore: PerCrore,
  sebi_per_crore: PerCrore,
  stamp_buy_per_crore: PerCrore,
  /** GST in basis points (18% = 1800) on brokerage + exchange charges + SEBI fee. */
  gst_bps: z.number().int().min(0).max(10_000),
});
export type ChargeRates = z.output<typeof ChargeRates>;

export const ChargeSchedule = z.strictObject({
  /** Where the rates came from and when they were read: shown with every computed charge. */
  source: z.string().min(1),
  as_of: IsoDate,
  equity_intraday: ChargeRates,
  equity_delivery: ChargeRates,
  futures: ChargeRates,
  options: ChargeRates,
});
export type ChargeScheduleInput = z.input<typeof ChargeSchedule>;
export type ChargeSchedule = z.output<typeof ChargeSchedule>;

/**
 * Zerodha's published schedule for NSE (zerodha.com/charges, as republished by tradesee.in and
 * ipobell.com; STT from the Finance Act 2026 as summarised by cleartax.in; read 2026-12-04).
 * docs/MARKET-RULES.md lists every figure and its source.
 */
export const ZERODHA_NSE_2026: ChargeSchedule = deepFreeze({
  source:
    "Zerodha charges (zerodha.com/charges) for NSE, with the STT on F&O raised from 2026-04-01 (Union Budget 2026)",
  as_of: "2026-12-04",
  equity_intraday: {
    brokerage_per_crore: 3_000, // 0.03%
    brokerage_cap_paise: 2_000, // ₹20 per executed order
    stt_buy_per_crore: 0,
    stt_sell_per_crore: 2_500, // 0.025% on the sell side
    exchange_per_crore: 297, // NSE 0.00297%
    sebi_per_crore: 10, // ₹10 / crore
    stamp_buy_per_crore: 300, // 0.003% on the buy side
    gst_bps: 1_800,
  },
  equity_delivery: {
    brokerage_per_crore: 0, // free
    stt_buy_per_crore: 10_000, // 0.1% on buy and sell
    stt_sell_per_crore: 10_000,
    exchange_per_crore: 297,
    sebi_per_crore: 10,
    stamp_buy_per_crore: 1_500, // 0.015% on the buy side
    gst_bps: 1_800,
  },
  futures: {
    brokerage_per_crore: 3_000,
    brokerage_cap_paise: 2_000,
    stt_buy_per_crore: 0,
    stt_sell_per_crore: 5_000, // 0.05% on the sell side (0.02% before 2026-04-01)
    exchange_per_crore: 173, // NSE 0.00173%
    sebi_per_crore: 10,
    stamp_buy_per_crore: 200, // 0.002% on the buy side
    gst_bps: 1_800,
  },
  options: {
    brokerage_per_crore: 0,
    brokerage_flat_paise: 2_000, // flat ₹20 per executed order
    stt_buy_per_crore: 0,
    stt_sell_per_crore: 15_000, // 0.15% of premium on the sell side (0.1% before 2026-04-01)
    exchange_per_crore: 3_503, // NSE 0.03503% of premium
    sebi_per_crore: 10,
    stamp_buy_per_crore: 300, // 0.003% on the buy side
    gst_bps: 1_800,
  },
});

/** Every charge is zero: the relaxed mode (and today's paper broker). */
const ZERO_RATES: ChargeRates = {
  brokerage_per_crore: 0,
  stt_buy_per_crore: 0,
  stt_sell_per_crore: 0,
  exchange_per_crore: 0,
  sebi_per_crore: 0,
  stamp_buy_per_crore: 0,
  gst_bps: 0,
};
export const NO_CHARGES: ChargeSchedule = deepFreeze({
  source: "no charges",
  as_of: "2026-12-04",
  equity_intraday: ZERO_RATES,
  equity_delivery: ZERO_RATES,
  futures: ZERO_RATES,
  options: ZERO_RATES,
});

export type ChargeCategory = "equity_intraday" | "equity_delivery" | "futures" | "options";

/** Which line of the schedule a trade falls under: MIS equity is intraday, CNC/NRML delivery. */
export function chargeCategory(segment: InstrumentSegment, product: Product): ChargeCategory {
  if (segment === "FUT") return "futures";
  if (segment === "OPT") return "options";
  return product === "MIS" ? "equity_intraday" : "equity_delivery";
}

/** One contract-note line set, all integer paise. */
export interface Charges {
  brokerage: Paise;
  stt: Paise;
  exchange: Paise;
  sebi: Paise;
  stamp: Paise;
  gst: Paise;
  total: Paise;
}

export const ZERO_CHARGES: Charges = deepFreeze({
  brokerage: 0,
  stt: 0,
  exchange: 0,
  sebi: 0,
  stamp: 0,
  gst: 0,
  total: 0,
});

function onTurnover(turnover: Paise, perCrore: number): Paise {
  return mulDivRound(turnover, perCrore, CRORE);
}

/**
 * The charges of one executed order whose fills add up to `turnover` paise (quantity × price;
 * for options, the premium). Rounding, applied once per line per order, as the contract note and
 * Zerodha's calculator do: every line to the nearest paisa (halves up), except STT, which is
 * rounded to the nearest rupee; GST is 18% of the already-rounded brokerage + exchange + SEBI
 * lines, rounded to the paisa. Brokerage is per executed order, so an order with no fill pays none.
 */
export function orderCharges(rates: ChargeRates, side: Side, turnover: Paise): Charges {
  if (!Number.isSafeInteger(turnover) || turnover < 0) {
    throw new RangeError(`turnover must be a non-negative safe integer of paise, got ${turnover}`);
  }
  if (turnover === 0) return { ...ZERO_CHARGES };
  const byRate = onTurnover(turnover, rates.brokerage_per_crore);
  const brokerage =
    rates.brokerage_flat_paise ??
    (rates.brokerage_cap_paise === undefined ? byRate : Math.min(byRate, rates.brokerage_cap_paise));
  // Straight to whole rupees from the exact amount: rounding to paise first would round twice.
  const stt =
    mulDivRound(turnover, side === "BUY" ? rates.stt_buy_per_crore : rates.stt_sell_per_crore, CRORE * 100) *
    100;
  const exchange = onTurnover(turnover, rates.exchange_per_crore);
  const sebi = onTurnover(turnover, rates.sebi_per_crore);
  const stamp = side === "BUY" ? onTurnover(turnover, rates.stamp_buy_per_crore) : 0;
  const gst = mulDivRound(brokerage + exchange + sebi, rates.gst_bps, 10_000);
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

/**
 * The charges one fill adds to its order: the order's charges after the fill minus before. Summed
 * over an order's fills this is exactly orderCharges of the whole order, however it filled (the
 * ₹20 cap is per order, not per fill), and every line is non-negative because each is monotone in
 * turnover.
 */
export function fillCharges(
  rates: ChargeRates,
  side: Side,
  turnoverBefore: Paise,
  fillTurnover: Paise,
): Charges {
  const before = orderCharges(rates, side, turnoverBefore);
  const after = orderCharges(rates, side, turnoverBefore + fillTurnover);
  return {
    brokerage: after.brokerage - before.brokerage,
    stt: after.stt - before.stt,
    exchange: after.exchange - before.exchange,
    sebi: after.sebi - before.sebi,
    stamp: after.stamp - before.stamp,
    gst: after.gst - before.gst,
    total: after.total - before.total,
  };
}

export function addCharges(a: Charges, b: Charges): Charges {
  return {
    brokerage: a.brokerage + b.brokerage,
    stt: a.stt + b.stt,
    exchange: a.exchange + b.exchange,
    sebi: a.sebi + b.sebi,
    stamp: a.stamp + b.stamp,
    gst: a.gst + b.gst,
    total: a.total + b.total,
  };
}

/** Gross P&L (price moves only) and net P&L (after every charge), in paise. */
export function netPnl(grossPaise: Paise, charges: Paise): { gross: Paise; charges: Paise; net: Paise } {
  return { gross: grossPaise, charges, net: grossPaise - charges };
}

/**
 * A whole round trip, one BUY order and one SELL order of `quantity` (either first): gross P&L,
 * each side's contract-note lines, and net P&L, all paise.
 */
export function roundTrip(
  rates: ChargeRates,
  quantity: number,
  buyPricePaise: Paise,
  sellPricePaise: Paise,
): { gross: Paise; buy: Charges; sell: Charges; charges: Paise; net: Paise } {
  const buyTurnover = quantity * buyPricePaise;
  const sellTurnover = quantity * sellPricePaise;
  if (!Number.isSafeInteger(buyTurnover) || !Number.isSafeInteger(sellTurnover)) {
    throw new RangeError("round trip turnover is too large to count in paise exactly");
  }
  const buy = orderCharges(rates, "BUY", buyTurnover);
  const sell = orderCharges(rates, "SELL", sellTurnover);
  const charges = buy.total + sell.total;
  const gross = sellTurnover - buyTurnover;
  return { gross, buy, sell, charges, net: gross - charges };
}
