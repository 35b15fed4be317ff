import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import placeOrderNode = require("../../nodes/place-order/place-order");
import { METRICS_PATH } from "../../nodes/shared/metrics";
import type { Family } from "../support/prometheus-text";
import { parsePrometheusText, sampleValue } from "../support/prometheus-text";
import type { FlowNode } from "./support";
import {
  TAB,
  freshRuntime,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode];

/** b1 is used by a place-order node; b2 is deployed but unused, so it never connects. */
function flow(): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "metrics" },
    paperConfig("b1"),
    paperConfig("b2", { name: 'spare "b"', account: "spare" }),
    { id: "n1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["out"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

interface TextResponse {
  status: number;
  text: string;
  headers: Record<string, string>;
}

async function scrape(): Promise<Map<string, Family>> {
  const response = (await helper.request().get(METRICS_PATH)) as unknown as TextResponse;
  assert.equal(response.status, 200);
  assert.equal(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  return parsePrometheusText(response.text);
}

async function value(name: string, labels: Record<string, string>): Promise<number> {
  return sampleValue(await scrape(), name, labels);
}

const b1 = { id: "b1" };

describe("trading-broker metrics endpoint", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("reports every deployed config node with its connection state", async function () {
    await helper.load(NODES, flow());
    await statusMatching("n1", (status) => status.fill === "green");
    const families = await scrape();
    assert.equal(sampleValue(families, "trading_broker_connected", { id: "b1", name: "paper" }), 1);
    assert.equal(sampleValue(families, "trading_broker_state", { id: "b1", state: "connected" }), 1);
    assert.equal(sampleValue(families, "trading_broker_connected", { id: "b2", name: 'spare "b"' }), 0);
    assert.equal(sampleValue(families, "trading_broker_state", { id: "b2", state: "disconnected" }), 1);
    for (const name of [
      "trading_broker_orders_placed_total",
      "trading_broker_orders_rejected_total",
      "trading_broker_orders_expired_total",
      "trading_broker_reconnects_total",
      "trading_broker_order_latency_seconds_count",
    ]) {
      assert.equal(
        families.get(name.replace(/_count$/, ""))?.samples.filter((s) => s.name === name).length,
        2,
      );
    }
  });

  it("counts placed, rejected and expired orders and times each placement", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker("b1");
    const placed = await value("trading_broker_orders_placed_total", b1);
    const rejected = await value("trading_broker_orders_rejected_total", b1);
    const timed = await value("trading_broker_order_latency_seconds_count", b1);

    const out = nextMessage("out");
    getNode("n1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
    assert.equal(((await out).payload as OrderSnapshot).status, "FILLED");
    const caught = nextMessage("caught");
    getNode("n1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1_000_000 } });
    assert.equal(((await caught).payload as OrderSnapshot).status, "REJECTED");
    // The paper broker never expires an order by itself; a remote broker reports it like this.
    const expiredBefore = await value("trading_broker_orders_expired_total", b1);
    const order = (await broker.getOrderbook())[0]!;
    broker.emit("order", {
      type: "ORDER_EXPIRED",
      seq: 999,
      order: { ...order, status: "EXPIRED" },
      timestamp: new Date().toISOString(),
    });

    const families = await scrape();
    assert.equal(sampleValue(families, "trading_broker_orders_placed_total", b1), placed + 1);
    assert.equal(sampleValue(families, "trading_broker_orders_rejected_total", b1), rejected + 1);
    assert.equal(sampleValue(families, "trading_broker_orders_expired_total", b1), expiredBefore + 1);
    assert.equal(sampleValue(families, "trading_broker_order_latency_seconds_count", b1), timed + 2);
    const p99 = sampleValue(families, "trading_broker_order_latency_seconds", { id: "b1", quantile: "0.99" });
    assert.ok(p99 > 0 && p99 < 5, `p99 ${p99} s is a plausible round trip`);
    assert.ok(sampleValue(families, "trading_broker_order_latency_seconds_sum", b1) > 0);
    assert.equal(sampleValue(families, "trading_broker_orders_placed_total", { id: "b2" }), 0);
  });

  it("counts a dropped connection once, however long it takes to come back", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker("b1");
    const before = await value("trading_broker_reconnects_total", b1);
    // What a WebSocket broker emits when its socket drops and it retries twice.
    broker.emit("state", "reconnecting", "socket closed");
    broker.emit("state", "reconnecting", "still down");
    broker.emit("state", "connected");
    broker.emit("state", "reconnecting", "dropped again");
    assert.equal(await value("trading_broker_reconnects_total", b1), before + 2);
  });

  it("keeps counting across a redeploy, and forgets a config node that was removed", async function () {
    await helper.load(NODES, flow());
    await paperBroker("b1");
    const out = nextMessage("out");
    getNode("n1").receive({ payload: { symbol: "TCS", side: "BUY", quantity: 1 } });
    await out;
    const placed = await value("trading_broker_orders_placed_total", b1);
    assert.ok(placed >= 1);

    const changed = flow().map((node) => (node.id === "b1" ? { ...node, slippage_bps: "1" } : node));
    await helper.setFlows(changed, "nodes");
    assert.equal(await value("trading_broker_orders_placed_total", b1), placed, "kept across the redeploy");

    await helper.setFlows(
      changed.filter((node) => node.id !== "b2"),
      "nodes",
    );
    const families = await scrape();
    assert.equal(
      families.get("trading_broker_connected")?.samples.some((s) => s.labels.id === "b2"),
      false,
      "b2 is gone",
    );
  });
});
