import assert from "node:assert/strict";
import type { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { AuthResult, SUBPROTOCOL, SUBPROTOCOL_V1_1 } from "../../lib/protocol/wire";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

const BOTH = [SUBPROTOCOL_V1_1, SUBPROTOCOL];

/** The AUTH result's fields in v1.0: a v1.0 client's strict schema refuses any other. */
const V1_AUTH_KEYS = ["account", "limits", "seq", "server_time"];

describe("protocol v1.1: order events as deltas, negotiated in AUTH", function () {
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

  function observe(url: string, protocol: "v1" | "v1.1"): ObservedBroker {
    const observed = new ObservedBroker(fastSettings(url, { heartbeat_ms: 5000 }), protocol);
    cleanup(() => observed.broker.close());
    return observed;
  }

  /** Market orders, resting limits filled by a price move, and limits modified then cancelled. */
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
      made.broker.setPrice("INFY", 98.5); // fills `resting`
      made.broker.setPrice("INFY", 100);
      assert.equal((await broker.getOrder(resting.order_id)).status, "FILLED");
    }
  }

  it("picks v1.1 for a client that offers it, and answers AUTH options, and only them, in v1.1 fields", async function () {
    const made = await gateway();
    const v11 = await raw(made.url, BOTH);
    assert.equal(v11.ws.protocol, SUBPROTOCOL_V1_1);
    const granted = await v11.request({ ...v11.authMessage(), options: { event_format: "delta" } });
    assert.equal(granted.type, "RESULT", JSON.stringify(granted));
    const result = AuthResult.parse(granted.result);
    assert.equal(result.protocol, "v1.1");
    assert.deepEqual(result.options, { event_format: "delta" });

    // AUTH without options, on either subprotocol, is answered exactly as v1.0 answered it.
    for (const protocols of [BOTH, [SUBPROTOCOL]]) {
      const client = await raw(made.url, protocols);
      const reply = await client.auth();
      assert.equal(reply.type, "RESULT", JSON.stringify(reply));
      assert.deepEqual(Object.keys(reply.result as object).sort(), V1_AUTH_KEYS);
    }
    const v1 = await raw(made.url, [SUBPROTOCOL]);
    assert.equal(v1.ws.protocol, SUBPROTOCOL);

    const bad = await raw(made.url, BOTH);
    const refused = await bad.request({ ...bad.authMessage(), options: { event_format: "diff" } });
    assert.equal(refused.error?.code, "VALIDATION");
    assert.match(refused.error?.message ?? "", /options\.event_format/);
  });

  it("a v1.0 gateway keeps v1 and refuses AUTH options; a v1.1 WebSocketBroker speaks v1.0 to it", async function () {
    const made = await gateway({ protocolVersion: "v1" });
    const client = await raw(made.url, BOTH);
    assert.equal(client.ws.protocol, SUBPROTOCOL);
    const refused = await client.request({ ...client.authMessage(), options: { event_format: "delta" } });
    assert.equal(refused.error?.code, "VALIDATION");
    assert.match(refused.error?.message ?? "", /options/);

    // Had it sent options, this gateway would have refused its AUTH and it would never connect.
    const modern = observe(made.url, "v1.1");
    await modern.broker.connect();
    assert.equal(modern.broker.state, "connected");
    await tradeMix(made, [modern.broker], 3);
    await waitFor(() => modern.broker.lastSeq === made.broker.lastSeq, "every event");
    assert.equal(modern.orders.length, made.broker.lastSeq);
    assert.deepEqual(checkLives(modern.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
  });

  it("a delta client reports exactly the events a v1.0 client reports, orders of every kind from both", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const delta = observe(relay.url, "v1.1");
    const whole = observe(made.url, "v1");
    await Promise.all([delta.broker.connect(), whole.broker.connect()]);
    // Each places half the orders: the delta client sees its own orders' first events over its
    // requests, the other's whole, and every later event over the one before.
    await tradeMix(made, [delta.broker, whole.broker], 20);
    const last = made.broker.lastSeq;
    await waitFor(
      () => delta.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      5000,
    );
    assert.equal(delta.orders.length, last);
    assert.deepEqual(delta.orders, whole.orders);
    const deltas = relay.messages("down", "EVENT_DELTA").map((m) => m.event as { base: unknown });
    assert.ok(
      deltas.some((d) => d.base === "request"),
      "first events of its own orders came over the request",
    );
    assert.ok(
      deltas.some((d) => typeof d.base === "number"),
      "later events came over the previous one",
    );
    assert.ok(relay.messages("down", "EVENT").length > 0, "the other client's first events came whole");
    assert.deepEqual(delta.errors, []);
    assert.equal(delta.broker.stats.reconnects, 0);
  });

  it("a v1.0 WebSocketBroker on a v1.1 gateway gets whole EVENTs and v1.0 AUTH answers", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const old = observe(relay.url, "v1");
    await old.broker.connect();
    await tradeMix(made, [old.broker], 3);
    await waitFor(() => old.broker.lastSeq === made.broker.lastSeq, "every event");
    for (const auth of relay.messages("up", "AUTH")) assert.equal("options" in auth, false);
    assert.equal(relay.messages("down", "EVENT_DELTA").length, 0);
    assert.equal(relay.messages("down", "EVENT").length, made.broker.lastSeq);
    assert.equal(old.orders.length, made.broker.lastSeq);
  });

  it("a delta whose base the client does not hold is fetched whole with RESUME and reported once", async function () {
    const made = await gateway();
    const relay = await proxy(made.url);
    const delta = observe(relay.url, "v1.1");
    const whole = observe(made.url, "v1");
    await Promise.all([delta.broker.connect(), whole.broker.connect()]);
    let broken = 0;
    // Every third delta over a previous event names a base the client never saw.
    relay.tap = (direction, text) => {
      if (direction !== "down" || !text.includes('"EVENT_DELTA"')) return undefined;
      const frame = JSON.parse(text) as unknown;
      const messages = (Array.isArray(frame) ? frame : [frame]) as {
        type: string;
        event?: { base: unknown };
      }[];
      for (const message of messages) {
        if (message.type !== "EVENT_DELTA" || typeof message.event?.base !== "number") continue;
        broken += 1;
        if (broken % 3 === 0) message.event.base = 999_999_999;
      }
      return JSON.stringify(frame);
    };
    await tradeMix(made, [delta.broker], 6);
    const last = made.broker.lastSeq;
    await waitFor(
      () => delta.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      5000,
    );
    assert.ok(broken >= 9, `only ${broken} deltas over a previous event`);
    assert.ok(
      delta.warnings.some((w) => w.includes("no base for the delta")),
      delta.warnings.join("; "),
    );
    assert.ok(relay.messages("up", "RESUME").length >= 3, "each missing base asked for a RESUME");
    assert.deepEqual(delta.orders, whole.orders);
    assert.equal(delta.broker.stats.reconnects, 0);
  });

  it("serializes each event once per frame kind, however many connections receive it", async function () {
    const made = await gateway();
    const clients: GatewayClient[] = [];
    for (let i = 0; i < 8; i++) {
      const client = await raw(made.url, BOTH);
      const options = i < 6 ? { options: { event_format: "delta" } } : {};
      const reply = await client.request({ ...client.authMessage(), ...options });
      assert.equal(reply.type, "RESULT", JSON.stringify(reply));
      clients.push(client);
    }
    const placer = clients[0] as GatewayClient;
    const stringify = JSON.stringify;
    let eventFrames = 0;
    JSON.stringify = ((value: unknown, ...rest: []) => {
      const type = (value as { type?: unknown } | null)?.type;
      if (type === "EVENT" || type === "EVENT_DELTA") eventFrames += 1;
      return stringify(value, ...rest);
    }) as typeof JSON.stringify;
    try {
      await placer.call({
        type: "PLACE_ORDER",
        order: {
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 99,
          client_order_id: "once00001",
        },
      });
      made.broker.setPrice("INFY", 98);
      for (const client of clients) await client.next((m) => m.event?.seq === 2 || false, 5000);
    } finally {
      JSON.stringify = stringify;
    }
    // Placed: over the placer's request, and whole for the rest. Filled: over the placed event,
    // and whole for the two v1.0 connections. Four frames for sixteen deliveries.
    assert.equal(eventFrames, 4);
    assert.equal(placer.all("EVENT_DELTA").length, 2);
    assert.equal((clients[1] as GatewayClient).all("EVENT").length, 1);
    assert.equal((clients[1] as GatewayClient).all("EVENT_DELTA").length, 1);
    assert.equal((clients[7] as GatewayClient).all("EVENT").length, 2);
  });
});
