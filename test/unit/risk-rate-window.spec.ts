import assert from "node:assert/strict";
import fc from "fast-check";
import { RateWindow } from "../../lib/risk/rate-window";

/** The definition, counted the slow way: every time kept, every count a scan. */
function naiveCount(times: readonly number[], now: number, ms: number): number {
  return times.filter((t) => t > now - ms && t <= now).length;
}

describe("RateWindow: exact counts in the last second and minute", function () {
  it("agrees with counting every order by hand, over bursts, gaps and shared milliseconds", function () {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.oneof(
              fc.constant(0),
              fc.integer({ min: 0, max: 5 }),
              fc.integer({ min: 0, max: 70_000 }),
            ),
            record: fc.boolean(),
          }),
          { maxLength: 3000 },
        ),
        (steps) => {
          const window = new RateWindow();
          const recorded: number[] = [];
          let now = 1_700_000_000_000;
          for (const step of steps) {
            now += step.gap;
            if (step.record) {
              window.record(now);
              recorded.push(now);
            }
            assert.equal(window.count(now, 1000), naiveCount(recorded, now, 1000));
            assert.equal(window.count(now, 60_000), naiveCount(recorded, now, 60_000));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("counts 200,000 orders in one minute exactly, and forgets them a minute later", function () {
    const window = new RateWindow();
    const start = 1_700_000_000_000;
    for (let i = 0; i < 200_000; i++) window.record(start + Math.floor(i / 8));
    const end = start + Math.floor(199_999 / 8);
    assert.equal(window.count(end, 60_000), 200_000);
    assert.equal(window.count(end, 1000), 8000);
    assert.equal(window.count(end + 60_000, 60_000), 0);
    assert.equal(window.count(end + 60_000, 1000), 0);
    window.record(end + 60_000);
    assert.equal(window.count(end + 60_000, 1000), 1);
  });
});
