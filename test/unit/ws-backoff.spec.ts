import assert from "node:assert/strict";
import { Backoff } from "../../lib/ws/backoff";

/** A random() that replays the given values in a loop. */
function sequence(...values: number[]): () => number {
  let index = 0;
  return () => values[index++ % values.length]!;
}

describe("Backoff", function () {
  it("draws each delay uniformly below a ceiling that grows by factor up to maxMs", function () {
    const backoff = new Backoff({ initialMs: 100, factor: 2, maxMs: 1000, random: () => 1 });
    const delays = Array.from({ length: 7 }, () => backoff.next());
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert.equal(backoff.attempt, 7);
  });

  it("scales the ceiling by random() (full jitter), so a delay can be anywhere in [0, ceiling]", function () {
    const backoff = new Backoff({ initialMs: 100, factor: 3, maxMs: 10_000, random: sequence(0, 0.5, 0.25) });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 150, 225]);
  });

  it("keeps real Math.random() delays within [0, ceiling] and spreads them out", function () {
    const backoff = new Backoff({ initialMs: 50, factor: 2, maxMs: 400 });
    const byAttempt: number[][] = [[], [], [], [], []];
    for (let run = 0; run < 200; run++) {
      backoff.reset();
      for (const delays of byAttempt) delays.push(backoff.next());
    }
    byAttempt.forEach((delays, attempt) => {
      const ceiling = Math.min(400, 50 * 2 ** attempt);
      for (const delay of delays)
        assert.ok(delay >= 0 && delay <= ceiling, `${delay} outside [0, ${ceiling}]`);
      // Jitter, not a ladder: the draws cover most of the range.
      assert.ok(
        Math.min(...delays) < ceiling * 0.2 && Math.max(...delays) > ceiling * 0.8,
        `attempt ${attempt}`,
      );
    });
  });

  it("clamps a misbehaving random() into [0, ceiling]", function () {
    const backoff = new Backoff({ initialMs: 10, factor: 2, maxMs: 100, random: sequence(-1, 7) });
    assert.equal(backoff.next(), 0);
    assert.equal(backoff.next(), 20);
  });

  it("reset() starts again from initialMs", function () {
    const backoff = new Backoff({ initialMs: 10, factor: 10, maxMs: 100_000, random: () => 1 });
    backoff.next();
    backoff.next();
    assert.equal(backoff.ceilingMs, 1000);
    backoff.reset();
    assert.equal(backoff.attempt, 0);
    assert.equal(backoff.next(), 10);
  });

  it("stays at maxMs after very many attempts (no overflow to Infinity or NaN)", function () {
    const backoff = new Backoff({ initialMs: 1, factor: 10, maxMs: 60_000, random: () => 1 });
    for (let i = 0; i < 2000; i++) backoff.next();
    assert.equal(backoff.next(), 60_000);
  });

  it("accepts factor 1 (constant ceiling) and maxMs equal to initialMs", function () {
    const backoff = new Backoff({ initialMs: 30, factor: 1, maxMs: 30, random: () => 1 });
    assert.deepEqual([backoff.next(), backoff.next()], [30, 30]);
  });

  for (const [options, name] of [
    [{ initialMs: 0, factor: 2, maxMs: 10 }, "initialMs"],
    [{ initialMs: Number.NaN, factor: 2, maxMs: 10 }, "initialMs"],
    [{ initialMs: 10, factor: 0.5, maxMs: 100 }, "factor"],
    [{ initialMs: 10, factor: Infinity, maxMs: 100 }, "factor"],
    [{ initialMs: 10, factor: 2, maxMs: 5 }, "maxMs"],
    [{ initialMs: 10, factor: 2, maxMs: Infinity }, "maxMs"],
  ] as const) {
    it(`rejects ${name} = ${String(options[name])} with a RangeError naming it`, function () {
      assert.throws(
        () => new Backoff(options),
        (error: unknown) => {
          assert.ok(error instanceof RangeError);
          assert.match(error.message, new RegExp(`\\b${name}\\b`));
          return true;
        },
      );
    });
  }
});
