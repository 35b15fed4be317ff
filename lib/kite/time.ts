/**
 * Kite's timestamps are India Standard Time wall-clock strings, "YYYY-MM-DD HH:MM:SS" (UTC+05:30,
 * no daylight saving). kiteconnect turns some of them (order_timestamp, exchange_timestamp, ...)
 * into Date objects with `new Date(text)`, which reads the text in the *host's* time zone, so the
 * same reply means different instants on a server in UTC and one in India (KITE.md §3, §11.7).
 * Everything here reads them as +05:30 whatever the host's zone is and answers ISO 8601 UTC.
 */

import { IST_OFFSET_MS } from "../market/ist";

const WALL_CLOCK = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/;
const HAS_ZONE = /(?:[zZ]|[+-]\d{2}:?\d{2})$/;

/** IST wall-clock fields to epoch ms; undefined when the fields name no real time (month 13). */
function istFieldsToMs(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
): number | undefined {
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(utc);
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    check.getUTCHours() !== h ||
    check.getUTCMinutes() !== mi ||
    check.getUTCSeconds() !== s
  ) {
    return undefined;
  }
  return utc - IST_OFFSET_MS;
}

/**
 * Epoch ms of a Kite timestamp: an IST wall-clock string, a string that carries its own zone, or
 * a Date that kiteconnect built from an IST string in the host's zone (its local fields are the
 * IST wall clock; only a wall-clock time the host's zone skips for daylight saving, a Sunday
 * night hour when no Indian market trades, could come out an hour off). Undefined when unreadable.
 */
export function kiteTimestampMs(value: unknown): number | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    return istFieldsToMs(
      value.getFullYear(),
      value.getMonth() + 1,
      value.getDate(),
      value.getHours(),
      value.getMinutes(),
      value.getSeconds(),
    );
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  const m = WALL_CLOCK.exec(text);
  if (m !== null) {
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return istFieldsToMs(y, mo, d, h, mi, s);
  }
  if (HAS_ZONE.test(text)) {
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** A Kite timestamp as ISO 8601 UTC ("2024-06-12 09:15:00" → "2024-06-12T03:45:00.000Z"). */
export function parseKiteTimestamp(value: unknown): string | undefined {
  const ms = kiteTimestampMs(value);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Epoch ms as Kite writes it: IST wall clock, "YYYY-MM-DD HH:MM:SS". */
export function formatKiteTimestamp(ms: number): string {
  return new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 19).replace("T", " ");
}
