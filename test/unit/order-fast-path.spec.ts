import assert from "node:assert/strict";
import fc from "fast-check";
import { OrderRequest } from "../../lib/protocol";
import { newClientOrderId } from "../../lib/common/ids";
import { fastPathForTests, orderRequestJson, parseOrderRequest } from "../../lib/protocol/order-fast-path";

/** Valid values of every field (undefined: the field is left out). */
const valid = {
  symbol: fc.constantFrom("INFY", "M&M", "BAJAJ-AUTO", "NSE:INFY", "x".repeat(64)),
  exchange: fc.constantFrom(undefined, "NSE", "BSE", "MCX"),
  side: fc.constantFrom("BUY", "SELL"),
  quantity: fc.oneof(fc.constantFrom(1, 10_000_000), fc.integer({ min: 1, max: 10_000_000 })),
  product: fc.constantFrom(undefined, "CNC", "MIS", "NRML"),
  validity: fc.constantFrom(undefined, "DAY", "IOC"),
  variety: fc.constantFrom(undefined, "regular", "amo"),
  tag: fc.constantFrom(undefined, "momentum", "a".repeat(20)),
  client_order_id: fc.constantFrom(undefined, "abc123", "x".repeat(20)),
};
const aPrice = fc.oneof(fc.constantFrom(0.01, 1e12), fc.double({ min: 0.01, max: 1e5, noNaN: true }));
const priced = fc.oneof(
  fc.record({ order_type: fc.constantFrom(undefined, "MARKET") }),
  fc.record({ order_type: fc.constant("LIMIT"), price: aPrice }),
  fc.record({ order_type: fc.constant("SL"), price: aPrice, trigger_price: aPrice }),
  fc.record({ order_type: fc.constant("SL-M"), trigger_price: aPrice }),
);

/** Kite's options (lib/protocol/order-options.ts), valid for a quantity of 100 on NSE. */
const options = fc.oneof(
  { weight: 4, arbitrary: fc.constant({}) },
  fc.record({ validity: fc.constant("TTL"), validity_ttl: fc.integer({ min: 1, max: 365 }) }),
  fc.record({ disclosed_quantity: fc.integer({ min: 10, max: 100 }) }),
  fc
    .integer({ min: 2, max: 50 })
    .map((legs) => ({ variety: "iceberg", iceberg_legs: legs, iceberg_quantity: Math.ceil(100 / legs) })),
);

/** Values that break a rule, or sit just past its edge. */
const broken: Record<string, fc.Arbitrary<unknown>> = {
  symbol: fc.oneof(fc.constantFrom(" INFY", "", "IN FY", "x".repeat(65), 7), fc.string()),
  exchange: fc.constantFrom("NYSE", "nse", 1, null),
  side: fc.constantFrom("buy", "HOLD", 0, undefined),
  quantity: fc.constantFrom(0, -1, 1.5, 10_000_001, Number.NaN, Infinity, -0, "10", undefined),
  order_type: fc.constantFrom("STOP", "limit", 3),
  price: fc.constantFrom(0, -1, 1e12 + 1, Number.NaN, Infinity, "5", 10),
  trigger_price: fc.constantFrom(0, Number.NaN, "1", 10),
  product: fc.constantFrom("MTF", ""),
  validity: fc.constantFrom("TTL", "GTC"),
  variety: fc.constantFrom("iceberg", "co", "AMO", ""),
  validity_ttl: fc.constantFrom(0, 1, 366, 1.5, "5"),
  disclosed_quantity: fc.constantFrom(0, 9, 101, 50, 1.5),
  iceberg_legs: fc.constantFrom(1, 2, 51),
  iceberg_quantity: fc.constantFrom(0, 50, 100),
  tag: fc.constantFrom("a".repeat(21), "a-b", ""),
  client_order_id: fc.constantFrom("x".repeat(21), "a_b", ""),
  colour: fc.constant("red"),
};

function compact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}

const validRequest = fc
  .tuple(fc.record(valid), priced, options)
  .map(([a, b, c]) =>
    Object.keys(c).length === 0
      ? compact({ ...a, ...b })
      : compact({ ...a, ...b, exchange: "NSE", quantity: 100, variety: undefined, ...c }),
  );
