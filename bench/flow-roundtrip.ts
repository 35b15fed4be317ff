import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Node, NodeAPI, NodeDef, NodeMessage } from "node-red";
import helper = require("node-red-node-test-helper");
import brokerConfigNode = require("../nodes/broker-config/broker-config");
import placeOrderNode = require("../nodes/place-order/place-order");
import { fmt, row, summarize } from "./stats";

/**
 * inject → place-order → output through a real Node-RED runtime (the test helper starts one), at
 * a steady rate. The baseline is the same flow with a pass-through node in place of place-order,
 * so the ratio isolates what the node and the paper broker add to Node-RED's own message hops.
 */
function passThroughNode(RED: NodeAPI): void {
  function PassThrough(this: Node, config: NodeDef): void {
    RED.nodes.createNode(this, config);
    this.on("input", (msg, send, done) => {
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("bench-pass-through", PassThrough);
}

interface Timed extends NodeMessage {
  sentAt: bigint;
}

async function measure(middleType: string, rate: number, count: number): Promise<number[]> {
  const flow = [
    { id: "tab", type: "tab" },
    {
      id: "b1",
      type: "trading-broker",
      kind: "paper",
      account: `bench${middleType.length}`,
      volatility: "0",
      spread_bps: "0",
      slippage_bps: "0",
      starting_cash: "1e12",
      interval_ms: "60000",
      retention: "10000",
    },
    { id: "src", z: "tab", type: "helper", wires: [["mid"]] },
    { id: "mid", z: "tab", type: middleType, broker: "b1", wires: [["sink"]] },
    { id: "sink", z: "tab", type: "helper" },
  ];
  await helper.load([brokerConfigNode, placeOrderNode, passThroughNode] as never, flow);
  const source = helper.getNode("src")!;
  const sink = helper.getNode("sink")!;
  const latencies: number[] = [];
  const finished = new Promise<void>((resolve) => {
    sink.on("input", (msg: NodeMessage) => {
      latencies.push(Number(process.hrtime.bigint() - (msg as Timed).sentAt) / 1e6);
      if (latencies.length === count) resolve();
    });
  });
  const start = process.hrtime.bigint();
  let sent = 0;
  // Send whatever the schedule says is due, then yield; a steady rate, not a burst.
  while (sent < count) {
    const due = Math.min(count, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate) + 1);
    for (; sent < due; sent += 1) {
      const msg: Timed = {
        _msgid: `m${sent}`,
        payload: { symbol: "INFY", side: sent % 2 === 0 ? "BUY" : "SELL", quantity: 1 },
        sentAt: process.hrtime.bigint(),
      };
      source.send(msg);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await finished;
  await helper.unload();
  return latencies;
}

export async function runFlowBench(options: { quick: boolean }): Promise<string[]> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "flow-bench-"));
  helper.init(require.resolve("node-red"));
  helper.settings({ userDir, logging: { console: { level: "off" } } });
  const count = options.quick ? 1000 : 10_000;
  try {
    await measure("trading-place-order", 1000, 500);
    const baseline = summarize(await measure("bench-pass-through", 1000, count));
    const place = summarize(await measure("trading-place-order", 1000, count));
    return [
      "### Node-RED flow: inject → place-order (paper) → output, steady 1,000 orders/s",
      "",
      row(["flow", "n", "p50 ms", "p99 ms", "max ms", "p50 ratio", "p99 ratio", "target"]),
      row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
      row([
        "pass-through node (baseline)",
        baseline.n,
        fmt(baseline.p50, 3),
        fmt(baseline.p99, 3),
        fmt(baseline.max, 1),
        "1.00",
        "1.00",
        "—",
      ]),
      row([
        "place-order on the paper broker",
        place.n,
        fmt(place.p50, 3),
        fmt(place.p99, 3),
        fmt(place.max, 1),
        fmt(place.p50 / baseline.p50),
        fmt(place.p99 / baseline.p99),
        "p99 < 5 ms",
      ]),
    ];
  } finally {
    fs.rmSync(userDir, { recursive: true, force: true });
  }
}
