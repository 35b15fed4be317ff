import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import fc from "fast-check";
import {
  NSE_HOLIDAYS,
  TradingCalendar,
  addDays,
  formatIst,
  gttExpiry,
  istDay,
  istMidnight,
  istMinuteOfDay,
  weekday,
} from "../../lib/market";

/** An IST wall-clock time as an instant, written the way the rules are stated. */
function ist(text: string): number {
  return Date.parse(`${text.replace(" ", "T")}+05:30`);
}

const START_2026 = ist("2026-01-01 00:00");
const END_2027 = ist("2027-12-31 23:59");

describe("market: trading calendar", function () {
  const nse = new TradingCalendar();

  it("opens at 09:15 IST and closes at 15:30 IST, to the millisecond", function () {
    // Monday 2026-12-07 is a trading day.
    assert.equal(nse.isOpen(ist("2026-12-07 09:15") - 1), false);
    assert.equal(nse.isOpen(ist("2026-12-07 09:15")), true);
    assert.equal(nse.isOpen(ist("2026-12-07 15:30") - 1), true);
    assert.equal(nse.isOpen(ist("2026-12-07 15:30")), false);
    // 09:15 IST is 03:45 UTC.
    assert.equal(nse.isOpen(Date.parse("2026-12-07T03:45:00Z")), true);
  });

  it("is closed on weekends and on the holiday list", function () {
    assert.equal(nse.isOpen(ist("2026-12-05 11:00")), false, "Saturday");
    assert.equal(nse.isOpen(ist("2026-12-06 11:00")), false, "Sunday");
    assert.equal(nse.isOpen(ist("2026-12-25 11:00")), false, "Christmas, a Friday");
    assert.equal(nse.isOpen(ist("2026-12-24 11:00")), true);
  });

  it("gives the IST day of an instant, switching at 18:30 UTC", function () {
    assert.equal(istDay(Date.parse("2026-12-04T18:29:59.999Z")), "2026-12-04");
    assert.equal(istDay(Date.parse("2026-12-04T18:30:00.000Z")), "2026-12-05");
    assert.equal(istMinuteOfDay(Date.parse("2026-12-04T18:30:00.000Z")), 0);
    assert.equal(istMinuteOfDay(Date.parse("2026-12-04T18:29:59.999Z")), 1439);
  });

  it("counts days exactly like Date for any instant from year 1 to 9999 (property)", function () {
    const MIN = Date.UTC(1, 0, 1) + 86_400_000;
    const MAX = Date.UTC(9999, 11, 30);
    fc.assert(
      fc.property(fc.integer({ min: MIN, max: MAX }), fc.integer({ min: -1000, max: 1000 }), (t, n) => {
        const viaDate = new Date(t + 19_800_000).toISOString().slice(0, 10);
        assert.equal(istDay(t), viaDate);
        assert.equal(istMidnight(viaDate), Date.parse(`${viaDate}T00:00:00Z`) - 19_800_000);
        assert.equal(weekday(viaDate), new Date(t + 19_800_000).getUTCDay());
        const shifted = t + n * 86_400_000;
        if (shifted > MIN && shifted < MAX) assert.equal(addDays(viaDate, n), istDay(shifted));
      }),
      { numRuns: 5000 },
    );
  });

  it("names the trading day an instant belongs to: the session in progress, else the next one", function () {
    assert.equal(nse.tradingDayOf(ist("2026-12-07 10:00")), "2026-12-07");
    assert.equal(nse.tradingDayOf(ist("2026-12-07 15:30")), "2026-12-08", "after the close: tomorrow's");
    assert.equal(nse.tradingDayOf(ist("2026-12-05 12:00")), "2026-12-07", "Saturday: Monday's");
    assert.equal(nse.tradingDayOf(ist("2026-12-24 18:00")), "2026-12-28", "over Christmas and the weekend");
    assert.equal(
      new TradingCalendar({ always_open: true }).tradingDayOf(ist("2026-12-05 12:00")),
      "2026-12-05",
    );
  });

  it("finds the next open across a weekend and a holiday", function () {
    // Thursday 24 Dec after the close → Friday 25 is Christmas → Monday 28 Dec.
    assert.equal(nse.nextOpen(ist("2026-12-24 15:45")), ist("2026-12-28 09:15"));
    assert.equal(nse.nextClose(ist("2026-12-24 15:45")), ist("2026-12-28 15:30"));
    // While open, the next open is tomorrow's and the next close today's.
    assert.equal(nse.nextOpen(ist("2026-12-07 10:00")), ist("2026-12-08 09:15"));
    assert.equal(nse.nextClose(ist("2026-12-07 10:00")), ist("2026-12-07 15:30"));
    // Before the open, today's open.
    assert.equal(nse.nextOpen(ist("2026-12-07 08:00")), ist("2026-12-07 09:15"));
  });

  it("squares off MIS at 15:20 and expires DAY orders at the close of the session they rest in", function () {
    assert.equal(nse.misSquareOff(ist("2026-12-07 10:00")), ist("2026-12-07 15:20"));
    assert.equal(nse.dayOrderExpiry(ist("2026-12-07 10:00")), ist("2026-12-07 15:30"));
    // An AMO placed Friday night rests in Monday's session and expires at Monday's close.
    assert.equal(nse.dayOrderExpiry(ist("2026-12-04 20:00")), ist("2026-12-07 15:30"));
  });

  it("takes AMOs in Kite's windows only: equity 16:00–08:58, F&O 15:45–09:10, never 01:00–05:30", function () {
    const cases: [string, "equity" | "derivatives", boolean][] = [
      ["2026-12-07 15:44", "derivatives", false],
      ["2026-12-07 15:45", "derivatives", true],
      ["2026-12-07 15:59", "equity", false],
      ["2026-12-07 16:00", "equity", true],
      ["2026-12-07 23:59", "equity", true],
      ["2026-12-08 00:59", "equity", true],
      ["2026-12-08 01:00", "equity", false],
      ["2026-12-08 05:29", "derivatives", false],
      ["2026-12-08 05:30", "equity", true],
      ["2026-12-08 08:58", "equity", true],
      ["2026-12-08 08:59", "equity", false],
      ["2026-12-08 09:10", "derivatives", true],
      ["2026-12-08 09:11", "derivatives", false],
      ["2026-12-08 10:00", "equity", false], // open: a regular order, not an AMO
      ["2026-12-05 12:00", "equity", true], // Saturday
      ["2026-12-25 12:00", "equity", true], // holiday
      ["2026-12-05 03:00", "equity", false], // Saturday maintenance
    ];
    for (const [when, segment, expected] of cases) {
      assert.equal(nse.isAmoWindow(ist(when), segment), expected, `${when} ${segment}`);
    }
  });

  it("admits an order in the session, as an AMO when asked in the window, else refuses it naming the next open", function () {
    const open = nse.admit(ist("2026-12-07 10:00"));
    assert.equal(open.kind, "open");
    const amo = nse.admit(ist("2026-12-05 12:00"), { amo: true });
    assert.equal(amo.kind, "amo");
    assert.equal(amo.kind === "amo" && amo.session.open_ms, ist("2026-12-07 09:15"));
    const closed = nse.admit(ist("2026-12-05 12:00"));
    assert.equal(closed.kind, "closed");
    if (closed.kind !== "closed") return;
    assert.equal(closed.error.code, "ORDER_REJECTED");
    assert.equal(
      closed.error.message,
      "market hours: NSE is closed at 2026-12-05 12:00 IST; it opens 2026-12-07 09:15 IST (place it as an AMO to queue it for the open)",
    );
    const gap = nse.admit(ist("2026-12-07 15:35"), { amo: true });
    assert.equal(gap.kind, "closed");
    assert.match(
      gap.kind === "closed" ? gap.error.message : "",
      /outside the equity AMO window \(16:00 to 08:58 IST/,
    );
    const off = new TradingCalendar({ amo: { enabled: false } }).admit(ist("2026-12-05 12:00"), {
      amo: true,
    });
    assert.match(off.kind === "closed" ? off.error.message : "", /after-market orders are switched off/);
  });

  it("lets the user add holidays and special sessions with their own hours", function () {
    const cal = new TradingCalendar({
      extra_holidays: ["2026-12-07"],
      special_sessions: [{ date: "2026-12-06", open: "18:00", close: "19:00" }],
    });
    assert.equal(cal.isOpen(ist("2026-12-07 10:00")), false);
    assert.equal(cal.isOpen(ist("2026-12-06 18:30")), true, "a Sunday special session");
    assert.equal(cal.isOpen(ist("2026-12-06 19:00")), false);
    // The square-off keeps its 10-minute lead before a shortened close.
    assert.equal(cal.misSquareOff(ist("2026-12-06 18:10")), ist("2026-12-06 18:50"));
    assert.equal(cal.nextOpen(ist("2026-12-06 19:00")), ist("2026-12-08 09:15"));
  });

  it("is always open, with no expiry and no square-off, in the relaxed calendar", function () {
    const cal = new TradingCalendar({ always_open: true });
    assert.equal(cal.isOpen(ist("2026-12-05 03:00")), true);
    assert.equal(cal.dayOrderExpiry(ist("2026-12-05 03:00")), undefined);
    assert.equal(cal.misSquareOff(ist("2026-12-05 03:00")), undefined);
    assert.deepEqual(cal.admit(ist("2026-12-25 02:00")), { kind: "open", session: undefined });
  });

  it("refuses bad settings with CONFIG naming the field and the rule", function () {
    const cases: [unknown, string][] = [
      [{ open: "15:30", close: "09:15" }, "calendar.close: must be later than open"],
      [{ mis_square_off: "15:45" }, "calendar.mis_square_off: must lie between open and close"],
      [{ open: "9:15" }, "calendar.open: must be a time written HH:MM (00:00 to 23:59)"],
      [{ extra_holidays: ["2026-02-30"] }, "calendar.extra_holidays.0: must be a real calendar date"],
      [
        { special_sessions: [{ date: "2026-12-06", open: "19:00", close: "18:00" }] },
        "calendar.special_sessions: each special session must close after it opens",
      ],
      [
        { amo: { equity_from: "25:00" } },
        "calendar.amo.equity_from: must be a time written HH:MM (00:00 to 23:59)",
      ],
      [{ always_open: 1 }, "calendar.always_open: must be true or false"],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => new TradingCalendar(input as never),
        { code: "CONFIG", message },
        JSON.stringify(input),
      );
    }
  });

  it("answers CONFIG, not an endless loop, when no day ever trades", function () {
    const every = Array.from({ length: 500 }, (_, i) => addDays("2026-12-01", i));
    const cal = new TradingCalendar({ extra_holidays: every });
    assert.throws(() => cal.nextOpen(ist("2026-12-07 10:00")), { code: "CONFIG" });
  });

  it("expires a GTT one year after creation, same IST wall clock; 29 February → 28 February", function () {
    assert.equal(gttExpiry(ist("2026-12-04 20:31")), ist("2027-12-04 20:31"));
    assert.equal(gttExpiry(ist("2028-02-29 10:00")), ist("2029-02-28 10:00"));
    // 23:59 IST on 31 Dec is 18:29 UTC the same day; the expiry is 31 Dec next year in IST.
    assert.equal(gttExpiry(ist("2026-12-31 23:59")), ist("2027-12-31 23:59"));
  });

  it("ships holidays that are real weekdays, sorted and unique", function () {
    assert.ok(NSE_HOLIDAYS.length >= 16);
    for (const day of NSE_HOLIDAYS) {
      assert.ok(weekday(day) >= 1 && weekday(day) <= 5, `${day} is a weekday`);
    }
    assert.deepEqual([...NSE_HOLIDAYS].sort(), [...NSE_HOLIDAYS]);
    assert.equal(new Set(NSE_HOLIDAYS).size, NSE_HOLIDAYS.length);
  });

  it("agrees with a minute-by-minute definition at random instants of 2026–2027 (property)", function () {
    const holidays = new Set(NSE_HOLIDAYS);
    const tradingDay = (day: string) => weekday(day) >= 1 && weekday(day) <= 5 && !holidays.has(day);
    fc.assert(
      fc.property(fc.integer({ min: START_2026, max: END_2027 }), (t) => {
        const day = istDay(t);
        const minute = istMinuteOfDay(t);
        const expected = tradingDay(day) && minute >= 9 * 60 + 15 && minute < 15 * 60 + 30;
        assert.equal(nse.isOpen(t), expected, formatIst(t));

        const session = nse.currentOrNextSession(t)!;
        assert.ok(session.close_ms > t);
        assert.ok(tradingDay(session.day));
        // No trading day is skipped between t's day and the session's day.
        for (let d = day; d < session.day; d = addDays(d, 1)) {
          if (d === day && nse.sessionOn(d) !== undefined) {
            assert.ok(nse.sessionOn(d)!.close_ms <= t, "today's session is over");
          } else assert.equal(tradingDay(d), false, `${d} would trade`);
        }
        const next = nse.nextOpen(t)!;
        assert.ok(next > t);
        assert.equal(nse.isOpen(next), true);
        assert.equal(nse.isOpen(next - 1), false);
        const expiry = nse.dayOrderExpiry(t)!;
        assert.equal(nse.isOpen(expiry - 1), true);
        assert.equal(nse.isOpen(expiry), false);
        // An AMO window never overlaps the session.
        if (nse.isAmoWindow(t)) assert.equal(nse.isOpen(t), false);
      }),
      { numRuns: 3000 },
    );
  });

  it("answers from its session cache exactly as a fresh calendar does, along clocks that step and jump (property)", function () {
    const settings = { special_sessions: [{ date: "2026-12-06", open: "18:00", close: "19:00" }] };
    const step = fc.oneof(
      fc.integer({ min: 0, max: 120_000 }),
      fc.integer({ min: 0, max: 3 * 86_400_000 }),
      fc.integer({ min: -86_400_000, max: 0 }), // a clock set back
    );
    fc.assert(
      fc.property(
        fc.integer({ min: ist("2026-11-20 00:00"), max: ist("2026-12-31 00:00") }),
        fc.array(step, { maxLength: 60 }),
        (start, steps) => {
          const cached = new TradingCalendar(settings);
          let t = start;
          for (const dt of [0, ...steps]) {
            t += dt;
            const fresh = new TradingCalendar(settings);
            assert.deepEqual(cached.currentOrNextSession(t), fresh.currentOrNextSession(t), formatIst(t));
            assert.equal(cached.isOpen(t), fresh.isOpen(t));
            assert.equal(cached.nextOpen(t), fresh.nextOpen(t));
            assert.equal(cached.isAmoWindow(t, "derivatives"), fresh.isAmoWindow(t, "derivatives"));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("hands out sessions that cannot be changed by the caller", function () {
    const session = nse.currentOrNextSession(ist("2026-12-07 10:00"))!;
    assert.throws(() => {
      (session as { close_ms: number }).close_ms = 0;
    }, TypeError);
    assert.equal(nse.nextClose(ist("2026-12-07 10:00")), ist("2026-12-07 15:30"));
  });

  it("gives the same answers whatever the host's time zone (child processes with TZ set)", function () {
    const entry = path.join(__dirname, "../../lib/market/index.js");
    const script = `
      const m = require(${JSON.stringify(entry)});
      const cal = new m.TradingCalendar();
      const out = [];
      for (let t = Date.parse("2026-03-07T00:00:00Z"); t < Date.parse("2026-03-10T00:00:00Z"); t += 7 * 60000) {
        out.push([m.istDay(t), cal.isOpen(t), cal.nextOpen(t), cal.isAmoWindow(t)]);
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const run = (tz: string) =>
      execFileSync(process.execPath, ["-e", script], { env: { ...process.env, TZ: tz } }).toString();
    const utc = run("UTC");
    // New York changes to daylight time on 2026-03-08, inside the window.
    for (const tz of ["Asia/Kolkata", "America/New_York", "Pacific/Chatham"]) assert.equal(run(tz), utc, tz);
    assert.ok(JSON.parse(utc).length > 600);
  });
});
