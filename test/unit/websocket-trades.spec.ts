import assert from "node:assert/strict";
import type { OrderEvent } from "../../lib/protocol";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { withoutEvents, WsTamperProxy } from "../support/ws-tamper-proxy";

/** Trade ids per order as the broker's events carry them. */
function tradeIds(events: OrderEvent[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const event of events) {
    for (const trade of event.trades ?? []) {
      const list = out.get(event.order.order_id) ?? [];
      list.push(trade.trade_id);
      out.set(event.order.order_id, list);
    }
  }
  return out;
}

describe("WebSocketBroker: trades pass through the gateway (issue 10)", function () {
  this.timeout(15_000);
  const cleanup = useCleanup();

  async function setup(): Promise<{ host: PaperHost; proxy: WsTamperProxy; observed: ObservedBroker }> {
    const host = await PaperHost.start();
    cleanup(() => host.close());
    const proxy = await WsTamperProxy.start(host.url);
    cleanup(() => proxy.close());
    const observed = new ObservedBroker(fastSettings(proxy.url));
    cleanup(() => observed.broker.close());
    await observed.broker.connect();
    return { host, proxy, observed };
  }

  it("live and replayed after a cut (RESUME): the venue's own trades, each once", async function () {
    const { host, proxy, observed } = await setup();
    const paperEvents: OrderEvent[] = [];
    host.paper.on("order", (event) => paperEvents.push(event));
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) {
        await observed.broker.placeOrder({
          symbol: "INFY",
          side: i % 2 === 0 ? "BUY" : "SELL",
          quantity: 1 + i,
          client_order_id: `tr${round}x${i}`,
        });
      }
      // Events after the cut reach the client by RESUME from the gateway's replay buffer.
      host.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 2 }).catch(() => undefined);
      proxy.cutAll();
      await waitFor(() => observed.broker.state === "connected", "reconnected", 5000);
    }
    await waitFor(() => observed.broker.lastSeq >= host.paper.lastSeq, "events to catch up", 5000);
    const seen = tradeIds(observed.orders);
    assert.deepEqual(seen, tradeIds(paperEvents));
    const all = [...seen.values()].flat();
    assert.equal(all.length, 55);
    assert.equal(new Set(all).size, all.length);
  });

  it("a fill learnt from the order book after a gap is synthesized without invented trades", async function () {
    const { host, proxy, observed } = await setup();
    let swallow = true;
    // Whole events, v1.1's deltas and the events inside v1.1 answers alike.
    proxy.tap = (direction, text) => (direction === "down" && swallow ? withoutEvents(text) : undefined);
    const placed = await observed.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 3,
      client_order_id: "gap1",
    });
    swallow = false;
    await host.stopGateway();
    await host.startGateway();
    await waitFor(() => observed.broker.lastSeq >= host.paper.lastSeq, "events to catch up", 5000);
    const events = observed.orders.filter((e) => e.order.order_id === placed.order_id);
    assert.deepEqual(
      events.map((e) => [e.type, e.synthesized === true, e.trades]),
      [["ORDER_FILLED", true, undefined]],
    );
    assert.equal(events[0]!.order.filled_quantity, 3);
  });
});
