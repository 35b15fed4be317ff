import assert from "node:assert/strict";
import fc from "fast-check";
import { exactPaise, formatRupees, mulDivCeil, mulDivFloor, mulDivRound, toPaise } from "../../lib/market";

describe("market: money in paise", function () {
  it("reads rupee prices as whole paise, and refuses a third decimal naming the field", function () {
    assert.equal(exactPaise(1234.55), 123455);
    assert.equal(exactPaise(0.1 + 0.2), 30);
    assert.equal(exactPaise(1234.555), undefined);
    assert.equal(exactPaise(Number.NaN), undefined);
    assert.throws(() => toPaise(1.001, "price"), {
      code: "VALIDATION",
      message: "price: 1.001 must be a whole number of paise (at most 2 decimals)",
    });
    assert.equal(formatRupees(123455), "1234.55");
    assert.equal(formatRupees(-5), "-0.05");
  });

  it("round-trips every paise amount up to ₹10,000 crore through rupees (property)", function () {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000_000_000 }), (paise) => {
        assert.equal(exactPaise(paise / 100), paise);
      }),
      { numRuns: 5000 },
    );
  });

  it("mulDiv rounds exactly like BigInt arithmetic, past 2^53 too (property)", function () {
    const n = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(
        n,
        fc.integer({ min: 0, max: 100_000_000 }),
        fc.integer({ min: 1, max: 100_000_000 }),
        (a, b, d) => {
          const p = BigInt(a) * BigInt(b);
          const q = p / BigInt(d);
          const r = p - q * BigInt(d);
          if (q > BigInt(Number.MAX_SAFE_INTEGER) - 1n) return;
          assert.equal(mulDivFloor(a, b, d), Number(q));
          assert.equal(mulDivCeil(a, b, d), Number(r === 0n ? q : q + 1n));
          assert.equal(mulDivRound(a, b, d), Number(2n * r >= BigInt(d) ? q + 1n : q));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("refuses negative or fractional operands instead of guessing", function () {
    assert.throws(() => mulDivRound(-1, 2, 3), RangeError);
    assert.throws(() => mulDivRound(1.5, 2, 3), RangeError);
    assert.throws(() => mulDivRound(1, 2, 0), RangeError);
  });
});
