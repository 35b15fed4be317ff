import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { Clock } from "../../lib/paper/clock";
import { systemClock } from "../../lib/paper/clock";
import type { OrderEvent } from "../../lib/protocol";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/**
 * The gateway's clock, held still or stepped by hand (backwards too, as a wall clock corrected by
 * NTP is): every event it stamps in one step carries the same timestamp, so two events that leave an
 * order's fields as they were are identical but for their seq. Timers run on real time.
 */
class HeldClock implements Clock {
  at = Date.UTC(2026, 11, 4, 5, 0);
  now(): number {
    return this.at;
  }
  setTimeout(callback: () => void, ms: number): ReturnType<Clock["setTimeout"]> {
    return systemClock.setTimeout(callback, ms);
  }
  clearTimeout(timer: ReturnType<Clock["setTimeout"]>): void {
    systemClock.clearTimeout(timer);
  }
}

/** Each event as "seq TYPE order status filled price", for comparing two streams. */
function line(event: OrderEvent): string {
  const o = event.order;
  return `${event.seq} ${event.type}${event.synthesized === true ? "*" : ""} ${o.order_id} ${o.status} ${o.filled_quantity} ${o.price}`;
}

for (const protocol of ["v1", "v1.1", "v1.1 skip"] as const) {
  describe(`order events that repeat an order's version (${protocol})`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    it("reports every event once and in order: 60 rounds of unchanged modifies, a held and stepped clock, reconnects and RESUMEs", async function () {
      const clock = new HeldClock();
      const paper = new PaperBroker(
        { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0, interval_ms: 60_000 },
        { clock },
      );
      await paper.connect();
      cleanup(() => paper.close());
      paper.setPrice("INFY", 100);
      const gateway = await Gateway.start({
        credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
        broker: paper,
        port: 0,
      });
      cleanup(() => gateway.close());
      const relay = await WsTamperProxy.start(`ws://127.0.0.1:${gateway.port}/v1`);
      cleanup(() => relay.close());
      const observed = new ObservedBroker(fastSettings(relay.url, { heartbeat_ms: 5000 }), protocol);
      cleanup(() => observed.broker.close());
      const broker = observed.broker;
      await broker.connect();
      const truth: OrderEvent[] = [];
      paper.on("order", (event) => truth.push(event));

      const order = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 2,
        order_type: "LIMIT",
        price: 50,
      });
      let modifies = 0;
      let reconnects = 0;
      for (let round = 0; round < 60; round++) {
        if (round % 7 === 3) clock.at -= 1 + (round % 3);
        if (round % 11 === 5) clock.at += 1;
        if (round % 10 === 9) {
          // Cut mid-stream: the next modify waits in the queue, the gateway-side one is replayed by RESUME.
          const before = broker.stats.reconnects;
          relay.cutAll();
          await paper.modifyOrder(order.order_id, { price: 50 });
          modifies += 1;
          const queued = broker.modifyOrder(order.order_id, { quantity: 2 });
          modifies += 1;
          await queued;
          await waitFor(() => broker.stats.reconnects > before, "the reconnect", 5000);
          reconnects += 1;
          continue;
        }
        // The client's own modifies (answered: in skip mode their events ride in the answers) and
        // another client's (pushed), each leaving the order as it was.
        if (round % 2 === 0) await broker.modifyOrder(order.order_id, { price: 50 });
        else await paper.modifyOrder(order.order_id, { quantity: 2 });
        modifies += 1;
      }
      // The last step: the order fills, in the same millisecond.
      paper.setPrice("INFY", 45);
      await waitFor(() => broker.lastSeq === paper.lastSeq, "every event", 5000);
      assert.ok(reconnects >= 6);
      const mine = truth.filter((e) => e.order.order_id === order.order_id).map(line);
      const seen = observed.orders.filter((e) => e.order.order_id === order.order_id).map(line);
      assert.deepEqual(seen, mine);
      // A modify the cut swallowed on its way up counts applied without being sent again (the order
      // already shows its values: showsChanges), so the gateway carried out at most `modifies`.
      const modified = mine.filter((l) => l.includes("ORDER_MODIFIED")).length;
      assert.ok(modified >= modifies - reconnects && modified <= modifies, `${modified} of ${modifies}`);
      // Certain, not lucky: most events repeat the version of the one before (same fields and time).
      const versions = truth
        .filter((e) => e.order.order_id === order.order_id)
        .map((e) => JSON.stringify({ ...e.order, seq: undefined }));
      const repeats = versions.filter((v, i) => i > 0 && v === versions[i - 1]).length;
      assert.ok(repeats >= 40, `${repeats} events repeat their order's version`);
      assert.deepEqual(observed.errors, []);
    });
  });
}
