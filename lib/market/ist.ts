import { z } from "zod";

/**
 * India Standard Time arithmetic without the host's time zone: IST is UTC+05:30 all year (no
 * daylight saving), so an instant's IST wall clock is the UTC wall clock of instant + 5h30m.
 * Days are "YYYY-MM-DD" strings (what a trader writes, and what sorts and compares as text).
 */
export const IST_OFFSET_MS = (5 * 60 + 30) * 60_000;
const DAY_MS = 86_400_000;

function isRealDate(text: string): boolean {
  const ms = Date.parse(`${text}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === text;
}

export const IsoDate = z
  .string({ error: "must be a date written YYYY-MM-DD" })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: "must be a date written YYYY-MM-DD" })
  .refine(isRealDate, { error: "must be a real calendar date" });

/** "HH:MM", 24-hour, IST. */
export const TimeOfDay = z
  .string({ error: "must be a time written HH:MM" })
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: "must be a time written HH:MM (00:00 to 23:59)" });

export function minutesOf(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

/*
 * Days are counted with integer civil-calendar arithmetic (H. Hinnant's days_from_civil and
 * civil_from_days, proleptic Gregorian) rather than Date.parse and toISOString: the broker asks
 * for the IST day of every order, and the string round trip through Date cost over a microsecond.
 */
function daysFromCivil(y: number, m: number, d: number): number {
  const year = m <= 2 ? y - 1 : y;
  const era = Math.floor(year / 400);
  const yoe = year - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function civilFromDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, "0")}-${m < 10 ? "0" : ""}${m}-${d < 10 ? "0" : ""}${d}`;
}

/** Days since 1970-01-01 of a "YYYY-MM-DD" day. */
function dayNumber(day: string): number {
  return daysFromCivil(Number(day.slice(0, 4)), Number(day.slice(5, 7)), Number(day.slice(8, 10)));
}

/** The IST calendar day of an instant: the key for daily loss limits and day-scoped state. */
export function istDay(ms: number): string {
  return civilFromDays(Math.floor((ms + IST_OFFSET_MS) / DAY_MS));
}

/** Minutes since IST midnight (0 to 1439) of an instant. */
export function istMinuteOfDay(ms: number): number {
  const wall = ms + IST_OFFSET_MS;
  return Math.floor((((wall % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
}

/** The instant at which an IST day starts (its 00:00 IST). */
export function istMidnight(day: string): number {
  return dayNumber(day) * DAY_MS - IST_OFFSET_MS;
}

/** The instant of an IST wall-clock time on a day. */
export function istInstant(day: string, time: string): number {
  return istMidnight(day) + minutesOf(time) * 60_000;
}

export function addDays(day: string, days: number): string {
  return civilFromDays(dayNumber(day) + days);
}

/** 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday). */
export function weekday(day: string): number {
  return (((dayNumber(day) + 4) % 7) + 7) % 7;
}

/** "2026-12-07 09:15 IST": how messages name an instant for a trader in India. */
export function formatIst(ms: number): string {
  return `${new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 16).replace("T", " ")} IST`;
}
