/**
 * The paper account keeps money in whole paise (integers), so sums never drift: cash, cost bases,
 * realized P&L and reservations are exact, and rupees appear only where the account is shown.
 * Prices become paise at the edge of the engine; a limit that is not a whole number of paise is
 * rounded the way that keeps it a limit (down for a BUY, up for a SELL).
 */
export type Paise = number;

/** Floating error in `price * 100` is far below this, and a real price never hides in it. */
const EPSILON = 1e-6;

export function toPaise(rupees: number): Paise {
  return Math.round(rupees * 100);
}

export function buyLimitPaise(rupees: number): Paise {
  return Math.floor(rupees * 100 + EPSILON);
}

export function sellLimitPaise(rupees: number): Paise {
  return Math.ceil(rupees * 100 - EPSILON);
}

export function toRupees(paise: Paise): number {
  return paise / 100;
}

/** A per-unit price in rupees from a total in paise, unrounded: quantity × average gives the total back. */
export function averageRupees(totalPaise: Paise, quantity: number): number {
  return quantity === 0 ? 0 : totalPaise / quantity / 100;
}
