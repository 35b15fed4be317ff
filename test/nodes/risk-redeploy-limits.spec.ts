// Limits changed by a redeploy mid-flow: the first order after a deploy that tightened a limit
// meets it, and no deploy that loosens them lets a halted account trade.
import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode, Received } from "./support";
import {
  TAB,
  collect,
  freshRuntime,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode, killSwitchNode];

function flow(maxQuantity: number): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "limits by redeploy" },
    paperConfig("b1", { risk_max_order_quantity: String(maxQuantity) }),
    { id: "k1", type: "trading-kill-switch", z: TAB, name: "panic", broker: "b1", wires: [["killed"]] },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["placed"]] },
    { id: "killed", type: "helper", z: TAB },
    { id: "placed", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

async function place(quantity: number): Promise<Received> {
  const placed = collect("placed");
  const caught = collect("caught");
  try {
    getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity } });
    const deadline = Date.now() + 5000;
    for (;;) {
      const outcome = placed.messages[0] ?? caught.messages[0];
      if (outcome !== undefined) return outcome;
      if (Date.now() > deadline) throw new Error("place-order gave no outcome within 5000 ms");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    placed.stop();
    caught.stop();
  }
}

function refusal(outcome: Received): string {
  return String((outcome.error as { message?: string } | undefined)?.message ?? "placed");
}

describe("risk limits changed by redeploy", function () {
  this.timeout(20_000);
  beforeEach(function () {
    freshRuntime();
  });
  afterEach(teardownRuntime);

  it("a tighter max order quantity meets the first order after each deploy; a looser one never frees a halt (6 deploys)", async function () {
    await helper.load(NODES, flow(10));
    (await paperBroker()).setPrice("INFY", 1500);
    assert.equal(((await place(8)).payload as OrderSnapshot).status, "FILLED");
    const limits = [5, 20, 3, 300, 2, 7];
    for (let round = 0; round < limits.length; round++) {
      const limit = limits[round]!;
      await helper.setFlows(flow(limit), round % 2 === 0 ? "nodes" : "full");
      (await paperBroker()).setPrice("INFY", 1500);
      // The first message after the deploy: one over the new limit.
      assert.match(
        refusal(await place(limit + 1)),
        new RegExp(`max order quantity ${limit.toLocaleString("en-US")}: order is for ${limit + 1} INFY`),
        `round ${round}: limit ${limit}`,
      );
      assert.equal(((await place(limit)).payload as OrderSnapshot).status, "FILLED", `round ${round}`);
    }
    const out = nextMessage("killed");
    getNode("k1").receive({ payload: { command: "halt", reason: "enough" } });
    await out;
    for (const [round, limit] of [1_000_000, 50, 1_000_000].entries()) {
      await helper.setFlows(flow(limit), "full");
      (await paperBroker()).setPrice("INFY", 1500);
      assert.match(refusal(await place(1)), /trading is HALTED \(enough\)/, `halted round ${round}`);
    }
  });
});
