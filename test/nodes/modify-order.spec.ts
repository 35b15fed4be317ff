import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import modifyOrderNode = require("../../nodes/modify-order/modify-order");
import type { FlowNode } from "./support";
import {
  assertMissingBroker,
  assertReleasedOnClose,
  editorFields,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  nextMessage,
  paperBroker,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, modifyOrderNode];

function flow(modify: Record<string, unknown> = {}): FlowNode[] {
  return userFlow({ id: "m1", type: "trading-modify-order", ...modify });
}

/** A BUY LIMIT below the market: it rests OPEN until modified or cancelled. */
async function restingOrder(): Promise<OrderSnapshot> {
  const order = await (
    await paperBroker()
  ).placeOrder({
    symbol: "INFY",
    side: "BUY",
    quantity: 4,
    order_type: "LIMIT",
    price: 90,
  });
  assert.equal(order.status, "OPEN");
  return order;
}

interface CaughtError {
  message: string;
  code?: string;
}

describe("trading-modify-order", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with every editor field blank", async function () {
    await helper.load(NODES, flow());
    const fields = editorFields("m1");
    assert.deepEqual(
      fields.map((f) => f.field),
      ["order_id", "quantity", "order_type", "price", "trigger_price", "validity", "disclosed_quantity"],
    );
    assert.ok(fields.every((f) => f.typed.value === ""));
  });

  it("changes the disclosed quantity set in the editor, and refuses a change into TTL", async function () {
    await helper.load(NODES, flow({ disclosedQuantity: "40", disclosedQuantityType: "num" }));
    const broker = await paperBroker();
    const order = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 100,
      order_type: "LIMIT",
      price: 90,
      disclosed_quantity: 10,
    });
    const out = nextMessage("out");
    getNode("m1").receive({ payload: { order_id: order.order_id } });
    assert.equal(((await out).payload as OrderSnapshot).disclosed_quantity, 40);
    assert.equal((await broker.getOrder(order.order_id)).disclosed_quantity, 40);

    const caught = nextMessage("caught");
    getNode("m1").receive({ payload: { order_id: order.order_id, validity: "TTL" } });
    const error = (await caught).error as { code?: string; message: string };
    assert.equal(error.code, "VALIDATION");
    assert.match(error.message, /validity: cannot be changed to TTL/);
    assert.equal((await broker.getOrder(order.order_id)).validity, "DAY");
  });

  it("modifies an open order and keeps the rest of msg", async function () {
    await helper.load(NODES, flow());
    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("m1").receive({
      payload: { order_id: order.order_id, price: 95, quantity: 6 },
      topic: "adjust",
      custom: true,
    });
    const msg = await out;
    const modified = msg.payload as OrderSnapshot;
    assert.equal(msg.topic, "adjust");
    assert.equal(msg.custom, true);
    assert.equal(modified.order_id, order.order_id);
    assert.equal(modified.price, 95);
    assert.equal(modified.quantity, 6);
    assert.equal(modified.status, "OPEN");
    assert.equal(lastStatus("m1")?.fill, "green");
  });

  it("takes the order id and changes from the editor when the payload has none", async function () {
    await helper.load(NODES, flow({ orderId: "target", orderIdType: "msg", price: "96", priceType: "num" }));
    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("m1").receive({ payload: "go", target: order.order_id });
    assert.equal(((await out).payload as OrderSnapshot).price, 96);
  });

  const bad: [string, Record<string, unknown>, RegExp, string][] = [
    ["no order id", { price: 95 }, /order_id: is required/, "VALIDATION"],
    ["no change", { order_id: "P000000001" }, /must change at least one of/, "VALIDATION"],
    [
      "zero quantity",
      { order_id: "P000000001", quantity: 0 },
      /quantity: must be greater than 0/,
      "VALIDATION",
    ],
    ["an unknown field", { order_id: "P000000001", colour: "red" }, /colour: unknown field/, "VALIDATION"],
    ["an unknown order", { order_id: "NOPE", price: 95 }, /order NOPE not found/, "NOT_FOUND"],
  ];

  it("reports bad requests to Catch with field and rule, and keeps working", async function () {
    await helper.load(NODES, flow());
    const order = await restingOrder();
    for (const [what, payload, expected, code] of bad) {
      const caught = nextMessage("caught");
      getNode("m1").receive({ payload });
      const error = (await caught).error as CaughtError;
      assert.match(error.message, expected, what);
      assert.equal(error.code, code, what);
      assert.equal(lastStatus("m1")?.fill, "red");
    }
    const out = nextMessage("out");
    getNode("m1").receive({ payload: { order_id: order.order_id, price: 91 } });
    assert.equal(((await out).payload as OrderSnapshot).price, 91);
    assert.equal((await (await paperBroker()).getOrder(order.order_id)).price, 91);
  });

  it("refuses to modify a filled order (ORDER_TERMINAL)", async function () {
    await helper.load(NODES, flow());
    const filled = await (await paperBroker()).placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    const caught = nextMessage("caught");
    getNode("m1").receive({ payload: { order_id: filled.order_id, quantity: 2 } });
    const error = (await caught).error as CaughtError;
    assert.equal(error.code, "ORDER_TERMINAL");
  });

  it("without a configured broker: red ring, one logged error, messages fail", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("m1", "trading-modify-order", { order_id: "P1", price: 1 });
  });

  it("drops its registration on close", async function () {
    await helper.load(NODES, flow());
    await assertReleasedOnClose(["state"]);
  });
});
