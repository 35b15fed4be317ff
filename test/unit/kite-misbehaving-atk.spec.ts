import assert from "node:assert/strict";
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

const limitBuy = (clientId: string) => ({
  symbol: "INFY",
  side: "BUY" as const,
  quantity: 1,
  order_type: "LIMIT" as const,
  price: 1400,
  client_order_id: clientId,
});

/**
 * Issue kite11: Kite misbehaving around a placement — its answer after 30 s (past the client's
 * timeout), the order's postback before the REST answer (then the answer, or a 500), an order
 * listed under another tag. Each placement ends in one outcome, one order on Kite, each event once.
 */
describe("KiteBroker against a misbehaving Kite (issue kite11, attacks)", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  const posts = (k: KiteHarness): number =>
    k.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;

  it("the answer comes 30 s late (client timeout 800 ms), three times: each order found by its tag, reported once", async function () {
    this.timeout(20_000);
    const k = await startKite({ timeout_ms: 800 }, { skipPostbackStatuses: ["OPEN"] });
    h = k;
    k.fake.setPrice("INFY", 1500);
    for (let i = 0; i < 3; i++) {
      k.fake.delayNext(PLACE, 30_000);
      const order = await k.broker.placeOrder(limitBuy(`slow${i}`));
      assert.equal(order.client_order_id, `slow${i}`);
      await k.log.until(() => k.log.typesFor(order.order_id).length > 0, `slow${i} reported`);
      assert.deepEqual(k.log.typesFor(order.order_id), ["ORDER_PLACED"]);
    }
    assert.equal(posts(k), 3);
    assert.equal(await k.fake.orderCount(), 3);
  });

  it("the postback comes before the REST answer, 10 times (and then a 500, 5 times): one ORDER_PLACED each", async function () {
    this.timeout(20_000);
    const k = await startKite();
    h = k;
    k.fake.setPrice("INFY", 1500);
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) {
      if (i < 10) k.fake.delayNext(PLACE, 300);
      else k.fake.failAfter(PLACE, 500, GENERAL);
      const order = await k.broker.placeOrder(limitBuy(`early${i}`));
      assert.equal(order.status, "OPEN");
      ids.push(order.order_id);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const id of ids) assert.deepEqual(k.log.typesFor(id), ["ORDER_PLACED"], id);
    assert.equal(k.log.orders.length, 15);
    assert.equal(posts(k), 15);
    assert.equal(await k.fake.orderCount(), 15);
  });

  it("Kite lists the order under another tag after a 500: NETWORK (never found by tag), not sent again", async function () {
    this.timeout(20_000);
    const k = await startKite({ resolve_window_ms: 600 }, { skipPostbackStatuses: ["OPEN"] });
    h = k;
    k.fake.setPrice("INFY", 1500);
    // The exchange holds an order tagged otherwise (what a Kite that dropped or rewrote the tag
    // would list); the placement itself is lost before it is carried out.
    await k.fake.paper.placeOrder({ ...limitBuy("x"), tag: "sometag" });
    k.fake.failNext(PLACE, 500, GENERAL);
    await rejectsWithCode(k.broker.placeOrder(limitBuy("tagged1")), "NETWORK", /not sent again/);
    await rejectsWithCode(k.broker.placeOrder(limitBuy("tagged1")), "IDEMPOTENCY_UNKNOWN");
    assert.equal(posts(k), 1);
    assert.equal(k.log.orders.filter((e) => e.order.client_order_id === "tagged1").length, 0);
  });
});
