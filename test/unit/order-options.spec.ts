import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BrokerError,
  ModifyRequest,
  OrderChanges,
  OrderRequest,
  OrderSnapshot,
  PlaceOrderRequest,
  parseOrThrow,
} from "../../lib/protocol";
import { parseOrderRequest } from "../../lib/protocol/order-fast-path";

function refusal(schema: typeof OrderRequest | typeof OrderChanges, input: unknown): string {
  try {
    parseOrThrow(schema, input, "order");
  } catch (error) {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, "VALIDATION");
    return error.message;
  }
  assert.fail(`expected a validation error for ${JSON.stringify(input)}`);
}

const limit = { symbol: "INFY", side: "BUY", quantity: 100, order_type: "LIMIT", price: 1500 };

describe("order options: variety, TTL, disclosed quantity, iceberg", function () {
  it("accepts each option with what it needs, and keeps it", function () {
    const cases: Record<string, unknown>[] = [
      { ...limit, variety: "amo" },
      { ...limit, variety: "regular" },
      { ...limit, validity: "TTL", validity_ttl: 1 },
      { ...limit, validity: "TTL", validity_ttl: 365 },
      { ...limit, disclosed_quantity: 10 },
      { ...limit, disclosed_quantity: 100 },
      { ...limit, exchange: "MCX", disclosed_quantity: 25 },
      { ...limit, variety: "iceberg", iceberg_legs: 2, iceberg_quantity: 50 },
      { ...limit, variety: "iceberg", iceberg_legs: 3, iceberg_quantity: 34 },
      { ...limit, quantity: 5000, variety: "iceberg", iceberg_legs: 50, iceberg_quantity: 100 },
      {
        ...limit,
        variety: "iceberg",
        iceberg_legs: 4,
        iceberg_quantity: 25,
        validity: "TTL",
        validity_ttl: 30,
      },
      { ...limit, exchange: "NFO", variety: "iceberg", iceberg_legs: 2, iceberg_quantity: 50 },
    ];
    for (const input of cases) {
      const parsed = parseOrThrow(OrderRequest, input, "order") as Record<string, unknown>;
      for (const [key, value] of Object.entries(input)) assert.equal(parsed[key], value, key);
      assert.deepEqual(parseOrderRequest(input), parsed, "the fast path agrees");
    }
  });

  const rules: [string, Record<string, unknown>, RegExp][] = [
    ["unknown variety", { ...limit, variety: "co" }, /variety: must be one of regular, amo, iceberg/],
    ["upper-case variety", { ...limit, variety: "AMO" }, /variety: must be one of regular, amo, iceberg/],
    ["TTL without minutes", { ...limit, validity: "TTL" }, /validity_ttl: is required when validity is TTL/],
    [
      "minutes on a DAY order",
      { ...limit, validity_ttl: 5 },
      /validity_ttl: must not be set unless validity is TTL/,
    ],
    [
      "minutes on an IOC order",
      { ...limit, validity: "IOC", validity_ttl: 5 },
      /validity_ttl: must not be set/,
    ],
    ["0 minutes", { ...limit, validity: "TTL", validity_ttl: 0 }, /validity_ttl: must be at least 1/],
    ["366 minutes", { ...limit, validity: "TTL", validity_ttl: 366 }, /validity_ttl: must be at most 365/],
    ["1.5 minutes", { ...limit, validity: "TTL", validity_ttl: 1.5 }, /validity_ttl: must be a whole number/],
    ["minutes as text", { ...limit, validity: "TTL", validity_ttl: "5" }, /validity_ttl: must be a number/],
    [
      "iceberg without legs",
      { ...limit, variety: "iceberg", iceberg_quantity: 50 },
      /iceberg_legs: is required for iceberg orders/,
    ],
    [
      "iceberg without leg quantity",
      { ...limit, variety: "iceberg", iceberg_legs: 2 },
      /iceberg_quantity: is required for iceberg orders/,
    ],
    [
      "one leg",
      { ...limit, variety: "iceberg", iceberg_legs: 1, iceberg_quantity: 100 },
      /iceberg_legs: must be at least 2/,
    ],
    [
      "51 legs",
      { ...limit, quantity: 5100, variety: "iceberg", iceberg_legs: 51, iceberg_quantity: 100 },
      /iceberg_legs: must be at most 50/,
    ],
    [
      "legs that do not cover the order",
      { ...limit, variety: "iceberg", iceberg_legs: 3, iceberg_quantity: 33 },
      /iceberg_quantity: must cover quantity over iceberg_legs legs \(3 legs of 33 = 99 < 100\)/,
    ],
    [
      "an empty last leg",
      { ...limit, variety: "iceberg", iceberg_legs: 3, iceberg_quantity: 50 },
      /iceberg_legs: must not leave an empty leg/,
    ],
    [
      "leg quantity 0",
      { ...limit, variety: "iceberg", iceberg_legs: 2, iceberg_quantity: 0 },
      /iceberg_quantity: must be at least 1/,
    ],
    [
      "legs on a regular order",
      { ...limit, iceberg_legs: 2 },
      /iceberg_legs: must not be set unless variety is iceberg/,
    ],
    [
      "leg quantity on an amo order",
      { ...limit, variety: "amo", iceberg_quantity: 50 },
      /iceberg_quantity: must not be set unless variety is iceberg/,
    ],
    [
      "a MARKET iceberg on BSE",
      {
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        exchange: "BSE",
        variety: "iceberg",
        iceberg_legs: 2,
        iceberg_quantity: 50,
      },
      /order_type: must be LIMIT or SL for iceberg orders on BSE/,
    ],
    [
      "disclosed above quantity",
      { ...limit, disclosed_quantity: 101 },
      /disclosed_quantity: must be at most quantity \(100\)/,
    ],
    [
      "disclosed under 10 % on NSE",
      { ...limit, disclosed_quantity: 9 },
      /disclosed_quantity: must be at least 10% of quantity on NSE \(10 of 100\)/,
    ],
    [
      "disclosed under 25 % on MCX",
      { ...limit, exchange: "MCX", disclosed_quantity: 24 },
      /disclosed_quantity: must be at least 25% of quantity on MCX/,
    ],
    [
      "disclosed on NFO",
      { ...limit, exchange: "NFO", disclosed_quantity: 50 },
      /disclosed_quantity: is not allowed on NFO/,
    ],
    [
      "disclosed on an IOC order",
      { ...limit, validity: "IOC", disclosed_quantity: 50 },
      /disclosed_quantity: must not be set for IOC orders/,
    ],
    ["disclosed 0", { ...limit, disclosed_quantity: 0 }, /disclosed_quantity: must be at least 1/],
  ];
  for (const [name, input, rule] of rules) {
    it(`refuses ${name}, naming the field and the rule`, function () {
      assert.match(refusal(OrderRequest, input), rule);
      assert.throws(
        () => parseOrderRequest(input),
        (error: unknown) => {
          assert.ok(error instanceof BrokerError);
          assert.equal(error.code, "VALIDATION");
          assert.match(error.message, rule);
          return true;
        },
      );
    });
  }

  it("covers the order with the legs for every valid leg split (property)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 2, max: 50 }),
        (quantity, legs) => {
          const legQuantity = Math.ceil(quantity / legs);
          const result = OrderRequest.safeParse({
            ...limit,
            quantity,
            variety: "iceberg",
            iceberg_legs: legs,
            iceberg_quantity: legQuantity,
          });
          // ceil(q / legs) covers the order; it leaves an empty leg only when q is too small to split.
          const emptyLeg = (legs - 1) * legQuantity >= quantity;
          assert.equal(result.success, !emptyLeg, JSON.stringify({ quantity, legs, legQuantity }));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("lets a modification change disclosed_quantity, never into TTL", function () {
    assert.deepEqual(parseOrThrow(OrderChanges, { disclosed_quantity: 20 }, "changes"), {
      disclosed_quantity: 20,
    });
    assert.deepEqual(parseOrThrow(ModifyRequest, { order_id: "1", disclosed_quantity: 20 }, "modify"), {
      order_id: "1",
      disclosed_quantity: 20,
    });
    assert.match(refusal(OrderChanges, { validity: "TTL" }), /validity: cannot be changed to TTL/);
    assert.match(refusal(OrderChanges, { disclosed_quantity: -1 }), /disclosed_quantity: must be at least 1/);
    assert.match(refusal(OrderChanges, { iceberg_legs: 3 }), /iceberg_legs: unknown field/);
  });

  it("carries the options on the wire: PLACE_ORDER applies the same rules", function () {
    const order = {
      ...limit,
      client_order_id: "w1",
      variety: "iceberg",
      iceberg_legs: 2,
      iceberg_quantity: 50,
    };
    const ok = PlaceOrderRequest.safeParse({ type: "PLACE_ORDER", id: "r1", order });
    assert.ok(ok.success, JSON.stringify(ok.error?.issues));
    const bad = PlaceOrderRequest.safeParse({
      type: "PLACE_ORDER",
      id: "r2",
      order: { ...order, iceberg_quantity: 10 },
    });
    assert.equal(bad.success, false);
  });

  it("keeps the options on a snapshot, within their bounds", function () {
    const snapshot = {
      order_id: "P1",
      client_order_id: "c1",
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 100,
      order_type: "LIMIT",
      price: 1500,
      product: "MIS",
      validity: "TTL",
      variety: "iceberg",
      status: "OPEN",
      filled_quantity: 0,
      average_price: 0,
      validity_ttl: 5,
      disclosed_quantity: 10,
      iceberg_legs: 2,
      iceberg_quantity: 50,
      placed_at: "2026-01-05T03:45:00.000Z",
      timestamp: "2026-01-05T03:45:00.000Z",
    };
    assert.deepEqual(OrderSnapshot.parse(snapshot), snapshot);
    assert.equal(OrderSnapshot.safeParse({ ...snapshot, iceberg_legs: 51 }).success, false);
    assert.equal(OrderSnapshot.safeParse({ ...snapshot, variety: "co" }).success, false);
  });
});
