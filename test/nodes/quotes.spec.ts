import assert from "node:assert/strict";
import type { Quote } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import quotesNode = require("../../nodes/quotes/quotes");
import type { FlowNode } from "./support";
import {
  ERROR,
  TAB,
  assertMissingBroker,
  collect,
  configNode,
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
} from "./support";

const NODES = [brokerNode, quotesNode];

function quotes(id: string, symbols: string, out: string): FlowNode {
  return { id, type: "trading-quotes", z: TAB, name: "", broker: "b1", symbols, wires: [[out]] };
}

function flow(...nodes: FlowNode[]): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "quotes" },
    paperConfig(),
    ...nodes,
    { id: "out1", type: "helper", z: TAB },
    { id: "out2", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

function symbolsOf(id: string): string[] {
  return [...(getNode(id) as unknown as { symbols: Set<string> }).symbols].sort();
}

function holders(): Record<string, number> {
  return Object.fromEntries(configNode().connection.quoteHolders());
}

/** Instruments the paper broker itself still quotes (it only emits quotes for subscribed ones). */
async function brokerQuotes(symbols: string[]): Promise<string[]> {
  const broker = await paperBroker();
  const seen: string[] = [];
  const listener = (quote: Quote): void => {
    seen.push(quote.symbol);
  };
  broker.on("quote", listener);
  for (const symbol of symbols) broker.setPrice(symbol, 101);
  broker.off("quote", listener);
  return seen;
}

describe("trading-quotes", function () {
  beforeEach(freshRuntime);
  afterEach(teardownRuntime);

  it("loads its symbol list as instrument keys", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY, tcs BSE:SBIN", "out1"), quotes("q2", "", "out2")));
    await paperBroker();
    await delay(10);
    assert.deepEqual(symbolsOf("q1"), ["BSE:SBIN", "NSE:INFY", "NSE:tcs"]);
    assert.deepEqual(symbolsOf("q2"), []);
  });

  it("emits quotes for its symbols only, with the symbol as topic", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY", "out1")));
    const broker = await paperBroker();
    await delay(10);
    const seen = collect("out1");
    broker.setPrice("TCS", 50);
    broker.setPrice("INFY", 101.5);
    await delay(20);
    seen.stop();
    assert.equal(seen.messages.length, 1);
    const msg = seen.messages[0]!;
    const quote = msg.payload as Quote;
    assert.equal(msg.topic, "INFY");
    assert.equal(quote.symbol, "INFY");
    assert.equal(quote.exchange, "NSE");
    assert.equal(quote.last_price, 101.5);
    assert.match(quote.timestamp, /Z$/);
    assert.deepEqual(JSON.parse(JSON.stringify(quote)), quote);
  });

  it("ref-counts subscriptions shared by two nodes and drops a node's on close", async function () {
    const q1 = quotes("q1", "INFY, TCS", "out1");
    const q2 = quotes("q2", "NSE:TCS, SBIN", "out2");
    await helper.load(NODES, flow(q1, q2));
    await paperBroker();
    await delay(10);
    assert.deepEqual(holders(), { "NSE:INFY": 1, "NSE:TCS": 2, "NSE:SBIN": 1 });
    assert.deepEqual((await brokerQuotes(["INFY", "TCS", "SBIN", "WIPRO"])).sort(), ["INFY", "SBIN", "TCS"]);
    await delay(20);

    const both = [nextMessage("out1"), nextMessage("out2")];
    (await paperBroker()).setPrice("TCS", 99);
    for (const msg of await Promise.all(both)) assert.equal(msg.topic, "TCS");

    await helper.setFlows(flow(q1), "nodes");
    assert.deepEqual(holders(), { "NSE:INFY": 1, "NSE:TCS": 1 });
    assert.deepEqual(
      (await brokerQuotes(["INFY", "TCS", "SBIN"])).sort(),
      ["INFY", "TCS"],
      "SBIN was unsubscribed",
    );
    await delay(20);
    const still = nextMessage("out1");
    (await paperBroker()).setPrice("TCS", 98);
    assert.equal((await still).topic, "TCS", "TCS stays subscribed for q1");
  });

  it("subscribes and unsubscribes on msg.payload {subscribe, unsubscribe}", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY", "out1"), quotes("q2", "INFY", "out2")));
    await paperBroker();
    await delay(10);
    getNode("q1").receive({ payload: { subscribe: ["SBIN", "BSE:TCS"], unsubscribe: ["INFY"] } });
    await delay(20);
    assert.deepEqual(symbolsOf("q1"), ["BSE:TCS", "NSE:SBIN"]);
    assert.deepEqual(holders(), { "NSE:INFY": 1, "NSE:SBIN": 1, "BSE:TCS": 1 });
    assert.equal(lastStatus("q1")?.fill, "green");
    const seen = collect("out1");
    (await paperBroker()).setPrice("INFY", 120);
    (await paperBroker()).setPrice("SBIN", 120);
    await delay(20);
    seen.stop();
    assert.deepEqual(
      seen.messages.map((m) => m.topic),
      ["SBIN"],
    );
  });

  it("reports bad control messages to Catch and keeps working", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY", "out1")));
    await paperBroker();
    const cases: [unknown, RegExp][] = [
      [{ subscribe: "TCS" }, /subscribe: must be a list of symbols/],
      [{}, /must hold subscribe or unsubscribe/],
      [{ subscribe: [] }, /subscribe: must name at least one symbol/],
      [{ subscribe: ["XYZ:INFY"] }, /unknown exchange/],
      [{ subscribe: ["IN  FY"] }, /subscribe\.0: must contain only/],
      ["TCS", /payload: /],
    ];
    for (const [payload, expected] of cases) {
      const caught = nextMessage("caught");
      getNode("q1").receive({ payload });
      const error = (await caught).error as { message: string; code: string };
      assert.match(error.message, expected);
      assert.equal(error.code, "VALIDATION");
    }
    assert.deepEqual(holders(), { "NSE:INFY": 1 });
  });

  it("reports an editor symbol list it cannot read", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY, MOON:X", "out1")));
    assert.match(logged("q1", ERROR).join(), /trading-quotes\.errors\.bad-symbols/);
    assert.equal(lastStatus("q1")?.fill, "red");
  });

  it("without a configured broker: red ring and one logged error", async function () {
    await helper.load(NODES, flow({ ...quotes("q1", "INFY", "out1"), broker: "" }));
    await assertMissingBroker("q1", "trading-quotes");
  });

  it("drops its listener and subscriptions on close", async function () {
    await helper.load(NODES, flow(quotes("q1", "INFY", "out1")));
    const broker = await paperBroker();
    await delay(10);
    assert.equal(broker.listenerCount("quote"), 1);
    await helper.unload();
    assert.equal(broker.listenerCount("quote"), 0);
    assert.equal(broker.state, "disconnected");
  });
});
