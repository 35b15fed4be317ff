import assert from "node:assert/strict";
import fc from "fast-check";
import { LiquiditySettings, QuoteLiquidity, tradedSince } from "../../lib/market";
import type { LiquidityOrder, LiquidityQuote } from "../../lib/market";

const TICK = 5; // ₹0.05
const settings = LiquiditySettings.parse({ market_depth_levels: 5, level_size_pct: 50 });
const quote: LiquidityQuote = { last_price: 100, bid: 99.95, ask: 100, bid_size: 300, ask_size: 200 };

describe("market: liquidity", function () {
  it("fills a LIMIT BUY with at most the size at the touch; the next order on the same quote gets what is left", function () {
    const book = new QuoteLiquidity(quote, settings, TICK);
    assert.deepEqual(book.take({ side: "BUY", order_type: "LIMIT", quantity: 150, limit_paise: 10_005 }), {
      fills: [{ price_paise: 10_000, quantity: 150 }],
      filled: 150,
      remaining: 0,
    });
    assert.deepEqual(book.take({ side: "BUY", order_type: "LIMIT", quantity: 150, limit_paise: 10_000 }), {
      fills: [{ price_paise: 10_000, quantity: 50 }],
      filled: 50,
      remaining: 100,
    });
    // The touch is gone: a third LIMIT waits, even with a generous limit (LIMIT does not walk).
    assert.equal(
      book.take({ side: "BUY", order_type: "LIMIT", quantity: 10, limit_paise: 20_000 }).filled,
      0,
    );
  });

  it("does not fill a LIMIT whose price is worse than the touch", function () {
    const book = new QuoteLiquidity(quote, settings, TICK);
    assert.equal(book.take({ side: "BUY", order_type: "LIMIT", quantity: 10, limit_paise: 9_995 }).filled, 0);
    assert.equal(
      book.take({ side: "SELL", order_type: "LIMIT", quantity: 10, limit_paise: 10_000 }).filled,
      0,
    );
    assert.equal(
      book.take({ side: "SELL", order_type: "LIMIT", quantity: 10, limit_paise: 9_995 }).filled,
      10,
    );
  });

  it("walks a MARKET order through the synthetic levels, and leaves the rest waiting", function () {
    // Touch 200 @ 100.00; levels of 50% × 200 = 100 each at 100.05, 100.10, ...
    const book = new QuoteLiquidity(quote, settings, TICK);
    assert.deepEqual(book.take({ side: "BUY", order_type: "MARKET", quantity: 500 }), {
      fills: [
        { price_paise: 10_000, quantity: 200 },
        { price_paise: 10_005, quantity: 100 },
        { price_paise: 10_010, quantity: 100 },
        { price_paise: 10_015, quantity: 100 },
      ],
      filled: 500,
      remaining: 0,
    });
    const big = new QuoteLiquidity(quote, settings, TICK).take({
      side: "SELL",
      order_type: "MARKET",
      quantity: 10_000,
    });
    // 300 at the bid, 5 levels of 150 below it.
    assert.equal(big.filled, 300 + 5 * 150);
    assert.equal(big.remaining, 10_000 - 1_050);
    assert.deepEqual(big.fills.at(-1), { price_paise: 9_995 - 5 * TICK, quantity: 150 });
  });

  it("uses the last price and the default size when the quote has no side or no size", function () {
    const book = new QuoteLiquidity(
      { last_price: 50 },
      LiquiditySettings.parse({ default_touch_size: 7, market_depth_levels: 0 }),
      TICK,
    );
    assert.deepEqual(book.take({ side: "BUY", order_type: "MARKET", quantity: 10 }), {
      fills: [{ price_paise: 5_000, quantity: 7 }],
      filled: 7,
      remaining: 3,
    });
  });

  it("moves an off-tick quote onto the tick grid against the taker", function () {
    const off = { last_price: 100.02, bid: 100.02, ask: 100.02 };
    const book = new QuoteLiquidity(off, settings, TICK);
    assert.equal(book.take({ side: "BUY", order_type: "MARKET", quantity: 1 }).fills[0]!.price_paise, 10_005);
    assert.equal(
      book.take({ side: "SELL", order_type: "MARKET", quantity: 1 }).fills[0]!.price_paise,
      10_000,
    );
  });

  it("never prices a synthetic bid at or below zero", function () {
    // Bid ₹0.10 for 10; the levels hold 5 each at ₹0.05, then ₹0.00 would be next: the ladder stops.
    const book = new QuoteLiquidity({ last_price: 0.1, bid: 0.1, bid_size: 10 }, settings, TICK);
    const result = book.take({ side: "SELL", order_type: "MARKET", quantity: 100 });
    assert.ok(result.fills.every((f) => f.price_paise > 0));
    assert.deepEqual(result.fills, [
      { price_paise: 10, quantity: 10 },
      { price_paise: 5, quantity: 5 },
    ]);
    assert.equal(result.remaining, 85);
  });

  it("fills everything at the touch when liquidity is infinite (relaxed)", function () {
    const book = new QuoteLiquidity(quote, LiquiditySettings.parse({ infinite: true }), 1);
    assert.deepEqual(book.take({ side: "BUY", order_type: "MARKET", quantity: 5_000_000 }), {
      fills: [{ price_paise: 10_000, quantity: 5_000_000 }],
      filled: 5_000_000,
      remaining: 0,
    });
  });

  it("caps all fills from one quote, both sides together, at a share of the volume traded since the last quote", function () {
    const capped = LiquiditySettings.parse({ volume_participation_pct: 10 });
    // 2,345 traded since the previous quote → at most 234 fill from this one.
    const book = new QuoteLiquidity({ ...quote, traded_volume: 2_345 }, capped, TICK);
    assert.equal(book.take({ side: "BUY", order_type: "MARKET", quantity: 200 }).filled, 200);
    assert.deepEqual(book.take({ side: "SELL", order_type: "MARKET", quantity: 100 }), {
      fills: [{ price_paise: 9_995, quantity: 34 }],
      filled: 34,
      remaining: 66,
    });
    assert.equal(book.take({ side: "BUY", order_type: "LIMIT", quantity: 1, limit_paise: 20_000 }).filled, 0);
    // Without traded_volume the cap does not apply; with 0 traded nothing fills.
    assert.equal(
      new QuoteLiquidity(quote, capped, TICK).take({ side: "BUY", order_type: "MARKET", quantity: 200 })
        .filled,
      200,
    );
    assert.equal(
      new QuoteLiquidity({ ...quote, traded_volume: 0 }, capped, TICK).take({
        side: "BUY",
        order_type: "MARKET",
        quantity: 1,
      }).filled,
      0,
    );
  });

  it("derives the traded volume from cumulative volumes, restarting with a new day's count", function () {
    assert.equal(tradedSince(1_000, 1_250), 250);
    assert.equal(tradedSince(90_000, 300), 300, "the day's volume started again");
    assert.equal(tradedSince(undefined, 300), undefined, "no previous quote: unknown");
    assert.equal(tradedSince(100, Number.NaN), undefined);
    assert.equal(tradedSince(100, -5), undefined);
  });

  const orderArb: fc.Arbitrary<LiquidityOrder> = fc.record({
    side: fc.constantFrom("BUY" as const, "SELL" as const),
    order_type: fc.constantFrom("MARKET" as const, "LIMIT" as const),
    quantity: fc.integer({ min: 1, max: 2_000 }),
    limit_paise: fc.integer({ min: 9_900, max: 10_100 }),
  });

  it("never fills more than the quote holds, respects limits and the tick grid, and is deterministic (property)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 300 }),
        fc.array(orderArb, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 100 }),
        fc.option(fc.integer({ min: 0, max: 50_000 }), { nil: undefined }),
        (askSize, bidSize, levels, pct, orders, participation, traded) => {
          const s = LiquiditySettings.parse({
            market_depth_levels: levels,
            level_size_pct: pct,
            volume_participation_pct: participation,
          });
          const q: LiquidityQuote = {
            last_price: 100,
            bid: 99.95,
            ask: 100,
            ask_size: askSize,
            bid_size: bidSize,
            traded_volume: traded,
          };
          const a = new QuoteLiquidity(q, s, TICK);
          const b = new QuoteLiquidity(q, s, TICK);
          const capacity = (size: number) => size + levels * Math.floor((size * pct) / 100);
          const taken = { BUY: 0, SELL: 0 };
          for (const order of orders) {
            const r = a.take(order);
            assert.deepEqual(b.take(order), r, "same quote, same orders, same fills");
            assert.equal(r.filled + r.remaining, order.quantity);
            assert.equal(
              r.fills.reduce((n, f) => n + f.quantity, 0),
              r.filled,
            );
            for (const fill of r.fills) {
              assert.equal(fill.price_paise % TICK, 0);
              assert.ok(fill.quantity > 0);
              if (order.order_type === "LIMIT") {
                assert.ok(
                  order.side === "BUY"
                    ? fill.price_paise <= order.limit_paise!
                    : fill.price_paise >= order.limit_paise!,
                );
              }
            }
            const prices = r.fills.map((f) => f.price_paise);
            const sorted = [...prices].sort((x, y) => (order.side === "BUY" ? x - y : y - x));
            assert.deepEqual(prices, sorted, "a walk only moves away from the touch");
            taken[order.side] += r.filled;
          }
          assert.ok(taken.BUY <= capacity(askSize));
          assert.ok(taken.SELL <= capacity(bidSize));
          if (participation > 0 && traded !== undefined) {
            assert.ok(taken.BUY + taken.SELL <= Math.floor((traded * participation) / 100));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});
