// Defect found by atk10: after a gateway restart (its replay buffer starts empty) the WebSocket
// broker reconciles from the order book and reports what changed as synthesized events, all with
// the server's seq of that moment. The order-events node dropped every event whose seq was not
// above the last it sent, so of three orders filled while the gateway was down the flow saw one
// fill; GTTs triggered meanwhile went the same way.
// Second defect: a redeploy makes a new broker, which started from "now", so the fills made while
// the gateway was down and the deploy happened never reached the flow at all.
import assert from "node:assert/strict";
import type { GttEvent, OrderEvent } from "../../lib/protocol";
import type { PaperHost } from "../support/paper-host";
import { NODES, until } from "./remote-support";
import type { FlowNode } from "./support";
import { TAB, collect, delay, getNode, helper, nextMessage } from "./support";
import { gatewayConfig, gatewayCredentials, gatewayHostPerTest } from "../support/gateway-host";

function flow(url: string, name = "gateway"): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "reconcile" },
    gatewayConfig(url, { name }),
    { id: "p1", type: "trading-place-order", z: TAB, name: "", broker: "b1", wires: [["out"]] },
    { id: "e1", type: "trading-order-events", z: TAB, name: "", broker: "b1", wires: [["events"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "events", type: "helper", z: TAB },
  ];
}

describe("order-events after a reconcile (atk10)", function () {
  this.timeout(20_000);
  const hosts = gatewayHostPerTest();
  let host: PaperHost | undefined;

  for (const round of [1, 2, 3]) {
    it(`round ${round}: every order filled and GTT triggered while the gateway was down reaches the flow once`, async function () {
      host = await hosts.start();
      await helper.load(NODES, flow(host.url), gatewayCredentials());
      const events = collect("events");
      const resting: string[] = [];
      for (let i = 0; i < 2 + round; i++) {
        const out = nextMessage("out", 5000);
        getNode("p1").receive({
          payload: { symbol: "INFY", side: "BUY", quantity: 1 + i, order_type: "LIMIT", price: 99 },
        });
        resting.push(((await out).payload as { order_id: string }).order_id);
      }
      await until(
        () => events.messages.length === resting.length,
        () => `${events.messages.length} ORDER_PLACED events`,
      );

      await host.stopGateway();
      const gtts: string[] = [];
      for (let i = 0; i < round; i++) {
        const gtt = await host.paper.placeGtt({
          type: "single",
          symbol: "INFY",
          trigger_values: [98],
          orders: [{ side: "BUY", quantity: 1, price: 98, product: "MIS" }],
        });
        gtts.push(gtt.gtt_id);
      }
      host.paper.setPrice("INFY", 97.5);
      await delay(50);
      await host.startGateway();

      const fills = (): OrderEvent[] =>
        events.messages
          .map((m) => m.payload as OrderEvent)
          .filter((e) => e.type === "ORDER_FILLED" && resting.includes(e.order.order_id));
      const triggered = (): GttEvent[] =>
        events.messages.map((m) => m.payload as GttEvent).filter((e) => e.type === "GTT_TRIGGERED");
      await until(
        () => fills().length >= resting.length && triggered().length >= gtts.length,
        () =>
          `fills reached the flow for ${fills()
            .map((e) => e.order.order_id)
            .join(",")} of ${resting.join(",")}; GTT_TRIGGERED for ${triggered()
            .map((e) => e.gtt.gtt_id)
            .join(",")} of ${gtts.join(",")}`,
        5000,
      );
      await delay(200);
      events.stop();
      assert.deepEqual(
        fills()
          .map((e) => e.order.order_id)
          .sort(),
        [...resting].sort(),
        "each fill once",
      );
      assert.deepEqual(
        triggered()
          .map((e) => e.gtt.gtt_id)
          .sort(),
        [...gtts].sort(),
        "each trigger once",
      );
    });
  }

  const deploys = ["full", "flows", "nodes", "full", "flows", "nodes"] as const;
  deploys.forEach((type, round) => {
    it(`a ${type} deploy while the gateway is down (round ${round}): fills made meanwhile reach the new flow once`, async function () {
      host = await hosts.start();
      const credentials = gatewayCredentials;
      await helper.load(NODES, flow(host.url), credentials());
      let events = collect("events");
      const resting: string[] = [];
      const filledBefore: string[] = [];
      for (let i = 0; i < 3 + round; i++) {
        const out = nextMessage("out", 5000);
        const crosses = i % 3 === 0;
        getNode("p1").receive({
          payload: {
            symbol: "INFY",
            side: "BUY",
            quantity: 1,
            order_type: "LIMIT",
            price: crosses ? 100 : 99,
          },
        });
        const order = (await out).payload as { order_id: string; status: string };
        (order.status === "FILLED" ? filledBefore : resting).push(order.order_id);
      }
      await until(
        () => events.messages.length >= resting.length + 2 * filledBefore.length,
        () => `${events.messages.length} events before the outage`,
      );
      events.stop();

      await host.stopGateway();
      host.paper.setPrice("INFY", 98.5);
      // The user deploys meanwhile: the broker config (its name) or only the users change.
      const changed = flow(host.url, type === "nodes" ? "gateway" : `gateway ${round}`);
      if (type === "nodes") changed.find((n) => n.id === "e1")!.name = `events ${round}`;
      await helper.setFlows(changed, type, credentials());
      events = collect("events");
      await delay(100);
      await host.startGateway();

      const fills = (): string[] =>
        events.messages
          .map((m) => m.payload as OrderEvent)
          .filter((e) => e.type === "ORDER_FILLED")
          .map((e) => e.order.order_id);
      await until(
        () => fills().length >= resting.length,
        () => `after the deploy the flow saw fills of ${fills().join(",")} of ${resting.join(",")}`,
        8000,
      );
      // The new broker goes on trading, and nothing reported before the deploy comes again.
      const out = nextMessage("out", 5000);
      getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      const last = ((await out).payload as { order_id: string }).order_id;
      await until(
        () => fills().includes(last),
        () => `the fill of ${last} after the deploy`,
      );
      await delay(200);
      events.stop();
      assert.deepEqual(
        fills().sort(),
        [...resting, last].sort(),
        "each fill once; none from before the deploy",
      );
    });
  });
});
