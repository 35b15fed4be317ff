// What a new user meets first with a remote broker: the gateway not started yet (deployed first,
// started later), and credentials not entered. The flow must say where it cannot get to and what
// to enter, and must start working by itself once the gateway is up, without a redeploy.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { FlowNode } from "./support";
import { ERROR, TAB, collect, helper, lastStatus, logged, statusMatching } from "./support";
import { NODES, assertNeverLogged, hasText, until } from "./remote-support";
import { freePort } from "../support/free-port";
import { gatewayConfig } from "../support/gateway-host";
import { nodeRedPerTest } from "../support/node-red-runtime";

const KEY = "first-run-key";
const SECRET = "first-run-secret-never-logged-81c2";

/** The gateway's config, giving up on a queued request after 300 ms and on an answer after 2 s. */
function firstRunConfig(url: string): FlowNode {
  return gatewayConfig(url, { queue_ttl_ms: "300", request_timeout_ms: "2000" });
}

function flow(config: FlowNode): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "first run" },
    config,
    {
      id: "q1",
      type: "trading-quotes",
      z: TAB,
      name: "",
      broker: "b1",
      symbols: "INFY",
      wires: [["quotes"]],
    },
    { id: "p1", type: "trading-place-order", z: TAB, name: "", broker: "b1", wires: [["out"]] },
    { id: "quotes", type: "helper", z: TAB },
    { id: "out", type: "helper", z: TAB },
  ];
}

describe("first run with a remote broker", function () {
  this.timeout(20_000);
  let paper: PaperBroker | undefined;
  let gateway: Gateway | undefined;

  nodeRedPerTest({
    stop: async () => {
      await gateway?.close();
      await paper?.close();
      gateway = undefined;
      paper = undefined;
    },
  });

  for (const round of [1, 2, 3]) {
    it(`gateway started after the deploy (round ${round}): the address is named, then quotes flow without a redeploy`, async function () {
      const port = await freePort();
      const url = `ws://127.0.0.1:${port}/v1`;
      await helper.load(NODES, flow(firstRunConfig(url)), { b1: { apiKey: KEY, apiSecret: SECRET } });

      // Nothing listens yet: the first connect gives up on its start-up read, and says why.
      await until(
        () => logged("b1", ERROR).some((line) => line.includes(`cannot reach ${url}`)),
        () => `the config names ${url}; it logged ${JSON.stringify(logged("b1", ERROR))}`,
        10_000,
      );
      const line = logged("b1", ERROR).find((each) => each.includes("cannot reach"))!;
      assert.match(line, /ECONNREFUSED/);
      assert.match(line, /still retrying/);
      await statusMatching("q1", (s) => s.text === "trading-broker.status.unreachable" && s.fill === "red");
      await until(
        () => logged("q1", ERROR).length > 0,
        () => "quotes reports the failed subscription",
        5000,
      );

      // The user starts the gateway, some time later, on the address the config names.
      paper = new PaperBroker({
        seed: round,
        volatility: 0,
        spread_bps: 0,
        slippage_bps: 0,
        interval_ms: 60_000,
      });
      await paper.connect();
      gateway = await Gateway.start({
        broker: paper,
        port,
        credentials: (apiKey) => (apiKey === KEY ? { secret: SECRET } : undefined),
      });
      await statusMatching("q1", (s) => s.text === "trading-broker.status.connected", 10_000);

      const quotes = collect("quotes");
      try {
        await until(
          () => {
            paper!.setPrice("INFY", 100 + quotes.messages.length);
            return quotes.messages.length > 0;
          },
          () => `a quote reaches the flow; q1 shows ${JSON.stringify(lastStatus("q1"))}`,
          10_000,
        );
      } finally {
        quotes.stop();
      }
      assert.equal((quotes.messages[0]!.payload as { symbol: string }).symbol, "INFY");
      assertNeverLogged(SECRET);
    });
  }

  it("a websocket config with no credentials says to enter them; its users show it", async function () {
    await helper.load(NODES, flow(firstRunConfig("ws://127.0.0.1:9/v1")), { b1: {} });
    const line = logged("b1", ERROR).join("\n");
    assert.match(line, /websocket\.api_key: is required.*websocket\.api_secret: is required/);
    assert.match(line, /trading-broker\.errors\.enter-websocket-credentials$/);
    await statusMatching("p1", hasText("trading-broker.status.enter-websocket-credentials"));
    await statusMatching("q1", hasText("trading-broker.status.enter-websocket-credentials"));
  });

  it("a websocket config with credentials but a bad setting still shows invalid settings", async function () {
    await helper.load(NODES, flow({ ...firstRunConfig("ws://127.0.0.1:9/v1"), reconnect_factor: "0.5" }), {
      b1: { apiKey: KEY, apiSecret: SECRET },
    });
    assert.doesNotMatch(logged("b1", ERROR).join("\n"), /enter-websocket-credentials/);
    await statusMatching("p1", (s) => s.text === "trading-broker.status.invalid-settings");
  });
});
