import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ChargeRates,
  NO_CHARGES,
  ZERODHA_NSE_2026,
  addCharges,
  chargeCategory,
  fillCharges,
  netPnl,
  orderCharges,
  roundTrip,
} from "../../lib/market";
import type { Charges } from "../../lib/market";

const Z = ZERODHA_NSE_2026;

describe("market: charges", function () {
  it("equity intraday round trip, worked by hand: BUY 100 INFY @ 1500, SELL @ 1510 (MIS)", function () {
    // BUY turnover ₹1,50,000 = 1,50,00,000 paise.
    //   brokerage 0.03% = ₹45, capped at ₹20           → 2000
    //   STT (intraday: sell side only)                  → 0
    //   exchange 0.00297% = 445.5 paise, half up        → 446
    //   SEBI ₹10/crore = 15 paise                       → 15
    //   stamp 0.003% = 450 paise                        → 450
    //   GST 18% of (2000 + 446 + 15 = 2461) = 442.98    → 443
    //   total                                           → 3354 (₹33.54)
    assert.deepEqual(orderCharges(Z.equity_intraday, "BUY", 15_000_000), {
      brokerage: 2000,
      stt: 0,
      exchange: 446,
      sebi: 15,
      stamp: 450,
      gst: 443,
      total: 3354,
    });
    // SELL turnover ₹1,51,000 = 1,51,00,000 paise.
    //   brokerage ₹45.30 capped                         → 2000
    //   STT 0.025% = ₹37.75, to the nearest rupee ₹38   → 3800
    //   exchange 448.47                                 → 448
    //   SEBI 15.1                                       → 15
    //   stamp (buy side only)                           → 0
    //   GST 18% of (2000 + 448 + 15 = 2463) = 443.34    → 443
    //   total                                           → 6706 (₹67.06)
    const sell = orderCharges(Z.equity_intraday, "SELL", 15_100_000);
    assert.deepEqual(sell, {
      brokerage: 2000,
      stt: 3800,
      exchange: 448,
      sebi: 15,
      stamp: 0,
      gst: 443,
      total: 6706,
    });
    // Gross ₹1,000; charges ₹100.60 (the calculator's formulas on the whole round trip give the same); net ₹899.40.
    const total = addCharges(orderCharges(Z.equity_intraday, "BUY", 15_000_000), sell).total;
    assert.equal(total, 10_060);
    assert.deepEqual(netPnl(100_000, total), { gross: 100_000, charges: 10_060, net: 89_940 });
    const trip = roundTrip(Z.equity_intraday, 100, 150_000, 151_000);
    assert.deepEqual(
      [trip.gross, trip.buy.total, trip.sell.total, trip.charges, trip.net],
      [100_000, 3354, 6706, 10_060, 89_940],
    );
    // The losing way round, BUY 1510 and SELL 1500, by hand: buy 1,51,00,000 paise → 2000 + 448 +
    // 15 + stamp 453 + GST 443 = 3359; sell 1,50,00,000 → 2000 + STT ₹37.50 → ₹38 + 446 + 15 + 443
    // = 6704; gross −1,00,000, net −1,10,063.
    const losing = roundTrip(Z.equity_intraday, 100, 151_000, 150_000);
    assert.deepEqual(
      [losing.gross, losing.buy.total, losing.sell.total, losing.net],
      [-100_000, 3359, 6704, -110_063],
    );
  });

  it("options round trip, worked by hand: BUY 65 NIFTY 26000 CE @ 120, SELL @ 150", function () {
    // BUY premium 65 × ₹120 = ₹7,800 = 7,80,000 paise.
    //   brokerage flat ₹20                              → 2000
    //   exchange 0.03503% = 273.234                     → 273
    //   SEBI 0.78                                       → 1
    //   stamp 0.003% = 23.4                             → 23
    //   GST 18% of 2274 = 409.32                        → 409
    //   total                                           → 2706
    assert.equal(orderCharges(Z.options, "BUY", 780_000).total, 2706);
    // SELL premium 65 × ₹150 = ₹9,750 = 9,75,000 paise.
    //   STT 0.15% = ₹14.625, to the rupee ₹15           → 1500
    //   exchange 341.5425                               → 342
    //   SEBI 0.975                                      → 1
    //   GST 18% of (2000 + 342 + 1) = 421.74            → 422
    //   total 2000 + 1500 + 342 + 1 + 422               → 4265
    assert.deepEqual(orderCharges(Z.options, "SELL", 975_000), {
      brokerage: 2000,
      stt: 1500,
      exchange: 342,
      sebi: 1,
      stamp: 0,
      gst: 422,
      total: 4265,
    });
  });

  it("delivery buy, worked by hand: BUY 10 TCS @ 3000 (CNC)", function () {
    // Turnover ₹30,000 = 30,00,000 paise: brokerage 0; STT 0.1% = ₹30 → 3000; exchange 89.1 → 89;
    // SEBI 3; stamp 0.015% = 450; GST 18% of (0 + 89 + 3) = 16.56 → 17; total 3559.
    assert.deepEqual(orderCharges(Z.equity_delivery, "BUY", 3_000_000), {
      brokerage: 0,
      stt: 3000,
      exchange: 89,
      sebi: 3,
      stamp: 450,
      gst: 17,
      total: 3559,
    });
  });

  it("futures: brokerage 0.03% below the cap, STT 0.05% on the sell side", function () {
    // SELL turnover ₹50,000 = 50,00,000 paise: brokerage 0.03% = ₹15 (under the ₹20 cap) → 1500;
    // STT 0.05% = ₹25 → 2500; exchange 0.00173% = 86.5 → 87; SEBI 5; GST 18% of 1592 = 286.56 → 287.
    assert.deepEqual(orderCharges(Z.futures, "SELL", 5_000_000), {
      brokerage: 1500,
      stt: 2500,
      exchange: 87,
      sebi: 5,
      stamp: 0,
      gst: 287,
      total: 4379,
    });
  });

  it("rounds STT to the rupee once, from the exact amount (₹37.495 → ₹37, ₹37.50 → ₹38)", function () {
    // 0.025% of 1,49,98,000 paise = 3749.5 paise exactly: rounding to paise first (3750) and then
    // to rupees would give ₹38; the rule rounds the exact ₹37.495 to ₹37.
    assert.equal(orderCharges(Z.equity_intraday, "SELL", 14_998_000).stt, 3700);
    assert.equal(orderCharges(Z.equity_intraday, "SELL", 15_000_000).stt, 3800);
  });

  it("charges nothing for an order with no fill, and nothing at all with NO_CHARGES", function () {
    assert.equal(orderCharges(Z.options, "BUY", 0).total, 0);
    assert.equal(orderCharges(NO_CHARGES.equity_intraday, "SELL", 123_456_789).total, 0);
  });

  it("maps segment and product to the schedule's line", function () {
    assert.equal(chargeCategory("EQ", "MIS"), "equity_intraday");
    assert.equal(chargeCategory("EQ", "CNC"), "equity_delivery");
    assert.equal(chargeCategory("FUT", "NRML"), "futures");
    assert.equal(chargeCategory("OPT", "MIS"), "options");
  });

  it("stays exact for turnovers whose rate products pass 2^53 (BigInt path)", function () {
    // ₹10,000 crore of sell turnover: 10^13 paise × 15000 = 1.5 × 10^17 > 2^53.
    const c = orderCharges(Z.options, "SELL", 10_000_000_000_000);
    // STT 0.15% of ₹10^11 = ₹15 crore = 1.5 × 10^10 paise; exchange 0.03503% = 3.503 × 10^9 paise.
    assert.equal(c.stt, 15_000_000_000);
    assert.equal(c.exchange, 3_503_000_000);
  });

  it("refuses rates that are not whole rupees per crore", function () {
    const bad = ChargeRates.safeParse({ ...Z.futures, exchange_per_crore: 173.5 });
    assert.equal(bad.success, false);
    assert.match(bad.error.issues[0]!.message, /whole number of rupees per crore/);
  });

  const side = fc.constantFrom("BUY" as const, "SELL" as const);
  const category = fc.constantFrom(
    "equity_intraday" as const,
    "equity_delivery" as const,
    "futures" as const,
    "options" as const,
  );
  const fills = fc.array(fc.integer({ min: 1, max: 50_000_000_000 }), { minLength: 1, maxLength: 30 });

  it("per-fill charges add up exactly to the order's charges, each line non-negative (property)", function () {
    fc.assert(
      fc.property(category, side, fills, (cat, s, parts) => {
        const rates = Z[cat];
        let before = 0;
        let sum: Charges = { brokerage: 0, stt: 0, exchange: 0, sebi: 0, stamp: 0, gst: 0, total: 0 };
        for (const part of parts) {
          const increment = fillCharges(rates, s, before, part);
          for (const value of Object.values(increment)) assert.ok(Number.isSafeInteger(value) && value >= 0);
          sum = addCharges(sum, increment);
          before += part;
        }
        assert.deepEqual(sum, orderCharges(rates, s, before));
      }),
      { numRuns: 1000 },
    );
  });

  it("every line is a whole paisa, STT a whole rupee, and the total is their sum (property)", function () {
    fc.assert(
      fc.property(category, side, fc.integer({ min: 0, max: 9e15 }), (cat, s, turnover) => {
        const c = orderCharges(Z[cat], s, turnover);
        for (const value of Object.values(c)) assert.ok(Number.isSafeInteger(value) && value >= 0);
        assert.equal(c.stt % 100, 0);
        assert.equal(c.total, c.brokerage + c.stt + c.exchange + c.sebi + c.stamp + c.gst);
        // Against a BigInt reference for one line: exchange = round half up (turnover × rate / 10^7).
        const exact = BigInt(turnover) * BigInt(Z[cat].exchange_per_crore);
        const q = exact / 10_000_000n;
        const expected = 2n * (exact - q * 10_000_000n) >= 10_000_000n ? q + 1n : q;
        assert.equal(BigInt(c.exchange), expected);
      }),
      { numRuns: 1000 },
    );
  });
});
