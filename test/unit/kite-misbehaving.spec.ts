import assert from "node:assert/strict";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const PLACE = "POST /orders/regular";
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};

/**
 * Kite misbehaving after it placed an order: the answer is a 500 or never comes, and the order
 * book lists the new order only some reads later (Kite's OMS is eventually consistent). Whatever
 * it does, one request is one order, reported once, with its order id.
 */
describe("KiteBroker against a misbehaving Kite (issue kite8, item 4)", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h?.close();
  });

  it("placed, answered 500 or not at all, listed 0–3 reads late, 10 rounds: one order each, reported once", async function () {
    this.timeout(30_000);
    // No OPEN postback (Kite does not promise one): only the order book can tell the order exists.
    h = await startKite({}, { skipPostbackStatuses: ["OPEN"] });
    h.fake.setPrice("INFY", 1500);
    for (let round = 0; round < 10; round++) {
      const late = round % 4;
      if (round % 2 === 0) h.fake.failAfter(PLACE, 500, GENERAL);
      else h.fake.dropNextResponse(PLACE);
      h.fake.listNextPlacementLate(late);
      const clientId = `late${round}`;
      const order = await h.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1400,
        client_order_id: clientId,
      });
      assert.equal(order.client_order_id, clientId);
      assert.match(order.order_id, /^\d+$/);
      const mine = (await h.fake.paper.getOrderbook()).filter((o) => o.tag === clientId);
      assert.equal(mine.length, 1, `round ${round} (listed ${late} reads late): ${mine.length} orders`);
      await h.log.until(() => h.log.typesFor(order.order_id).length > 0, "ORDER_PLACED");
      assert.deepEqual(h.log.typesFor(order.order_id), ["ORDER_PLACED"]);
    }
    assert.equal(await h.fake.orderCount(), 10);
    assert.deepEqual(h.errors, []);
  });
});
