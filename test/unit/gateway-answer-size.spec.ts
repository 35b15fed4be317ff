import assert from "node:assert/strict";
import fc from "fast-check";
import { eventsLeftOut } from "../../lib/gateway/answer-size";
import { answerFrame } from "../../lib/gateway/pushes";

describe("eventsLeftOut: an answer's events within the answer frame limit", function () {
  it("keeps the longest run of last events whose RESULT fits, and no more (property)", function () {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 300 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 8000 }),
        (events, idLength, maxBytes) => {
          const id = "i".repeat(idLength);
          const head = answerFrame(id, { order_id: "O1" } as never, "");
          const left = eventsLeftOut(events, head.length, maxBytes);
          assert.ok(left >= 0 && left <= events.length);
          const frameOf = (from: number): string =>
            answerFrame(id, { order_id: "O1" } as never, events.slice(from).join(","));
          if (left < events.length) assert.ok(frameOf(left).length <= maxBytes, "what it keeps fits");
          if (left > 0) {
            // One more event would not fit.
            assert.ok(frameOf(left - 1).length > maxBytes, `event ${left - 1} would have fit`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("keeps them all when they fit, none when not even the last does", function () {
    assert.equal(eventsLeftOut(["a", "b"], 10, 1000), 0);
    assert.equal(eventsLeftOut(["a".repeat(2000)], 10, 1000), 1);
    assert.equal(eventsLeftOut([], 10, 5), 0);
  });
});
