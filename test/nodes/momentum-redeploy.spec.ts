// The scenario, run through a real Node-RED runtime: deploy the paper-momentum example
// (maxPosition 5; 1 here, see runnableExample), then do a full deploy again and again on the same account, reading the account
// after each. A strategy that kept "its" position in memory walked INFY -1/TCS +1, -2/+2, ... to
// -8/+8, because every deploy started it from zero while the account kept the real position.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { Position } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import momentumNode = require("../../nodes/momentum/momentum");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import type { FlowNode } from "./support";
import { collect, delay, freshRuntime, helper, paperBroker, teardownRuntime } from "./support";

const EXAMPLE = path.resolve(__dirname, "..", "..", "..", "examples", "paper-momentum.json");
const NODES = [brokerNode, quotesNode, momentumNode, placeOrderNode, orderEventsNode, orderbookNode];
const REDEPLOYS = 8;
const ROUND_MS = 800;
const MAX_POSITION = 1;

/**
 * The example as the runtime gets it: debug nodes become helpers, comments and injects go. Its
 * quotes tick every 100 ms instead of 500 ms, and rounds last 800 ms instead of the 4 s:
 * the same eight ticks a round, five times faster. The account and the strategy are the example's,
 * but the position limit is 1: a reopened account continues its random walk where it stopped (it
 * no longer replays the same prices from the seed on every deploy), so a limit of 5 is not always
 * reached within nine rounds, while 1 is reached at the first signal and every later signal in
 * the same direction is one a strategy with a forgotten position would send.
 */
function runnableExample(): { flow: FlowNode[]; configId: string; ordersId: string; maxPosition: number } {
  const flow = JSON.parse(fs.readFileSync(EXAMPLE, "utf8")) as FlowNode[];
  const config = flow.find((n) => n.type === "trading-broker")!;
  const momentum = flow.find((n) => n.type === "trading-momentum")!;
  const orders = flow.find((n) => n.type === "debug" && n.name === "orders")!;
  return {
    flow: flow
      .filter((n) => n.type !== "comment" && n.type !== "inject")
      .map((n) => (n.type === "debug" ? { id: n.id, type: "helper", z: n.z, name: n.name } : n))
      .map((n) => (n.id === config.id ? { ...n, interval_ms: 100 } : n))
      .map((n) => (n.id === momentum.id ? { ...n, maxPosition: String(MAX_POSITION) } : n)),
    configId: config.id,
    ordersId: orders.id,
    maxPosition: MAX_POSITION,
  };
}

function netBySymbol(positions: readonly Position[]): Record<string, number> {
  const net: Record<string, number> = {};
  for (const p of positions) net[p.symbol] = (net[p.symbol] ?? 0) + p.quantity;
  return net;
}

describe("paper-momentum: redeploys on the same account", function () {
  this.timeout(120_000);
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it(`keeps |position| <= maxPosition for every symbol over ${REDEPLOYS} full redeploys`, async function () {
    const { flow, configId, ordersId, maxPosition } = runnableExample();
    await helper.load(NODES, flow);
    const history: Record<string, number>[] = [];
    let traded = 0;
    for (let round = 0; round <= REDEPLOYS; round++) {
      if (round > 0) await helper.setFlows(flow, "full");
      const orders = collect(ordersId);
      await delay(ROUND_MS);
      orders.stop();
      traded += orders.messages.length;
      const net = netBySymbol(await (await paperBroker(configId)).getPositions());
      history.push(net);
      for (const [symbol, quantity] of Object.entries(net)) {
        assert.ok(
          Math.abs(quantity) <= maxPosition,
          `round ${round}: ${symbol} ${quantity} is beyond maxPosition ${maxPosition}; history ${JSON.stringify(history)}`,
        );
      }
    }
    assert.ok(
      history.some((net) => Object.values(net).some((q) => Math.abs(q) === maxPosition)),
      `the account reached maxPosition at some point (${traded} orders), so the limit was tested`,
    );
  });
});
