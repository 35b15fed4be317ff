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

/** The IST calendar day of an instant: the key for daily loss limits and day-scoped state. */
export function istDay(ms: number): string {
  return new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 10);
}

/** Minutes since IST midnight (0 to 1439) of an instant. */
export function istMinuteOfDay(ms: number): number {
  const wall = ms + IST_OFFSET_MS;
  return Math.floor((((wall % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
}

/** The instant at which an IST day starts (its 00:00 IST). */
export function istMidnight(day: string): number {
  return Date.parse(`${day}T00:00:00Z`) - IST_OFFSET_MS;
}

/** The instant of an IST wall-clock time on a day. */
export function istInstant(day: string, time: string): number {
  return istMidnight(day) + minutesOf(time) * 60_000;
}

export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday ... 6 = Saturday. */
export function weekday(day: string): number {
  return new Date(Date.parse(`${day}T00:00:00Z`)).getUTCDay();
}

/** "2026-12-07 09:15 IST": how messages name an instant for a trader in India. */
export function formatIst(ms: number): string {
  return `${new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 16).replace("T", " ")} IST`;
}
