/**
 * The built-in tables (charges, holidays, instruments, presets) are shared by every broker in the
 * process: one flow writing `ZERODHA_NSE_2026.options.brokerage_flat_paise = 0` must not change
 * another account's charges. Frozen all the way down, a stray write throws instead.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
