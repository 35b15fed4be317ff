import assert from "node:assert/strict";
import type { OrderEventType, OrderSnapshot } from "../../lib/protocol";
import type { KiteOrder } from "../../lib/kite/mapping";
import { OrderTracker } from "../../lib/kite/order-tracker";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/** One open Kite order book row (placed before this start by someone else: background). */
function row(i: number, changes: Partial<KiteOrder> = {}): KiteOrder {
  return {
    order_id: String(250_000_000_000 + i),
    tag: `bg${i}`,
    tradingsymbol: "INFY",
    exchange: "NSE",
    transaction_type: "BUY",
    order_type: "LIMIT",
    product: "CNC",
    validity: "DAY",
    variety: "regular",
    quantity: 2,
    price: 1400,
    trigger_price: 0,
    filled_quantity: 0,
    pending_quantity: 2,
    average_price: 0,
    status: "OPEN",
    status_message: null,
    order_timestamp: "2026-12-04 10:00:00",
    exchange_timestamp: "2026-12-04 10:00:00",
    ...changes,
  };
}

/**
 * Issue kite9 item 4: open orders read at connect were all held whatever `retention` said. Now
 * at most `retention` background open orders (none reported to a flow) are held; one beyond it
 * is forgotten but for its client_order_id, and its later news is its first report.
 */
describe("Kite open orders bounded by retention (issue kite9, item 4)", function () {
  it("a 50,000-order open book: at most `retention` held, the newest; reported and ended orders stay as before", function () {
    const events: [OrderEventType, string][] = [];
    const tracker = new OrderTracker({
      retention: 1000,
      emit: (type: OrderEventType, order: OrderSnapshot) => events.push([type, order.order_id]),
      gttOf: () => undefined,
      onForget: () => undefined,
    });
    tracker.baseline(Array.from({ length: 50_000 }, (_, i) => row(i)));
    assert.deepEqual(events, []);
    assert.ok(tracker.size <= 1000, `${tracker.size} orders held`);
    assert.equal(tracker.untracked, 49_000);
    // The newest are held; every client_order_id still names its order (a retry is not placed again).
    assert.equal(tracker.has(String(250_000_000_000 + 49_999)), true);
    assert.equal(tracker.has(String(250_000_000_000)), false);
    for (const i of [0, 17, 48_999, 49_999])
      assert.equal(tracker.orderIdOf(`bg${i}`), String(250_000_000_000 + i));
    // A second read of the same book (a connect tried again) adds nothing and drops nothing again.
    tracker.baseline(Array.from({ length: 50_000 }, (_, i) => row(i)));
    assert.ok(tracker.size <= 1000, `${tracker.size} orders held after a re-read`);
    assert.equal(tracker.untracked, 49_000);
    // An order a flow was told of is held whatever comes after it.
    tracker.ingest(row(49_999, { status: "OPEN", filled_quantity: 1, pending_quantity: 1 }));
    assert.deepEqual(events, [["ORDER_PARTIALLY_FILLED", String(250_000_000_000 + 49_999)]]);
    tracker.baseline(Array.from({ length: 2000 }, (_, i) => row(60_000 + i)));
    assert.equal(tracker.has(String(250_000_000_000 + 49_999)), true, "a reported order is never dropped");
    assert.ok(tracker.size <= 1001, `${tracker.size} orders held`);
  });

  describe("through the broker, against the fake Kite", function () {
    let h: KiteHarness;
    afterEach(async function () {
      await h.close();
    });

    it("news of a dropped order is its first report (once), of a held one just the change; a dropped client_order_id is never placed again", async function () {
      this.timeout(20_000);
      h = await startKite({ retention: 100 }, { heartbeatMs: 200 }, false);
      h.fake.failNext("GET /orders", 200, {
        status: "success",
        data: Array.from({ length: 5000 }, (_, i) => row(i)),
      });
      await h.broker.connect();
      assert.deepEqual(h.log.orders, []);
      for (let round = 0; round < 10; round++) {
        const dropped = row(round, {
          status: "COMPLETE",
          filled_quantity: 2,
          pending_quantity: 0,
          average_price: 1400,
          exchange_timestamp: "2026-12-04 10:05:00",
        });
        const held = row(4999 - round, {
          status: "COMPLETE",
          filled_quantity: 2,
          pending_quantity: 0,
          average_price: 1400,
          exchange_timestamp: "2026-12-04 10:05:00",
        });
        // Each postback twice: the second is no news.
        for (const data of [dropped, held, dropped, held])
          h.fake.sendTickerFrame(JSON.stringify({ type: "order", data }));
        await h.log.until(
          () =>
            h.log.typesFor(String(held.order_id)).length > 0 &&
            h.log.typesFor(String(dropped.order_id)).length > 1,
          `round ${round}: both reported`,
        );
        await new Promise((resolve) => setTimeout(resolve, 30));
        assert.deepEqual(
          h.log.typesFor(String(dropped.order_id)),
          ["ORDER_PLACED", "ORDER_FILLED"],
          `round ${round}`,
        );
        assert.deepEqual(h.log.typesFor(String(held.order_id)), ["ORDER_FILLED"], `round ${round}`);
      }
      // A retry of a dropped order's client_order_id: looked up, never placed.
      const retry = await h.broker
        .placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 2,
          order_type: "LIMIT",
          price: 1400,
          client_order_id: "bg50",
        })
        .then(
          (order) => order.order_id,
          (error: { code?: string }) => error.code,
        );
      assert.notEqual(retry, undefined);
      assert.equal(await h.fake.orderCount(), 0, `nothing placed (answered ${retry})`);
    });
  });
});
