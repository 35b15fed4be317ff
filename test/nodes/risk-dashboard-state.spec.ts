// The dashboard's trading state line shows the state from the start (an inject "once" asks the
// kill switch for "state"), not only after the first change; and a kill switch asked for "state"
// changes nothing.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import orderEventsNode = require("../../nodes/order-events/order-events");
import { saveState } from "../../lib/risk/state-file";
import { nodeRedPath } from "./setup";
import type { FlowNode, Received } from "./support";
import { collect, configNode, delay, helper } from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const EXAMPLES = path.resolve(__dirname, "..", "..", "..", "examples");

async function coreNode(file: string): Promise<(RED: never) => unknown> {
  const resolved = require.resolve(`@node-red/nodes/core/${file}`, { paths: [path.dirname(nodeRedPath())] });
  return ((await import(resolved)) as { default: (RED: never) => unknown }).default;
}

function byName(flow: FlowNode[], name: string): FlowNode {
  const found = flow.filter((n) => n.name === name);
  assert.equal(found.length, 1, `one node named "${name}"`);
  return found[0]!;
}

/** The dashboard's state display: the start-up inject, kill switch, state events, line. */
function stateFlow(): { flow: FlowNode[]; line: string; configId: string } {
  const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, "paper-dashboard.json"), "utf8")) as FlowNode[];
  const config = byName(flow, "paper broker (dashboard)");
  const inject = byName(flow, "trading state at start");
  const killSwitch = byName(flow, "kill switch");
  const events = byName(flow, "trading state changes");
  const change = byName(flow, "state: reason");
  const line = byName(flow, "trading state");
  assert.deepEqual(inject.wires, [[killSwitch.id]], "the start-up inject asks the kill switch");
  assert.equal(inject.once, true);
  assert.equal(inject.payload, "state");
  const tab = flow.find((n) => n.type === "tab")!;
  return {
    flow: [
      tab,
      config,
      inject,
      killSwitch,
      events,
      change,
      { id: line.id, type: "helper", z: line.z, name: line.name },
    ],
    line: line.id,
    configId: config.id,
  };
}

async function firstLine(id: string): Promise<string> {
  const lines = collect(id);
  try {
    const deadline = Date.now() + 10_000;
    while (lines.messages.length === 0) {
      if (Date.now() > deadline) throw new Error("the trading state line showed nothing within 10 s");
      await delay(20);
    }
    return String((lines.messages[0] as Received).payload);
  } finally {
    lines.stop();
  }
}

describe("paper-dashboard.json: the trading state line at start", function () {
  this.timeout(20_000);
  const runtime = nodeRedPerTest();

  const nodes = async () => [
    brokerNode,
    killSwitchNode,
    orderEventsNode,
    await coreNode("common/20-inject.js"),
    await coreNode("function/15-change.js"),
  ];

  it("shows ACTIVE once deployed, before any change", async function () {
    const { flow, line } = stateFlow();
    await helper.load(await nodes(), flow);
    assert.match(await firstLine(line), /^ACTIVE: /);
  });

  it("shows HALTED and why when the account was left halted, and reading it changes nothing", async function () {
    const file = path.join(runtime.userDir, "trading-broker", "risk-paper-dashboard.json");
    await saveState(file, {
      version: 1,
      state: "HALTED",
      by: "kill switch panic",
      reason: "left halted overnight",
      at: new Date().toISOString(),
    });
    const { flow, line, configId } = stateFlow();
    await helper.load(await nodes(), flow);
    assert.equal(await firstLine(line), "HALTED: left halted overnight");
    const saved = JSON.parse(fs.readFileSync(file, "utf8")) as { state: string; by: string };
    assert.deepEqual([saved.state, saved.by], ["HALTED", "kill switch panic"]);
    const broker = await configNode(configId).connection.ready();
    assert.equal((broker as unknown as { risk: { tradingState: string } }).risk.tradingState, "HALTED");
  });
});
