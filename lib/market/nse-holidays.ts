import { deepFreeze } from "./freeze";

/**
 * NSE equity and equity-derivatives trading holidays (weekdays only; holidays that fall on a
 * Saturday or Sunday change nothing). The user extends or replaces this list in the settings:
 * exchanges add closures at short notice (the 15 January 2026 civic-election closure was added
 * after the annual circular).
 *
 * 2026: NSE's holiday list for 2026 as republished on 2026-01 (stocktrack.co.in, "NSE trading
 * holidays 2026"), 16 weekdays, including the 15 January closure. Diwali Laxmi Pujan (Sunday 8
 * November 2026) carries a Muhurat session whose hours NSE notifies later: add it as a special
 * session when they are known.
 *
 * 2027: NSE usually publishes the next year's list in December; 2027's was not available when this list
 * was written (2026-12-04). Only the weekday closures whose dates are certain are listed
 * (Republic Day, Ambedkar Jayanti, and Good Friday from the Easter computus); the festival
 * holidays (Holi, Id, Diwali, ...) must be added from the circular. docs/MARKET-RULES.md says so.
 */
export const NSE_HOLIDAYS_2026: readonly string[] = deepFreeze([
  "2026-01-15", // Municipal Corporation election, Maharashtra
  "2026-01-26", // Republic Day
  "2026-03-03", // Holi
  "2026-03-26", // Shri Ram Navami
  "2026-03-31", // Shri Mahavir Jayanti
  "2026-04-03", // Good Friday
  "2026-04-14", // Dr. Baba Saheb Ambedkar Jayanti
  "2026-05-01", // Maharashtra Day
  "2026-05-28", // Bakri Id
  "2026-06-26", // Muharram
  "2026-09-14", // Ganesh Chaturthi
  "2026-10-02", // Mahatma Gandhi Jayanti
  "2026-10-20", // Dussehra
  "2026-11-10", // Diwali Balipratipada
  "2026-11-24", // Prakash Gurpurb Sri Guru Nanak Dev
  "2026-12-25", // Christmas
]);

/** Provisional: see the note above. */
export const NSE_HOLIDAYS_2027_PROVISIONAL: readonly string[] = deepFreeze([
  "2027-01-26", // Republic Day
  "2027-03-26", // Good Friday
  "2027-04-14", // Dr. Baba Saheb Ambedkar Jayanti
]);

export const NSE_HOLIDAYS: readonly string[] = deepFreeze([
  ...NSE_HOLIDAYS_2026,
  ...NSE_HOLIDAYS_2027_PROVISIONAL,
]);
