import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode } from "./support";
import {
  TAB,
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

const NODES = [brokerNode, cancelOrderNode, placeOrderNode];

function flow(cancel: Record<string, unknown> = {}): FlowNode[] {
  return userFlow({ id: "x1", type: "trading-cancel-order", ...cancel });
}

async function restingOrder(): Promise<OrderSnapshot> {
  return (await paperBroker()).placeOrder({
    symbol: "INFY",
    side: "BUY",
    quantity: 2,
    order_type: "LIMIT",
    price: 90,
  });
}

interface CaughtError {
  message: string;
  code?: string;
}

describe("trading-cancel-order", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with a blank order id", async function () {
    await helper.load(NODES, flow());
    assert.deepEqual(
      editorFields("x1").map((f) => [f.field, f.typed.value]),
      [["order_id", ""]],
    );
  });

  it("cancels by payload.order_id and keeps the rest of msg", async function () {
    await helper.load(NODES, flow());
    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("x1").receive({ payload: { order_id: order.order_id }, topic: "stop", custom: 1 });
    const msg = await out;
    assert.equal((msg.payload as OrderSnapshot).status, "CANCELLED");
    assert.equal(msg.topic, "stop");
    assert.equal(msg.custom, 1);
    assert.equal(lastStatus("x1")?.fill, "green");
  });

  it("cancels by an order id string payload", async function () {
    await helper.load(NODES, flow());
    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("x1").receive({ payload: order.order_id });
    assert.equal(((await out).payload as OrderSnapshot).status, "CANCELLED");
  });

  it("takes a place-order output as it is (only order_id is read)", async function () {
    await helper.load(NODES, [
      ...flow(),
      {
        id: "p1",
        type: "trading-place-order",
        z: TAB,
        broker: "b1",
        orderType: "LIMIT",
        orderTypeType: "order_type",
        price: "80",
        priceType: "num",
        wires: [["x1"]],
      },
    ]);
    await paperBroker();
    const out = nextMessage("out");
    getNode("p1").receive({ payload: { symbol: "TCS", side: "BUY", quantity: 1 } });
    const cancelled = (await out).payload as OrderSnapshot;
    assert.equal(cancelled.symbol, "TCS");
    assert.equal(cancelled.status, "CANCELLED");
  });

  it("takes the order id from the editor when the payload has none", async function () {
    await helper.load(NODES, flow({ orderId: "payload.ref", orderIdType: "jsonata" }));
    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("x1").receive({ payload: { ref: order.order_id } });
    assert.equal(((await out).payload as OrderSnapshot).order_id, order.order_id);
  });

  it("reports bad requests to Catch and keeps working", async function () {
    await helper.load(NODES, flow());
    const cases: [unknown, RegExp, string][] = [
      [{}, /order_id: is required/, "VALIDATION"],
      [{ order_id: 42 }, /order_id: must be a string/, "VALIDATION"],
      ["NOPE", /order NOPE not found/, "NOT_FOUND"],
    ];
    for (const [payload, expected, code] of cases) {
      const caught = nextMessage("caught");
      getNode("x1").receive({ payload });
      const error = (await caught).error as CaughtError;
      assert.match(error.message, expected);
      assert.equal(error.code, code);
    }
    const filled = await (await paperBroker()).placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    const caught = nextMessage("caught");
    getNode("x1").receive({ payload: filled.order_id });
    assert.equal(((await caught).error as CaughtError).code, "ORDER_TERMINAL");

    const order = await restingOrder();
    const out = nextMessage("out");
    getNode("x1").receive({ payload: order.order_id });
    assert.equal(((await out).payload as OrderSnapshot).status, "CANCELLED");
  });

  it("without a configured broker: red ring, one logged error, messages fail", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("x1", "trading-cancel-order", "P1");
  });

  it("drops its registration on close", async function () {
    await helper.load(NODES, flow());
    await assertReleasedOnClose(["state"]);
  });
});
