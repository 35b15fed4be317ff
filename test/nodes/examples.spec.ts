// The importable examples (examples/*.json) are part of the product: `npm start` deploys
// paper-momentum.json. These specs check their shape and run them in the helper, with debug
// nodes swapped for helper nodes and inject nodes driven by hand.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { GttEvent, GttSnapshot, OrderSnapshot, Position } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import gttNode = require("../../nodes/gtt/gtt");
import instrumentsNode = require("../../nodes/instruments/instruments");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import modifyOrderNode = require("../../nodes/modify-order/modify-order");
import momentumNode = require("../../nodes/momentum/momentum");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import { hasText } from "./remote-support";
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
  statusHistory,
  statusMatching,
  teardownRuntime,
} from "./support";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLES = path.join(ROOT, "examples");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  "node-red": { nodes: Record<string, string> };
};

/**
 * The dashboard example's widgets come from @flowfuse/node-red-dashboard (a dev dependency): its
 * node map says which types exist, and the ones under nodes/config/ are config nodes.
 */
const DASHBOARD_PACKAGE = "@flowfuse/node-red-dashboard";
const DASHBOARD_NODES = (
  JSON.parse(
    fs.readFileSync(require.resolve(`${DASHBOARD_PACKAGE}/package.json`, { paths: [ROOT] }), "utf8"),
  ) as {
    "node-red": { nodes: Record<string, string> };
  }
)["node-red"].nodes;
const DASHBOARD_CONFIG_TYPES = new Set(
  Object.entries(DASHBOARD_NODES)
    .filter(([, file]) => file.startsWith("nodes/config/"))
    .map(([type]) => type),
);
const CONFIG_TYPES = new Set(["trading-broker", ...DASHBOARD_CONFIG_TYPES]);

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
  killSwitchNode,
  instrumentsNode,
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

/**
 * The dashboard example without a dashboard: its config nodes go, and each widget becomes a helper
 * node with the widget's id and wires, so a spec sees what reaches a chart or table and can send
 * what a button or switch would.
 */
function withoutDashboard(flow: FlowNode[]): FlowNode[] {
  return runnable(flow)
    .filter((n) => !DASHBOARD_CONFIG_TYPES.has(n.type))
    .map((n) =>
      n.type in DASHBOARD_NODES
        ? { id: n.id, type: "helper", z: n.z, name: n.name, wires: n.wires ?? [] }
        : n,
    );
}

/** What a dashboard button or switch sends when clicked: its payload and its topic. */
function press(flow: FlowNode[], name: string, payload: unknown): void {
  const widget = byName(flow, name);
  getNode(widget.id).send({ payload, topic: String(widget.topic) });
}

/** Polls `check` until it returns something other than undefined. */
async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(50);
  }
}