/** A valid request with one or two fields broken (or set where they are not allowed). */
const request = fc.oneof(
  validRequest,
  fc
    .tuple(
      validRequest,
      fc.uniqueArray(fc.constantFrom(...Object.keys(broken)), { minLength: 1, maxLength: 2 }),
    )
    .chain(([base, keys]) =>
      fc.tuple(...keys.map((key) => broken[key]!)).map((values) => {
        const out = { ...base };
        keys.forEach((key, i) => (out[key] = values[i]));
        return out;
      }),
    ),
);

describe("OrderRequest fast path", function () {
  it("never accepts what the schema refuses, and returns what the schema returns (property)", function () {
    this.timeout(30_000);
    let fast = 0;
    fc.assert(
      fc.property(request, (input) => {
        const viaFast = fastPathForTests(input);
        const viaSchema = OrderRequest.safeParse(input);
        if (viaFast !== undefined) {
          fast += 1;
          assert.ok(viaSchema.success, `fast path accepted ${JSON.stringify(input)}`);
          assert.deepEqual(viaFast, viaSchema.data);
        }
      }),
      { numRuns: 5000 },
    );
    assert.ok(fast > 1000, `the generator reaches the fast path (${fast} times)`);
  });

  it("gives the schema's answer and message either way", function () {
    assert.deepEqual(
      parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 3 }),
      OrderRequest.parse({ symbol: "INFY", side: "BUY", quantity: 3 }),
    );
    assert.deepEqual(parseOrderRequest({ symbol: " INFY ", side: "BUY", quantity: 3 }).symbol, "INFY");
    assert.throws(() => parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 0 }), {
      code: "VALIDATION",
      message: "invalid order: quantity: must be greater than 0",
    });
  });

  it("writes a parsed request's JSON by concatenation exactly as JSON.stringify does (property)", function () {
    this.timeout(30_000);
    let written = 0;
    let plain = 0;
    fc.assert(
      fc.property(request, fc.boolean(), (input, generateId) => {
        let order;
        try {
          order = parseOrderRequest(input);
        } catch {
          return;
        }
        // As WebSocketBroker.placeOrder does before it serializes.
        if (generateId) order.client_order_id ??= newClientOrderId();
        const json = orderRequestJson(order);
        if (fastPathForTests(input) !== undefined) {
          plain += 1;
          assert.notEqual(json, undefined, `a plain request is written by hand: ${JSON.stringify(order)}`);
        }
        if (json === undefined) return;
        written += 1;
        assert.equal(json, JSON.stringify(order));
      }),
      { numRuns: 5000 },
    );
    assert.ok(plain > 1000 && written >= plain, `plain ${plain}, written by hand ${written}`);
  });

  it("leaves strings that JSON escapes, and values that are not strings or finite numbers, to JSON.stringify (property)", function () {
    const keys = fc.constantFrom("symbol", "tag", "client_order_id", "side", "quantity", "price", "colour");
    const value = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.constantFrom('a"b', "a\\b", "\n", "\u2028", "\ud800", "é", "", "-0"),
      fc.double(),
      fc.constantFrom(-0, Number.NaN, Infinity, 1e21, 5e-7, true, null, undefined),
      fc.constant({ nested: 1 }),
      fc.constant([1]),
    );
    fc.assert(
      fc.property(fc.dictionary(keys, value), (fields) => {
        const json = orderRequestJson(fields as never);
        if (json !== undefined) assert.equal(json, JSON.stringify(fields));
      }),
      { numRuns: 5000 },
    );
    assert.equal(orderRequestJson({ symbol: 'IN"FY' } as never), undefined);
    assert.equal(orderRequestJson({ symbol: "INFY", colour: "red" } as never), undefined);
    assert.equal(orderRequestJson({ symbol: "INFY", price: Number.NaN } as never), undefined);
    assert.equal(orderRequestJson({ quantity: -0 } as never), '{"quantity":0}');
  });

  it("leaves class instances and objects with a prototype to the schema", function () {
    const withProto = Object.assign(Object.create({ inherited: 1 }) as object, {
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
    });
    assert.equal(fastPathForTests(withProto), undefined);
  });
});
