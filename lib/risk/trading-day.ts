import type { TradingWindow } from "./settings";
import { minutesOf } from "./settings";

/** India Standard Time is UTC+05:30 all year: NSE's clock, and the one a trading day starts by. */
const IST_OFFSET_MS = (5 * 60 + 30) * 60_000;

/** The IST calendar day of `ms` ("2026-01-05"): daily loss counts from the start of it. */
export function istDay(ms: number): string {
  return new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 10);
}

/** IST wall clock of `ms`: minutes after midnight and weekday (0 = Sunday). */
export function istClock(ms: number): { minutes: number; weekday: number; text: string } {
  const shifted = new Date(ms + IST_OFFSET_MS);
  const minutes = shifted.getUTCHours() * 60 + shifted.getUTCMinutes();
  return { minutes, weekday: shifted.getUTCDay(), text: shifted.toISOString().slice(11, 16) };
}

/** Why `ms` is outside the window, or undefined when orders may go out. The end is exclusive. */
export function outsideWindow(window: TradingWindow, ms: number): string | undefined {
  const { minutes, weekday, text } = istClock(ms);
  if (!window.weekends && (weekday === 0 || weekday === 6)) {
    return `trading window ${window.start}-${window.end} IST: closed on ${weekday === 0 ? "Sunday" : "Saturday"}`;
  }
  if (minutes < minutesOf(window.start) || minutes >= minutesOf(window.end)) {
    return `trading window ${window.start}-${window.end} IST: it is ${text} IST`;
  }
  return undefined;
}
