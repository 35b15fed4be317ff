// Node-RED delivers a sent message on its next setImmediate; a stop in between closes the next
// node first (its input listeners go) and the message is dropped. An answer place-order sent in
// the turn its flow stopped must still be reported: in the log, with its id.
import assert from "node:assert/strict";
import brokerNode = require("../../nodes/broker-config/broker-config");
import placeOrderNode = require("../../nodes/place-order/place-order");
import { nodeRedPath } from "./setup";
import type { FlowNode } from "./support";
import {
  TAB,
  collect,
  freshRuntime,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode];

/** The hooks of the runtime under test (Node-RED 4 here, 5 under test:nr5), not another copy's. */
interface Hooks {
  add(id: string, hook: (events: { source?: { node?: { id?: string } } }[]) => void): void;
  remove(id: string): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hooks } = require(nodeRedPath()) as { hooks: Hooks };

const flow: FlowNode[] = [
  { id: TAB, type: "tab", label: "same turn" },
  paperConfig("b1", { account: "sameturn" }),
  { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["out"]] },
  { id: "out", type: "helper", z: TAB },
];

describe("place-order: an answer sent in the turn the flow stops", function () {
  this.timeout(30_000);
  beforeEach(function () {
    freshRuntime();
  });
  afterEach(async function () {
    hooks.remove("onSend.sameturn");
    await teardownRuntime();
  });

  it("is named in the log when the stop drops it, in 10 rounds; one sent a turn earlier is not", async function () {
    for (let round = 0; round < 10; round++) {
      await helper.load(NODES, flow);
      await paperBroker();
      const warned: string[] = [];
      const p1 = getNode("p1");
      const original = p1.warn.bind(p1) as (message: unknown) => void;
      p1.warn = ((message: unknown) => {
        warned.push(String(message));
        original(message);
      }) as never;
      // An earlier answer, delivered as usual: never logged.
      const first = nextMessage("out");
      p1.receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `early${round}` } });
      await first;
      const out = collect("out");
      // The stop comes in the very turn the answer is sent, as Flow.stop closes every node in one loop.
      let stopped = false;
      hooks.add("onSend.sameturn", (events) => {
        if (stopped || events[0]?.source?.node?.id !== "p1") return;
        stopped = true;
        // After the handler's promise has settled (microtasks), before Node-RED's delivery (setImmediate).
        let hops = 50;
        const stop = (): void => {
          if (--hops > 0) {
            queueMicrotask(stop);
            return;
          }
          void getNode("out").close(false);
          void p1.close(false);
        };
        queueMicrotask(stop);
      });
      p1.receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `late${round}` } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      hooks.remove("onSend.sameturn");
      out.stop();
      assert.ok(stopped, `round ${round}: the answer was sent`);
      assert.deepEqual(out.messages, [], `round ${round}: the stop dropped the delivery`);
      assert.equal(
        warned.filter((line) => line.includes(`late${round}`)).length,
        1,
        `round ${round}: ${warned.join(" | ")}`,
      );
      assert.equal(
        warned.filter((line) => line.includes(`early${round}`)).length,
        0,
        `round ${round}: ${warned.join(" | ")}`,
      );
      await helper.unload();
    }
  });
});
