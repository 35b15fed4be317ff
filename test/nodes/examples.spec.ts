// The importable examples (examples/*.json) are part of the product: `npm start` deploys
// paper-momentum.json. These specs check their shape and run them in the helper, with debug
// nodes swapped for helper nodes and inject nodes driven by hand.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { GttEvent, GttSnapshot, OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import gttNode = require("../../nodes/gtt/gtt");
import modifyOrderNode = require("../../nodes/modify-order/modify-order");
import momentumNode = require("../../nodes/momentum/momentum");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import { nodeRedPath } from "./setup";
import type { FlowNode } from "./support";
import {
  ERROR,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  logged,
  nextMessage,
  paperBroker,
  statusMatching,
  teardownRuntime,
} from "./support";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLES = path.join(ROOT, "examples");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  "node-red": { nodes: Record<string, string> };
};

/** Core nodes the examples use besides debug, inject and comment (which the specs replace). */
async function coreNode(file: string): Promise<(RED: never) => unknown> {
  const resolved = require.resolve(`@node-red/nodes/core/${file}`, { paths: [path.dirname(nodeRedPath())] });
  return ((await import(resolved)) as { default: (RED: never) => unknown }).default;
}

const PACK = [
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

function example(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(EXAMPLES, name), "utf8")) as FlowNode[];
}

function byName(flow: FlowNode[], name: string): FlowNode {
  const found = flow.filter((n) => n.name === name);
  assert.equal(found.length, 1, `the example has one node named "${name}"`);
  return found[0]!;
}

/** Debug nodes become helper nodes (same id), comments go; inject nodes stay out of the runtime too. */
function runnable(flow: FlowNode[]): FlowNode[] {
  return flow
    .filter((n) => n.type !== "comment" && n.type !== "inject")
    .map((n) => (n.type === "debug" ? { id: n.id, type: "helper", z: n.z, name: n.name } : n));
}

/** What the example's inject node would send, delivered straight to the node it is wired to. */
function pressInject(flow: FlowNode[], name: string): void {
  const inject = byName(flow, name);
  const target = (inject.wires as string[][])[0]?.[0];
  assert.ok(target);
  const payload =
    inject.payloadType === "json" ? (JSON.parse(String(inject.payload)) as unknown) : Date.now();
  getNode(target).receive({ payload });
}

