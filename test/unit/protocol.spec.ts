import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BrokerError,
  CancelRequest,
  GttRequest,
  ModifyRequest,
  OrderChanges,
  OrderRequest,
  OrderSnapshot,
  Quote,
  parseOrThrow,
} from "../../lib/protocol";

function orderError(input: unknown): string {
  try {
    parseOrThrow(OrderRequest, input, "order");
  } catch (error) {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, "VALIDATION");
    return error.message;
  }
  assert.fail("expected a validation error");
}

const base = { symbol: "INFY", side: "BUY", quantity: 10 };

describe("protocol: OrderRequest", function () {
  it("applies defaults: NSE, MARKET, MIS, DAY", function () {
    assert.deepEqual(parseOrThrow(OrderRequest, base, "order"), {
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 10,
      order_type: "MARKET",
      product: "MIS",
      validity: "DAY",
    });
  });

  it("accepts every order type with its price fields", function () {
    parseOrThrow(OrderRequest, { ...base, order_type: "LIMIT", price: 1500.5 }, "order");
    parseOrThrow(OrderRequest, { ...base, order_type: "SL", price: 1500, trigger_price: 1495 }, "order");
    parseOrThrow(OrderRequest, { ...base, order_type: "SL-M", trigger_price: 1495 }, "order");
    parseOrThrow(
      OrderRequest,
      { ...base, exchange: "BSE", product: "CNC", validity: "IOC", tag: "abc12", client_order_id: "X1" },
      "order",
    );
  });

  const rules: [string, unknown, RegExp][] = [
    ["missing symbol", { side: "BUY", quantity: 1 }, /symbol: is required/],
    ["empty symbol", { ...base, symbol: "  " }, /symbol: must not be empty/],
    ["symbol with a double space", { ...base, symbol: "IN  FY" }, /symbol: must contain only/],
    ["symbol not a string", { ...base, symbol: 42 }, /symbol: must be a string/],
    ["quantity 0", { ...base, quantity: 0 }, /quantity: must be greater than 0/],
    ["negative quantity", { ...base, quantity: -5 }, /quantity: must be greater than 0/],
    ["fractional quantity", { ...base, quantity: 1.5 }, /quantity: must be a whole number/],
    ["quantity as string", { ...base, quantity: "10" }, /quantity: must be a number/],
    ["quantity NaN", { ...base, quantity: Number.NaN }, /quantity: must be a number/],
    ["huge quantity", { ...base, quantity: 1e9 }, /quantity: must be at most/],
    ["missing quantity", { symbol: "INFY", side: "BUY" }, /quantity: is required/],
    ["unknown side", { ...base, side: "HOLD" }, /side: must be BUY or SELL/],
    ["lower-case side", { ...base, side: "buy" }, /side: must be BUY or SELL/],
    ["missing side", { symbol: "INFY", quantity: 1 }, /side: is required/],
    [
      "unknown order type",
      { ...base, order_type: "STOP" },
      /order_type: must be one of MARKET, LIMIT, SL, SL-M/,
    ],
    ["unknown exchange", { ...base, exchange: "NYSE" }, /exchange: must be one of NSE/],
    ["unknown product", { ...base, product: "X" }, /product: must be one of CNC, MIS, NRML/],
    ["unknown validity", { ...base, validity: "GTC" }, /validity: must be one of DAY, IOC, TTL/],
    ["negative price", { ...base, order_type: "LIMIT", price: -1 }, /price: must be greater than 0/],
    ["zero price", { ...base, order_type: "LIMIT", price: 0 }, /price: must be greater than 0/],
    ["NaN price", { ...base, order_type: "LIMIT", price: Number.NaN }, /price: must be a number/],
    ["infinite price", { ...base, order_type: "LIMIT", price: Infinity }, /price: must be/],
    ["price as string", { ...base, order_type: "LIMIT", price: "1500" }, /price: must be a number/],
    ["LIMIT without price", { ...base, order_type: "LIMIT" }, /price: is required for LIMIT orders/],
    ["SL without price", { ...base, order_type: "SL", trigger_price: 1 }, /price: is required for SL orders/],
    [
      "SL without trigger",
      { ...base, order_type: "SL", price: 1 },
      /trigger_price: is required for SL orders/,
    ],
    ["SL-M without trigger", { ...base, order_type: "SL-M" }, /trigger_price: is required for SL-M orders/],
    ["MARKET with price", { ...base, price: 10 }, /price: must not be set for MARKET orders/],
    [
      "LIMIT with trigger",
      { ...base, order_type: "LIMIT", price: 1, trigger_price: 2 },
      /trigger_price: must not be set for LIMIT/,
    ],
    [
      "negative trigger",
      { ...base, order_type: "SL-M", trigger_price: -2 },
      /trigger_price: must be greater than 0/,
    ],
    ["tag too long", { ...base, tag: "a".repeat(21) }, /tag: must be 1 to 20 letters or digits/],
    ["tag with symbols", { ...base, tag: "a-b" }, /tag: must be 1 to 20 letters or digits/],
    [
      "client_order_id too long",
      { ...base, client_order_id: "x".repeat(21) },
      /client_order_id: must be 1 to 20/,
    ],
    ["unknown field", { ...base, colour: "red" }, /colour: unknown field/],
    ["two unknown fields", { ...base, a: 1, b: 2 }, /a, b: unknown fields/],
    ["not an object", "BUY INFY", /payload: /],
    ["null", null, /payload: /],
  ];
  for (const [name, input, pattern] of rules) {
    it(`rejects ${name} naming the field and rule`, function () {
      assert.match(orderError(input), pattern);
    });
  }

  it("reports every broken rule at once", function () {
    const message = orderError({ symbol: "", side: "X", quantity: 0 });
    assert.match(message, /symbol: /);
    assert.match(message, /side: /);
    assert.match(message, /quantity: /);
  });

  it("never throws anything but a VALIDATION BrokerError, whatever the input (property)", function () {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const result = OrderRequest.safeParse(input);
        if (result.success) return;
        assert.throws(() => parseOrThrow(OrderRequest, input, "order"), { code: "VALIDATION" });
      }),
      { numRuns: 300 },
    );
  });

  it("accepts what it produces: a parsed request parses again unchanged (property)", function () {
    const arb = fc.record({
      symbol: fc.stringMatching(/^[A-Z][A-Z0-9&_-]{0,15}$/),
      side: fc.constantFrom("BUY", "SELL"),
      quantity: fc.integer({ min: 1, max: 100_000 }),
      order_type: fc.constantFrom("MARKET", "LIMIT"),
      price: fc.double({ min: 0.05, max: 100_000, noNaN: true }),
    });
    fc.assert(
      fc.property(arb, (raw) => {
        const input = raw.order_type === "MARKET" ? { ...raw, price: undefined } : raw;
        const once = parseOrThrow(OrderRequest, JSON.parse(JSON.stringify(input)), "order");
        assert.deepEqual(parseOrThrow(OrderRequest, once, "order"), once);
      }),
    );
  });
});

