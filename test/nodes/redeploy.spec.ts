import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import orderEventsNode = require("../../nodes/order-events/order-events");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import type { PaperBroker } from "../../lib/brokers/paper-broker";
import type { FlowNode } from "./support";
import {
  TAB,
  activeResources,
  configNode,
  delay,
  freshRuntime,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode, orderEventsNode, quotesNode];
const DEPLOYS = 50;
const EVENTS = ["order", "gtt", "quote", "state", "error"] as const;

/** `round` renames nodes so Node-RED sees them as changed; `configToo` also changes the config. */
function flow(round: number, configToo: boolean): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "redeploy" },
    paperConfig("b1", configToo ? { name: `paper ${round}` } : {}),
    { id: "p1", type: "trading-place-order", z: TAB, name: `order ${round}`, broker: "b1", wires: [["out"]] },
    {
      id: "e1",
      type: "trading-order-events",
      z: TAB,
      name: `events ${round}`,
      broker: "b1",
      wires: [["events"]],
    },
    {
      id: "q1",
      type: "trading-quotes",
      z: TAB,
      name: "quotes",
      broker: "b1",
      symbols: "INFY, TCS",
      wires: [["ticks"]],
    },
    { id: "out", type: "helper", z: TAB },
    { id: "events", type: "helper", z: TAB },
    { id: "ticks", type: "helper", z: TAB },
  ];
}

function listenerCounts(broker: PaperBroker): Record<string, number> {
  return Object.fromEntries(EVENTS.map((event) => [event, broker.listenerCount(event)]));
}

/** Timers and pending file requests: what a leaked broker, feed or journal would leave behind. */
function leakables(): number {
  const counts = activeResources();
  return (counts.Timeout ?? 0) + (counts.FSReqCallback ?? 0);
}

async function placeOne(): Promise<void> {
  const out = nextMessage("out");
  getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
  assert.equal(((await out).payload as OrderSnapshot).status, "FILLED");
}

async function settle(): Promise<PaperBroker> {
  const broker = await paperBroker();
  await delay(5);
  return broker;
}

describe("redeploying a flow 50 times", function () {
  this.timeout(60_000);
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("full deploys: one listener of each kind, flat timers and file handles", async function () {
    await helper.load(NODES, flow(0, true));
    await placeOne();
    let broker = await settle();
    const expected = { order: 1, gtt: 1, quote: 1, state: 1, error: 1 };
    assert.deepEqual(listenerCounts(broker), expected);
    const baseline = leakables();
    const seen: number[] = [];
    const brokers = new Set<PaperBroker>([broker]);

    for (let round = 1; round <= DEPLOYS; round++) {
      await helper.setFlows(flow(round, true), "full");
      await placeOne();
      broker = await settle();
      brokers.add(broker);
      assert.deepEqual(listenerCounts(broker), expected, `round ${round}`);
      seen.push(leakables());
    }

    assert.equal(brokers.size, DEPLOYS + 1, "every full deploy made a new broker");
    for (const old of brokers) {
      if (old === broker) continue;
      assert.equal(old.state, "disconnected");
      assert.deepEqual(listenerCounts(old), { order: 0, gtt: 0, quote: 0, state: 0, error: 0 });
    }
    assert.ok(Math.max(...seen) <= baseline + 2, `timers+fs ${baseline} at first, then ${seen.join(",")}`);
    assert.equal((await broker.getOrderbook()).length, DEPLOYS + 1, "the account survived every deploy");
  });

  it("partial deploys of the users: the broker stays, its listener counts stay flat", async function () {
    await helper.load(NODES, flow(0, false));
    await placeOne();
    const broker = await settle();
    const before = listenerCounts(broker);
    const baseline = leakables();
    const seen: number[] = [];

    for (let round = 1; round <= DEPLOYS; round++) {
      await helper.setFlows(flow(round, false), "nodes");
      await placeOne();
      assert.equal(configNode().broker, broker, `round ${round}: quotes kept the broker open`);
      assert.deepEqual(listenerCounts(broker), before, `round ${round}`);
      assert.equal(configNode().connection.userCount, 3);
      seen.push(leakables());
    }
    assert.deepEqual(Object.fromEntries(configNode().connection.quoteHolders()), {
      "NSE:INFY": 1,
      "NSE:TCS": 1,
    });
    assert.ok(Math.max(...seen) <= baseline + 2, `timers+fs ${baseline} at first, then ${seen.join(",")}`);
  });
});
