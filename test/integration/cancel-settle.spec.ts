import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol/orders";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { DyingRelay, requestIds } from "../support/dying-relay";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

function outcomeOf(settled: Awaited<ReturnType<typeof classify<OrderSnapshot>>>): string {
  return settled.kind === "accepted"
    ? `${settled.value.status} ${settled.value.filled_quantity}`
    : `${settled.kind} ${settled.error.code}`;
}

/**
 * A cancel whose answer is lost is settled by the rule placements and modifies follow
 * (lib/common/unknown-outcome settlePlacement): an order that ended is the answer, an open one is
 * sent the cancel again while the queue's time to live lasts, and one that cannot be read within
 * the resolve window is reported unknown (NETWORK).
 */
for (const protocol of ["v1.1 skip", "v1.1", "v1"] as const) {
  const rounds = protocol === "v1.1 skip" ? 30 : 6;
  describe(`settling a cancel whose answer is lost (${protocol})`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    async function setUp(
      overrides: Parameters<typeof fastSettings>[1] = {},
    ): Promise<{ made: PaperHost; dying: DyingRelay; observed: ObservedBroker }> {
      const made = await PaperHost.start();
      cleanup(() => made.close());
      const dying = await DyingRelay.start(made.url, "CANCEL_ORDER");
      cleanup(() => dying.relay.close());
      const observed = new ObservedBroker(
        fastSettings(dying.relay.url, { heartbeat_ms: 5000, request_timeout_ms: 150, ...overrides }),
        protocol,
      );
      cleanup(() => observed.broker.close());
      await observed.broker.connect();
      return { made, dying, observed };
    }

    function resting(observed: ObservedBroker): Promise<OrderSnapshot> {
      return observed.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 50,
      });
    }

    it(`reports each as it ended, sends a lost one again once, in ${rounds} rounds (answer lost, request lost, request lost and the order filled)`, async function () {
      const { made, dying, observed } = await setUp();
      const broker = observed.broker;
      const outcomes: string[] = [];
      const expected: string[] = [];
      const sent: number[] = [];
      const expectedSent: number[] = [];
      const ids: string[] = [];
      for (let round = 0; round < rounds; round++) {
        made.paper.setPrice("INFY", 100);
        const order = await resting(observed);
        ids.push(order.order_id);
        const kind = round % 3;
        const reconnects = broker.stats.reconnects;
        dying.onLostRequest = kind === 2 ? () => made.paper.setPrice("INFY", 45) : undefined;
        dying.lose = kind === 0 ? "answer" : "request";
        const settled = await classify(broker.cancelOrder(order.order_id));
        const inBook = await made.paper.getOrder(order.order_id);
        outcomes.push(outcomeOf(settled));
        expected.push(kind === 2 ? "FILLED 1" : "CANCELLED 0");
        assert.equal(inBook.status, kind === 2 ? "FILLED" : "CANCELLED");
        sent.push(
          dying.relay.messages("up", "CANCEL_ORDER").filter((m) => m.order_id === order.order_id).length,
        );
        // Lost on its way up and the order still open: sent once more. Otherwise once.
        expectedSent.push(kind === 1 ? 2 : 1);
        await waitFor(() => broker.stats.reconnects > reconnects, "the reconnect", 5000);
      }
      assert.deepEqual(outcomes, expected);
      assert.deepEqual(sent, expectedSent);
      await waitFor(() => broker.lastSeq === made.paper.lastSeq, "every event", 5000);
      // Each order's life once: placed, then cancelled or filled, never both, never twice.
      assert.deepEqual(
        ids.map((id) => observed.eventsFor(id).join(" ")),
        ids.map((_, round) => `ORDER_PLACED ${round % 3 === 2 ? "ORDER_FILLED" : "ORDER_CANCELLED"}`),
      );
    });

    it("reports the filled order when it fills just as the lost cancel is sent again (ORDER_TERMINAL to the second cancel), in 5 rounds", async function () {
      const { made, dying, observed } = await setUp();
      const outcomes: string[] = [];
      for (let round = 0; round < 5; round++) {
        made.paper.setPrice("INFY", 100);
        const order = await resting(observed);
        let cancels = 0;
        dying.relay.tap = (direction, text) => {
          if (direction !== "up" || requestIds(text, "CANCEL_ORDER").length === 0) return undefined;
          cancels += 1;
          // The first is lost on its way; the order fills while the second is on its way.
          if (cancels === 1) return null;
          made.paper.setPrice("INFY", 45);
          return undefined;
        };
        const settled = await classify(observed.broker.cancelOrder(order.order_id));
        outcomes.push(outcomeOf(settled));
        assert.equal(cancels, 2);
      }
      assert.deepEqual(outcomes, Array(5).fill("FILLED 1"));
      await waitFor(() => observed.broker.lastSeq === made.paper.lastSeq, "every event", 5000);
      assert.equal(observed.orders.filter((e) => e.type === "ORDER_FILLED").length, 5);
      assert.equal(observed.orders.filter((e) => e.type === "ORDER_CANCELLED").length, 0);
    });

    it("does not send a lost cancel again once the queue's time to live has passed: EXPIRED, not cancelled", async function () {
      const { made, dying, observed } = await setUp({ queue: { ttl_ms: 400 } });
      const order = await resting(observed);
      // The cancel is lost on its way up, and no lookup is answered for 700 ms: when one is, the
      // order is open and the cancel too old to send.
      let lostAt = 0;
      const lookups = new Set<string>();
      dying.relay.tap = (direction, text) => {
        if (direction === "up") {
          for (const id of requestIds(text, "GET_ORDER")) lookups.add(id);
          if (lostAt === 0 && requestIds(text, "CANCEL_ORDER").length > 0) {
            lostAt = Date.now();
            return null;
          }
          return undefined;
        }
        if (lostAt === 0 || Date.now() > lostAt + 700 || !text.includes('"RESULT"')) return undefined;
        const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
        return (Array.isArray(parsed) ? parsed : [parsed]).some((m) => lookups.has(String(m.id)))
          ? null
          : undefined;
      };
      const settled = await classify(observed.broker.cancelOrder(order.order_id));
      assert.equal(outcomeOf(settled), "expired EXPIRED");
      assert.ok(
        settled.kind === "expired" && /not cancelled/.test(settled.error.message),
        outcomeOf(settled),
      );
      assert.equal((await made.paper.getOrder(order.order_id)).status, "OPEN");
      assert.equal(dying.relay.messages("up", "CANCEL_ORDER").length, 1, "the cancel was not sent late");
    });

    it("reports the outcome unknown (NETWORK) when no lookup is answered within the resolve window", async function () {
      const { made, dying, observed } = await setUp({ resolve_window_ms: 800 });
      const order = await resting(observed);
      const unanswered = new Set<string>();
      dying.relay.tap = (direction, text) => {
        if (direction === "up") {
          for (const id of [...requestIds(text, "CANCEL_ORDER"), ...requestIds(text, "GET_ORDER")]) {
            unanswered.add(id);
          }
          return undefined;
        }
        if (!text.includes('"RESULT"')) return undefined;
        const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
        return (Array.isArray(parsed) ? parsed : [parsed]).some((m) => unanswered.has(String(m.id)))
          ? null
          : undefined;
      };
      const settled = await classify(observed.broker.cancelOrder(order.order_id));
      assert.equal(outcomeOf(settled), "failed NETWORK");
      assert.ok(settled.kind === "failed" && /unknown/.test(settled.error.message), outcomeOf(settled));
      assert.ok(unanswered.size >= 3, "it looked more than once before giving up");
      assert.equal((await made.paper.getOrder(order.order_id)).status, "CANCELLED");
    });
  });
}
