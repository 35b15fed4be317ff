// The "payload may override" / "fixed" lock on the fields of modify-order, cancel-order and gtt: a
// fixed field refuses a payload carrying a different value, with an error naming the field, and
// nothing reaches the broker; an equal value or none passes.
import assert from "node:assert/strict";
import type { GttSnapshot, OrderSnapshot } from "../../lib/protocol";
import type { PaperBroker } from "../../lib/brokers/paper-broker";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import gttNode = require("../../nodes/gtt/gtt");
import modifyOrderNode = require("../../nodes/modify-order/modify-order");
import { waitFor } from "../support/wait";
import type { Received } from "./support";
import {
  collect,
  freshRuntime,
  getNode,
  lastStatus,
  loadUserFlow,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, cancelOrderNode, gttNode, modifyOrderNode];

interface CaughtError {
  message: string;
  code?: string;
  source: { id: string };
}

/** Sets flow.<key> on the test tab: the fixed value of a field whose type is "flow". */
function setFlowValue(key: string, value: unknown): void {
  getNode("n1").context().flow.set(key, value);
}

/** Sends one message to n1; its one outcome: the output message or the error Catch received. */
async function outcome(msg: Record<string, unknown>): Promise<{ out?: Received; error?: CaughtError }> {
  const out = collect("out");
  const caught = collect("caught");
  try {
    getNode("n1").receive(msg);
    await waitFor(() => out.messages.length + caught.messages.length > 0, "an outcome");
    // A second outcome would arrive right behind the first; give it the chance.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(out.messages.length + caught.messages.length, 1, "exactly one outcome");
    const [sent] = out.messages;
    return sent !== undefined ? { out: sent } : { error: caught.messages[0]!.error as CaughtError };
  } finally {
    out.stop();
    caught.stop();
  }
}

function refused(result: { out?: Received; error?: CaughtError }, pattern: RegExp): void {
  assert.equal(result.out, undefined, "nothing sent on");
  assert.equal(result.error?.code, "VALIDATION");
  assert.match(result.error?.message ?? "", pattern);
  assert.equal(result.error?.source.id, "n1");
  assert.equal(lastStatus("n1")?.fill, "red");
}

async function resting(broker: PaperBroker, price = 90): Promise<OrderSnapshot> {
  const order = await broker.placeOrder({
    symbol: "INFY",
    side: "BUY",
    quantity: 4,
    order_type: "LIMIT",
    price,
  });
  assert.equal(order.status, "OPEN");
  return order;
}

