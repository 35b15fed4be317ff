// Attack (atk10) on the first run with a remote broker: orders sent before the gateway exists must
// each end in one outcome and never be placed late; a quotes message asking for far too many
// symbols gets one clear refusal and the node goes on quoting.
import assert from "node:assert/strict";
import type { PaperHost } from "../support/paper-host";
import { NODES, until } from "./remote-support";
import type { FlowNode } from "./support";
import { TAB, collect, delay, getNode, helper, statusMatching } from "./support";
import { gatewayConfig, gatewayCredentials, gatewayHostPerTest } from "../support/gateway-host";

function flow(url: string): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "first run" },
    gatewayConfig(url, { queue_ttl_ms: "300", request_timeout_ms: "2000" }),
    { id: "p1", type: "trading-place-order", z: TAB, name: "", broker: "b1", wires: [["out"]] },
    {
      id: "q1",
      type: "trading-quotes",
      z: TAB,
      name: "",
      broker: "b1",
      symbols: "INFY",
      wires: [["quotes"]],
    },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "quotes", type: "helper", z: TAB },
    { id: "caught", type: "helper", z: TAB },
  ];
}

describe("first run, attacked (atk10)", function () {
  this.timeout(30_000);
  const hosts = gatewayHostPerTest();
  let host: PaperHost | undefined;

  it("orders sent before the gateway exists: one outcome each, none placed late once it starts", async function () {
    // The gateway's port is taken from a host stopped at once: nothing listens there yet.
    host = await hosts.start();
    await host.stopGateway();
    await helper.load(NODES, flow(host.url), gatewayCredentials());
    const out = collect("out");
    const caught = collect("caught");
    for (let i = 0; i < 10; i++) {
      getNode("p1").receive({ _msgid: `early${i}`, payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      await delay(30);
    }
    await until(
      () => caught.messages.length + out.messages.length >= 10,
      () => `${caught.messages.length} refused, ${out.messages.length} placed`,
      10_000,
    );
    assert.equal(out.messages.length, 0, "nothing placed without a gateway");
    for (const msg of caught.messages) {
      const error = msg.error as { code: string; message: string };
      assert.ok(
        ["EXPIRED", "NOT_CONNECTED", "NETWORK"].includes(error.code),
        `${error.code}: ${error.message}`,
      );
      assert.match(
        error.message,
        new RegExp(`127\\.0\\.0\\.1:${host.port}|ECONNREFUSED|not sent`),
        error.message,
      );
    }
    await host.startGateway();
    await statusMatching("q1", (s) => s.text === "trading-broker.status.connected", 10_000);
    getNode("p1").receive({ _msgid: "late", payload: { symbol: "INFY", side: "BUY", quantity: 2 } });
    await until(
      () => out.messages.length === 1,
      () => "the order after the start is placed",
      5000,
    );
    await delay(300);
    out.stop();
    caught.stop();
    const book = await host.paper.getOrderbook();
    assert.deepEqual(
      book.map((order) => order.quantity),
      [2],
      "only the order sent after the start reached the account",
    );
    const ids = [...out.messages, ...caught.messages].map((m) => m._msgid).sort();
    assert.deepEqual(ids, [...Array.from({ length: 10 }, (_, i) => `early${i}`), "late"].sort());
  });

  it("a quotes message asking for 20,000 symbols: one refusal naming the limit, quotes go on", async function () {
    host = await hosts.start();
    await helper.load(NODES, flow(host.url), gatewayCredentials());
    await statusMatching("q1", (s) => s.text === "trading-broker.status.connected", 10_000);
    const caught = collect("caught");
    const symbols = Array.from({ length: 20_000 }, (_, i) => `SYM${i}`);
    getNode("q1").receive({ _msgid: "big", payload: { subscribe: symbols } });
    await until(
      () => caught.messages.length >= 1,
      () => "the big subscription is refused",
      10_000,
    );
    await delay(300);
    caught.stop();
    assert.equal(caught.messages.length, 1, "one outcome");
    const error = caught.messages[0]!.error as { code?: string; message: string };
    assert.match(error.message, /subscribe|symbols/i);
    assert.match(error.message, /\d{3,}/, `names the limit: ${error.message}`);
    const quotes = collect("quotes");
    await until(
      () => {
        host!.paper.setPrice("INFY", 100 + quotes.messages.length + Math.random());
        return quotes.messages.length > 0;
      },
      () => "INFY still quotes",
      5000,
    );
    quotes.stop();
    const holders = (
      helper.getNode("b1") as unknown as { connection: { quoteHolders(): Map<string, number> } }
    ).connection.quoteHolders();
    assert.deepEqual([...holders.keys()], ["NSE:INFY"], "the refused symbols are not held");
  });
});