describe("protocol: modify, cancel, snapshot, quote", function () {
  it("needs at least one change", function () {
    assert.throws(() => parseOrThrow(OrderChanges, {}, "order changes"), /must change at least one of/);
    assert.throws(
      () => parseOrThrow(OrderChanges, { quantity: 0 }, "order changes"),
      /quantity: must be greater than 0/,
    );
    assert.deepEqual(parseOrThrow(OrderChanges, { price: 10 }, "order changes"), { price: 10 });
  });

  it("needs an order_id to modify or cancel", function () {
    assert.throws(() => parseOrThrow(ModifyRequest, { price: 1 }, "modify"), /order_id: is required/);
    assert.throws(
      () => parseOrThrow(CancelRequest, { order_id: "" }, "cancel"),
      /order_id: must not be empty/,
    );
    assert.throws(
      () => parseOrThrow(CancelRequest, { order_id: "1", extra: true }, "cancel"),
      /extra: unknown field/,
    );
  });

  it("requires ISO timestamps and known statuses in snapshots", function () {
    const snapshot = {
      order_id: "P1",
      client_order_id: "c1",
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 1,
      order_type: "MARKET",
      product: "MIS",
      validity: "DAY",
      status: "FILLED",
      filled_quantity: 1,
      average_price: 10,
      placed_at: "2026-01-05T03:45:00.000Z",
      timestamp: "2026-01-05T03:45:00.000Z",
    };
    parseOrThrow(OrderSnapshot, snapshot, "snapshot");
    assert.throws(
      () => parseOrThrow(OrderSnapshot, { ...snapshot, timestamp: "yesterday" }, "snapshot"),
      /timestamp: must be an ISO 8601/,
    );
    assert.throws(
      () => parseOrThrow(OrderSnapshot, { ...snapshot, status: "COMPLETE" }, "snapshot"),
      /status: /,
    );
  });

  it("validates quotes", function () {
    parseOrThrow(
      Quote,
      { symbol: "INFY", exchange: "NSE", last_price: 1, timestamp: "2026-01-05T03:45:00Z" },
      "quote",
    );
    assert.throws(
      () =>
        parseOrThrow(
          Quote,
          { symbol: "INFY", exchange: "NSE", last_price: 0, timestamp: "2026-01-05T03:45:00Z" },
          "quote",
        ),
      /last_price/,
    );
  });
});

