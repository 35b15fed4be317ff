import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { OrderEvent } from "../../lib/protocol";
import { depsFor, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/**
 * A skipping client takes an answer's snapshot at once but makes its events whole after the
 * caller's next request has gone out. What must not change: the events are processed at the
 * answer's place in the stream, before anything that came after it, even in the same frame.
 */
describe("protocol v1.1: answered events keep their place in the stream", function () {
  this.timeout(20_000);
  const cleanup = useCleanup();

  async function setup(): Promise<{
    made: PaperGateway;
    relay: WsTamperProxy;
    skip: ObservedBroker;
    other: ObservedBroker;
  }> {
    const made = await startPaperGateway();
    cleanup(() => made.close());
    const relay = await WsTamperProxy.start(made.url);
    cleanup(() => relay.close());
    const skip = new ObservedBroker(fastSettings(relay.url, { heartbeat_ms: 5000 }), "v1.1 skip");
    cleanup(() => skip.broker.close());
    const other = new ObservedBroker(fastSettings(made.url, { heartbeat_ms: 5000 }), "v1");
    cleanup(() => other.broker.close());
    await Promise.all([skip.broker.connect(), other.broker.connect()]);
    made.broker.setPrice("INFY", 100);
    return { made, relay, skip, other };
  }

  it("processes the events an answer carries before pushes that share its frame", async function () {
    const { made, relay, skip, other } = await setup();
    // Each answer carrying events is held and sent in one frame with the next frame after it (the
    // other client's order pushed to this account's connections), answer first.
    let held: string | undefined;
    let merged = 0;
    relay.tap = (direction, text) => {
      if (direction !== "down") return undefined;
      if (held === undefined) {
        if (!text.includes('"events":[')) return undefined;
        held = text;
        return null;
      }
      const first = JSON.parse(held) as unknown;
      const next = JSON.parse(text) as unknown;
      held = undefined;
      merged += 1;
      return JSON.stringify([
        ...(Array.isArray(first) ? first : [first]),
        ...(Array.isArray(next) ? next : [next]),
      ]);
    };
    for (let i = 0; i < 15; i++) {
      const before = made.broker.lastSeq;
      const answer = skip.broker.placeOrder({ symbol: "INFY", side: i % 2 ? "SELL" : "BUY", quantity: 1 });
      // The other client's order, whose pushes release the held answer.
      await waitFor(() => held !== undefined, "the answer to be held", 5000);
      await other.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 2 });
      const placed = await answer;
      assert.equal(placed.status, "FILLED");
      // Read right after the answer, before the check phase: its placed and filled events count.
      assert.ok(skip.broker.lastSeq >= before + 2, `lastSeq ${skip.broker.lastSeq} after ${before} + 2`);
    }
    assert.equal(merged, 15);
    await waitFor(() => skip.orders.length === made.broker.lastSeq, "every event", 5000);
    assert.deepEqual(
      skip.orders.map((e) => e.seq),
      Array.from({ length: made.broker.lastSeq }, (_, i) => i + 1),
    );
    // Had the pushes gone first, the client would have seen a seq gap and asked to RESUME.
    assert.equal(relay.messages("up", "RESUME").length, 0);
    assert.deepEqual(skip.errors, []);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
  });

  it("reports every answered event once when closed straight after the answer", async function () {
    for (let round = 0; round < 10; round++) {
      const { made, skip } = await setup();
      const placed = await skip.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      await skip.broker.close();
      assert.equal(placed.status, "FILLED");
      // Its placed and filled events arrived with the answer: they are reported, not lost in close.
      assert.deepEqual(
        skip.orders.map((e) => [e.seq, e.type]),
        [
          [made.broker.lastSeq - 1, "ORDER_PLACED"],
          [made.broker.lastSeq, "ORDER_FILLED"],
        ],
      );
    }
  });

  it("with nobody listening, moves past superseded answered events and stays in step for a listener added later", async function () {
    const made = await startPaperGateway();
    cleanup(() => made.close());
    const relay = await WsTamperProxy.start(made.url);
    cleanup(() => relay.close());
    const broker = new WebSocketBroker(fastSettings(relay.url, { heartbeat_ms: 5000 }), depsFor("v1.1 skip"));
    cleanup(() => broker.close());
    const errors: unknown[] = [];
    broker.on("error", (error) => errors.push(error));
    await broker.connect();
    made.broker.setPrice("INFY", 100);
    const resting: string[] = [];
    for (let i = 0; i < 12; i++) {
      // Filled at once (placed and filled ride in the answer), and a limit that rests (placed only).
      await broker.placeOrder({ symbol: "INFY", side: i % 2 ? "SELL" : "BUY", quantity: 1 });
      const limit = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1 + i,
        order_type: "LIMIT",
        price: 90,
      });
      resting.push(limit.order_id);
      assert.equal(broker.lastSeq, made.broker.lastSeq);
    }
    const answered = relay.messages("down", "RESULT").filter((m) => Array.isArray(m.events));
    assert.equal(answered.length, 24);
    const seen: OrderEvent[] = [];
    broker.on("order", (event) => seen.push(event));
    // The resting limits fill on a price move: pushed as deltas over the events this client kept.
    made.broker.setPrice("INFY", 85);
    await waitFor(() => seen.length === 12, "the twelve fills", 5000);
    assert.deepEqual(
      seen.map((e) => [e.type, e.order.order_id, e.order.filled_quantity]),
      resting.map((id, i) => ["ORDER_FILLED", id, 1 + i]),
    );
    assert.equal(broker.lastSeq, made.broker.lastSeq);
    // Nothing was lost or out of step: no RESUME, no error.
    assert.equal(relay.messages("up", "RESUME").length, 0);
    assert.deepEqual(errors, []);
    // And once someone listens, answered events are reported whole again.
    const next = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
    await waitFor(() => seen.length === 14, "the placed and filled events of the next order", 5000);
    assert.deepEqual(
      seen.slice(12).map((e) => [e.type, e.order.order_id, e.order.status]),
      [
        ["ORDER_PLACED", next.order_id, "OPEN"],
        ["ORDER_FILLED", next.order_id, "FILLED"],
      ],
    );
  });
});
