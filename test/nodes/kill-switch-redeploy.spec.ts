import assert from "node:assert/strict";
import type { RiskEvent } from "../../lib/protocol/events";
import { seededRandom } from "../../lib/paper/random";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import orderEventsNode = require("../../nodes/order-events/order-events");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode, Received } from "./support";
import { waitFor } from "../support/wait";
import {
  TAB,
  collect,
  delay,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
} from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const NODES = [brokerNode, placeOrderNode, killSwitchNode, orderEventsNode];
const SEED = Number(process.env.RISK_REDEPLOY_SEED ?? 20261205);

/** `round` changes what a "nodes" deploy sees as modified: the config node itself, or a user. */
function flow(round: number, configChanged: boolean): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "kill switch redeploys" },
    paperConfig("b1", { risk_max_order_quantity: String(configChanged ? 1000 + round : 1000) }),
    { id: "k1", type: "trading-kill-switch", z: TAB, name: "panic", broker: "b1", wires: [["killed"]] },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["placed"]] },
    {
      id: "e1",
      type: "trading-order-events",
      z: TAB,
      name: `events ${round}`,
      broker: "b1",
      wires: [["events"]],
    },
    { id: "killed", type: "helper", z: TAB },
    { id: "placed", type: "helper", z: TAB },
    { id: "events", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

async function place(): Promise<Received> {
  const placed = collect("placed");
  const caught = collect("caught");
  try {
    getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
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

describe(`trading-kill-switch: HALT holds across every kind of deploy (seed ${SEED})`, function () {
  this.timeout(30_000);
  nodeRedPerTest();

  it("12 deploys (full, flows, nodes with the config modified, nodes with a user modified): refused every time, one RISK_STATE_CHANGED", async function () {
    const random = seededRandom(SEED);
    await helper.load(NODES, flow(0, false));
    (await paperBroker()).setPrice("INFY", 1500);
    // A deploy may replace the helper node: one collector per deploy, all counted.
    let events = collect("events");
    const heard: Received[] = [];
    const out = nextMessage("killed");
    getNode("k1").receive({ payload: { command: "halt", reason: "mid-strategy panic" } });
    assert.equal(((await out).payload as { state: string }).state, "HALTED");
    await waitFor(
      () => events.messages.some((m) => (m.payload as RiskEvent).type === "RISK_STATE_CHANGED"),
      "the halt's RISK_STATE_CHANGED",
    );
    const kinds = ["full", "flows", "nodes", "nodes"] as const;
    const done: string[] = [];
    for (let round = 1; round <= 12; round++) {
      const pick = Math.floor(random() * kinds.length);
      const kind = kinds[pick]!;
      const configChanged = kind === "nodes" && pick === 2;
      events.stop();
      heard.push(...events.messages);
      await helper.setFlows(flow(round, configChanged), kind);
      events = collect("events");
      done.push(`${kind}${configChanged ? " (config)" : ""}`);
      const broker = await paperBroker();
      broker.setPrice("INFY", 1500);
      const outcome = await place();
      const error = outcome.error as { message?: string } | undefined;
      assert.match(
        error?.message ?? "placed",
        /trading is HALTED \(mid-strategy panic\): no new orders \(trading_state\)/,
        `round ${round} after ${done.join(", ")}`,
      );
      assert.equal((await broker.getOrderbook()).length, 0, `round ${round}: an order reached the broker`);
      await statusMatching("p1", (s) => s.fill === "red" && /halted/i.test(String(s.text)));
    }
    await delay(50); // anything the last deploy would wrongly announce
    events.stop();
    heard.push(...events.messages);
    const risk = heard.map((m) => m.payload as RiskEvent).filter((e) => e.type === "RISK_STATE_CHANGED");
    assert.equal(risk.length, 1, `RISK_STATE_CHANGED ${risk.length} times over ${done.join(", ")}`);
  });
});
