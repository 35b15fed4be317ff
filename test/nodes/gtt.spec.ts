import assert from "node:assert/strict";
import type { GttEvent, GttSnapshot, OrderEvent } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import gttNode = require("../../nodes/gtt/gtt");
import orderEventsNode = require("../../nodes/order-events/order-events");
import type { FlowNode, Received } from "./support";
import {
  assertMissingBroker,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  nextMessage,
  paperBroker,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, gttNode, orderEventsNode];

/** The GTT node "g1", and an order-events node "ev" whose events reach helper "events". */
function flow(gtt: Record<string, unknown> = {}): FlowNode[] {
  return userFlow(
    { id: "g1", type: "trading-gtt", ...gtt },
    {
      extra: [
        { id: "ev", type: "trading-order-events", broker: "b1", wires: [["events"]] },
        { id: "events", type: "helper" },
      ],
    },
  );
}

const single = {
  type: "single",
  symbol: "INFY",
  trigger_values: [110],
  orders: [{ side: "BUY", quantity: 1, price: 110, product: "MIS" }],
};

/** OCO around a long position bought at 100: stop-loss at 95, target at 110. */
const oco = {
  type: "two-leg",
  symbol: "INFY",
  trigger_values: [95, 110],
  orders: [
    { side: "SELL", quantity: 10, price: 95, product: "MIS" },
    { side: "SELL", quantity: 10, price: 110, product: "MIS" },
  ],
};

async function send(payload: unknown, extra: Record<string, unknown> = {}): Promise<Received> {
  const out = nextMessage("out");
  getNode("g1").receive({ payload, ...extra });
  return out;
}

async function fails(
  payload: unknown,
  extra: Record<string, unknown> = {},
): Promise<{ message: string; code?: string }> {
  const caught = nextMessage("caught");
  getNode("g1").receive({ payload, ...extra });
  return (await caught).error as { message: string; code?: string };
}

