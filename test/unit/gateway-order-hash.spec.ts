import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { canonicalOrder, orderHash } from "../../lib/gateway/order-hash";

const key = fc.oneof(
  fc.constantFrom(
    "symbol",
    "exchange",
    "side",
    "quantity",
    "order_type",
    "price",
    "trigger_price",
    "product",
    "validity",
    "tag",
    "client_order_id",
    "variety",
  ),
  fc.string({ maxLength: 8 }),
);
const value = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom('quo"te', "back\\slash", "\u0000", "é𝄞", "\ud800", ""),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-0, 1e21, 1e-7, 0.1 + 0.2, Number.MAX_SAFE_INTEGER, Infinity, Number.NaN),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), {
    maxKeys: 3,
  }),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const order = fc.dictionary(key, value, { maxKeys: 14 });

/**
 * The definition the index files were written with (idempotency-index.ts before order-hash.ts):
 * the cheaper function must give the same digest, or a retry after an upgrade is refused.
 */
function indexHash(fields: Record<string, unknown>): string {
  const keys = Object.keys(fields)
    .filter((name) => name !== "client_order_id" && fields[name] !== undefined)
    .sort();
  const canonical = JSON.stringify(keys.map((name) => [name, fields[name]]));
  return createHash("sha256").update(canonical).digest("hex").slice(0, 24);
}

describe("order-hash: the idempotency hash, computed cheaper", function () {
  it("gives digest for digest what the index files were written with, whatever the fields (property)", function () {
    fc.assert(
      fc.property(order, (fields) => {
        assert.equal(orderHash(fields), indexHash(fields));
      }),
      { numRuns: 2000 },
    );
  });

  it("is the sha256 of the sorted [key, value] pairs' JSON, client_order_id and undefined fields left out", function () {
    const fields = { side: "BUY", symbol: "INFY", client_order_id: "abc", quantity: 2, tag: undefined };
    const canonical = '[["quantity",2],["side","BUY"],["symbol","INFY"]]';
    assert.equal(canonicalOrder(fields), canonical);
    assert.equal(orderHash(fields), createHash("sha256").update(canonical).digest("hex").slice(0, 24));
  });

  it("does not depend on key order, and any changed parameter changes it (property)", function () {
    fc.assert(
      fc.property(order, fc.string({ maxLength: 6 }), (fields, extra) => {
        const reversed = Object.fromEntries(Object.entries(fields).reverse());
        assert.equal(orderHash(reversed), orderHash(fields));
        const defined = Object.keys(fields).filter((k) => k !== "client_order_id" && fields[k] !== undefined);
        const changed = { ...fields, [`x${extra}`]: "added" };
        if (!defined.includes(`x${extra}`)) assert.notEqual(orderHash(changed), orderHash(fields));
      }),
      { numRuns: 500 },
    );
  });
});