describe("fixed fields (payload may override | fixed)", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  describe("trading-modify-order", function () {
    it("price fixed at 91: payloads with other prices are refused naming the field, the order stays as it was", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({ type: "trading-modify-order", price: "91", priceType: "num", priceFixed: true }),
      );
      const order = await resting(broker);
      for (const price of [92, 0.5, "93", 1e9]) {
        refused(
          await outcome({ payload: { order_id: order.order_id, price } }),
          /price: is fixed at 91 in this node, so msg\.payload\.price may not change it/,
        );
      }
      const [still] = (await broker.getOrderbook()).filter((o) => o.order_id === order.order_id);
      assert.equal(still?.price, 90, "no refused change reached the broker");

      // An equal value (as text too) passes, and so does a payload that leaves the field out.
      for (const payload of [{ order_id: order.order_id, price: "91.0" }, { order_id: order.order_id }]) {
        const result = await outcome({ payload });
        assert.equal((result.out?.payload as OrderSnapshot | undefined)?.price, 91, JSON.stringify(payload));
      }
    });

    it("only fixed fields are locked, and the lock is per field: quantity from the payload still applies", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({
          type: "trading-modify-order",
          price: "91",
          priceType: "num",
          priceFixed: true,
          quantity: "3",
        }),
      );
      const order = await resting(broker);
      const result = await outcome({ payload: { order_id: order.order_id, quantity: 6 } });
      const modified = result.out?.payload as OrderSnapshot;
      assert.equal(modified.quantity, 6);
      assert.equal(modified.price, 91);
    });

    it("order id fixed: a payload naming another order is refused; the fixed order is modified", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({
          type: "trading-modify-order",
          orderId: "orderId",
          orderIdType: "flow",
          orderIdFixed: true,
        }),
      );
      const mine = await resting(broker);
      const other = await resting(broker, 89);
      setFlowValue("orderId", mine.order_id);
      refused(
        await outcome({ payload: { order_id: other.order_id, price: 80 } }),
        new RegExp(`order_id: is fixed at "${mine.order_id}" in this node`),
      );
      const result = await outcome({ payload: { price: 80 } });
      assert.equal((result.out?.payload as OrderSnapshot).order_id, mine.order_id);
      const book = await broker.getOrderbook();
      assert.equal(book.find((o) => o.order_id === other.order_id)?.price, 89, "the other order untouched");
    });
  });

  describe("trading-cancel-order", function () {
    it("order id fixed: string and object payloads naming another order are refused, none cancelled", async function () {
      const fixed = await loadUserFlow(
        NODES,
        userFlow({
          type: "trading-cancel-order",
          orderId: "orderId",
          orderIdType: "flow",
          orderIdFixed: true,
        }),
      );
      const mine = await resting(fixed);
      const other = await resting(fixed, 89);
      setFlowValue("orderId", mine.order_id);
      for (const payload of [
        other.order_id,
        { order_id: other.order_id },
        { order_id: other.order_id, x: 1 },
      ]) {
        refused(
          await outcome({ payload }),
          /order_id: is fixed at "[^"]+" in this node, so msg\.payload\.order_id may not change it/,
        );
      }
      assert.ok(
        (await fixed.getOrderbook()).every((o) => o.status === "OPEN"),
        "nothing cancelled",
      );
      // Its own id, as a string, passes; so does a payload with no id at all (an inject's timestamp).
      const cancelled = await outcome({ payload: 1700000000000 });
      assert.equal((cancelled.out?.payload as OrderSnapshot).order_id, mine.order_id);
      assert.equal((cancelled.out?.payload as OrderSnapshot).status, "CANCELLED");
      const again = await outcome({ payload: mine.order_id });
      assert.equal(again.error?.code, "ORDER_TERMINAL", "the same id passes the lock and reaches the broker");
    });

    it("not fixed (the default): the payload's id wins over the one set here", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({ type: "trading-cancel-order", orderId: "orderId", orderIdType: "flow" }),
      );
      const mine = await resting(broker);
      const other = await resting(broker, 89);
      setFlowValue("orderId", mine.order_id);
      const result = await outcome({ payload: other.order_id });
      assert.equal((result.out?.payload as OrderSnapshot).order_id, other.order_id);
    });
  });

  describe("trading-gtt", function () {
    const gtt = {
      type: "single",
      trigger_values: [110],
      orders: [{ side: "BUY", quantity: 1, price: 110, product: "MIS" }],
    };

    it("symbol fixed at INFY: a GTT for another symbol is refused, none placed; INFY or none passes", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({ type: "trading-gtt", symbol: "INFY", symbolType: "str", symbolFixed: true }),
      );
      for (const symbol of ["TCS", "infy ", ""]) {
        refused(
          await outcome({ payload: { ...gtt, symbol } }),
          /symbol: is fixed at "INFY" in this node, so msg\.payload\.symbol may not change it/,
        );
      }
      assert.deepEqual(await broker.getGtts(), [], "nothing placed");
      for (const payload of [{ ...gtt, symbol: "INFY" }, gtt]) {
        const result = await outcome({ payload });
        assert.equal((result.out?.payload as GttSnapshot).symbol, "INFY");
      }
      assert.equal((await broker.getGtts()).length, 2);
    });

    it("GTT id fixed: modify and delete refuse another id", async function () {
      const broker = await loadUserFlow(
        NODES,
        userFlow({ type: "trading-gtt", gttId: "gttId", gttIdType: "flow", gttIdFixed: true }),
      );
      const mine = await broker.placeGtt({ ...gtt, symbol: "INFY" } as never);
      const other = await broker.placeGtt({ ...gtt, symbol: "TCS" } as never);
      setFlowValue("gttId", mine.gtt_id);
      refused(
        await outcome({ payload: { ...gtt, symbol: "TCS", gtt_id: other.gtt_id }, action: "modify" }),
        /gtt_id: is fixed at "[^"]+" in this node, so msg\.payload\.gtt_id may not change it/,
      );
      refused(await outcome({ payload: other.gtt_id, action: "delete" }), /gtt_id: is fixed at/);
      const deleted = await outcome({ payload: {}, action: "delete" });
      assert.equal((deleted.out?.payload as GttSnapshot).gtt_id, mine.gtt_id);
      const left = await broker.getGtts();
      assert.ok(
        left.some((g) => g.gtt_id === other.gtt_id && g.status === "active"),
        JSON.stringify(left),
      );
    });
  });
});
