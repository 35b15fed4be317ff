import assert from "node:assert/strict";
import type { ConnectionState, OrderSnapshot } from "../../lib/protocol";
import { BrokerError } from "../../lib/protocol/errors";
import brokerNode = require("../../nodes/broker-config/broker-config");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import { statusForState } from "../../nodes/shared/status";
import type { FlowNode } from "./support";
import {
  ERROR,
  TAB,
  configNode,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  logged,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode, orderbookNode];

function users(count: number, config = "b1"): FlowNode[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `u${i + 1}`,
    type: "trading-orderbook",
    z: TAB,
    broker: config,
    wires: [["out"]],
  }));
}

function flow(extra: FlowNode[], config: FlowNode = paperConfig()): FlowNode[] {
  return [{ id: TAB, type: "tab", label: "config" }, config, ...extra, { id: "out", type: "helper", z: TAB }];
}

async function placeOne(): Promise<OrderSnapshot> {
  return (await paperBroker()).placeOrder({ symbol: "INFY", side: "BUY", quantity: 2 });
}

describe("trading-broker (config)", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  describe("status mapping", function () {
    const expected: [ConnectionState, string, string][] = [
      ["connected", "green", "dot"],
      ["connecting", "yellow", "ring"],
      ["reconnecting", "yellow", "ring"],
      ["disconnected", "red", "ring"],
      ["circuit-open", "red", "dot"],
    ];
    for (const [state, fill, shape] of expected) {
      it(`shows ${state} as a ${fill} ${shape}`, function () {
        assert.deepEqual(
          statusForState(state, (key) => key),
          { fill, shape, text: `trading-broker.status.${state}` },
        );
      });
    }
  });

  it("loads with its defaults and keeps credentials off the node's properties", async function () {
    await helper.load(NODES, flow([], { id: "b1", type: "trading-broker", name: "", kind: "paper" }), {
      b1: { apiKey: "key", apiSecret: "secret", accessToken: "token" },
    });
    const b1 = configNode();
    assert.equal(b1.type, "trading-broker");
    assert.deepEqual(b1.credentials, { apiKey: "key", apiSecret: "secret", accessToken: "token" });
    assert.equal(b1.broker, undefined, "no user yet, so no broker");
    const broker = await b1.connection.ready();
    assert.equal(broker.kind, "paper");
    assert.deepEqual(
      (broker as unknown as { settings: Record<string, unknown> }).settings,
      {
        account: "default",
        starting_cash: 1_000_000,
        slippage_bps: 5,
        quote_source: "random-walk",
        start_price: 100,
        volatility: 0.002,
        spread_bps: 5,
        interval_ms: 1000,
        replay_speed: 1,
        replay_loop: true,
        retention: 10_000,
        max_fill_per_quote: 0,
        market: "relaxed",
      },
      "blank fields take the schema defaults",
    );
    const everyLine = helper
      .log()
      .args.map(([event]) => String(event.msg))
      .join("\n");
    assert.ok(
      !everyLine.includes("secret") && !everyLine.includes("token"),
      "credentials never reach the log",
    );
  });

  it("connects on the first user and shares one broker among all users", async function () {
    await helper.load(NODES, flow(users(3)));
    const broker = await paperBroker();
    const b1 = configNode();
    assert.equal(b1.connection.userCount, 3);
    assert.equal(b1.broker, broker);
    assert.equal(broker.listenerCount("state"), 1, "one state listener fans out to every user");
    for (const id of ["u1", "u2", "u3"]) {
      await statusMatching(id, (s) => s.text === "trading-broker.status.connected");
    }
  });

  it("passes every broker state to every user as one status", async function () {
    await helper.load(NODES, flow(users(2)));
    const broker = await paperBroker();
    const cases: [ConnectionState, string, string][] = [
      ["reconnecting", "yellow", "ring"],
      ["circuit-open", "red", "dot"],
      ["disconnected", "red", "ring"],
      ["connected", "green", "dot"],
    ];
    for (const [state, fill, shape] of cases) {
      broker.emit("state", state);
      for (const id of ["u1", "u2"]) {
        assert.deepEqual(
          lastStatus(id),
          { fill, shape, text: `trading-broker.status.${state}` },
          `${id} ${state}`,
        );
      }
    }
  });

  it("logs broker errors on the config node instead of crashing", async function () {
    await helper.load(NODES, flow(users(1)));
    const broker = await paperBroker();
    broker.emit("error", new BrokerError("INTERNAL", "journal disk full"));
    assert.deepEqual(logged("b1", ERROR), ["journal disk full"]);
  });

  it("closes the broker when the last user leaves and opens a new one for the next", async function () {
    await helper.load(NODES, flow(users(2)));
    const first = await paperBroker();
    await placeOne();
    await helper.setFlows(flow(users(1)), "nodes");
    assert.equal(configNode().broker, first, "one user is left, the broker stays");
    assert.equal(first.state, "connected");

    await helper.setFlows(flow([]), "nodes");
    assert.equal(configNode().broker, undefined);
    assert.equal(first.state, "disconnected");
    assert.equal(first.listenerCount("state"), 0);

    await helper.setFlows(flow(users(1)), "nodes");
    const second = await paperBroker();
    assert.notEqual(second, first);
    assert.equal((await second.getOrderbook()).length, 1, "the account came back from its journal");
  });

  it("keeps the paper account across a full redeploy", async function () {
    await helper.load(NODES, flow(users(1)));
    const placed = await placeOne();
    await helper.setFlows(flow(users(1), paperConfig("b1", { name: "renamed" })), "full");
    const book = await (await paperBroker()).getOrderbook();
    assert.deepEqual(
      book.map((o) => o.order_id),
      [placed.order_id],
    );
  });

  describe("market (issue 12)", function () {
    it("passes the Market choice and its JSON rules to the paper broker", async function () {
      await helper.load(
        NODES,
        flow(users(1), paperConfig("b1", { market: "nse", market_rules: '{"margin": {"mis_leverage": 4}}' })),
      );
      const broker = await paperBroker();
      assert.deepEqual((broker as unknown as { settings: { market: unknown } }).settings.market, {
        preset: "nse",
        margin: { mis_leverage: 4 },
      });
      const order = await broker.placeOrder({ symbol: "ZZZZ", side: "BUY", quantity: 1 });
      assert.equal(order.status, "REJECTED", "NSE rules refuse an unknown symbol");
    });

    for (const [fields, pattern] of [
      [{ market: "nyse" }, /paper\.market: must be/],
      [{ market: "nse", market_rules: "{margin:" }, /paper\.market_rules: must be a JSON object/],
      [{ market: "nse", market_rules: "[1]" }, /paper\.market_rules: must be a JSON object/],
      [
        { market: "nse", market_rules: '{"calendar": {"open": "9am"}}' },
        /paper\.market\.calendar\.open: must be a time/,
      ],
    ] as const) {
      it(`refuses ${JSON.stringify(fields)} at deploy, naming the field`, async function () {
        await helper.load(NODES, flow(users(1), paperConfig("b1", fields)));
        const errors = logged("b1", ERROR);
        assert.equal(errors.length, 1);
        assert.match(errors[0] ?? "", pattern);
      });
    }
  });

  it("refuses a second config on the same account and says why", async function () {
    const second = paperConfig("b2");
    await helper.load(NODES, [...flow(users(1)), second, ...users(1, "b2").map((u) => ({ ...u, id: "v1" }))]);
    await paperBroker();
    await statusMatching("v1", (s) => s.fill === "red" && s.text === "trading-broker.status.failed");
    assert.match(logged("b2", ERROR).join("\n"), /already open/);
  });

  describe("POST /trading-broker/:id/reset", function () {
    it("wipes the paper account", async function () {
      await helper.load(NODES, flow(users(1)));
      await placeOne();
      const response = await helper.request().post("/trading-broker/b1/reset").send();
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, { ok: true });
      const broker = await paperBroker();
      assert.deepEqual(await broker.getOrderbook(), []);
      assert.deepEqual(await broker.getPositions(), []);
      assert.equal((await broker.getAccount()).cash, 1_000_000);

      const out = nextMessage("out");
      getNode("u1").receive({});
      assert.deepEqual((await out).payload, { orders: [] });
    });

    it("resets an account no node is using, and lets its journal go again", async function () {
      await helper.load(NODES, flow(users(1)));
      await placeOne();
      await helper.setFlows(flow([]), "nodes");
      const response = await helper.request().post("/trading-broker/b1/reset").send();
      assert.equal(response.status, 200);
      assert.equal(configNode().broker, undefined, "the broker brought up for the reset is closed again");
      await helper.setFlows(flow(users(1)), "nodes");
      assert.deepEqual(await (await paperBroker()).getOrderbook(), []);
    });

    it("answers 404 for an unknown config id", async function () {
      await helper.load(NODES, flow(users(1)));
      const response = await helper.request().post("/trading-broker/nope/reset").send();
      assert.equal(response.status, 404);
      assert.equal((response.body as { code: string }).code, "NOT_FOUND");
    });

    it("answers 404 for a node that is not a trading-broker", async function () {
      await helper.load(NODES, flow(users(1)));
      const response = await helper.request().post("/trading-broker/u1/reset").send();
      assert.equal(response.status, 404);
    });

    it("answers 409 when the broker cannot reset", async function () {
      await helper.load(NODES, flow(users(1), paperConfig("b1", { volatility: "2" })));
      const response = await helper.request().post("/trading-broker/b1/reset").send();
      assert.equal(response.status, 409);
      const body = response.body as { code: string; message: string };
      assert.equal(body.code, "CONFIG");
      assert.match(body.message, /paper\.volatility: must be at most 0\.5/);
    });
  });
});
