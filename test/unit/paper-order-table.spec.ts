// OrderTable (lib/paper/order-table.ts) stands in for the account's Map of orders: it must behave as
// that Map does (lookups, sizes, insertion order, a re-set key keeping its place) for any sequence
// of operations, including ids that are not the broker's own and ids inserted out of order.
import assert from "node:assert/strict";
import fc from "fast-check";
import { OrderTable } from "../../lib/paper/order-table";

const pid = (n: number) => `P${String(n).padStart(9, "0")}`;

type Op =
  | { kind: "next"; count: number }
  | { kind: "setOld"; pick: number }
  | { kind: "setAny"; id: string }
  | { kind: "deleteOld"; pick: number; count: number }
  | { kind: "deleteAny"; id: string }
  | { kind: "clear" };

const anyId = fc.oneof(
  fc.integer({ min: 0, max: 3000 }).map(pid),
  fc.constantFrom("P00000001", "P00000000x", "p000000001", "P0000000001", "", "G000000001", "P-00000001"),
  fc.string({ maxLength: 11 }),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("next" as const), count: fc.integer({ min: 1, max: 400 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("setOld" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("setAny" as const), id: anyId }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("deleteOld" as const),
      pick: fc.nat(),
      count: fc.integer({ min: 1, max: 400 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteAny" as const), id: anyId }) },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) },
);

describe("OrderTable: the account's orders, with a Map's behaviour", function () {
  it("answers get, has, size and values() exactly as a Map given the same operations (property)", function () {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.boolean(), (ops, oldestFirst) => {
        const table = new OrderTable<{ v: number }>();
        const map = new Map<string, { v: number }>();
        let next = 1;
        let stamp = 0;
        const both = (f: (m: OrderTable<{ v: number }> | Map<string, { v: number }>) => unknown) => {
          const a = f(table);
          const b = f(map);
          assert.deepEqual(a, b);
        };
        for (const o of ops) {
          if (o.kind === "next") {
            for (let i = 0; i < o.count; i++) {
              const value = { v: stamp++ };
              const id = pid(next++);
              table.set(id, value);
              map.set(id, value);
            }
          } else if (o.kind === "setOld" && map.size > 0) {
            const keys = Array.from(map.keys());
            const id = keys[o.pick % keys.length]!;
            const value = { v: stamp++ };
            table.set(id, value);
            map.set(id, value);
          } else if (o.kind === "setAny") {
            const value = { v: stamp++ };
            table.set(o.id, value);
            map.set(o.id, value);
          } else if (o.kind === "deleteOld" && map.size > 0) {
            // Oldest first (the retention queue) or scattered (orders ending out of order).
            const keys = Array.from(map.keys());
            for (let i = 0; i < o.count && i < keys.length; i++) {
              const id = oldestFirst ? keys[i]! : keys[(o.pick + i * 7) % keys.length]!;
              both((m) => m.delete(id));
            }
          } else if (o.kind === "deleteAny") {
            both((m) => m.delete(o.id));
          } else if (o.kind === "clear") {
            table.clear();
            map.clear();
          }
          assert.equal(table.size, map.size);
          assert.deepEqual(Array.from(table.values()), Array.from(map.values()));
          for (const id of [pid(next - 1), pid(next), pid(1), pid(Math.floor(next / 2)), "P00000001x", "x"]) {
            assert.equal(table.get(id), map.get(id), id);
            assert.equal(table.has(id), map.has(id), id);
          }
          for (const [id, value] of map) assert.equal(table.get(id), value, id);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a live order at the front while a million others come and go past it", function () {
    const table = new OrderTable<number>();
    table.set(pid(1), 1);
    for (let n = 2; n <= 1_000_000; n++) {
      table.set(pid(n), n);
      if (n > 10_001) assert.ok(table.delete(pid(n - 10_000)));
    }
    assert.equal(table.size, 10_001);
    assert.equal(table.get(pid(1)), 1);
    assert.equal(table.get(pid(500_000)), undefined);
    assert.equal(table.get(pid(990_001)), 990_001);
    const values = Array.from(table.values());
    assert.equal(values[0], 1);
    assert.equal(values[1], 990_001);
    assert.equal(values.at(-1), 1_000_000);
  });
});
