import assert from "node:assert/strict";
import fc from "fast-check";
import { BrokerError } from "../../lib/protocol";
import {
  MarketModel,
  NSE_HOLIDAYS,
  NSE_INSTRUMENTS,
  PRESETS,
  ZERODHA_NSE_2026,
  parseMarketSettings,
} from "../../lib/market";
import type { MarketAdmission } from "../../lib/market";

function ist(text: string): number {
  return Date.parse(`${text.replace(" ", "T")}+05:30`);
}

function admitted(result: MarketAdmission | BrokerError): MarketAdmission {
  if (result instanceof BrokerError) throw result;
  return result;
}

const SATURDAY_NIGHT = ist("2026-12-05 03:00");
const MONDAY_10 = ist("2026-12-07 10:00");

describe("market: settings and the model", function () {
  it("defaults to the relaxed preset, which is the paper broker as it was", function () {
    const s = parseMarketSettings();
    assert.equal(s.preset, "relaxed");
    const relaxed = new MarketModel();
    // Round the clock, any symbol, any price and quantity.
    const a = admitted(
      relaxed.admit(
        { exchange: "NSE", symbol: "ZZZZ", side: "BUY", product: "CNC", quantity: 7, price: 12.34 },
        SATURDAY_NIGHT,
      ),
    );
    assert.equal(a.session.kind, "open");
    assert.equal(a.session.session, undefined, "no close, so DAY orders never expire");
    // No charges, cash-only funds, infinite liquidity.
    assert.equal(relaxed.orderCharges(a.instrument, "MIS", "SELL", 123_456_789).total, 0);
    const m = relaxed.margin({
      side: "SELL",
      product: "MIS",
      segment: "EQ",
      quantity: 10,
      price_paise: 100,
      position_quantity: 0,
    });
    assert.ok(!(m instanceof BrokerError));
    assert.deepEqual([m.blocked_paise, m.proceeds_spendable], [0, true]);
    const fills = relaxed
      .liquidity({ last_price: 10.001 }, a.instrument)
      .take({ side: "BUY", order_type: "MARKET", quantity: 1e9 });
    assert.deepEqual(fills.fills, [{ price_paise: 1001, quantity: 1e9 }]);
  });

  it("applies NSE's rules under the nse preset", function () {
    const nse = new MarketModel({ preset: "nse" });
    const infy = {
      exchange: "NSE" as const,
      symbol: "INFY",
      side: "BUY" as const,
      product: "MIS" as const,
      quantity: 10,
      price: 1500,
    };
    assert.equal(admitted(nse.admit(infy, MONDAY_10)).session.kind, "open");
    const closed = nse.admit(infy, SATURDAY_NIGHT);
    assert.ok(closed instanceof BrokerError && closed.code === "ORDER_REJECTED");
    assert.match(closed.message, /^market hours: NSE is closed/);
    // As an AMO on Saturday noon it waits for Monday's open.
    const amo = admitted(nse.admit({ ...infy, amo: true }, ist("2026-12-05 12:00")));
    assert.equal(amo.session.kind, "amo");
    assert.equal(amo.session.session?.open_ms, ist("2026-12-07 09:15"));
    // Instrument rules come first: a bad tick is a VALIDATION error even at night.
    assert.equal((nse.admit({ ...infy, price: 1500.01 }, SATURDAY_NIGHT) as BrokerError).code, "VALIDATION");
    assert.equal((nse.admit({ ...infy, symbol: "ZZZZ" }, MONDAY_10) as BrokerError).code, "VALIDATION");
    // No new MIS after the 15:20 square-off; CNC still goes in.
    const late = nse.admit(infy, ist("2026-12-07 15:25"));
    assert.ok(late instanceof BrokerError);
    assert.equal(late.message, "product: MIS orders are not accepted after the intraday square-off time");
    assert.equal(
      admitted(nse.admit({ ...infy, product: "CNC" }, ist("2026-12-07 15:25"))).session.kind,
      "open",
    );
    // Zerodha's charges and Kite's margin.
    const i = nse.instruments.get("NSE", "INFY")!;
    assert.equal(nse.orderCharges(i, "MIS", "BUY", 15_000_000).total, 3354);
    const m = nse.margin({
      side: "SELL",
      product: "MIS",
      segment: "EQ",
      quantity: 10,
      price_paise: 150_000,
      position_quantity: 0,
    });
    assert.ok(!(m instanceof BrokerError));
    assert.deepEqual([m.blocked_paise, m.proceeds_spendable], [300_000, false]);
    // Finite liquidity on the instrument's tick.
    const book = nse.liquidity({ last_price: 1500.02, ask: 1500.02, ask_size: 3 }, i);
    assert.deepEqual(
      book.take({ side: "BUY", order_type: "LIMIT", quantity: 5, limit_paise: 150_005 }).fills,
      [{ price_paise: 150_005, quantity: 3 }],
    );
  });

  it("merges the user's values over the preset, one field at a time", function () {
    const s = parseMarketSettings({
      preset: "nse",
      calendar: { extra_holidays: ["2026-12-07"] },
      charges: { schedule: { options: { brokerage_flat_paise: 1500 } } },
      margin: { mis_leverage: 4 },
    });
    assert.equal(s.charges.schedule.options.brokerage_flat_paise, 1500);
    assert.equal(s.charges.schedule.options.stt_sell_per_crore, ZERODHA_NSE_2026.options.stt_sell_per_crore);
    assert.deepEqual(s.charges.schedule.futures, ZERODHA_NSE_2026.futures);
    assert.equal(s.margin.mis_leverage, 4);
    assert.equal(s.margin.model, "kite");
    assert.equal(new MarketModel(s).calendar.isOpen(MONDAY_10), false);
    // The relaxed preset with one NSE rule switched on.
    const mixed = new MarketModel({ preset: "relaxed", instruments: { enforce_tick: true } });
    assert.equal(mixed.calendar.isOpen(SATURDAY_NIGHT), true);
    assert.equal(
      (
        mixed.admit(
          { exchange: "NSE", symbol: "INFY", side: "BUY", product: "CNC", quantity: 1, price: 1.03 },
          0,
        ) as BrokerError
      ).message,
      "price: 1.03 is not a multiple of the tick size 0.05 for NSE:INFY",
    );
  });

  it("refuses bad settings with CONFIG naming the path and the rule", function () {
    const cases: [unknown, string][] = [
      ["nse", "market: must be an object"],
      [{ preset: "bse" }, "market.preset: must be relaxed or nse"],
      [
        { preset: "nse", calender: {} },
        "market.calender: is not a setting (known: preset, calendar, instruments, charges, margin, liquidity)",
      ],
      [{ calendar: [] }, "market.calendar: must be an object"],
      [
        { preset: "nse", calendar: { open: "9:15" } },
        "market.calendar.open: must be a time written HH:MM (00:00 to 23:59)",
      ],
      [{ margin: { mis_leverage: 0.5 } }, "market.margin.mis_leverage: must be at least 1"],
      [
        { charges: { schedule: { futures: { gst_bps: 1.5 } } } },
        "market.charges.schedule.futures.gst_bps: must be a whole number",
      ],
      [
        { instruments: { extra: [{ exchange: "NSE", symbol: "X", segment: "EQ", tick_size: 0.001 }] } },
        "market.instruments.extra.0.tick_size: must be a whole number of paise (at most 2 decimals)",
      ],
      [
        { liquidity: { market_depth_levels: 51 } },
        "market.liquidity.market_depth_levels: must be at most 50",
      ],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseMarketSettings(input), { code: "CONFIG", message }, JSON.stringify(input));
    }
  });

  it("survives a JSON round trip: what the broker-config node stores parses to the same settings", function () {
    for (const preset of ["relaxed", "nse"] as const) {
      const s = parseMarketSettings({ preset });
      assert.deepEqual(parseMarketSettings(JSON.parse(JSON.stringify(s))), s);
    }
  });

  it("keeps the built-in tables frozen: a stray write throws and no other account sees it", function () {
    const nse = new MarketModel({ preset: "nse" });
    const i = nse.instruments.get("NSE", "INFY")!;
    assert.throws(() => {
      (ZERODHA_NSE_2026.options as { brokerage_flat_paise?: number }).brokerage_flat_paise = 0;
    }, TypeError);
    assert.throws(() => (NSE_HOLIDAYS as string[]).push("2026-12-07"), TypeError);
    assert.throws(() => {
      (NSE_INSTRUMENTS[0] as { tick_size: number }).tick_size = 1;
    }, TypeError);
    assert.throws(() => {
      (PRESETS.relaxed.calendar as { always_open?: boolean }).always_open = false;
    }, TypeError);
    assert.equal(new MarketModel({ preset: "nse" }).orderCharges(i, "MIS", "BUY", 15_000_000).total, 3354);
    assert.equal(new MarketModel().calendar.isOpen(SATURDAY_NIGHT), true);
  });

  it("never throws on hostile settings: a value or a CONFIG error (property)", function () {
    fc.assert(
      fc.property(fc.anything(), fc.constantFrom("relaxed", "nse"), (junk, preset) => {
        for (const input of [
          junk,
          { preset, calendar: junk },
          { preset, charges: { schedule: junk } },
          { preset, margin: junk },
        ]) {
          try {
            parseMarketSettings(input);
          } catch (error) {
            assert.ok(error instanceof BrokerError && error.code === "CONFIG", String(error));
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
