import assert from "node:assert/strict";
import type { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { OrderEvent } from "../../lib/protocol";
import { AnsweredEvent, SUBPROTOCOL, SUBPROTOCOL_V1_1 } from "../../lib/protocol/wire";
import type { ProtocolVariant } from "../support/broker-chaos";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, newClientId, startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

const BOTH = [SUBPROTOCOL_V1_1, SUBPROTOCOL];

/** Every order event a connection was given, pushed or inside an answer, by seq: each seq once. */
function seqsDelivered(proxy: WsTamperProxy, connection?: number): number[] {
  const seqs: number[] = [];
  for (const seen of proxy.seen) {
    if (seen.direction !== "down" || (connection !== undefined && seen.connection !== connection)) continue;
    for (const message of seen.messages) {
      if (message.type === "EVENT" || message.type === "EVENT_DELTA") {
        seqs.push((message.event as { seq: number }).seq);
      } else if (message.type === "RESULT" && Array.isArray(message.events)) {
        for (const event of message.events as { seq: number }[]) seqs.push(event.seq);
      }
    }
  }
  return seqs;
}

describe("protocol v1.1: answered events ride in the answer (answered_events: skip)", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  async function gateway(options: Parameters<typeof startPaperGateway>[0] = {}): Promise<PaperGateway> {
    const made = await startPaperGateway(options);
    cleanup(() => made.close());
    return made;
  }

  async function proxy(url: string): Promise<WsTamperProxy> {
    const made = await WsTamperProxy.start(url);
    cleanup(() => made.close());
    return made;
  }

  async function raw(url: string, protocols: string[]): Promise<GatewayClient> {
    const client = await GatewayClient.connect(url, { protocols });
    cleanup(() => client.close());
    return client;
  }

  function observe(
    url: string,
    protocol: ProtocolVariant,
    overrides: Parameters<typeof fastSettings>[1] = {},
  ): ObservedBroker {
    const observed = new ObservedBroker(fastSettings(url, { heartbeat_ms: 5000, ...overrides }), protocol);
    cleanup(() => observed.broker.close());
    return observed;
  }

  /** Market orders, resting limits filled later by a price move, and limits modified then cancelled. */
  async function tradeMix(made: PaperGateway, brokers: WebSocketBroker[], rounds: number): Promise<void> {
    made.broker.setPrice("INFY", 100);
    for (let round = 0; round < rounds; round++) {
      const broker = brokers[round % brokers.length] as WebSocketBroker;
      await broker.placeOrder({
        symbol: "INFY",
        side: round % 2 === 0 ? "BUY" : "SELL",
        quantity: 1 + round,
      });
      const resting = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 2,
        order_type: "LIMIT",
        price: 99,
      });
      const doomed = await broker.placeOrder({
        symbol: "INFY",
        side: "SELL",
        quantity: 3,
        order_type: "LIMIT",
        price: 150,
        tag: `t${round}`,
      });
      await broker.modifyOrder(doomed.order_id, { price: 149, quantity: 4 });
      await broker.cancelOrder(doomed.order_id);
      made.broker.setPrice("INFY", 98.5); // fills `resting`, after its answer
      made.broker.setPrice("INFY", 100);
      assert.equal((await broker.getOrder(resting.order_id)).status, "FILLED");
    }
  }

  it("answers a MARKET order in one frame: the RESULT carries its PLACED and FILLED events, and no push follows", async function () {
    const made = await gateway();
    const client = await raw(made.url, BOTH);
    const auth = await client.request({
      ...client.authMessage(),
      options: { event_format: "delta", answered_events: "skip" },
    });
    assert.equal(auth.type, "RESULT", JSON.stringify(auth));
    assert.deepEqual((auth.result as { options: unknown }).options, {
      event_format: "delta",
      answered_events: "skip",
    });
    const id = newClientId();
    const reply = await client.request({
      type: "PLACE_ORDER",
      order: { symbol: "INFY", side: "BUY", quantity: 5, client_order_id: id },
    });
    assert.equal(reply.type, "RESULT", JSON.stringify(reply));
    const snapshot = reply.result as { status: string; filled_quantity: number };
    assert.equal(snapshot.status, "FILLED");
    const events = (reply as unknown as { events: unknown[] }).events.map((e) => AnsweredEvent.parse(e));
    assert.deepEqual(
      events.map((e) => [e.type, e.seq]),
      [
        ["ORDER_PLACED", 1],
        ["ORDER_FILLED", 2],
      ],
    );
    // The placed event differs from the answer only where it was earlier; the fill is the answer.
    assert.deepEqual(events[0]?.order, { status: "OPEN", filled_quantity: 0, average_price: 0 });
    assert.equal(events[1]?.order, undefined);
    assert.equal(
      events[1]?.trades?.reduce((sum, t) => sum + t.quantity, 0),
      5,
    );
    // A PING answered after the events would have been pushed: nothing came in between.
    const ping = await client.call({ type: "PING" });
    assert.equal(ping.seq, 2);
    assert.deepEqual(
      client.received.map((m) => m.type),
      ["RESULT", "RESULT", "RESULT"],
    );
  });

  it("a connection that did not ask gets every event pushed and v1.0-shaped answers, as before", async function () {
    const made = await gateway();
    const skipper = await raw(made.url, BOTH);
    await skipper.request({ ...skipper.authMessage(), options: { answered_events: "skip" } });
    const plain = await raw(made.url, BOTH);
    const auth = await plain.request({ ...plain.authMessage(), options: { event_format: "delta" } });
    // It did not name the option, so the echo does not either (an older v1.1 client's strict schema).
    assert.deepEqual((auth.result as { options: unknown }).options, { event_format: "delta" });
    const old = await raw(made.url, [SUBPROTOCOL]);
    await old.auth();
    const reply = await plain.request({
      type: "PLACE_ORDER",
      order: { symbol: "INFY", side: "SELL", quantity: 1, client_order_id: newClientId() },
    });
    assert.equal("events" in reply, false);
    for (const client of [plain, old, skipper]) {
      await client.next((m) => m.event?.seq === 2, 5000);
      assert.equal(client.all("RESULT").filter((m) => "events" in m).length, 0);
    }
    assert.equal(old.all("EVENT").length, 2);
    // The skipping connection did not place it: its events are pushed to it, whole.
    assert.deepEqual(
      skipper.all("EVENT").map((m) => m.event?.seq),
      [1, 2],
    );
  });

  it("a skipping client reports exactly the events a v1.0 client reports, and a later fill still comes as a push", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const skip = observe(relay.url, "v1.1 skip");
    const whole = observe(made.url, "v1");
    const events = observe(made.url, "v1.1");
    await Promise.all([skip.broker.connect(), whole.broker.connect(), events.broker.connect()]);
    await tradeMix(made, [skip.broker, whole.broker, events.broker], 18);
    const last = made.broker.lastSeq;
    await waitFor(
      () => [skip, whole, events].every((o) => o.broker.lastSeq === last),
      "every client to process every event",
      5000,
    );
    assert.equal(skip.orders.length, last);
    assert.deepEqual(skip.orders, whole.orders);
    assert.deepEqual(events.orders, whole.orders);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
    // Every seq reached the skipping client once, pushed or answered, in order.
    const seqs = seqsDelivered(relay);
    assert.deepEqual(
      seqs,
      Array.from({ length: last }, (_, i) => i + 1),
    );
    const answers = relay.messages("down", "RESULT").filter((m) => Array.isArray(m.events));
    // Its 6 rounds of 3 placements, a modify and a cancel: every answer carried its events.
    assert.equal(answers.length, 6 * 5);
    // Resting limits of its own filled by a price move after their answer: those fills were pushed.
    const pushedFills = relay
      .messages("down")
      .filter(
        (m) =>
          (m.type === "EVENT" || m.type === "EVENT_DELTA") && (m.event as OrderEvent).type === "ORDER_FILLED",
      );
    assert.ok(pushedFills.length >= 18, `${pushedFills.length} fills pushed`);
    assert.deepEqual(skip.errors, []);
    assert.equal(skip.broker.stats.reconnects, 0);
  });

  it("an answer lost on the way is settled by lookup and its events come once through RESUME", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const skip = observe(relay.url, "v1.1 skip", { request_timeout_ms: 300, heartbeat_ms: 500 });
    const whole = observe(made.url, "v1");
    await Promise.all([skip.broker.connect(), whole.broker.connect()]);
    let dropped = 0;
    relay.tap = (direction, text) => {
      // Every fourth answer that carries events is lost: its events with it.
      if (direction !== "down" || !text.includes('"events":[')) return undefined;
      const frame = JSON.parse(text) as unknown;
      const messages = (Array.isArray(frame) ? frame : [frame]) as Record<string, unknown>[];
      if (!messages.some((m) => m.type === "RESULT" && Array.isArray(m.events))) return undefined;
      dropped += 1;
      return dropped % 4 === 0 ? null : undefined;
    };
    for (let i = 0; i < 24; i++) {
      await skip.broker.placeOrder({
        symbol: "INFY",
        side: i % 2 === 0 ? "BUY" : "SELL",
        quantity: 1 + (i % 3),
      });
    }
    const last = made.broker.lastSeq;
    assert.equal(last, 48);
    await waitFor(
      () => skip.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      8000,
    );
    assert.ok(dropped >= 24, `${dropped} answers with events`);
    assert.deepEqual(skip.orders, whole.orders);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
    assert.ok(relay.messages("up", "RESUME").length >= 1, "the lost events were asked for again");
    // Settled by lookup, never placed twice.
    assert.equal((await made.broker.getOrderbook()).length, 24);
  });

  it("batched placements: every answer carries its own events and the stream stays in seq order", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const skip = observe(relay.url, "v1.1 skip");
    const whole = observe(made.url, "v1");
    await Promise.all([skip.broker.connect(), whole.broker.connect()]);
    for (let round = 0; round < 5; round++) {
      // Placed in one turn: the client sends them as array frames, the gateway answers in kind.
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          skip.broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 }),
        ),
      );
      // Meanwhile another client's orders interleave their events with these.
      await whole.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    }
    const last = made.broker.lastSeq;
    await waitFor(
      () => skip.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      5000,
    );
    assert.deepEqual(skip.orders, whole.orders);
    assert.deepEqual(
      seqsDelivered(relay),
      Array.from({ length: last }, (_, i) => i + 1),
    );
    assert.ok(relay.messages("up").some((m) => m.type === "PLACE_ORDER"));
    assert.equal(relay.messages("up", "RESUME").length, 0);
    assert.deepEqual(skip.errors, []);
  });

  it("a skipping WebSocketBroker on a v1.0 gateway speaks v1.0: no options, every event pushed, each reported once", async function () {
    const made = await gateway({ protocolVersion: "v1" });
    // Directly: the tamper proxy would offer the v1.0 gateway the client's first choice, v1.1.
    const skip = observe(made.url, "v1.1 skip");
    // Had it sent options, this gateway would have refused its AUTH (VALIDATION) and it would never connect.
    await skip.broker.connect();
    assert.equal(skip.broker.state, "connected");
    await tradeMix(made, [skip.broker], 3);
    await waitFor(() => skip.broker.lastSeq === made.broker.lastSeq, "every event");
    assert.equal(skip.orders.length, made.broker.lastSeq);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
    assert.deepEqual(skip.errors, []);
  });

  it("an answer whose events are malformed is reported as BAD_FRAME and the events come whole through RESUME", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const skip = observe(relay.url, "v1.1 skip");
    const whole = observe(made.url, "v1");
    await Promise.all([skip.broker.connect(), whole.broker.connect()]);
    let spoiled = 0;
    const hostile: ((event: Record<string, unknown>) => void)[] = [
      (event) => (event.seq = "7"),
      (event) => (event.order = { status: "BOGUS" }),
      (event) => (event.order = { quantity: -1 }),
      (event) => (event.colour = "red"),
      (event) => (event.type = "ORDER_EATEN"),
    ];
    relay.tap = (direction, text) => {
      if (direction !== "down" || !text.includes('"events":[')) return undefined;
      const frame = JSON.parse(text) as unknown;
      for (const message of (Array.isArray(frame) ? frame : [frame]) as Record<string, unknown>[]) {
        if (message.type !== "RESULT" || !Array.isArray(message.events)) continue;
        const first = message.events[0] as Record<string, unknown>;
        hostile[spoiled % hostile.length]!(first);
        spoiled += 1;
      }
      return JSON.stringify(frame);
    };
    for (let i = 0; i < 10; i++) {
      const placed = await skip.broker.placeOrder({
        symbol: "INFY",
        side: i % 2 === 0 ? "BUY" : "SELL",
        quantity: 1,
      });
      assert.equal(placed.status, "FILLED");
    }
    const last = made.broker.lastSeq;
    await waitFor(
      () => skip.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      8000,
    );
    assert.equal(spoiled, 10);
    assert.ok(skip.errors.length >= 10, `${skip.errors.length} errors`);
    assert.ok(
      skip.errors.every((e) => e.code === "BAD_FRAME"),
      skip.errors.map((e) => e.message).join("; "),
    );
    assert.deepEqual(skip.orders, whole.orders);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
  });
});
