import { istDay, istMinuteOfDay, minutesOf, weekday } from "../market/ist";
import type { TradingWindow } from "./settings";

/** The IST calendar day of an instant ("2026-01-05"): daily loss counts from the start of it. */
export { istDay };

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
