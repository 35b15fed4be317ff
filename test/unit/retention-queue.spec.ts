// RetentionQueue (lib/common/retention-queue.ts) is a ring that grows, wraps and shrinks; whatever
// the sequence of pushes, trims and clears, it must hand out exactly what a plain first-in,
// first-out list would, in the same order, and an evict() that pushes (re-entrant) must be safe.
import assert from "node:assert/strict";
import fc from "fast-check";
import { RetentionQueue } from "../../lib/common/retention-queue";

type Op =
  { kind: "push"; count: number } | { kind: "trim"; limit: number; pushBack: boolean } | { kind: "clear" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("push" as const), count: fc.integer({ min: 1, max: 3000 }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("trim" as const),
      limit: fc.integer({ min: 0, max: 6000 }),
      pushBack: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);

describe("RetentionQueue: a ring with a first-in, first-out list's behaviour", function () {
  it("evicts, counts and lists exactly as a plain list given the same operations (property)", function () {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const queue = new RetentionQueue<"order" | "gtt">();
        let list: [string, "order" | "gtt"][] = [];
        let next = 0;
        const add = (): void => {
          const entry: [string, "order" | "gtt"] = [`id${next}`, next % 3 === 0 ? "gtt" : "order"];
          next += 1;
          queue.push(entry[0], entry[1]);
          list.push(entry);
        };
        for (const o of ops) {
          if (o.kind === "push") {
            for (let i = 0; i < o.count; i++) add();
          } else if (o.kind === "trim") {
            // An evict that ends something else pushes from inside trim(): it queues after what was
            // there, and trim() goes on until the size is within the limit, that entry included.
            const evicted: [string, string][] = [];
            queue.trim(o.limit, (id, kind) => {
              evicted.push([id, kind]);
              if (o.pushBack && evicted.length % 5 === 0) queue.push(`re${evicted.length}`, "gtt");
            });
            const expected: [string, string][] = [];
            while (list.length > o.limit) {
              expected.push(list.shift()!);
              if (o.pushBack && expected.length % 5 === 0) list.push([`re${expected.length}`, "gtt"]);
            }
            assert.deepEqual(evicted, expected);
          } else {
            queue.clear();
            list = [];
          }
          assert.equal(queue.size, list.length);
          const seen: [string, string][] = [];
          queue.forEach((id, kind) => seen.push([id, kind]));
          assert.deepEqual(seen, list);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("holds a steady retention through a million ends without losing order", function () {
    const queue = new RetentionQueue<"order">();
    let expected = 0;
    for (let i = 0; i < 1_000_000; i++) {
      queue.push(`P${i}`, "order");
      queue.trim(10_000, (id) => {
        assert.equal(id, `P${expected}`);
        expected += 1;
      });
    }
    assert.equal(queue.size, 10_000);
    assert.equal(expected, 990_000);
  });
});
