import assert from "node:assert/strict";
import { snapshotFromRequest } from "../../lib/common/order-snapshot";
import { pendingSnapshot } from "../../lib/kite/snapshots";
import { OrderSnapshot } from "../../lib/protocol";
import { parseOrderRequest } from "../../lib/protocol/order-fast-path";

const NOW = "2026-12-04T09:15:00.000Z";

describe("an order's first snapshot from its request", function () {
  it("copies what was asked, nothing filled, and only the optional fields the request set", function () {
    const request = parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 3 });
    const snapshot = snapshotFromRequest(request, { order_id: "1", client_order_id: "c1" }, "OPEN", NOW);
    assert.deepEqual(snapshot, {
      order_id: "1",
      client_order_id: "c1",
      symbol: "INFY",
      exchange: request.exchange,
      side: "BUY",
      quantity: 3,
      order_type: request.order_type,
      product: request.product,
      validity: request.validity,
      status: "OPEN",
      filled_quantity: 0,
      average_price: 0,
      placed_at: NOW,
      timestamp: NOW,
    });
    assert.equal(OrderSnapshot.safeParse(snapshot).success, true);
    for (const key of ["price", "trigger_price", "tag", "variety", "iceberg_legs"])
      assert.ok(!(key in snapshot), key);
  });

  it("carries price, trigger, tag and every order option, and is a valid snapshot each time", function () {
    const inputs = [
      { symbol: "INFY", side: "SELL", quantity: 10, order_type: "LIMIT", price: 1500.5, tag: "t" },
      { symbol: "TCS", side: "BUY", quantity: 5, order_type: "SL", price: 10, trigger_price: 9.5 },
      {
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "LIMIT",
        price: 10,
        variety: "iceberg",
        iceberg_legs: 4,
        iceberg_quantity: 25,
      },
      {
        symbol: "INFY",
        side: "BUY",
        quantity: 10,
        order_type: "LIMIT",
        price: 10,
        validity: "TTL",
        validity_ttl: 5,
      },
      {
        symbol: "INFY",
        side: "BUY",
        quantity: 10,
        order_type: "LIMIT",
        price: 10,
        disclosed_quantity: 2,
        variety: "amo",
      },
    ] as const;
    for (const input of inputs) {
      const request = parseOrderRequest(input);
      const snapshot = snapshotFromRequest(request, { order_id: "9", client_order_id: "c9" }, "PENDING", NOW);
      for (const [key, value] of Object.entries(request)) {
        if (key === "client_order_id" || value === undefined) continue;
        assert.deepEqual(
          (snapshot as Record<string, unknown>)[key],
          value,
          `${JSON.stringify(input)}: ${key}`,
        );
      }
      const parsed = OrderSnapshot.safeParse(snapshot);
      assert.equal(parsed.success, true, `${JSON.stringify(input)}: ${JSON.stringify(parsed.error?.issues)}`);
    }
  });

  it("Kite's pending snapshot leaves out the default variety, as Kite's own records do", function () {
    const regular = pendingSnapshot(
      parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 1, variety: "regular" }),
      "c",
      "1",
    );
    assert.equal(regular.status, "PENDING");
    assert.ok(!("variety" in regular));
    const amo = pendingSnapshot(
      parseOrderRequest({ symbol: "INFY", side: "BUY", quantity: 1, variety: "amo" }),
      "c",
      "2",
    );
    assert.equal(amo.variety, "amo");
  });
});
