import { BrokerError } from "../protocol/errors";

/**
 * Money in the market model is integer paise (1 rupee = 100 paise) held in plain numbers that
 * stay safe integers, so sums never drift. Rupees appear only at the edges: prices as traders
 * type them, and amounts shown to people. Every fractional amount is rounded exactly once, by
 * the function that produces it, with the rule written beside it.
 */
export type Paise = number;

/** A rupee price or amount as whole paise; undefined when it is not a whole number of paise. */
export function exactPaise(rupees: number): Paise | undefined {
  if (!Number.isFinite(rupees)) return undefined;
  const scaled = rupees * 100;
  const whole = Math.round(scaled);
  // Binary noise (1234.55 × 100 = 123454.99999999999) is a few ulps; a third decimal is ≥ 0.1 paisa.
  if (Math.abs(scaled - whole) > Math.max(1e-7, Math.abs(scaled) * 1e-14)) return undefined;
  if (!Number.isSafeInteger(whole)) return undefined;
  return whole;
}

/** Like exactPaise, but a value that is not whole paise is an error naming the field. */
export function toPaise(rupees: number, field: string): Paise {
  const paise = exactPaise(rupees);
  if (paise === undefined) {
    throw new BrokerError(
      "VALIDATION",
      `${field}: ${rupees} must be a whole number of paise (at most 2 decimals)`,
    );
  }
  return paise;
}

/** Paise as rupees for display and for the existing rupee-valued API. */
export function toRupees(paise: Paise): number {
  return paise / 100;
}

/** a × b as a safe integer, or an error naming what overflowed (no silent precision loss). */
export function safeProduct(a: number, b: number, what: string): number {
  const product = a * b;
  if (!Number.isSafeInteger(product)) {
    throw new BrokerError("VALIDATION", `${what}: ${a} × ${b} is too large to count in paise exactly`);
  }
  return product;
}

/**
 * round(a × b / d) with halves rounded up, for non-negative safe integers, exactly: the product
 * is formed in BigInt when it would not fit a double. This is the single rounding step behind
 * every rate applied to an amount (charges, margin, price bands).
 */
export function mulDivRound(a: number, b: number, d: number): number {
  return mulDiv(a, b, d, "half-up");
}

/** ⌈a × b / d⌉ for non-negative safe integers: used where rounding must never under-block. */
export function mulDivCeil(a: number, b: number, d: number): number {
  return mulDiv(a, b, d, "ceil");
}

/** ⌊a × b / d⌋ for non-negative safe integers. */
export function mulDivFloor(a: number, b: number, d: number): number {
  return mulDiv(a, b, d, "floor");
}

function mulDiv(a: number, b: number, d: number, mode: "half-up" | "ceil" | "floor"): number {
  if (
    !(a >= 0 && b >= 0 && d > 0) ||
    !Number.isSafeInteger(a) ||
    !Number.isSafeInteger(b) ||
    !Number.isSafeInteger(d)
  ) {
    throw new RangeError(`mulDiv needs non-negative safe integers and d > 0, got ${a}, ${b}, ${d}`);
  }
  const product = a * b;
  if (Number.isSafeInteger(product)) {
    let q = Math.floor(product / d);
    let r = product - q * d;
    // The float division can land one off near an integer; the remainder puts it right.
    if (r < 0) {
      q -= 1;
      r += d;
    } else if (r >= d) {
      q += 1;
      r -= d;
    }
    return q + roundUp(mode, r, d);
  }
  const big = BigInt(a) * BigInt(b);
  const bd = BigInt(d);
  const q = big / bd;
  const r = big - q * bd;
  const result = Number(q) + roundUp(mode, Number(r), d);
  if (!Number.isSafeInteger(result)) throw new RangeError(`mulDiv result ${result} is not a safe integer`);
  return result;
}

function roundUp(mode: "half-up" | "ceil" | "floor", remainder: number, d: number): number {
  if (remainder === 0 || mode === "floor") return 0;
  if (mode === "ceil") return 1;
  return 2 * remainder >= d ? 1 : 0;
}

/** "₹1,23,456.78" style is for people; the model prints plain "123456.78". */
export function formatRupees(paise: Paise): string {
  const sign = paise < 0 ? "-" : "";
  const abs = Math.abs(paise);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}
