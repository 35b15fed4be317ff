// The risk examples run in the helper: paper-risk-guard.json (a misbehaving flow, stopped) and the
// kill switch of paper-dashboard.json. Debug nodes become helpers; injects and buttons are pressed
// by sending what they would send.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { OrderSnapshot } from "../../lib/protocol";
import type { RiskEvent } from "../../lib/protocol/events";
import type { KillOutcome } from "../../lib/risk/guard";
import { isGuarded } from "../../lib/risk/guard";
import brokerNode = require("../../nodes/broker-config/broker-config");
import cancelOrderNode = require("../../nodes/cancel-order/cancel-order");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import momentumNode = require("../../nodes/momentum/momentum");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import { nodeRedPath } from "./setup";
import type { FlowNode, Received } from "./support";
import {
  collect,
  configNode,
  delay,
  freshRuntime,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  statusMatching,
  teardownRuntime,
} from "./support";

const EXAMPLES = path.resolve(__dirname, "..", "..", "..", "examples");
const PACK = [
  brokerNode,
  placeOrderNode,
  cancelOrderNode,
  orderEventsNode,
  orderbookNode,
  quotesNode,
  momentumNode,
  killSwitchNode,
];

async function coreNode(file: string): Promise<(RED: never) => unknown> {
  const resolved = require.resolve(`@node-red/nodes/core/${file}`, { paths: [path.dirname(nodeRedPath())] });
  return ((await import(resolved)) as { default: (RED: never) => unknown }).default;
}

function example(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(EXAMPLES, name), "utf8")) as FlowNode[];
}

function byName(flow: FlowNode[], name: string): FlowNode {
  const found = flow.filter((n) => n.name === name);
  assert.equal(found.length, 1, `one node named "${name}"`);
  return found[0]!;
}

/** Sends what an inject (or a dashboard button) would, to the node it is wired to. */
function press(flow: FlowNode[], name: string): void {
  const source = byName(flow, name);
  const payload =
    source.payloadType === "json" ? (JSON.parse(String(source.payload)) as unknown) : source.payload;
  for (const target of (source.wires as string[][])[0] ?? []) {
    getNode(target).receive({ payload, topic: typeof source.topic === "string" ? source.topic : "" });
  }
}

async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
    await delay(20);
  }
}

interface Caught {
  error: { message: string; code?: string };
}

