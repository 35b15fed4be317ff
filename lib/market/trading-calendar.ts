import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import {
  IsoDate,
  TimeOfDay,
  addDays,
  formatIst,
  istDay,
  istInstant,
  istMinuteOfDay,
  minutesOf,
  weekday,
} from "./ist";
import { parseOrThrow } from "./issues";
import { NSE_HOLIDAYS } from "./nse-holidays";

/** A day that trades although it is a weekend (Budget day) or with its own hours (Muhurat). */
export const SpecialSession = z.strictObject({
  date: IsoDate,
  open: TimeOfDay.optional(),
  close: TimeOfDay.optional(),
});

/**
 * Kite's after-market-order windows (support.zerodha.com, "What is an After Market Order (AMO)?",
 * read 2026-12-04): NSE/BSE equity 16:00 to 08:58, F&O 15:45 to 09:10, and none between 01:00 and
 * 05:30 (scheduled maintenance). `*_last` is the last minute in which an AMO is accepted.
 * KITE.md records only that `amo` is a variety; these hours are the support page's.
 */
export const AmoSettings = z.strictObject({
  enabled: z.boolean().default(true),
  equity_from: TimeOfDay.default("16:00"),
  equity_last: TimeOfDay.default("08:58"),
  derivatives_from: TimeOfDay.default("15:45"),
  derivatives_last: TimeOfDay.default("09:10"),
  maintenance_from: TimeOfDay.default("01:00"),
  maintenance_until: TimeOfDay.default("05:30"),
});

export const CalendarSettings = z
  .strictObject({
    /** Round the clock, every day: the relaxed mode's market (demos trade at night too). */
    always_open: z.boolean().default(false),
    open: TimeOfDay.default("09:15"),
    close: TimeOfDay.default("15:30"),
    /** Kite squares off open equity MIS positions from 15:20 (F&O a little later; one time here). */
    mis_square_off: TimeOfDay.default("15:20"),
    /** Replaces the built-in list; extra_holidays adds to it. */
    holidays: z.array(IsoDate).default(() => [...NSE_HOLIDAYS]),
    extra_holidays: z.array(IsoDate).default([]),
    special_sessions: z.array(SpecialSession).default([]),
    amo: AmoSettings.default(AmoSettings.parse({})),
  })
  .refine((s) => minutesOf(s.open) < minutesOf(s.close), {
    path: ["close"],
    error: "must be later than open",
  })
  .refine(
    (s) =>
      minutesOf(s.open) <= minutesOf(s.mis_square_off) && minutesOf(s.mis_square_off) <= minutesOf(s.close),
    {
      path: ["mis_square_off"],
      error: "must lie between open and close",
    },
  )
  .refine((s) => s.special_sessions.every((x) => sessionHours(s, x).open < sessionHours(s, x).close), {
    path: ["special_sessions"],
    error: "each special session must close after it opens",
  });
export type CalendarSettingsInput = z.input<typeof CalendarSettings>;
export type CalendarSettings = z.output<typeof CalendarSettings>;

export type MarketSegment = "equity" | "derivatives";

/** One trading session, as instants (epoch ms). */
export interface Session {
  day: string;
  open_ms: number;
  close_ms: number;
  /** When open MIS positions are closed at market and new MIS orders are refused. */
  square_off_ms: number;
}

export type SessionAdmission =
  /** The market is open: the order goes to the book now and, if DAY, expires at the close
   * (no session when the calendar is always open: nothing expires). */
  | { kind: "open"; session: Session | undefined }
  /** Accepted as an after-market order: held until `session` opens, DAY expiry at its close. */
  | { kind: "amo"; session: Session }
  /** Refused: the error says why and when the market opens. */
  | { kind: "closed"; error: BrokerError; next_open_ms: number };

function sessionHours(
  settings: { open: string; close: string },
  special: z.output<typeof SpecialSession> | undefined,
): { open: number; close: number } {
  return {
    open: minutesOf(special?.open ?? settings.open),
    close: minutesOf(special?.close ?? settings.close),
  };
}