describe("protocol: GttRequest", function () {
  const leg = { side: "SELL", quantity: 5, price: 1400 };
  it("accepts single and two-leg GTTs with defaults", function () {
    const single = parseOrThrow(
      GttRequest,
      { type: "single", symbol: "INFY", trigger_values: [1450], orders: [leg] },
      "GTT",
    );
    assert.equal(single.exchange, "NSE");
    assert.equal(single.orders[0].order_type, "LIMIT");
    assert.equal(single.orders[0].product, "CNC");
    parseOrThrow(
      GttRequest,
      {
        type: "two-leg",
        symbol: "INFY",
        trigger_values: [1400, 1600],
        orders: [leg, { ...leg, price: 1600 }],
      },
      "GTT",
    );
  });

  const bad: [string, unknown, RegExp][] = [
    ["an unknown type", { type: "three-leg", symbol: "INFY" }, /type: must be single or two-leg/],
    ["a missing type", { symbol: "INFY" }, /type: must be single or two-leg/],
    [
      "two triggers on a single",
      { type: "single", symbol: "INFY", trigger_values: [1, 2], orders: [leg] },
      /trigger_values: must hold exactly one/,
    ],
    [
      "one order on a two-leg",
      { type: "two-leg", symbol: "INFY", trigger_values: [1, 2], orders: [leg] },
      /orders: must hold exactly two orders/,
    ],
    [
      "a stop-loss above the target",
      { type: "two-leg", symbol: "INFY", trigger_values: [2, 1], orders: [leg, leg] },
      /trigger_values: the stop-loss trigger \(first\) must be below/,
    ],
    [
      "a MARKET leg",
      { type: "single", symbol: "INFY", trigger_values: [1], orders: [{ ...leg, order_type: "MARKET" }] },
      /orders.0.order_type: must be LIMIT/,
    ],
    [
      "a leg without price",
      { type: "single", symbol: "INFY", trigger_values: [1], orders: [{ side: "SELL", quantity: 1 }] },
      /orders.0.price: is required/,
    ],
    [
      "a zero trigger",
      { type: "single", symbol: "INFY", trigger_values: [0], orders: [leg] },
      /trigger_values.0: must be greater than 0/,
    ],
  ];
  for (const [name, input, pattern] of bad) {
    it(`rejects ${name}`, function () {
      assert.throws(() => parseOrThrow(GttRequest, input, "GTT"), pattern);
    });
  }
});