/** A momentum example's parts: quotes in, signals, orders out, their events, and errors shown. */
function assertMomentumTrader(flow: FlowNode[]): void {
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
        if (CONFIG_TYPES.has(node.type)) assert.equal(node.z, undefined, `${node.id} is a config node`);
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
    assertMomentumTrader(flow);
  });

  it("kite-momentum.json: a kite config on Kite's own endpoints, without credentials, tiny quantities", function () {
    const flow = example("kite-momentum.json");
    const config = byName(flow, "kite");
    assert.equal(config.kind, "kite");
    assert.equal(config.root, "", "blank: Kite's real REST root");
    assert.equal(config.ticker_url, "", "blank: Kite's real ticker");
    assert.ok(!("credentials" in config), "the user enters api key and access token");
    for (const node of flow.filter((n) => "broker" in n)) assert.equal(node.broker, config.id);
    const info = String(flow.find((n) => n.type === "comment")?.info);
    for (const words of [/API key/, /access token/, /live/i, /tiny quantities/, /6 AM IST/, /static IP/]) {
      assert.match(info, words);
    }
    const momentum = flow.find((n) => n.type === "trading-momentum");
    assert.equal(momentum?.quantity, 1);
    assert.equal(momentum?.maxPosition, 1);
    assertMomentumTrader(flow);
  });

  it("paper-dashboard.json: pack, core and installed @flowfuse/node-red-dashboard nodes only, on one dashboard", function () {
    const flow = example("paper-dashboard.json");
    const pack = new Set(
      Object.keys(PACKAGE["node-red"].nodes).map((dir) =>
        dir === "broker-config" ? "trading-broker" : `trading-${dir}`,
      ),
    );
    const core = new Set(["tab", "comment", "inject", "change", "switch", "split", "catch", "debug"]);
    for (const node of flow) {
      if (node.type.startsWith("ui-"))
        assert.ok(
          node.type in DASHBOARD_NODES,
          `${node.type} is a node of the installed ${DASHBOARD_PACKAGE}`,
        );
      else assert.ok(pack.has(node.type) || core.has(node.type), `${node.type} is the pack's or a core node`);
    }
    assert.ok(!flow.some((n) => n.type === "function"), "no function node");

    const ofType = (type: string): FlowNode[] => flow.filter((n) => n.type === type);
    const bases = ofType("ui-base");
    assert.equal(bases.length, 1);
    assert.equal(bases[0]!.path, "/dashboard");
    const ids = (type: string): Set<unknown> => new Set(ofType(type).map((n) => n.id));
    for (const page of ofType("ui-page")) {
      assert.ok(ids("ui-base").has(page.ui));
      assert.ok(ids("ui-theme").has(page.theme));
    }
    for (const group of ofType("ui-group"))
      assert.ok(ids("ui-page").has(group.page), `${String(group.name)}: its page`);
    for (const widget of flow.filter(
      (n) => n.type.startsWith("ui-") && !DASHBOARD_CONFIG_TYPES.has(n.type),
    )) {
      if (widget.type === "ui-notification") assert.ok(ids("ui-base").has(widget.ui));
      else assert.ok(ids("ui-group").has(widget.group), `${widget.type} ${String(widget.name)}: its group`);
    }
    for (const type of ["ui-chart", "ui-table", "ui-button", "ui-switch", "ui-text", "ui-notification"])
      assert.ok(ofType(type).length > 0, `a ${type}`);
    const orders = byName(flow, "orders table");
    assert.equal(
      orders.action,
      "replace",
      "the table shows the latest order book, not every one since deploy",
    );

    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    assert.ok(DASHBOARD_PACKAGE in pkg.devDependencies, "the dashboard is a dev dependency (for npm start)");
    assert.ok(
      !(DASHBOARD_PACKAGE in pkg.dependencies),
      "and not something every install of the pack pulls in",
    );
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
      assert.match(logged(config, ERROR).join("\n"), /trading-broker\.errors\.enter-websocket-credentials/);
      await statusMatching(
        byName(flow, "place order").id,
        hasText("trading-broker.status.enter-websocket-credentials"),
      );
    });

    it("kite-momentum.json: as shipped (no credentials) it loads, names what is missing and calls nobody", async function () {
      const flow = example("kite-momentum.json");
      await helper.load([...PACK, await coreNode("common/25-catch.js")], runnable(flow));
      const config = byName(flow, "kite").id;
      assert.match(
        logged(config, ERROR).join("\n"),
        /kite\.api_key: is required.*kite\.access_token: is required.*trading-broker\.errors\.enter-kite-credentials/,
      );
      await statusMatching(
        byName(flow, "place order").id,
        hasText("trading-broker.status.enter-kite-credentials"),
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
      // The event arrives after the broker's journal write and Node-RED's send: wait for it, not
      // for a fixed time (50 ms was too short on a loaded machine).
      const fired = await eventually("GTT_TRIGGERED on the OCO events debug", () =>
        events.messages.map((m) => m.payload as GttEvent).find((e) => e.type === "GTT_TRIGGERED"),
      );
      assert.equal(fired.gtt.status, "triggered");
      assert.equal(fired.gtt.triggered_leg, 1, "the target fired");
      await eventually("the target leg's SELL filled", async () =>
        (await broker.getPositions())[0]?.quantity === 0 ? true : undefined,
      );
      const ordersBefore = (await broker.getOrderbook()).length;
      broker.setPrice("INFY", Math.round(stop * 0.99 * 100) / 100);
      // The broker's state follows a quote at once: the stop price placed nothing, the GTT stays
      // triggered on the target leg, and the position stays flat.
      assert.equal((await broker.getOrderbook()).length, ordersBefore, "the stop-loss leg placed an order");
      const gtts = await broker.getGtts();
      assert.deepEqual(
        gtts.map((g) => [g.status, g.triggered_leg]),
        [["triggered", 1]],
      );
      const positions = await broker.getPositions();
      assert.equal(positions[0]?.quantity, 0, "the target leg sold the position; the stop-loss never fired");
      events.stop();
      assert.equal(events.messages.filter((m) => (m.payload as GttEvent).type === "GTT_TRIGGERED").length, 1);
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

      const instrument = nextMessage(byName(flow, "instrument").id);
      pressInject(flow, "TCS lot and tick");
      const [tcs] = (await instrument).payload as { symbol: string; lot_size: number; tick_size: number }[];
      assert.deepEqual([tcs?.symbol, tcs?.lot_size, tcs?.tick_size], ["TCS", 1, 0.05]);
    });
    /** The dashboard example with its widgets as helper nodes, its broker and a few look-ups. */
    async function loadDashboard(): Promise<{
      flow: FlowNode[];
      broker: PaperBroker;
      orders: (tag?: string) => Promise<OrderSnapshot[]>;
      positions: () => Promise<Position[]>;
    }> {
      const flow = example("paper-dashboard.json");
      await helper.load(
        [
          ...PACK,
          await coreNode("function/15-change.js"),
          await coreNode("function/10-switch.js"),
          await coreNode("sequence/17-split.js"),
          await coreNode("common/25-catch.js"),
        ],
        withoutDashboard(flow),
      );
      const broker = await paperBroker(byName(flow, "paper broker (dashboard)").id);
      return {
        flow,
        broker,
        orders: async (tag) =>
          (await broker.getOrderbook()).filter((o) => tag === undefined || o.tag === tag),
        positions: () => broker.getPositions(),
      };
    }

    it("paper-dashboard.json: quotes reach the price and rate-of-change charts, orders the tables, errors a notification", async function () {
      const { flow } = await loadDashboard();
      const price = nextMessage(byName(flow, "INFY price").id, 5000);
      const roc = nextMessage(byName(flow, "TCS momentum").id, 5000);
      const quote = await price;
      assert.equal(quote.topic, "INFY");
      assert.ok((quote.payload as { last_price: number }).last_price > 0);
      const points = (await roc).payload as { series: string; y: number }[];
      assert.deepEqual(
        points.map((p) => p.series),
        ["rate of change %", "buy threshold", "sell threshold"],
      );
      for (const point of points) assert.ok(Number.isFinite(point.y), `${point.series}: a number`);

      const table = byName(flow, "orders table");
      const columns = (table.columns as { key: string }[]).map((c) => c.key).sort();
      const rows = collect(table.id);
      const positionRows = collect(byName(flow, "positions table").id);
      const filled = await eventually("a filled momentum order in the orders table", () =>
        rows.messages
          .flatMap((m) => m.payload as Record<string, unknown>[])
          .find((row) => row.tag === "momentum" && row.status === "FILLED"),
      );
      rows.stop();
      positionRows.stop();
      assert.deepEqual(Object.keys(filled).sort(), columns, "a row has a value for every column");
      assert.equal(filled.filled_quantity, filled.quantity);
      assert.match(String(filled.average_price), /^\d{1,3}(,\d{3})*\.\d\d$/);
      assert.ok(rows.messages.every((m) => (m.payload as unknown[]).length <= 12));
      const position = positionRows.messages.at(-1)?.payload as Record<string, unknown>[];
      assert.ok(position.length > 0, "a position row");
      const positionColumns = (byName(flow, "positions table").columns as { key: string }[]).map(
        (c) => c.key,
      );
      assert.deepEqual(Object.keys(position[0]!).sort(), positionColumns.sort());

      const toast = nextMessage(byName(flow, "error toast").id);
      getNode(byName(flow, "cancel order").id).receive({ payload: { order_id: "NO-SUCH-ORDER" } });
      assert.match(String((await toast).payload), /NO-SUCH-ORDER/);
    });

    it("paper-dashboard.json: pause stops new strategy orders; flatten closes positions and resets the strategy; cancel all cancels", async function () {
      this.timeout(40_000);
      const { flow, orders, positions } = await loadDashboard();
      const open = (p: Position[]): Position[] => p.filter((x) => x.quantity !== 0);
      await eventually("a momentum order and an open position", async () =>
        (await orders("momentum")).length > 0 && open(await positions()).length > 0 ? true : undefined,
      );

      press(flow, "pause strategy", true);
      await delay(300);
      const before = (await orders("momentum")).length;
      await delay(2500);
      assert.equal((await orders("momentum")).length, before, "no strategy order while paused");

      const infyMomentum = byName(flow, "INFY momentum 5 / 0.2 %").id;
      const tcsMomentum = byName(flow, "TCS momentum 5 / 0.2 %").id;
      const resets = (id: string): number =>
        statusHistory(id).filter((s) => /reset/.test(String(s.text))).length;
      const tcsBefore = (await positions()).find((p) => p.symbol === "TCS")?.quantity ?? 0;
      press(flow, "Flatten INFY", "");
      await eventually("INFY flat", async () =>
        (await positions()).every((p) => p.symbol !== "INFY" || p.quantity === 0) ? true : undefined,
      );
      assert.equal(
        (await positions()).find((p) => p.symbol === "TCS")?.quantity ?? 0,
        tcsBefore,
        "TCS untouched",
      );
      await eventually("INFY's strategy reset", () => (resets(infyMomentum) === 1 ? true : undefined));
      assert.equal(resets(tcsMomentum), 0);

      press(flow, "Flatten all", "");
      await eventually("every position flat", async () =>
        open(await positions()).length === 0 ? true : undefined,
      );
      await eventually("both strategies reset", () =>
        resets(infyMomentum) === 2 && resets(tcsMomentum) === 1 ? true : undefined,
      );
      const flattening = await orders("flatten");
      assert.ok(flattening.length > 0);
      for (const order of flattening) {
        assert.equal(order.status, "FILLED");
        assert.equal(order.order_type, "MARKET");
      }

      press(flow, "Bid 1 INFY 5 % below", "");
      const bid = await eventually("a resting manual bid", async () =>
        (await orders("manual")).find((o) => o.status === "OPEN"),
      );
      assert.equal(bid.order_type, "LIMIT");
      assert.equal(bid.side, "BUY");
      press(flow, "Cancel all open orders", "");
      await eventually("the bid cancelled", async () =>
        (await orders()).find((o) => o.order_id === bid.order_id)?.status === "CANCELLED" ? true : undefined,
      );
      assert.deepEqual(
        (await orders()).filter((o) =>
          ["PENDING", "OPEN", "TRIGGER_PENDING", "PARTIALLY_FILLED"].includes(o.status),
        ),
        [],
      );

      press(flow, "pause strategy", false);
      await eventually(
        "a strategy order after resuming",
        async () => ((await orders("momentum")).length > before ? true : undefined),
        20_000,
      );
    });
  });
});
