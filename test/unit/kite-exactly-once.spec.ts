import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import { rejectsWithCode } from "../contract/broker-contract";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const PLACE = "POST /orders/regular";
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};
const DATA = { status: "error", message: "Bad OMS reply", data: null, error_type: "DataException" };
const HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>";

/**
 * Issue 10, defect 1: every answer that does not prove Kite refused a request is an unknown
 * outcome, settled (by tag for placements, by reading the order for changes) before anything is
 * reported; a flow never sees an error for an order that exists.
 */
describe("KiteBroker: answers that do not prove a refusal are settled, never reported as failures", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  const posts = (): number =>
    h.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;

  // [label, status, body, content type]
  const afterPlacing: [string, number, unknown, string | undefined][] = [
    ["HTTP 500 GeneralException", 500, GENERAL, undefined],
    ["HTTP 503 DataException", 503, DATA, undefined],
    ["HTTP 200 with an HTML page", 200, HTML, "text/html"],
    ["HTTP 502 with an HTML page", 502, HTML, "text/html"],
    ["HTTP 200 JSON without an order_id", 200, { status: "success", data: {} }, undefined],
  ];
  for (const [label, status, body, contentType] of afterPlacing) {
    it(`placed, then answered ${label}: the order is reported placed, once, never sent again`, async function () {
      h = await startKite();
      h.fake.setPrice("INFY", 1500);
      for (let round = 0; round < 3; round++) {
        h.fake.failAfter(PLACE, status, body, contentType);
        const before = posts();
        const order = await h.broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 1400,
          client_order_id: `after${round}`,
        });
        assert.equal(order.client_order_id, `after${round}`);
        assert.equal(order.status, "OPEN");
        assert.equal(posts(), before + 1, "sent again though it was placed");
        await h.log.until(() => h.log.typesFor(order.order_id).length > 0, "ORDER_PLACED");
        assert.deepEqual(h.log.typesFor(order.order_id), ["ORDER_PLACED"]);
      }
      assert.equal(await h.fake.orderCount(), 3);
      assert.deepEqual(h.errors, []);
    });
  }

  it("a 500 GeneralException before anything was placed: absent from the book, reported unknown, never sent again", async function () {
    h = await startKite({ resolve_window_ms: 700 });
    h.fake.setPrice("INFY", 1500);
    h.fake.failNext(PLACE, 500, GENERAL);
    await rejectsWithCode(
      h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      "NETWORK",
      /outcome still unknown .*not sent again/,
    );
    assert.equal(posts(), 1);
    assert.equal(await h.fake.orderCount(), 0);
  });

  it("an HTML page on the order book read while settling keeps looking instead of failing", async function () {
    h = await startKite();
    h.fake.setPrice("INFY", 1500);
    h.fake.failAfter(PLACE, 500, GENERAL);
    h.fake.failNext("GET /orders", 502, HTML, "text/html");
    const order = await h.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      client_order_id: "look2",
    });
    assert.equal(order.client_order_id, "look2");
    assert.equal(posts(), 1);
    assert.equal(await h.fake.orderCount(), 1);
  });

  describe("modify and cancel", function () {
    let open: OrderSnapshot;
    beforeEach(async function () {
      h = await startKite();
      h.fake.setPrice("INFY", 1500);
      open = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 2,
        order_type: "LIMIT",
        price: 1400,
      });
    });
    const puts = (): number => h.fake.requests.filter((r) => r.method === "PUT").length;
    const deletes = (): number => h.fake.requests.filter((r) => r.method === "DELETE").length;
    const modify = `PUT /orders/regular/`;
    const cancel = `DELETE /orders/regular/`;

    it("modified, then answered 500: reported modified, sent once", async function () {
      h.fake.failAfter(modify + open.order_id, 500, GENERAL);
      const changed = await h.broker.modifyOrder(open.order_id, { price: 1410 });
      assert.equal(changed.price, 1410);
      assert.equal(puts(), 1);
    });

    it("modified, then answered with an HTML page: reported modified, sent once", async function () {
      h.fake.failAfter(modify + open.order_id, 200, HTML, "text/html");
      const changed = await h.broker.modifyOrder(open.order_id, { price: 1420, quantity: 3 });
      assert.equal(changed.price, 1420);
      assert.equal(changed.quantity, 3);
      assert.equal(puts(), 1);
    });

    it("a modification that never landed (500 before effect) is sent once more", async function () {
      h.fake.failNext(modify + open.order_id, 500, GENERAL);
      const changed = await h.broker.modifyOrder(open.order_id, { price: 1430 });
      assert.equal(changed.price, 1430);
      assert.equal(puts(), 2);
    });

    it("a modification whose answers are lost twice: NETWORK, saying the outcome is unknown", async function () {
      h.fake.failNext(modify + open.order_id, 500, GENERAL);
      h.fake.failNext(modify + open.order_id, 502, HTML, "text/html");
      await rejectsWithCode(h.broker.modifyOrder(open.order_id, { price: 1440 }), "NETWORK", /unknown/);
      assert.equal(puts(), 2);
    });

    it("cancelled, then answered 500 or HTML: reported cancelled, sent once", async function () {
      h.fake.failAfter(cancel + open.order_id, 500, HTML, "text/html");
      const cancelled = await h.broker.cancelOrder(open.order_id);
      assert.equal(cancelled.status, "CANCELLED");
      assert.equal(deletes(), 1);
      await h.log.until(() => h.log.typesFor(open.order_id).includes("ORDER_CANCELLED"), "cancel");
      assert.deepEqual(h.log.typesFor(open.order_id), ["ORDER_PLACED", "ORDER_CANCELLED"]);
    });

    it("a cancellation that never landed (DataException) is sent once more", async function () {
      h.fake.failNext(cancel + open.order_id, 503, DATA);
      const cancelled = await h.broker.cancelOrder(open.order_id);
      assert.equal(cancelled.status, "CANCELLED");
      assert.equal(deletes(), 2);
    });

    it("a refusal Kite spelled out stays final: no second request", async function () {
      h.fake.failNext(modify + open.order_id, 400, {
        status: "error",
        message: "Maximum allowed order modifications exceeded",
        data: null,
        error_type: "InputException",
      });
      await rejectsWithCode(
        h.broker.modifyOrder(open.order_id, { price: 1450 }),
        "VALIDATION",
        /modifications/,
      );
      assert.equal(puts(), 1);
    });
  });
});