const SEARCH_DAYS = 400;

/**
 * NSE's sessions in Asia/Kolkata: which instants trade, the next open and close, MIS square-off,
 * DAY-order expiry and Kite's AMO windows. Pure: every answer is a function of the settings and
 * the instant passed in (no reading of the clock, no dependence on the host's time zone).
 */
export class TradingCalendar {
  readonly settings: CalendarSettings;
  readonly #closed: ReadonlySet<string>;
  readonly #special: ReadonlyMap<string, z.output<typeof SpecialSession>>;
  readonly #sessions = new Map<string, Session | null>();
  /** The last answer of currentOrNextSession and the instant it was asked for: it holds until its close. */
  #span: { from: number; session: Session } | undefined;

  constructor(settings: CalendarSettingsInput = {}) {
    this.settings = parseOrThrow(CalendarSettings, settings, "CONFIG", "calendar");
    this.#closed = new Set([...this.settings.holidays, ...this.settings.extra_holidays]);
    this.#special = new Map(this.settings.special_sessions.map((s) => [s.date, s]));
  }

  /** Weekdays that are not holidays, plus special sessions (which win over a holiday entry). */
  isTradingDay(day: string): boolean {
    if (this.settings.always_open || this.#special.has(day)) return true;
    const wd = weekday(day);
    return wd !== 0 && wd !== 6 && !this.#closed.has(day);
  }

  /** The session of a trading day; undefined on a closed day or when the market never closes. */
  sessionOn(day: string): Session | undefined {
    const cached = this.#sessions.get(day);
    if (cached !== undefined) return cached ?? undefined;
    const session = this.#computeSession(day);
    // Bounded: a long replay walks many days, and the answers are cheap to recompute.
    if (this.#sessions.size >= 4096) this.#sessions.clear();
    this.#sessions.set(day, session ?? null);
    return session;
  }

  #computeSession(day: string): Session | undefined {
    if (this.settings.always_open || !this.isTradingDay(day)) return undefined;
    const hours = sessionHours(this.settings, this.#special.get(day));
    const open_ms = istInstant(day, "00:00") + hours.open * 60_000;
    const close_ms = istInstant(day, "00:00") + hours.close * 60_000;
    // A shortened session keeps the same lead time before its close for the square-off.
    const lead = minutesOf(this.settings.close) - minutesOf(this.settings.mis_square_off);
    const square_off_ms = Math.max(open_ms, close_ms - lead * 60_000);
    // Cached and handed to every caller: frozen so one caller cannot move another's close.
    return Object.freeze({ day, open_ms, close_ms, square_off_ms });
  }

  isOpen(ms: number): boolean {
    if (this.settings.always_open) return true;
    return this.currentOrNextSession(ms)!.open_ms <= ms;
  }

  /** The session in progress at `ms`, else the next one to open. Undefined when always open. */
  currentOrNextSession(ms: number): Session | undefined {
    if (this.settings.always_open) return undefined;
    // No session closes between `from` and the cached close, so every instant in that span has
    // the same answer; a broker asks with a clock that only moves forward, so this nearly always hits.
    const span = this.#span;
    if (span !== undefined && ms >= span.from && ms < span.session.close_ms) return span.session;
    const today = istDay(ms);
    for (let i = 0; i < SEARCH_DAYS; i++) {
      const session = this.sessionOn(addDays(today, i));
      if (session !== undefined && session.close_ms > ms) {
        this.#span = { from: ms, session };
        return session;
      }
    }
    throw new BrokerError(
      "CONFIG",
      `market calendar: no trading session within ${SEARCH_DAYS} days of ${formatIst(ms)}`,
    );
  }

  /**
   * The trading day an instant belongs to: the day of the session in progress or of the next one
   * (an AMO placed on Saturday belongs to Monday). The IST calendar day when always open.
   */
  tradingDayOf(ms: number): string {
    return this.currentOrNextSession(ms)?.day ?? istDay(ms);
  }

  /** The first session that opens strictly after `ms` (tomorrow's, while the market is open). */
  nextOpen(ms: number): number | undefined {
    const session = this.currentOrNextSession(ms);
    if (session === undefined) return undefined;
    if (session.open_ms > ms) return session.open_ms;
    return this.currentOrNextSession(session.close_ms)?.open_ms;
  }

  /** The close of the session in progress, or of the next one. */
  nextClose(ms: number): number | undefined {
    return this.currentOrNextSession(ms)?.close_ms;
  }

  /**
   * When a DAY order accepted at `ms` expires: the close of the session it rests in (today's
   * while open, the next session's for an AMO). Undefined when the market never closes.
   */
  dayOrderExpiry(ms: number): number | undefined {
    return this.nextClose(ms);
  }

  /** When MIS positions held at `ms` are squared off. */
  misSquareOff(ms: number): number | undefined {
    return this.currentOrNextSession(ms)?.square_off_ms;
  }

  /** Whether Kite would take an AMO at `ms` for this segment (and the market is not open). */
  isAmoWindow(ms: number, segment: MarketSegment = "equity"): boolean {
    const amo = this.settings.amo;
    if (this.settings.always_open || !amo.enabled || this.isOpen(ms)) return false;
    const minute = istMinuteOfDay(ms);
    if (minute >= minutesOf(amo.maintenance_from) && minute < minutesOf(amo.maintenance_until)) return false;
    const day = istDay(ms);
    if (!this.isTradingDay(day)) return true;
    const from = minutesOf(segment === "equity" ? amo.equity_from : amo.derivatives_from);
    const last = minutesOf(segment === "equity" ? amo.equity_last : amo.derivatives_last);
    const session = this.sessionOn(day);
    // Before today's open: only up to the last AMO minute; after the close: from the AMO start.
    if (session !== undefined && ms < session.open_ms) return minute <= last;
    return minute >= from;
  }

  /**
   * How an order placed at `ms` meets the market: in the session, as an AMO (only when the
   * caller allows AMOs), or refused with ORDER_REJECTED naming the rule and the next open.
   */
  admit(ms: number, options: { segment?: MarketSegment; amo?: boolean } = {}): SessionAdmission {
    if (this.settings.always_open) {
      return { kind: "open", session: undefined };
    }
    const session = this.currentOrNextSession(ms)!;
    if (session.open_ms <= ms) return { kind: "open", session };
    const segment = options.segment ?? "equity";
    if (options.amo === true && this.isAmoWindow(ms, segment)) return { kind: "amo", session };
    const why =
      options.amo === true
        ? this.settings.amo.enabled
          ? `and ${formatIst(ms)} is outside the ${segment} AMO window (${this.#amoWindowText(segment)})`
          : "and after-market orders are switched off"
        : "(place it as an AMO to queue it for the open)";
    return {
      kind: "closed",
      next_open_ms: session.open_ms,
      error: new BrokerError(
        "ORDER_REJECTED",
        `market hours: NSE is closed at ${formatIst(ms)}; it opens ${formatIst(session.open_ms)} ${why}`,
      ),
    };
  }

  #amoWindowText(segment: MarketSegment): string {
    const amo = this.settings.amo;
    const from = segment === "equity" ? amo.equity_from : amo.derivatives_from;
    const last = segment === "equity" ? amo.equity_last : amo.derivatives_last;
    return `${from} to ${last} IST, none ${amo.maintenance_from} to ${amo.maintenance_until}`;
  }
}

/**
 * When a GTT created at `createdMs` expires: one year later, same IST wall clock (Kite: "a GTT
 * expires ~1 year after creation", KITE.md §6). A GTT made on 29 February expires on 28 February.
 */
export function gttExpiry(createdMs: number): number {
  const day = istDay(createdMs);
  const year = Number(day.slice(0, 4)) + 1;
  const monthDay = day.slice(5) === "02-29" ? "02-28" : day.slice(5);
  return istInstant(`${year}-${monthDay}`, "00:00") + (createdMs - istInstant(day, "00:00"));
}
