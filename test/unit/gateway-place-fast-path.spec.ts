import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRequest } from "../../lib/gateway/frames";
import { formatIssues } from "../../lib/protocol/validate";
import { REQUEST_SCHEMAS } from "../../lib/protocol/wire";

/** A plainly valid wire order's fields (undefined: left out). */
const order = fc.record({
  symbol: fc.constantFrom("INFY", "M&M", "x".repeat(64)),
  exchange: fc.constantFrom(undefined, "NSE", "MCX"),
  side: fc.constantFrom("BUY", "SELL"),
  quantity: fc.constantFrom(1, 10_000_000),
  order_type: fc.constantFrom(undefined, "MARKET"),
  validity: fc.constantFrom(undefined, "DAY", "IOC"),
  tag: fc.constantFrom(undefined, "momentum"),
  client_order_id: fc.constantFrom("abc123", "x".repeat(20)),
});
/** One field of the order or of the envelope broken, or past its edge. */
const breakage = fc.oneof(
  fc.record({
    at: fc.constant("order"),
    key: fc.constant("symbol"),
    value: fc.constantFrom("x".repeat(65), "", 7),
  }),
  fc.record({ at: fc.constant("order"), key: fc.constant("quantity"), value: fc.constantFrom(0, 1.5, "1") }),
  fc.record({ at: fc.constant("order"), key: fc.constant("price"), value: fc.constantFrom(99.5, 0) }),
  fc.record({
    at: fc.constant("order"),
    key: fc.constant("order_type"),
    value: fc.constantFrom("LIMIT", "SL-M"),
  }),
  fc.record({ at: fc.constant("order"), key: fc.constant("validity"), value: fc.constantFrom("TTL", "GTC") }),
  fc.record({ at: fc.constant("order"), key: fc.constant("tag"), value: fc.constantFrom("a-b", "") }),
  fc.record({
    at: fc.constant("order"),
    key: fc.constant("client_order_id"),
    value: fc.constantFrom("x".repeat(21), "", undefined, 5),
  }),
  fc.record({ at: fc.constant("order"), key: fc.constant("colour"), value: fc.constant("red") }),
  fc.record({
    at: fc.constant("envelope"),
    key: fc.constant("id"),
    value: fc.constantFrom("x".repeat(65), "", 3, undefined),
  }),
  fc.record({
    at: fc.constant("envelope"),
    key: fc.constant("order"),
    value: fc.constantFrom(null, [], "o"),
  }),
  fc.record({ at: fc.constant("envelope"), key: fc.constant("extra"), value: fc.constant(true) }),
);
const message = fc
  .tuple(order, fc.option(breakage, { freq: 2 }), fc.constantFrom("r1", "x".repeat(64)))
  .map(([fields, broken, id]) => {
    const wire: Record<string, unknown> = { ...fields };
    const envelope: Record<string, unknown> = { type: "PLACE_ORDER", id, order: wire };
    if (broken !== null) (broken.at === "order" ? wire : envelope)[broken.key] = broken.value;
    return envelope;
  });

function compact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] =
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? compact(value as Record<string, unknown>)
        : value;
  }
  return out;
}

describe("gateway PLACE_ORDER fast path", function () {
  it("answers exactly what the zod schema answers: the same request, or the same message (property)", function () {
    let accepted = 0;
    fc.assert(
      fc.property(message, (raw) => {
        const input = compact(raw);
        const schema = REQUEST_SCHEMAS.PLACE_ORDER.safeParse(input);
        const parsed = parseRequest("PLACE_ORDER", input);
        if (schema.success) {
          accepted += 1;
          assert.deepEqual(parsed, schema.data);
        } else {
          assert.equal(parsed, formatIssues(schema.error.issues));
        }
      }),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 100, `only ${accepted} valid requests generated`);
  });
});