describe("trading-gtt", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with action place and type single", async function () {
    await helper.load(NODES, flow());
    const g1 = getNode("g1") as unknown as { action: string; gttType: string };
    assert.equal(g1.action, "place");
    assert.equal(g1.gttType, "single");
  });

  it("places a single GTT and keeps the rest of msg", async function () {
    await helper.load(NODES, flow());
    (await paperBroker()).setPrice("INFY", 100);
    const msg = await send(single, { topic: "guard", custom: "x" });
    const gtt = msg.payload as GttSnapshot;
    assert.equal(msg.topic, "guard");
    assert.equal(msg.custom, "x");
    assert.equal(gtt.type, "single");
    assert.equal(gtt.status, "active");
    assert.deepEqual(gtt.trigger_values, [110]);
    assert.deepEqual(JSON.parse(JSON.stringify(gtt)), gtt);
    assert.equal(lastStatus("g1")?.fill, "green");
  });

  it("uses the editor's type when the payload names none", async function () {
    await helper.load(NODES, flow({ gttType: "two-leg" }));
    (await paperBroker()).setPrice("INFY", 100);
    const { type: _type, ...withoutType } = oco;
    const gtt = (await send(withoutType)).payload as GttSnapshot;
    assert.equal(gtt.type, "two-leg");
  });

  it("places a two-leg OCO; the target firing voids the stop-loss", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    const placed = (await send(oco)).payload as GttSnapshot;
    assert.equal(placed.type, "two-leg");
    const events = collect("events");
    broker.setPrice("INFY", 111);
    await delay(20);
    broker.setPrice("INFY", 94);
    await delay(20);
    events.stop();
    const triggered = events.messages.map((m) => m.payload as OrderEvent | GttEvent);
    assert.deepEqual(
      triggered.map((e) => e.type),
      ["ORDER_PLACED", "ORDER_FILLED", "GTT_TRIGGERED"],
      "one leg fires; the stop-loss never does, even when the price falls through it",
    );
    const fired = triggered[2] as GttEvent;
    assert.equal(fired.gtt.status, "triggered");
    assert.equal(fired.gtt.triggered_leg, 1);
    assert.equal(fired.gtt.order_ids.length, 1);
    const sold = triggered[1] as OrderEvent;
    assert.equal(sold.order.side, "SELL");
    assert.equal(sold.order.gtt_id, placed.gtt_id);
    assert.equal((await broker.getPositions())[0]?.quantity, 0);
  });

  it("modifies a GTT (gtt_id from the payload or msg.action)", async function () {
    await helper.load(NODES, flow());
    (await paperBroker()).setPrice("INFY", 100);
    const placed = (await send(single)).payload as GttSnapshot;
    const modified = (
      await send({ ...single, gtt_id: placed.gtt_id, trigger_values: [120] }, { action: "modify" })
    ).payload as GttSnapshot;
    assert.equal(modified.gtt_id, placed.gtt_id);
    assert.deepEqual(modified.trigger_values, [120]);
    assert.equal(modified.status, "active");
  });

  it("modifies with the id from the editor", async function () {
    await helper.load(NODES, flow({ action: "modify", gttId: "ref", gttIdType: "msg" }));
    const broker = await paperBroker();
    broker.setPrice("INFY", 100);
    const placed = await broker.placeGtt(single as never);
    const modified = (await send({ ...single, trigger_values: [105] }, { ref: placed.gtt_id }))
      .payload as GttSnapshot;
    assert.deepEqual(modified.trigger_values, [105]);
  });

  it("deletes a GTT by payload.gtt_id or by an id string", async function () {
    await helper.load(NODES, flow({ action: "delete" }));
    const broker = await paperBroker();
    broker.setPrice("INFY", 100);
    const one = await broker.placeGtt(single as never);
    const two = await broker.placeGtt(single as never);
    assert.equal(((await send({ gtt_id: one.gtt_id })).payload as GttSnapshot).status, "deleted");
    assert.equal(((await send(two.gtt_id)).payload as GttSnapshot).status, "deleted");
    assert.deepEqual(
      (await broker.getGtts()).map((g) => g.status),
      ["deleted", "deleted"],
    );
  });

  it("reports bad requests to Catch with field and rule, and keeps working", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 100);
    const cases: [unknown, Record<string, unknown>, RegExp, string][] = [
      [{ ...single, trigger_values: undefined }, {}, /trigger_values: /, "VALIDATION"],
      [
        { ...oco, trigger_values: [110, 95] },
        {},
        /stop-loss trigger \(first\) must be below the target/,
        "VALIDATION",
      ],
      [
        { ...single, orders: [{ side: "BUY", quantity: 0, price: 1 }] },
        {},
        /orders\.0\.quantity: must be greater than 0/,
        "VALIDATION",
      ],
      [{ ...single, type: "three-leg" }, {}, /type: must be single or two-leg/, "VALIDATION"],
      [single, { action: "explode" }, /action: must be place, modify or delete/, "VALIDATION"],
      [{ gtt_id: "G404" }, { action: "delete" }, /GTT G404 not found/, "NOT_FOUND"],
      [{ ...single }, { action: "modify" }, /gtt_id: is required/, "VALIDATION"],
    ];
    for (const [payload, extra, expected, code] of cases) {
      const error = await fails(payload, extra);
      assert.match(error.message, expected);
      assert.equal(error.code, code, String(expected));
      assert.equal(lastStatus("g1")?.fill, "red");
    }
    assert.deepEqual(await broker.getGtts(), [], "no bad request reached the broker");
    assert.equal(((await send(single)).payload as GttSnapshot).status, "active");
  });

  it("without a configured broker: red ring, one logged error, messages fail", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("g1", "trading-gtt", single);
  });

  it("drops its registration on close", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    await helper.unload();
    assert.equal(broker.listenerCount("gtt"), 0);
    assert.equal(broker.listenerCount("state"), 0);
  });
});
