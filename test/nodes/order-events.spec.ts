import assert from "node:assert/strict";
import type { GttEvent, GttRequestInput, OrderEvent } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import orderEventsNode = require("../../nodes/order-events/order-events");
import type { FlowNode, Received } from "./support";
import {
  ERROR,
  TAB,
  assertMissingBroker,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  logged,
  paperBroker,
  paperConfig,
  quietFor,
  statusMatching,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, orderEventsNode];

function flow(events: Record<string, unknown> = {}): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "events" },
    paperConfig(),
    { id: "e1", type: "trading-order-events", z: TAB, name: "", broker: "b1", wires: [["out"]], ...events },
    { id: "out", type: "helper", z: TAB },
  ];
}

function types(messages: Received[]): string[] {
  return messages.map((msg) => (msg.payload as OrderEvent | GttEvent).type);
}

interface EventsNode {
  filter: { instruments: Set<string>; side: string | undefined; types: Set<string>; statuses: Set<string> };
}

/** A GTT that sells one INFY at 120: it stays active (the price starts at 100). */
const SELL_AT_120: GttRequestInput = {
  type: "single",
  symbol: "INFY",
  trigger_values: [120],
  orders: [{ side: "SELL", quantity: 1, price: 120, product: "MIS" }],
};

describe("trading-order-events", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with no filters", async function () {
    await helper.load(NODES, flow());
    const { filter } = getNode("e1") as unknown as EventsNode;
    assert.deepEqual(filter.instruments, new Set());
    assert.equal(filter.side, undefined);
    assert.deepEqual(filter.types, new Set());
    assert.deepEqual(filter.statuses, new Set());
  });

  it("emits each order event once, with the symbol as topic", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    const seen = collect("out");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
    await delay(20);
    seen.stop();
    assert.deepEqual(types(seen.messages), ["ORDER_PLACED", "ORDER_FILLED"]);
    const filled = seen.messages[1]!;
    const event = filled.payload as OrderEvent;
    assert.equal(filled.topic, "INFY");
    assert.equal(event.order.status, "FILLED");
    assert.equal(event.order.filled_quantity, 3);
    assert.ok(event.seq > (seen.messages[0]!.payload as OrderEvent).seq);
    assert.deepEqual(JSON.parse(JSON.stringify(event)), event, "plain JSON");
    assert.deepEqual(lastStatus("e1"), { fill: "green", shape: "dot", text: "ORDER_FILLED INFY" });
  });

  it("ignores an event whose seq it has already passed (replays after a reconnect)", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    const seen = collect("out");
    const events: OrderEvent[] = [];
    broker.on("order", (event) => events.push(event));
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    for (const event of [...events]) broker.emit("order", event);
    broker.emit("order", { ...events[0]!, seq: events[0]!.seq - 1 });
    await delay(20);
    seen.stop();
    assert.deepEqual(types(seen.messages), ["ORDER_PLACED", "ORDER_FILLED"]);
  });

  it("gives each node its own copy of an event", async function () {
    await helper.load(NODES, [
      ...flow(),
      { id: "e2", type: "trading-order-events", z: TAB, broker: "b1", wires: [["out2"]] },
      { id: "out2", type: "helper", z: TAB },
    ]);
    const broker = await paperBroker();
    const one = collect("out");
    const two = collect("out2");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await delay(20);
    assert.equal(one.messages.length, 2);
    assert.equal(two.messages.length, 2);
    assert.notEqual(one.messages[0]!.payload, two.messages[0]!.payload);
    assert.deepEqual(one.messages[0]!.payload, two.messages[0]!.payload);
  });

  it("filters by symbol (with or without exchange)", async function () {
    await helper.load(NODES, flow({ symbols: "TCS, NSE:SBIN" }));
    const broker = await paperBroker();
    const seen = collect("out");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "TCS", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "SBIN", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "SBIN", exchange: "BSE", side: "BUY", quantity: 1 });
    await delay(20);
    assert.deepEqual(
      seen.messages.map((m) => m.topic),
      ["TCS", "TCS", "SBIN", "SBIN"],
    );
  });

  it("filters by side", async function () {
    await helper.load(NODES, flow({ side: "SELL" }));
    const broker = await paperBroker();
    const seen = collect("out");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 });
    await delay(20);
    assert.deepEqual(
      seen.messages.map((m) => (m.payload as OrderEvent).order.side),
      ["SELL", "SELL"],
    );
  });

  it("filters by event type", async function () {
    await helper.load(NODES, flow({ eventTypes: ["ORDER_FILLED", "GTT_PLACED"] }));
    const broker = await paperBroker();
    const seen = collect("out");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await broker.placeGtt(SELL_AT_120);
    await delay(20);
    assert.deepEqual(types(seen.messages), ["ORDER_FILLED", "GTT_PLACED"]);
  });

  it("filters by order status (GTT events then stay out)", async function () {
    await helper.load(NODES, flow({ statuses: ["OPEN"] }));
    const broker = await paperBroker();
    const seen = collect("out");
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 90 });
    await broker.placeGtt(SELL_AT_120);
    await delay(20);
    assert.deepEqual(types(seen.messages), ["ORDER_PLACED", "ORDER_PLACED"], "the fill and the GTT stay out");
    assert.deepEqual(
      seen.messages.map((m) => (m.payload as OrderEvent).order.order_type),
      ["MARKET", "LIMIT"],
    );
  });

  it("emits GTT events with the GTT's symbol as topic", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("TCS", 100);
    const seen = collect("out");
    await broker.placeGtt({
      type: "single",
      symbol: "TCS",
      trigger_values: [110],
      orders: [{ side: "BUY", quantity: 1, price: 110, product: "MIS" }],
    });
    broker.setPrice("TCS", 110);
    await delay(20);
    assert.deepEqual(types(seen.messages), ["GTT_PLACED", "ORDER_PLACED", "ORDER_FILLED", "GTT_TRIGGERED"]);
    assert.ok(seen.messages.every((m) => m.topic === "TCS"));
    const triggered = seen.messages[3]!.payload as GttEvent;
    assert.equal(triggered.gtt.status, "triggered");
  });

  it("shows the last event briefly, then the broker's state again", async function () {
    this.timeout(6000);
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await statusMatching("e1", (s) => s.text === "ORDER_FILLED INFY");
    const flashed = Date.now();
    await statusMatching("e1", (s) => s.text === "trading-broker.status.connected", 4000);
    assert.ok(Date.now() - flashed > 2500, "the event stayed on show for about 3 s");
  });

  it("reports a filter it cannot read and emits nothing", async function () {
    await helper.load(NODES, flow({ symbols: "XYZ:INFY" }));
    assert.match(logged("e1", ERROR).join(), /trading-order-events\.errors\.bad-filter/);
    assert.equal(lastStatus("e1")?.fill, "red");
    const broker = await paperBroker();
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.ok(await quietFor("out", 50));
  });

  it("without a configured broker: red ring and one logged error", async function () {
    await helper.load(NODES, flow({ broker: "" }));
    await assertMissingBroker("e1", "trading-order-events");
  });

  it("drops its listeners on close", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    assert.equal(broker.listenerCount("order"), 1);
    assert.equal(broker.listenerCount("gtt"), 1);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await helper.unload();
    assert.equal(broker.listenerCount("order"), 0);
    assert.equal(broker.listenerCount("gtt"), 0);
  });
});
