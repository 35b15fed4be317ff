import assert from "node:assert/strict";
import fc from "fast-check";
import { BrokerError } from "../../lib/protocol";
import {
  InstrumentRegistry,
  InstrumentSpec,
  checkTick,
  instrumentFromKiteRow,
  priceBand,
} from "../../lib/market";
import type { Instrument } from "../../lib/market";

function instrument(tick_size: number, band_pct?: number): Instrument {
  return InstrumentSpec.parse({ exchange: "NSE", symbol: "TEST", segment: "EQ", tick_size, band_pct });
}

describe("market: instruments", function () {
  const nse = new InstrumentRegistry();

  it("knows the built-in NSE list: equities on a 0.05 tick, index derivatives with lots, indices not tradable", function () {
    for (const symbol of ["INFY", "TCS", "RELIANCE", "HDFCBANK", "SBIN"]) {
      const i = nse.get("NSE", symbol)!;
      assert.equal(i.tick_size, 0.05);
      assert.equal(i.lot_size, 1);
      assert.equal(i.tradable, true);
    }
    assert.equal(nse.get("NFO", "NIFTY26DECFUT")!.lot_size, 65);
    assert.equal(nse.get("NFO", "BANKNIFTY26DECFUT")!.lot_size, 30);
    assert.equal(nse.get("NFO", "NIFTY26DEC26000CE")!.strike, 26000);
    assert.equal(nse.get("NSE", "NIFTY 50")!.tradable, false);
  });

  it("refuses a price off the tick, naming the field, the value and the rule", function () {
    const order = { exchange: "NSE" as const, symbol: "INFY", quantity: 1 };
    assert.equal(nse.checkOrder({ ...order, price: 1500.05 }), undefined);
    assert.equal(nse.checkOrder({ ...order, price: 1500 }), undefined);
    const off = nse.checkOrder({ ...order, price: 1500.03 });
    assert.ok(off instanceof BrokerError);
    assert.equal(off.code, "VALIDATION");
    assert.equal(off.message, "price: 1500.03 is not a multiple of the tick size 0.05 for NSE:INFY");
    assert.equal(
      nse.checkOrder({ ...order, price: 1500.051 })?.code,
      "VALIDATION",
      "a third decimal is off any tick",
    );
    assert.equal(
      nse.checkOrder({ ...order, price: 1500, trigger_price: 1499.99 })?.message,
      "trigger_price: 1499.99 is not a multiple of the tick size 0.05 for NSE:INFY",
    );
  });

  it("refuses a quantity that is not a whole number of lots", function () {
    const fut = { exchange: "NFO" as const, symbol: "NIFTY26DECFUT" };
    assert.equal(nse.checkOrder({ ...fut, quantity: 130 }), undefined);
    assert.equal(
      nse.checkOrder({ ...fut, quantity: 100 })?.message,
      "quantity: 100 is not a multiple of the lot size 65 for NFO:NIFTY26DECFUT",
    );
  });

  it("refuses a LIMIT price outside the band (ORDER_REJECTED) and accepts its edges", function () {
    const infy = { exchange: "NSE" as const, symbol: "INFY", quantity: 1 };
    const ref = { reference_price: 1500 };
    assert.equal(nse.checkOrder({ ...infy, price: 1650 }, ref), undefined);
    assert.equal(nse.checkOrder({ ...infy, price: 1350 }, ref), undefined);
    const high = nse.checkOrder({ ...infy, price: 1650.05 }, ref);
    assert.equal(high?.code, "ORDER_REJECTED");
    assert.equal(
      high?.message,
      "price: 1650.05 is outside the price band 1350 to 1650 (±10% of the reference price 1500) for NSE:INFY",
    );
    assert.equal(nse.checkOrder({ ...infy, price: 1349.95 }, ref)?.code, "ORDER_REJECTED");
    // Without a reference price there is nothing to measure the band from.
    assert.equal(nse.checkOrder({ ...infy, price: 5000 }), undefined);
  });

  it("narrows a band onto the tick grid: 1234.56 ± 10% → 1111.15 to 1358.00", function () {
    // Exact band: 1234.56 × 0.9 = 1111.104 and × 1.1 = 1358.016; the lower edge rounds up to the
    // next tick (1111.15), the upper edge down (1358.00).
    assert.deepEqual(priceBand(instrument(0.05, 10), 1234.56), { lower_paise: 111115, upper_paise: 135800 });
  });

  it("refuses unknown symbols unless allowed or added by the user", function () {
    const unknown = nse.checkOrder({ exchange: "NSE", symbol: "ZZZZ", quantity: 1, price: 10 });
    assert.equal(unknown?.code, "VALIDATION");
    assert.match(unknown.message, /^symbol: NSE:ZZZZ is not a known instrument/);
    const open = new InstrumentRegistry({ allow_unknown: true });
    assert.equal(open.checkOrder({ exchange: "NSE", symbol: "ZZZZ", quantity: 3, price: 10.01 }), undefined);
    const mine = new InstrumentRegistry({
      extra: [{ exchange: "NSE", symbol: "ZZZZ", segment: "EQ", tick_size: 0.1, lot_size: 5 }],
    });
    assert.equal(mine.checkOrder({ exchange: "NSE", symbol: "ZZZZ", quantity: 10, price: 10.1 }), undefined);
    assert.equal(
      mine.checkOrder({ exchange: "NSE", symbol: "ZZZZ", quantity: 10, price: 10.05 })?.code,
      "VALIDATION",
    );
    nse.add({ exchange: "BSE", symbol: "INFY", segment: "EQ", tick_size: 0.05 });
    assert.equal(nse.checkOrder({ exchange: "BSE", symbol: "INFY", quantity: 1, price: 1 }), undefined);
  });

  it("refuses an index and an expired contract", function () {
    assert.equal(
      nse.checkOrder({ exchange: "NSE", symbol: "NIFTY 50", quantity: 1 })?.message,
      "symbol: NSE:NIFTY 50 is an index and cannot be traded",
    );
    const fut = { exchange: "NFO" as const, symbol: "NIFTY26DECFUT", quantity: 65 };
    // Expiry day itself still trades (until 15:30 IST); the next IST day does not.
    assert.equal(nse.checkOrder(fut, { now_ms: Date.parse("2026-12-29T15:00:00+05:30") }), undefined);
    assert.equal(
      nse.checkOrder(fut, { now_ms: Date.parse("2026-12-30T00:00:00+05:30") })?.message,
      "symbol: NFO:NIFTY26DECFUT expired on 2026-12-29",
    );
  });

  it("skips each rule when it is switched off", function () {
    const loose = new InstrumentRegistry({ enforce_tick: false, enforce_lot: false, enforce_band: false });
    assert.equal(
      loose.checkOrder(
        { exchange: "NFO", symbol: "NIFTY26DECFUT", quantity: 7, price: 26000.01 },
        { reference_price: 1 },
      ),
      undefined,
    );
  });

  it("refuses a bad instrument spec naming the field", function () {
    assert.throws(() => nse.add({ exchange: "NSE", symbol: "X", segment: "EQ", tick_size: 0.001 }), {
      code: "VALIDATION",
      message: "instrument.tick_size: must be a whole number of paise (at most 2 decimals)",
    });
    assert.throws(() => nse.add({ exchange: "NFO", symbol: "X", segment: "FUT", tick_size: 0.05 }), {
      message: "instrument.expiry: is required for FUT",
    });
    assert.throws(
      () =>
        nse.add({
          exchange: "NFO",
          symbol: "X",
          segment: "OPT",
          tick_size: 0.05,
          expiry: "2026-12-29",
          strike: 100,
        }),
      { message: "instrument.option_type: is required for OPT" },
    );
    assert.throws(
      () => nse.add({ exchange: "NSE", symbol: "X", segment: "EQ", tick_size: 0.05, lot_size: 0 }),
      {
        message: "instrument.lot_size: must be greater than 0",
      },
    );
  });

  it("reads Kite instrument-list rows (strings from the CSV) and skips what it cannot trade", function () {
    const opt = instrumentFromKiteRow({
      instrument_token: "123",
      tradingsymbol: "NIFTY26DEC26000PE",
      name: "NIFTY",
      expiry: "2026-12-29",
      strike: "26000",
      tick_size: "0.05",
      lot_size: "65",
      instrument_type: "PE",
      segment: "NFO-OPT",
      exchange: "NFO",
    });
    assert.equal(opt?.segment, "OPT");
    assert.equal(opt?.option_type, "PE");
    assert.equal(opt?.lot_size, 65);
    const index = instrumentFromKiteRow({
      tradingsymbol: "NIFTY 50",
      instrument_type: "EQ",
      segment: "INDICES",
      exchange: "NSE",
      tick_size: "0",
    });
    assert.equal(index?.tradable, false);
    assert.equal(
      instrumentFromKiteRow({
        tradingsymbol: "X",
        instrument_type: "EQ",
        segment: "NSE",
        exchange: "NSEIX",
        tick_size: "0.05",
      }),
      undefined,
    );
    assert.equal(instrumentFromKiteRow({}), undefined);
  });

  it("loads Kite's instrument list over the built-in entries, skipping rows it cannot use", function () {
    const registry = new InstrumentRegistry();
    const added = registry.addKiteRows([
      {
        tradingsymbol: "INFY",
        exchange: "NSE",
        segment: "NSE",
        instrument_type: "EQ",
        tick_size: "0.1",
        lot_size: "1",
      },
      {
        tradingsymbol: "ITC",
        exchange: "NSE",
        segment: "NSE",
        instrument_type: "EQ",
        tick_size: "0.05",
        lot_size: "1",
      },
      { tradingsymbol: "", exchange: "NSE", segment: "NSE", instrument_type: "EQ", tick_size: "0.05" },
      { tradingsymbol: "X", exchange: "NSE", segment: "NSE", instrument_type: "EQ", tick_size: "0.001" },
      null,
      "INFY",
    ]);
    assert.equal(added, 2);
    assert.equal(registry.get("NSE", "INFY")!.tick_size, 0.1, "Kite's figure wins");
    assert.equal(
      registry.checkOrder({ exchange: "NSE", symbol: "ITC", quantity: 1, price: 400.05 }),
      undefined,
    );
  });

  it("accepts every whole number of ticks and refuses every price between ticks (property)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 2_000_000 }),
        fc.integer({ min: 1, max: 999 }),
        (tick, k, between) => {
          const inst = instrument(tick / 100);
          assert.equal(checkTick(inst, (k * tick) / 100), undefined);
          if (between < tick) assert.ok(checkTick(inst, (k * tick + between) / 100) instanceof BrokerError);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("accepts a price reached by adding ticks in floating point (property)", function () {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (n) => {
        let price = 0;
        for (let i = 0; i < n; i++) price += 0.05;
        assert.equal(checkTick(instrument(0.05), price), undefined, String(price));
      }),
      { numRuns: 200 },
    );
  });

  it("admits exactly the on-tick prices inside the exact band (property)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: -3000, max: 3000 }),
        (tick, refPaise, bandBps, offsetTicks) => {
          const inst = instrument(tick / 100, bandBps / 100);
          const band = priceBand(inst, refPaise / 100)!;
          assert.equal(band.lower_paise % tick, 0);
          assert.equal(band.upper_paise % tick, 0);
          // Inside the exact band, using integer arithmetic only.
          assert.ok(band.upper_paise * 10_000 <= refPaise * (10_000 + bandBps));
          assert.ok(band.lower_paise * 10_000 >= refPaise * (10_000 - bandBps) || band.lower_paise === tick);
          // The next tick out on either side is outside the exact band.
          assert.ok((band.upper_paise + tick) * 10_000 > refPaise * (10_000 + bandBps));
          const price = band.lower_paise + offsetTicks * tick;
          if (price <= 0) return;
          const registry = new InstrumentRegistry({ builtin: false, extra: [inst] });
          const refused = registry.checkOrder(
            { exchange: "NSE", symbol: "TEST", quantity: 1, price: price / 100 },
            { reference_price: refPaise / 100 },
          );
          const inside = price >= band.lower_paise && price <= band.upper_paise;
          assert.equal(refused === undefined, inside, `${price} in ${band.lower_paise}..${band.upper_paise}`);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
