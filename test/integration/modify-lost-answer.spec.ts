import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol/orders";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { DyingRelay, requestIds } from "../support/dying-relay";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

function outcomeOf(settled: Awaited<ReturnType<typeof classify<OrderSnapshot>>>): string {
  return settled.kind === "accepted"
    ? `${settled.value.status} q${settled.value.quantity} p${settled.value.price}`
    : `${settled.kind} ${settled.error.code}: ${settled.error.message}`;
}

for (const protocol of ["v1.1 skip", "v1.1", "v1"] as const) {
  // The default protocol gets the most rounds; the others, fewer (each round costs a reconnect).
  const many = protocol === "v1.1 skip" ? 30 : 10;
  const few = protocol === "v1.1 skip" ? 10 : 5;
  describe(`a modify whose answer is lost with its connection (${protocol})`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    async function setUp(windowMs = 10_000): Promise<{
      made: PaperHost;
      dying: DyingRelay;
      observed: ObservedBroker;
    }> {
      const made = await PaperHost.start();
      cleanup(() => made.close());
      const relay = await WsTamperProxy.start(made.url);
      cleanup(() => relay.close());
      const observed = new ObservedBroker(
        fastSettings(relay.url, { heartbeat_ms: 5000, request_timeout_ms: 120, resolve_window_ms: windowMs }),
        protocol,
      );
      cleanup(() => observed.broker.close());
      await observed.broker.connect();
      return { made, dying: new DyingRelay(relay, "MODIFY_ORDER"), observed };
    }

    async function resting(observed: ObservedBroker): Promise<OrderSnapshot> {
      return observed.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 2,
        order_type: "LIMIT",
        price: 50,
      });
    }

    it(`reports an applied modify as applied (the book's snapshot), never as failed, in ${many} rounds`, async function () {
      const { made, dying, observed } = await setUp();
      const broker = observed.broker;
      const outcomes: string[] = [];
      const expected: string[] = [];
      const changed: string[] = [];
      const unchanged: string[] = [];
      for (let round = 0; round < many; round++) {
        const order = await resting(observed);
        (round % 3 === 2 ? unchanged : changed).push(order.order_id);
        // Every third round changes the order to the values it already has: that modify is applied
        // too (the book shows what was asked), and so is reported.
        const changes =
          round % 3 === 2 ? { price: 50 } : round % 3 === 1 ? { quantity: 3 + round } : { price: 51 + round };
        const reconnects = broker.stats.reconnects;
        // Every other round the connection dies with the answer; the rest, when the lookup goes up.
        dying.cutAtOnce = round % 2 === 1;
        dying.lose = "answer";
        const settled = await classify(broker.modifyOrder(order.order_id, changes));
        const inBook = await made.paper.getOrder(order.order_id);
        assert.equal(inBook.price, changes.price ?? 50, "the modify reached the gateway");
        assert.equal(inBook.quantity, changes.quantity ?? 2, "the modify reached the gateway");
        outcomes.push(outcomeOf(settled));
        expected.push(`OPEN q${inBook.quantity} p${inBook.price}`);
        await waitFor(() => broker.stats.reconnects > reconnects, "the reconnect", 5000);
      }
      assert.deepEqual(outcomes, expected);
      await waitFor(() => broker.lastSeq === made.paper.lastSeq, "every event");
      // Each modify reached the gateway once: one ORDER_MODIFIED per order, reported once, also for
      // a modify to the values the order had (its event has a seq of its own, even when it lands in
      // the millisecond of the order's last event).
      const modified = (id: string): number =>
        observed.orders.filter((e) => e.type === "ORDER_MODIFIED" && e.order.order_id === id).length;
      assert.deepEqual(changed.map(modified), Array(changed.length).fill(1));
      assert.deepEqual(unchanged.map(modified), Array(unchanged.length).fill(1));
    });

    it(`sends a modify lost on its way up again, once, and reports the outcome, in ${few} rounds`, async function () {
      const { made, dying, observed } = await setUp();
      const broker = observed.broker;
      const outcomes: string[] = [];
      for (let round = 0; round < few; round++) {
        const order = await resting(observed);
        const reconnects = broker.stats.reconnects;
        dying.cutAtOnce = round % 2 === 1;
        dying.lose = "request";
        const settled = await classify(broker.modifyOrder(order.order_id, { price: 60 + round }));
        const inBook = await made.paper.getOrder(order.order_id);
        assert.equal(inBook.price, 60 + round, "the modify was sent again and applied");
        outcomes.push(outcomeOf(settled));
        await waitFor(() => broker.stats.reconnects > reconnects, "the reconnect", 5000);
      }
      assert.deepEqual(
        outcomes,
        Array.from({ length: few }, (_, round) => `OPEN q2 p${60 + round}`),
      );
      await waitFor(() => broker.lastSeq === made.paper.lastSeq, "every event");
      assert.equal(observed.orders.filter((e) => e.type === "ORDER_MODIFIED").length, few);
    });

    it(`reports a modify that cannot have been applied (the order filled first) as not applied, in ${few} rounds`, async function () {
      const { made, dying, observed } = await setUp();
      const broker = observed.broker;
      const outcomes: string[] = [];
      for (let round = 0; round < few; round++) {
        made.paper.setPrice("INFY", 100);
        const order = await resting(observed);
        const reconnects = broker.stats.reconnects;
        // The modify never arrives, and the order fills (price falls through its limit) before the
        // client can look: the order ended unmodified, so the modify was not applied.
        dying.onLostRequest = () => made.paper.setPrice("INFY", 45);
        dying.cutAtOnce = round % 2 === 1;
        dying.lose = "request";
        const settled = await classify(broker.modifyOrder(order.order_id, { price: 40 }));
        const inBook = await made.paper.getOrder(order.order_id);
        assert.equal(inBook.status, "FILLED");
        assert.equal(inBook.price, 50);
        outcomes.push(settled.kind === "accepted" ? "accepted" : `${settled.kind} ${settled.error.code}`);
        assert.ok(
          settled.kind !== "accepted" && /not applied/.test(settled.error.message),
          `the error says the modify was not applied: ${outcomeOf(settled)}`,
        );
        await waitFor(() => broker.stats.reconnects > reconnects, "the reconnect", 5000);
      }
      assert.deepEqual(outcomes, Array(few).fill("rejected ORDER_TERMINAL"));
      assert.equal(observed.orders.filter((e) => e.type === "ORDER_MODIFIED").length, 0);
    });

    it("reports the outcome unknown when no lookup gets through within the resolve window", async function () {
      const { made, dying, observed } = await setUp(800);
      const order = await resting(observed);
      // From now on no answer to a modify or a lookup gets through, on any connection.
      const unanswered = new Set<string>();
      dying.relay.tap = (direction, text, connection) => {
        if (direction === "up") {
          for (const id of [...requestIds(text, "MODIFY_ORDER"), ...requestIds(text, "GET_ORDER")]) {
            unanswered.add(id);
          }
          if (text.includes('"GET_ORDER"')) setImmediate(() => connection.cut());
          return undefined;
        }
        if (!text.includes('"RESULT"')) return undefined;
        const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
        const answers = Array.isArray(parsed) ? parsed : [parsed];
        return answers.some((m) => unanswered.has(String(m.id))) ? null : undefined;
      };
      const settled = await classify(observed.broker.modifyOrder(order.order_id, { price: 55 }));
      assert.ok(settled.kind === "failed" && settled.error.code === "NETWORK", outcomeOf(settled));
      assert.match(settled.error.message, /unknown/);
      assert.ok(unanswered.size >= 3, "it looked more than once before giving up");
      assert.equal((await made.paper.getOrder(order.order_id)).price, 55);
    });
  });
}