describe("risk examples", function () {
  this.timeout(30_000);
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("paper-risk-guard.json: every misbehaviour is refused before the broker; the kill switch halts and flattens", async function () {
    const flow = example("paper-risk-guard.json");
    const runnable = flow
      .filter((n) => n.type !== "comment" && n.type !== "inject")
      .map((n) => (n.type === "debug" ? { id: n.id, type: "helper", z: n.z, name: n.name } : n));
    await helper.load(
      [...PACK, await coreNode("sequence/17-split.js"), await coreNode("common/25-catch.js")],
      runnable,
    );
    const configId = byName(flow, "paper broker (risk guard)").id;
    const broker = await paperBroker(configId);
    // The guard values MARKET orders at the last price: wait until it has seen quotes.
    await nextMessage(byName(flow, "quotes").id, 5000);

    const orders = collect(byName(flow, "orders").id);
    const refused = collect(byName(flow, "refused").id);
    const guard = collect(byName(flow, "guard").id);
    press(flow, "1. runaway loop: 30 BUYs at once");
    await eventually("30 outcomes", () =>
      orders.messages.length + refused.messages.length === 30 ? true : undefined,
    );
    assert.equal(orders.messages.length, 5, "five a second go out");
    for (const msg of refused.messages) {
      assert.match(
        (msg as unknown as Caught).error.message,
        /max orders per second 5: 5 sent in the last second/,
      );
    }
    for (const [name, pattern] of [
      ["2. fat finger: LIMIT at 15000", /price band 5 %: price 15,000 is \d+(\.\d+)? % from the last price/],
      ["3. wrong quantity: BUY 5000", /max order quantity 50: order is for 5,000 INFY/],
      ["4. wrong symbol: BUY WIPRO", /allowed symbols: NSE:WIPRO is not one of INFY, TCS/],
    ] as const) {
      const before = refused.messages.length;
      press(flow, name);
      const caught = (await eventually(name, () => refused.messages[before])) as unknown as Caught;
      assert.match(caught.error.message, pattern);
    }
    const book = await broker.getOrderbook();
    assert.equal(book.length, 5, "nothing refused reached the broker");
    assert.ok(book.every((o) => o.symbol === "INFY" && o.quantity === 1));
    await eventually("ORDER_DENIED events", () => (guard.messages.length >= 28 ? true : undefined));
    assert.ok(guard.messages.every((m) => (m.payload as RiskEvent).type === "ORDER_DENIED"));

    // Keep pressing the loop (a second apart): the position stops at the limit of 20.
    for (let i = 0; i < 5; i++) {
      await delay(1050);
      press(flow, "1. runaway loop: 30 BUYs at once");
    }
    await delay(300);
    const infy = (await broker.getPositions()).find((p) => p.symbol === "INFY");
    assert.equal(infy?.quantity, 20);
    assert.ok(
      refused.messages.some((m) =>
        /max position NSE:INFY 20: current 20, order would make 21/.test(
          (m as unknown as Caught).error.message,
        ),
      ),
    );

    const outcome = nextMessage(byName(flow, "kill switch outcome").id);
    press(flow, "5. KILL SWITCH: halt + flatten");
    const killed = (await outcome).payload as KillOutcome;
    assert.equal(killed.state, "HALTED");
    assert.equal(killed.reason, "kill switch pressed");
    assert.deepEqual(
      killed.placed.map((o: OrderSnapshot) => `${o.side} ${o.quantity} ${o.symbol}`),
      ["SELL 20 INFY"],
    );
    await eventually("flat", async () =>
      (await broker.getPositions()).every((p) => p.quantity === 0) ? true : undefined,
    );
    await statusMatching(byName(flow, "place order").id, (s) => s.text === "trading-broker.status.halted");
    const resumed = nextMessage(byName(flow, "kill switch outcome").id);
    press(flow, "resume");
    assert.equal(((await resumed).payload as KillOutcome).state, "ACTIVE");
    orders.stop();
    refused.stop();
    guard.stop();
  });

  it("paper-dashboard.json: the KILL SWITCH button halts trading and the state line says so; Resume resumes", async function () {
    const flow = example("paper-dashboard.json");
    const dashboardConfig = new Set(["ui-base", "ui-theme", "ui-page", "ui-group"]);
    const runnable = flow
      .filter((n) => n.type !== "comment" && n.type !== "inject" && !dashboardConfig.has(n.type))
      .map((n): FlowNode =>
        n.type === "debug"
          ? { id: n.id, type: "helper", z: n.z, name: n.name }
          : n.type.startsWith("ui-")
            ? { id: n.id, type: "helper", z: n.z, name: n.name, wires: n.wires ?? [] }
            : n,
      );
    await helper.load(
      [
        ...PACK,
        await coreNode("function/15-change.js"),
        await coreNode("function/10-switch.js"),
        await coreNode("sequence/17-split.js"),
        await coreNode("common/25-catch.js"),
      ],
      runnable,
    );
    const configId = byName(flow, "paper broker (dashboard)").id;
    await paperBroker(configId);
    const state = collect(byName(flow, "trading state").id);
    const button = byName(flow, "KILL SWITCH");
    getNode(button.id).send({
      payload: JSON.parse(String(button.payload)) as unknown,
      topic: String(button.topic),
    });
    const line = await eventually("the trading state line", () =>
      state.messages.find((m: Received) => /^HALTED/.test(String(m.payload))),
    );
    assert.equal(line.payload, "HALTED: kill switch pressed on the dashboard");
    const guarded = configNode(configId).broker;
    assert.ok(isGuarded(guarded));
    assert.equal(guarded.risk.tradingState, "HALTED");
    await statusMatching(byName(flow, "place order").id, (s) => s.text === "trading-broker.status.halted");
    const resume = byName(flow, "Resume trading");
    getNode(resume.id).send({ payload: resume.payload, topic: String(resume.topic) });
    await eventually("ACTIVE again", () =>
      state.messages.find((m: Received) => String(m.payload) === "ACTIVE: resumed from the dashboard"),
    );
    state.stop();
  });
});
