// The momentum node's "warm up from candles" through the runtime: with Kite (the fake, on
// 127.0.0.1) the first live quote can signal; without candles (paper) symbols start cold.
import assert from "node:assert/strict";
import brokerNode = require("../../nodes/broker-config/broker-config");
import momentumNode = require("../../nodes/momentum/momentum");
import { fakeKitePerTest } from "./fake-kite-runtime";
import type { FlowNode } from "./support";
import {
  TAB,
  WARN,
  collect,
  delay,
  freshRuntime,
  getNode,
  helper,
  logged,
  nextMessage,
  paperBroker,
  paperConfig,
  quietFor,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, momentumNode];
const API_KEY = "warmup-key";
const TOKEN = "warmup-token-never-logged-90ad";
const FAST = { lookback: "3", threshold: "0.01", quantity: "1", maxPosition: "4", cooldown: "0" };

function flow(config: FlowNode, momentum: Record<string, unknown>): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "warm-up" },
    config,
    { id: "m1", type: "trading-momentum", z: TAB, broker: "b1", wires: [["out"]], ...FAST, ...momentum },
    { id: "out", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

function quote(last_price: number, symbol = "INFY"): void {
  getNode("m1").receive({ payload: { symbol, exchange: "NSE", last_price } });
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await delay(10);
  }
}

describe("trading-momentum: warm up from candles", function () {
  this.timeout(20_000);

  describe("on Kite", function () {
    const kite = fakeKitePerTest(API_KEY, TOKEN);

    async function load(momentum: Record<string, unknown>): Promise<void> {
      await helper.load(NODES, flow(kite.config(), momentum), kite.credentials);
      // No signal before the account's positions are known: wait for that read, then let it land.
      await until(() => kite.fake.requests.some((r) => r.path === "/portfolio/positions"), "positions read");
      await delay(300);
    }

    const historical = (): number =>
      kite.fake.requests.filter((r) => r.path.startsWith("/instruments/historical/")).length;

    it("signals on the first live quote once warmed, asking Kite once per symbol", async function () {
      await load({ warmup: true });
      // The fake's closes are 100 + i for the i-th minute: far below 100000.
      const out = nextMessage("out", 10_000);
      quote(100_000);
      const signal = await out;
      assert.equal((signal.payload as { side: string }).side, "BUY");
      assert.equal(historical(), 1);
      // Prices that keep rising feed on (max position 4); still one request for INFY.
      const seen = collect("out");
      for (let i = 1; i <= 10; i++) quote(100_000 * (1 + i / 10));
      await until(() => seen.messages.length >= 3, "signals on the rising quotes");
      seen.stop();
      assert.equal(historical(), 1, "one historical request for INFY, however many quotes");
      assert.deepEqual(logged("m1", WARN), []);
    });

    it("stays cold without the option: no candles asked, no signal on the first quote", async function () {
      await load({});
      quote(100_000);
      assert.equal(await quietFor("out", 300), true);
      assert.equal(historical(), 0);
    });

    it("an unknown symbol warns and starts cold; the node keeps working", async function () {
      await load({ warmup: true });
      quote(100, "NOSUCH");
      // The test runtime has no message catalogue: RED._ answers the key.
      await until(() => logged("m1", WARN).includes("trading-momentum.errors.warmup"), "the warning");
      const out = nextMessage("out", 10_000);
      quote(100_000, "TCS");
      assert.equal((await out).topic, "TCS");
    });
  });

  describe("on paper (no candles)", function () {
    beforeEach(freshRuntime);
    afterEach(teardownRuntime);

    it("warns once and trades cold: a signal only after lookback quotes", async function () {
      await helper.load(NODES, flow(paperConfig(), { warmup: true }));
      await paperBroker();
      await delay(200);
      const seen = collect("out");
      for (const price of [100, 100, 100]) quote(price);
      for (const price of [100, 100, 100]) quote(price, "TCS");
      await delay(200);
      assert.equal(seen.messages.length, 0, "cold: no signal within the lookback");
      quote(110);
      await until(() => seen.messages.length === 1, "the signal after lookback quotes");
      seen.stop();
      assert.deepEqual(logged("m1", WARN), ["trading-momentum.errors.warmup-unsupported"]);
    });
  });
});
