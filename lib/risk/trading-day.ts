import { istDay, istMinuteOfDay, minutesOf, weekday } from "../market/ist";
import type { TradingWindow } from "./settings";

/** The IST calendar day of an instant ("2026-01-05"): daily loss counts from the start of it. */
export { istDay };

/**
 * When a venue that starts its P&L again each session (Kite) has done so: 09:00 IST, the start of
 * the exchanges' pre-open. Until then its positions still show the last session's P&L.
 */
export const SESSION_RESET_IST = "09:00";
const SESSION_RESET_MS = 9 * 3_600_000;

/**
 * The trading day a P&L reading of such a venue belongs to: the IST day, from 09:00 IST, and the
 * day before it until then. A reading after midnight and before the reset still shows the day
 * before's figures; taken as the new day's start it would count the reset itself as a loss (after
 * a good day) or as a gain that widens the limit (after a bad one).
 */
export function sessionDay(ms: number): string {
  return istDay(ms - SESSION_RESET_MS);
}

function clockText(minutes: number): string {
  const hh = Math.floor(minutes / 60);
  const mm = minutes % 60;
  return `${hh < 10 ? "0" : ""}${hh}:${mm < 10 ? "0" : ""}${mm}`;
}

/** Why `ms` is outside the window, or undefined when orders may go out. The end is exclusive. */
export function outsideWindow(window: TradingWindow, ms: number): string | undefined {
  if (!window.weekends) {
    const day = weekday(istDay(ms));
    if (day === 0 || day === 6) {
      return `trading window ${window.start}-${window.end} IST: closed on ${day === 0 ? "Sunday" : "Saturday"}`;
    }
  }
  const minutes = istMinuteOfDay(ms);
  if (minutes < minutesOf(window.start) || minutes >= minutesOf(window.end)) {
    return `trading window ${window.start}-${window.end} IST: it is ${clockText(minutes)} IST`;
  }
  return undefined;
}
