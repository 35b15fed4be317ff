import assert from "node:assert/strict";
import fc from "fast-check";
import { BrokerError } from "../../lib/protocol";
import { MarginSettings, orderMargin } from "../../lib/market";
import type { MarginOrder, MarginRequirement } from "../../lib/market";

const kite = MarginSettings.parse({});
const cash = MarginSettings.parse({ model: "cash" });

function ok(result: MarginRequirement | BrokerError): MarginRequirement {
  if (result instanceof BrokerError) throw result;
  return result;
}

const infy = (over: Partial<MarginOrder>): MarginOrder => ({
  side: "BUY",
  product: "MIS",
  segment: "EQ",
  quantity: 100,
  price_paise: 150_000,
  position_quantity: 0,
  ...over,
});

describe("market: margin", function () {
  it("blocks value ÷ leverage for MIS on either side; a short's proceeds are not spendable", function () {
    // 100 × ₹1,500 = ₹1,50,000 = 1,50,00,000 paise; ÷ 5 = 30,00,000 paise (₹30,000).
    assert.deepEqual(ok(orderMargin(kite, infy({}))), {
      blocked_paise: 3_000_000,
      opening_quantity: 100,
      closing_quantity: 0,
      proceeds_spendable: true,
    });
    assert.deepEqual(ok(orderMargin(kite, infy({ side: "SELL" }))), {
      blocked_paise: 3_000_000,
      opening_quantity: 100,
      closing_quantity: 0,
      proceeds_spendable: false,
    });
    const tenX = MarginSettings.parse({ mis_leverage: 10 });
    assert.equal(ok(orderMargin(tenX, infy({}))).blocked_paise, 1_500_000);
  });

  it("blocks nothing for the part that closes a position, and margin only for the rest", function () {
    assert.equal(ok(orderMargin(kite, infy({ position_quantity: -100 }))).blocked_paise, 0);
    // Short 100, BUY 150: 100 close, 50 open long → 50 × 1,50,000 ÷ 5 = 15,00,000.
    assert.deepEqual(ok(orderMargin(kite, infy({ quantity: 150, position_quantity: -100 }))), {
      blocked_paise: 1_500_000,
      opening_quantity: 50,
      closing_quantity: 100,
      proceeds_spendable: true,
    });
    // Long 100, SELL 100: all closing, proceeds spendable.
    assert.equal(
      ok(orderMargin(kite, infy({ side: "SELL", position_quantity: 100 }))).proceeds_spendable,
      true,
    );
  });

  it("pays CNC in full and refuses a CNC short naming the quantity", function () {
    assert.equal(ok(orderMargin(kite, infy({ product: "CNC" }))).blocked_paise, 15_000_000);
    const short = orderMargin(
      kite,
      infy({ product: "CNC", side: "SELL", quantity: 10, position_quantity: 5 }),
    );
    assert.ok(short instanceof BrokerError);
    assert.equal(short.code, "INSUFFICIENT_FUNDS");
    assert.match(short.message, /^quantity: a CNC SELL of 10 with 5 held would sell short/);
    assert.equal(
      ok(orderMargin(kite, infy({ product: "CNC", side: "SELL", quantity: 5, position_quantity: 5 })))
        .blocked_paise,
      0,
    );
  });

  it("blocks futures_margin_pct of a future's value and of a written option's strike value", function () {
    // 65 × ₹26,000 = ₹16,90,000 = 16,90,00,000 paise; 15% = 2,53,50,000 paise.
    const fut: MarginOrder = {
      side: "SELL",
      product: "NRML",
      segment: "FUT",
      quantity: 65,
      price_paise: 2_600_000,
      position_quantity: 0,
    };
    assert.equal(ok(orderMargin(kite, fut)).blocked_paise, 25_350_000);
    const written: MarginOrder = { ...fut, segment: "OPT", price_paise: 15_000, strike_paise: 2_600_000 };
    assert.equal(ok(orderMargin(kite, written)).blocked_paise, 25_350_000);
    assert.equal(ok(orderMargin(kite, written)).proceeds_spendable, false);
    // A bought option pays its premium: 65 × ₹150 = 9,75,000 paise.
    assert.equal(ok(orderMargin(kite, { ...written, side: "BUY" })).blocked_paise, 975_000);
    const noStrike = orderMargin(kite, { ...written, strike_paise: undefined });
    assert.ok(noStrike instanceof BrokerError && noStrike.message.startsWith("strike:"));
  });

  it("rounds a margin up to the paisa, never down", function () {
    // 7 paise ÷ 5 = 1.4 paise → 2.
    assert.equal(ok(orderMargin(kite, infy({ quantity: 1, price_paise: 7 }))).blocked_paise, 2);
  });

  it("keeps today's cash-only rule in the cash model: BUY pays in full, SELL blocks nothing", function () {
    assert.equal(ok(orderMargin(cash, infy({}))).blocked_paise, 15_000_000);
    assert.deepEqual(ok(orderMargin(cash, infy({ side: "SELL" }))), {
      blocked_paise: 0,
      opening_quantity: 100,
      closing_quantity: 0,
      proceeds_spendable: true,
    });
  });

  it("refuses an order whose value cannot be counted exactly", function () {
    assert.throws(() => orderMargin(kite, infy({ quantity: 10_000_000, price_paise: 1e12 })), {
      code: "VALIDATION",
    });
  });

  it("splits every order into closing and opening parts, and blocks monotonically (property)", function () {
    fc.assert(
      fc.property(
        fc.constantFrom("BUY" as const, "SELL" as const),
        fc.constantFrom("MIS" as const, "NRML" as const),
        fc.constantFrom("EQ" as const, "FUT" as const, "OPT" as const),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: -100_000, max: 100_000 }),
        fc.double({ min: 1, max: 50, noNaN: true }),
        (side, product, segment, quantity, price_paise, position_quantity, mis_leverage) => {
          const settings = MarginSettings.parse({ mis_leverage });
          const order: MarginOrder = {
            side,
            product,
            segment,
            quantity,
            price_paise,
            position_quantity,
            strike_paise: 1_000_000,
          };
          const result = orderMargin(settings, order);
          const reduces = side === "BUY" ? position_quantity < 0 : position_quantity > 0;
          const opensShort = side === "SELL" && quantity > Math.max(0, position_quantity);
          if (segment === "EQ" && product === "NRML" && opensShort) {
            // Equity outside MIS is delivery: it cannot open a short.
            assert.ok(result instanceof BrokerError && result.code === "INSUFFICIENT_FUNDS");
            return;
          }
          const m = ok(result);
          assert.equal(m.opening_quantity + m.closing_quantity, quantity);
          assert.equal(m.closing_quantity, reduces ? Math.min(quantity, Math.abs(position_quantity)) : 0);
          assert.ok(Number.isSafeInteger(m.blocked_paise) && m.blocked_paise >= 0);
          if (m.opening_quantity === 0) assert.equal(m.blocked_paise, 0);
          // One more unit never blocks less (or is refused, when it would open an equity short).
          const more = orderMargin(settings, { ...order, quantity: quantity + 1 });
          if (!(more instanceof BrokerError)) assert.ok(more.blocked_paise >= m.blocked_paise);
          // A leveraged MIS equity order never blocks more than paying in full.
          if (segment === "EQ") assert.ok(m.blocked_paise <= m.opening_quantity * price_paise);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
