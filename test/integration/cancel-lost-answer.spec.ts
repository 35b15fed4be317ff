import assert from "node:assert/strict";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/** The ids of the CANCEL_ORDER requests in an up frame (an array frame may carry several). */
function cancelIds(text: string): string[] {
  if (!text.includes('"CANCEL_ORDER"')) return [];
  const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
  return (Array.isArray(parsed) ? parsed : [parsed])
    .filter((m) => m.type === "CANCEL_ORDER")
    .map((m) => String(m.id));
}

for (const protocol of ["v1.1 skip", "v1.1", "v1"] as const) {
  describe(`a cancel whose answer is lost with its connection (${protocol})`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    it("is reported as it ended (CANCELLED), never as failed, in 10 rounds", async function () {
      const made = await PaperHost.start();
      cleanup(() => made.close());
      const relay = await WsTamperProxy.start(made.url);
      cleanup(() => relay.close());
      const observed = new ObservedBroker(
        fastSettings(relay.url, { heartbeat_ms: 5000, request_timeout_ms: 300 }),
        protocol,
      );
      cleanup(() => observed.broker.close());
      const broker = observed.broker;
      await broker.connect();
      // The cancel reaches the gateway and is carried out; from its answer on, the connection
      // delivers nothing down (the path died), and it is reset once the client, its cancel timed
      // out, asks what became of it: the lookup is lost with the connection too.
      const doomed = new Set<string>();
      const dead = new Set<number>();
      relay.tap = (direction, text, connection) => {
        if (direction === "up") {
          for (const id of cancelIds(text)) doomed.add(id);
          if (dead.has(connection.index) && text.includes('"GET_ORDER"'))
            setImmediate(() => connection.cut());
          return undefined;
        }
        if (dead.has(connection.index)) return null;
        if (doomed.size === 0 || !text.includes('"RESULT"')) return undefined;
        const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
        const answers = Array.isArray(parsed) ? parsed : [parsed];
        if (!answers.some((m) => doomed.has(String(m.id)))) return undefined;
        doomed.clear();
        dead.add(connection.index);
        return null;
      };
      const outcomes: string[] = [];
      for (let round = 0; round < 10; round++) {
        const resting = await broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 50,
        });
        const reconnects = broker.stats.reconnects;
        const settled = await classify(broker.cancelOrder(resting.order_id));
        const inBook = await made.paper.getOrder(resting.order_id);
        assert.equal(inBook.status, "CANCELLED", "the cancel reached the gateway");
        outcomes.push(
          settled.kind === "accepted"
            ? settled.value.status
            : `${settled.kind} ${settled.error.code}: ${settled.error.message}`,
        );
        await waitFor(() => broker.stats.reconnects > reconnects, "the reconnect", 5000);
      }
      assert.deepEqual(outcomes, Array(10).fill("CANCELLED"));
      await waitFor(() => broker.lastSeq === made.paper.lastSeq, "every event");
      for (const event of observed.orders.filter((e) => e.type === "ORDER_CANCELLED")) {
        assert.equal(event.order.status, "CANCELLED");
      }
      assert.equal(observed.orders.filter((e) => e.type === "ORDER_CANCELLED").length, 10);
    });
  });
}