describe("examples", function () {
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith(".json"));

  it("use every node type of the pack (node-red-dev N02)", function () {
    const used = new Set(files.flatMap((f) => example(f).map((n) => n.type)));
    const registered = Object.keys(PACKAGE["node-red"].nodes).map((dir) =>
      dir === "broker-config" ? "trading-broker" : `trading-${dir}`,
    );
    for (const type of registered) assert.ok(used.has(type), `${type} appears in an example`);
  });

  for (const file of files) {
    it(`${file}: one tab holding every node but the config nodes`, function () {
      const flow = example(file);
      const tabs = flow.filter((n) => n.type === "tab");
      assert.equal(tabs.length, 1);
      const tab = tabs[0]!.id;
      for (const node of flow) {
        if (node.type === "tab") continue;
        if (node.type === "trading-broker") assert.equal(node.z, undefined, `${node.id} is a config node`);
        else assert.equal(node.z, tab, `${node.type} ${node.id} sits on the tab`);
      }
      assert.ok(
        flow.some((n) => n.type === "comment"),
        "a comment explains the flow",
      );
      const ids = flow.map((n) => n.id);
      assert.equal(new Set(ids).size, ids.length, "ids are unique");
      const configs = new Set(flow.filter((n) => n.type === "trading-broker").map((n) => n.id));
      for (const node of flow.filter((n) => "broker" in n)) assert.ok(configs.has(String(node.broker)));
      for (const node of flow) {
        for (const wire of (node.wires as string[][] | undefined)?.flat() ?? [])
          assert.ok(ids.includes(wire));
      }
    });
  }

  it("every example keeps its own paper account, so all of them can be imported together", function () {
    const accounts = files
      .flatMap((f) => example(f).filter((n) => n.type === "trading-broker" && n.kind === "paper"))
      .map((n) => n.account);
    assert.equal(new Set(accounts).size, accounts.length);
  });

  it("websocket-momentum.json: a websocket config for the documented gateway, without credentials", function () {
    const flow = example("websocket-momentum.json");
    const config = byName(flow, "websocket gateway");
    assert.equal(config.kind, "websocket");
    assert.equal(config.url, "ws://127.0.0.1:8787/v1");
    assert.ok(!("credentials" in config), "the user enters key and secret");
    for (const node of flow.filter((n) => "broker" in n)) assert.equal(node.broker, config.id);
    const comment = flow.find((n) => n.type === "comment");
    const info = String(comment?.info);
    assert.ok(
      info.includes(
        "TRADING_GATEWAY_API_KEY=demo TRADING_GATEWAY_API_SECRET=demo-secret npm run gateway -- --port 8787 --volatility 0.002",
      ),
      "the comment says how to start the gateway",
    );
    const types = new Set(flow.map((n) => n.type));
    for (const type of [
      "trading-quotes",
      "trading-momentum",
      "trading-place-order",
      "trading-order-events",
      "catch",
      "debug",
    ]) {
      assert.ok(types.has(type), `${type} is in the flow`);
    }
  });

  describe("running", function () {
    this.timeout(20_000);
    beforeEach(freshRuntime);
    afterEach(teardownRuntime);

    it("paper-momentum.json: orders and fills reach the debug nodes within seconds", async function () {
      const flow = example("paper-momentum.json");
      await helper.load([...PACK, await coreNode("common/25-catch.js")], runnable(flow));
      const orders = nextMessage(byName(flow, "orders").id, 10_000);
      const fills = nextMessage(byName(flow, "fills").id, 10_000);
      const order = (await orders).payload as OrderSnapshot;
      assert.equal(order.tag, "momentum");
      assert.equal(order.status, "FILLED");
      assert.equal(((await fills).payload as { type: string }).type, "ORDER_FILLED");

      const book = nextMessage(byName(flow, "order book").id);
      pressInject(flow, "show order book");
      const payload = (await book).payload as {
        orders: unknown[];
        positions: unknown[];
        account: { cash: number };
      };
      assert.ok(payload.orders.length > 0);
      assert.ok(Array.isArray(payload.positions));
      assert.equal(typeof payload.account.cash, "number");
    });

    it("websocket-momentum.json: as shipped (no gateway, no credentials) it loads and names what is missing", async function () {
      const flow = example("websocket-momentum.json");
      await helper.load([...PACK, await coreNode("common/25-catch.js")], runnable(flow));
      const config = byName(flow, "websocket gateway").id;
      assert.match(logged(config, ERROR).join("\n"), /websocket\.api_key: is required/);
      await statusMatching(
        byName(flow, "place order").id,
        (s) => s.text === "trading-broker.status.invalid-settings",
      );
    });

    it("websocket-momentum.json: through an in-process gateway, orders and fills reach the debug nodes", async function () {
      const paper = new PaperBroker({
        seed: 42,
        start_price: 1500,
        volatility: 0.004,
        spread_bps: 5,
        interval_ms: 50,
      });
      await paper.connect();
      const gateway = await Gateway.start({
        broker: paper,
        port: 0,
        credentials: new Map([["demo", { secret: "demo-secret" }]]),
      });
      try {
        const flow = example("websocket-momentum.json");
        const config = byName(flow, "websocket gateway").id;
        const pointed = runnable(flow).map((n) => (n.id === config ? { ...n, url: gateway.url } : n));
        await helper.load([...PACK, await coreNode("common/25-catch.js")], pointed, {
          [config]: { apiKey: "demo", apiSecret: "demo-secret" },
        });
        const orders = nextMessage(byName(flow, "orders").id, 10_000);
        const fills = nextMessage(byName(flow, "fills").id, 10_000);
        const order = (await orders).payload as OrderSnapshot;
        assert.equal(order.tag, "momentum");
        assert.equal(order.status, "FILLED");
        assert.equal(((await fills).payload as { type: string }).type, "ORDER_FILLED");
        assert.ok((await paper.getOrderbook()).some((o) => o.order_id === order.order_id));
      } finally {
        await helper.unload();
        await gateway.close();
        await paper.close();
      }
    });

    it("paper-oco-gtt.json: buy, bracket with an OCO, one leg fires and the other is void", async function () {
      const flow = example("paper-oco-gtt.json");
      await helper.load([...PACK, await coreNode("function/15-change.js")], runnable(flow));
      const placed = nextMessage(byName(flow, "GTT placed").id);
      pressInject(flow, "BUY 10 INFY");
      const gtt = (await placed).payload as GttSnapshot;
      assert.equal(gtt.type, "two-leg");
      assert.equal(gtt.status, "active");
      const [stop, target] = gtt.trigger_values;
      assert.ok(stop !== undefined && target !== undefined && stop < target);

      const broker = await paperBroker(byName(flow, "paper broker (OCO demo)").id);
      const events = collect(byName(flow, "OCO events").id);
      broker.setPrice("INFY", Math.round(target * 1.002 * 100) / 100);
      await delay(50);
      const fired = events.messages.map((m) => m.payload as GttEvent).find((e) => e.type === "GTT_TRIGGERED");
      assert.ok(fired, "GTT_TRIGGERED reached the OCO events debug");
      assert.equal(fired.gtt.status, "triggered");
      assert.equal(fired.gtt.triggered_leg, 1, "the target fired");
      broker.setPrice("INFY", Math.round(stop * 0.99 * 100) / 100);
      await delay(50);
      events.stop();
      assert.equal(events.messages.filter((m) => (m.payload as GttEvent).type === "GTT_TRIGGERED").length, 1);
      const positions = await broker.getPositions();
      assert.equal(positions[0]?.quantity, 0, "the target leg sold the position; the stop-loss never fired");
    });

    it("paper-manage-orders.json: place, modify, cancel, and a second cancel is caught", async function () {
      const flow = example("paper-manage-orders.json");
      await helper.load(
        [...PACK, await coreNode("function/15-change.js"), await coreNode("common/25-catch.js")],
        runnable(flow),
      );
      const placed = nextMessage(byName(flow, "placed").id);
      pressInject(flow, "BUY 5 TCS LIMIT 95 %");
      const order = (await placed).payload as OrderSnapshot;
      assert.equal(order.status, "OPEN");

      const modified = nextMessage(byName(flow, "modified").id);
      pressInject(flow, "raise limit to 98 %");
      assert.equal(((await modified).payload as OrderSnapshot).price, 1470);

      const cancelled = nextMessage(byName(flow, "cancelled").id);
      pressInject(flow, "cancel it");
      assert.equal(((await cancelled).payload as OrderSnapshot).status, "CANCELLED");

      const errors = nextMessage(byName(flow, "errors").id);
      pressInject(flow, "cancel it");
      assert.equal(((await errors).error as { code: string }).code, "ORDER_TERMINAL");
    });
  });
});
