// Run as a process of its own by test/integration/kite-lazy-load.spec.ts: require.cache is per
// process and the rest of the suite loads kiteconnect, so only a fresh process can show what a
// paper-only runtime loads. It deploys the whole pack into Node-RED with a paper broker and places
// an order, then deploys a Kite broker config and places one there, and prints what was loaded
// after each step as one JSON line. With --without-kiteconnect, `kiteconnect` cannot be resolved,
// as in an install that left the optional peer dependency out.
import Module from "node:module";
import path from "node:path";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import gttNode = require("../../nodes/gtt/gtt");
import modifyOrderNode = require("../../nodes/modify-order/modify-order");
import momentumNode = require("../../nodes/momentum/momentum");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import type { FlowNode } from "../nodes/support";
import {
  TAB,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  paperConfig,
  teardownRuntime,
} from "../nodes/support";

const NODES = [
  brokerNode,
  placeOrderNode,
  modifyOrderNode,
  cancelOrderNode,
  gttNode,
  orderEventsNode,
  orderbookNode,
  quotesNode,
  momentumNode,
];

type Resolve = (request: string, ...rest: unknown[]) => string;
const loader = Module as unknown as { _resolveFilename: Resolve };

if (process.argv.includes("--without-kiteconnect")) {
  const resolve = loader._resolveFilename;
  loader._resolveFilename = function (request: string, ...rest: unknown[]): string {
    if (request === "kiteconnect" || request.startsWith("kiteconnect/")) {
      throw Object.assign(new Error(`Cannot find module '${request}'`), { code: "MODULE_NOT_FOUND" });
    }
    return resolve.call(this, request, ...rest);
  };
}

interface Loaded {
  kiteconnect: number;
  kiteBroker: boolean;
}

function loaded(): Loaded {
  const files = Object.keys(require.cache);
  const marker = `${path.sep}node_modules${path.sep}kiteconnect${path.sep}`;
  return {
    kiteconnect: files.filter((file) => file.includes(marker)).length,
    kiteBroker: files.some((file) => file.endsWith(path.join("lib", "brokers", "kite-broker.js"))),
  };
}

function flow(config: FlowNode): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "probe" },
    config,
    { id: "n1", type: "trading-place-order", z: TAB, broker: config.id, wires: [["out"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

/** Sends one order into n1; the first of its output or the Catch node's message. */
async function placeOne(): Promise<{ output?: unknown; error?: unknown }> {
  const out = collect("out");
  const caught = collect("caught");
  getNode("n1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
  try {
    const deadline = Date.now() + 15_000;
    while (out.messages.length + caught.messages.length === 0) {
      if (Date.now() > deadline) throw new Error("the order had no outcome within 15 s");
      await delay(20);
    }
    const [output] = out.messages;
    return output !== undefined ? { output: output.payload } : { error: caught.messages[0]!.error };
  } finally {
    out.stop();
    caught.stop();
  }
}

async function main(): Promise<void> {
  freshRuntime();
  await helper.load(NODES, flow(paperConfig("b1")));
  const paper = await placeOne();
  const afterPaper = loaded();
  await teardownRuntime();

  freshRuntime();
  const kite: FlowNode = {
    id: "k1",
    type: "trading-broker",
    name: "kite",
    kind: "kite",
    // Port 9 (discard) on loopback: nothing answers, the order fails without leaving the machine.
    root: "http://127.0.0.1:9",
    ticker_url: "ws://127.0.0.1:9",
  };
  await helper.load(NODES, flow(kite), { k1: { apiKey: "probe-key", accessToken: "probe-token" } });
  const kiteOrder = await placeOne();
  const afterKite = loaded();
  await teardownRuntime();

  console.log(`PROBE ${JSON.stringify({ paper, afterPaper, kiteOrder, afterKite })}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
