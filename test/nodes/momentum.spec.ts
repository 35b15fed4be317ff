import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import { OrderRequest } from "../../lib/protocol/orders";
import brokerNode = require("../../nodes/broker-config/broker-config");
import momentumNode = require("../../nodes/momentum/momentum");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode, Received } from "./support";
import {
  ERROR,
  TAB,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  logged,
  nextMessage,
  paperBroker,
  paperConfig,
  teardownRuntime,
  userFlow,
} from "./support";

/** A momentum node "m1" with no broker (it then sizes by its own fills). */
function flow(momentum: Record<string, unknown> = {}): FlowNode[] {
  return userFlow({ id: "m1", type: "trading-momentum", ...momentum }, { config: null });
}

const FAST = { lookback: "3", threshold: "0.01", quantity: "2", maxPosition: "4", cooldown: "0" };

async function feed(prices: number[], symbol = "INFY"): Promise<Received[]> {
  const seen = collect("out");
  for (const last_price of prices) {
    getNode("m1").receive({
      payload: { symbol, exchange: "NSE", last_price, timestamp: new Date().toISOString() },
      topic: symbol,
      source: "test",
    });
  }
  await delay(20);
  seen.stop();
  return seen.messages;
}

describe("trading-momentum", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads with its defaults and no broker", async function () {
    await helper.load(momentumNode, flow());
    assert.deepEqual((getNode("m1") as unknown as { settings: unknown }).settings, {
      lookback: 10,
      threshold: 0.002,
      quantity: 1,
      max_position: 10,
      allow_short: false,
      product: "MIS",
    });
    assert.equal(lastStatus("m1"), undefined, "a strategy node has no broker state to show");
  });

  it("turns a rising series into a BUY order request that passes validation", async function () {
    await helper.load(momentumNode, flow({ ...FAST, product: "CNC" }));
    const out = await feed([100, 100.5, 101, 103]);
    assert.equal(out.length, 1);
    const msg = out[0]!;
    assert.equal(msg.topic, "INFY");
    assert.equal(msg.source, "test", "the rest of msg is kept");
    const { client_order_id: clientOrderId, ...payload } = msg.payload as Record<string, unknown>;
    assert.equal(typeof clientOrderId, "string", "each signal names its order, to know its fills");
    assert.deepEqual(payload, {
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 2,
      order_type: "MARKET",
      product: "CNC",
      validity: "DAY",
      tag: "momentum",
    });
    assert.ok(OrderRequest.safeParse(msg.payload).success);
    assert.deepEqual(msg.momentum, { roc: 0.03, lookback: 3, price: 103, position_after: 2 });
    assert.match(lastStatus("m1")?.text ?? "", /^BUY 2 INFY @ 103/);
  });

  it("sells what it bought when the trend turns, and no more", async function () {
    await helper.load(momentumNode, flow(FAST));
    const out = await feed([100, 100, 100, 110, 95, 80, 70]);
    assert.deepEqual(
      out.map((m) => [
        (m.payload as { side: string }).side,
        (m.momentum as { position_after: number }).position_after,
      ]),
      [
        ["BUY", 2],
        ["SELL", 0],
      ],
    );
  });

  it("forgets its state on msg.reset", async function () {
    await helper.load(momentumNode, flow(FAST));
    await feed([100, 100, 100]);
    const none = collect("out");
    getNode("m1").receive({ reset: true });
    await delay(10);
    none.stop();
    assert.equal(none.messages.length, 0);
    assert.equal(lastStatus("m1")?.text, "trading-momentum.status.reset");
    assert.equal((await feed([110])).length, 0, "the lookback window starts over");
  });

  it("reports a quote without a usable price to Catch", async function () {
    await helper.load(momentumNode, flow(FAST));
    const caught = nextMessage("caught");
    getNode("m1").receive({ payload: { symbol: "INFY", last_price: -1 } });
    const error = (await caught).error as { message: string; code: string };
    assert.match(error.message, /invalid quote: last_price: must be greater than 0/);
    assert.equal(error.code, "VALIDATION");
    assert.equal((await feed([100, 100, 100, 110])).length, 1, "it keeps working");
  });

  it("reports invalid settings naming field and rule", async function () {
    await helper.load(momentumNode, flow({ lookback: "0", threshold: "abc" }));
    const [line] = logged("m1", ERROR);
    assert.match(line ?? "", /lookback: must be at least 1/);
    assert.match(line ?? "", /threshold: must be a number/);
    assert.deepEqual(lastStatus("m1"), {
      fill: "red",
      shape: "ring",
      text: "trading-momentum.status.invalid-settings",
    });
    const caught = nextMessage("caught");
    getNode("m1").receive({ payload: { symbol: "INFY", last_price: 1 } });
    assert.equal(((await caught).error as { code: string }).code, "CONFIG");
  });

  it("drives place-order: quotes in, filled orders out", async function () {
    await helper.load(
      [brokerNode, momentumNode, placeOrderNode],
      [
        ...flow(FAST).map((n) => (n.id === "m1" ? { ...n, wires: [["p1"]] } : n)),
        paperConfig(),
        { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["out"]] },
      ],
    );
    await paperBroker();
    const filled = nextMessage("out");
    for (const last_price of [100, 100, 100, 110])
      getNode("m1").receive({ payload: { symbol: "TCS", last_price } });
    const order = (await filled).payload as OrderSnapshot;
    assert.equal(order.status, "FILLED");
    assert.equal(order.side, "BUY");
    assert.equal(order.tag, "momentum");
  });
});
