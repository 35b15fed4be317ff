import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OrderRequestInput } from "../../lib/protocol";
import { AccountEvent, BrokerError, OrderSnapshot } from "../../lib/protocol";
import type { RequestType } from "../../lib/protocol/wire";
import { AuthResult } from "../../lib/protocol/wire";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, order, startPaperGateway } from "../support/gateway-client";

function harness() {
  let gateways: PaperGateway[] = [];
  let clients: GatewayClient[] = [];
  afterEach(async function () {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(gateways.map((g) => g.close()));
    gateways = [];
    clients = [];
  });
  return {
    async start(...args: Parameters<typeof startPaperGateway>) {
      const made = await startPaperGateway(...args);
      gateways.push(made);
      return made;
    },
    /** Closes one gateway (and its broker) early, e.g. to restart on the same journal. */
    async stop(made: PaperGateway) {
      gateways = gateways.filter((g) => g !== made);
      await made.close();
    },
    async open(url: string) {
      const client = await GatewayClient.open(url);
      clients.push(client);
      return client;
    },
    async connect(url: string) {
      const client = await GatewayClient.connect(url);
      clients.push(client);
      return client;
    },
  };
}

/** Sends a request that must succeed; returns its result, checked against the type's schema. */
function ok<T extends RequestType>(client: GatewayClient, message: { type: T } & Record<string, unknown>) {
  return client.call(message);
}

async function fails(
  client: GatewayClient,
  message: Record<string, unknown>,
  code: string,
): Promise<Received> {
  const reply = await client.request(message);
  assert.equal(reply.type, "ERROR", JSON.stringify(reply));
  assert.equal(reply.error?.code, code, JSON.stringify(reply));
  return reply;
}

describe("Gateway: requests", function () {
  const h = harness();

  it("round-trips every order request type", async function () {
    const { url, broker } = await h.start();
    const client = await h.open(url);
    const market = await ok(client, { type: "PLACE_ORDER", order: order({ quantity: 2 }) });
    assert.equal(market.status, "FILLED");
    assert.equal(market.average_price, 100);
    const limit = await ok(client, {
      type: "PLACE_ORDER",
      order: order({ order_type: "LIMIT", price: 90, client_order_id: "lim1" }),
    });
    assert.equal(limit.status, "OPEN");
    assert.equal((await ok(client, { type: "GET_ORDER", order_id: limit.order_id })).client_order_id, "lim1");
    assert.equal((await ok(client, { type: "GET_ORDER", client_order_id: "lim1" })).order_id, limit.order_id);
    const modified = await ok(client, {
      type: "MODIFY_ORDER",
      order_id: limit.order_id,
      changes: { price: 95, quantity: 3 },
    });
    assert.deepEqual([modified.price, modified.quantity], [95, 3]);
    const cancelled = await ok(client, { type: "CANCEL_ORDER", order_id: limit.order_id });
    assert.equal(cancelled.status, "CANCELLED");
    const book = await ok(client, { type: "GET_ORDERBOOK" });
    assert.deepEqual(book.map((o) => o.order_id).sort(), [market.order_id, limit.order_id].sort());
    assert.deepEqual(await ok(client, { type: "GET_ORDERBOOK" }), await broker.getOrderbook());
    const positions = await ok(client, { type: "GET_POSITIONS" });
    assert.equal(positions.length, 1);
    assert.equal(positions[0]?.quantity, 2);
    const account = await ok(client, { type: "GET_ACCOUNT" });
    assert.deepEqual(account, await broker.getAccount());
  });

  it("round-trips every GTT request type", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    const gtt = {
      type: "single",
      symbol: "INFY",
      trigger_values: [120],
      orders: [{ side: "SELL", quantity: 1, price: 119 }],
    };
    const placed = await ok(client, { type: "PLACE_GTT", gtt });
    assert.equal(placed.status, "active");
    const modified = await ok(client, {
      type: "MODIFY_GTT",
      gtt_id: placed.gtt_id,
      gtt: { ...gtt, trigger_values: [125] },
    });
    assert.deepEqual(modified.trigger_values, [125]);
    const listed = await ok(client, { type: "GET_GTTS" });
    assert.deepEqual(
      listed.map((g: { gtt_id: string }) => g.gtt_id),
      [placed.gtt_id],
    );
    const deleted = await ok(client, { type: "DELETE_GTT", gtt_id: placed.gtt_id });
    assert.equal(deleted.status, "deleted");
  });

  it("passes the broker's errors on with their code and message", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    const missing = await fails(client, { type: "CANCEL_ORDER", order_id: "P404" }, "NOT_FOUND");
    assert.match(missing.error!.message, /P404/);
    const filled = await ok(client, { type: "PLACE_ORDER", order: order() });
    await fails(client, { type: "CANCEL_ORDER", order_id: filled.order_id }, "ORDER_TERMINAL");
    await fails(client, { type: "GET_ORDER", order_id: "P404" }, "NOT_FOUND");
    await fails(client, { type: "GET_ORDER", client_order_id: "nobody" }, "NOT_FOUND");
    await fails(client, { type: "SUBSCRIBE", symbols: ["XYZ:INFY"] }, "VALIDATION");
  });

  it("answers an unexpected failure with INTERNAL and a generic message, logging the detail", async function () {
    const { url, broker, logs } = await h.start();
    broker.getPositions = () => Promise.reject(new TypeError("secret detail at /srv/app.js:1"));
    const client = await h.open(url);
    const reply = await fails(client, { type: "GET_POSITIONS" }, "INTERNAL");
    assert.doesNotMatch(reply.error!.message, /secret detail|app\.js|TypeError/);
    assert.ok(logs.some((l) => l.level === "error" && l.message.includes("secret detail")));
  });

  it("finds an order by client_order_id that was placed on the broker directly", async function () {
    const { url, broker } = await h.start();
    const placed = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      client_order_id: "direct1",
    });
    const client = await h.open(url);
    assert.equal(
      (await ok(client, { type: "GET_ORDER", client_order_id: "direct1" })).order_id,
      placed.order_id,
    );
  });
});

describe("Gateway: idempotent PLACE_ORDER", function () {
  const h = harness();

  it("places one order for concurrent and later retries with the same client_order_id", async function () {
    const { url, broker } = await h.start();
    const calls: OrderRequestInput[] = [];
    const place = broker.placeOrder.bind(broker);
    broker.placeOrder = (request) => {
      calls.push(request);
      return place(request);
    };
    const client = await h.open(url);
    const other = await h.open(url);
    const message = {
      type: "PLACE_ORDER" as const,
      order: order({ order_type: "LIMIT", price: 90, client_order_id: "same1" }),
    };
    // Two frames back to back and a batch holding it twice, before any answer can arrive.
    client.send({ ...message, id: "a" });
    client.send({ ...message, id: "b" });
    other.send([
      { ...message, id: "c" },
      { ...message, id: "d" },
    ]);
    const replies = await Promise.all([
      client.reply("a"),
      client.reply("b"),
      other.reply("c"),
      other.reply("d"),
    ]);
    for (const reply of replies) assert.equal(reply.type, "RESULT", JSON.stringify(reply));
    const later = await ok(client, { ...message, id: "e" });
    const orderIds = [...replies.map((r) => OrderSnapshot.parse(r.result).order_id), later.order_id];
    assert.equal(new Set(orderIds).size, 1, `every answer names the same order: ${orderIds.join(", ")}`);
    assert.equal((await broker.getOrderbook()).length, 1);
    assert.equal(calls.length, 1, "the broker was asked once");
    // A later retry gets the original order as it is now.
    await broker.cancelOrder(later.order_id);
    assert.equal((await ok(client, { ...message, id: "f" })).status, "CANCELLED");
  });

  it("lets a retry run again when the first placement failed", async function () {
    const { url, broker } = await h.start();
    const place = broker.placeOrder.bind(broker);
    let failures = 1;
    broker.placeOrder = (request) =>
      failures-- > 0 ? Promise.reject(new BrokerError("NETWORK", "link dropped")) : place(request);
    const client = await h.open(url);
    const message = { type: "PLACE_ORDER" as const, order: order({ client_order_id: "retry1" }) };
    await fails(client, message, "NETWORK");
    const placed = await ok(client, message);
    assert.equal(placed.client_order_id, "retry1");
    assert.equal((await broker.getOrderbook()).length, 1);
  });
});

describe("Gateway: events and RESUME", function () {
  const h = harness();
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-"));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function seqs(messages: Received[]): number[] {
    return messages.filter((m) => m.type === "EVENT").map((m) => m.event?.seq as number);
  }

  it("pushes account events with increasing seq to every authenticated connection", async function () {
    const { url, broker } = await h.start();
    const a = await h.open(url);
    const b = await h.open(url);
    const stranger = await h.connect(url);
    await ok(a, { type: "PLACE_ORDER", order: order() });
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 });
    for (const client of [a, b]) {
      await client.next((m) => m.type === "EVENT" && m.event?.seq === 4);
      const events = client.all("EVENT");
      assert.deepEqual(seqs(events), [1, 2, 3, 4]);
      assert.deepEqual(
        events.map((m) => m.event?.type),
        ["ORDER_PLACED", "ORDER_FILLED", "ORDER_PLACED", "ORDER_FILLED"],
      );
      for (const m of events) assert.ok(AccountEvent.safeParse(m.event).success);
    }
    // Events of one tick travel together in one array frame.
    assert.ok(a.frames.some((f) => Array.isArray(f) && f.filter((m) => m.type === "EVENT").length === 2));
    assert.equal(stranger.received.length, 0, "no events before AUTH");
  });

  it("replays exactly the missed events before the RESUME result", async function () {
    const { url, broker } = await h.start();
    const first = await h.open(url);
    await ok(first, { type: "PLACE_ORDER", order: order() });
    await ok(first, { type: "PLACE_ORDER", order: order() });
    await first.next((m) => m.type === "EVENT" && m.event?.seq === 4);
    await first.close();
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 });
    await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1, order_type: "LIMIT", price: 200 });
    const again = await h.open(url);
    const reply = await again.request({ type: "RESUME", from_seq: 4 });
    assert.deepEqual(reply.result, { replayed: 3, gap: false, seq: 7 });
    const at = again.received.indexOf(reply);
    assert.deepEqual(seqs(again.received.slice(0, at)), [5, 6, 7], "replayed in order, before the RESULT");
    await GatewayClient.pause(30);
    assert.deepEqual(seqs(again.received), [5, 6, 7], "nothing twice, nothing before from_seq");
    // Up to date: nothing to replay, no gap.
    assert.deepEqual((await again.request({ type: "RESUME", from_seq: 7 })).result, {
      replayed: 0,
      gap: false,
      seq: 7,
    });
  });

  it("never sends an event twice when a RESUME replays it while its live push is still queued", async function () {
    const { url, broker } = await h.start();
    const placed = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }); // seq 1, 2
    const client = await h.open(url);
    const getAccount = broker.getAccount.bind(broker);
    // An event the broker announces while the gateway handles the batch, before the RESUME in it.
    broker.getAccount = () => {
      broker.emit("order", { type: "ORDER_MODIFIED", seq: 3, order: placed, timestamp: placed.timestamp });
      return getAccount();
    };
    client.send([
      { type: "GET_ACCOUNT", id: "a" },
      { type: "RESUME", id: "r", from_seq: 2 },
    ]);
    // Seq 3 is not durable yet when the RESUME runs: it is not replayed, only pushed once it is.
    assert.deepEqual((await client.reply("r")).result, { replayed: 0, gap: false, seq: 2 });
    await GatewayClient.pause(30);
    assert.deepEqual(seqs(client.received), [3]);
  });

  it("reports a gap when the buffer no longer holds the next event", async function () {
    const { url, broker } = await h.start({ replayBuffer: 3 });
    for (let i = 0; i < 3; i++) await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    const client = await h.open(url);
    const reply = await client.request({ type: "RESUME", from_seq: 1 });
    assert.deepEqual(reply.result, { replayed: 3, gap: true, seq: 6 });
    assert.deepEqual(seqs(client.received), [4, 5, 6]);
    assert.deepEqual((await client.request({ type: "RESUME", from_seq: 3 })).result, {
      replayed: 3,
      gap: false,
      seq: 6,
    });
    // A client ahead of the server must reconcile too.
    assert.equal((await ok(client, { type: "RESUME", from_seq: 99 })).gap, true);
  });

  it("after a restart on the same journal: gap true, and seq goes on from the broker's", async function () {
    const journalFile = path.join(dir, "paper-default.jsonl");
    const before = await h.start({}, { journalFile });
    const client = await h.open(before.url);
    await ok(client, { type: "PLACE_ORDER", order: order() });
    await client.next((m) => m.type === "EVENT" && m.event?.seq === 2);
    await client.close();
    await h.stop(before);

    const after = await h.start({}, { journalFile });
    const again = await h.connect(after.url);
    assert.equal(AuthResult.parse((await again.auth()).result).seq, 2, "AUTH reports the broker's seq");
    assert.deepEqual((await again.request({ type: "RESUME", from_seq: 1 })).result, {
      replayed: 0,
      gap: true,
      seq: 2,
    });
    assert.deepEqual((await again.request({ type: "RESUME", from_seq: 2 })).result, {
      replayed: 0,
      gap: false,
      seq: 2,
    });
    await ok(again, { type: "PLACE_ORDER", order: order() });
    const next = await again.next((m) => m.type === "EVENT");
    assert.equal(next.event?.seq, 3);
  });
});

describe("Gateway: quotes", function () {
  const h = harness();

  it("sends quotes only to connections subscribed to the symbol, counting subscribers", async function () {
    const { url, broker } = await h.start();
    const subscribed: string[][] = [];
    const unsubscribed: string[][] = [];
    const subscribe = broker.subscribeQuotes.bind(broker);
    const unsubscribe = broker.unsubscribeQuotes.bind(broker);
    broker.subscribeQuotes = (symbols) => {
      subscribed.push(symbols);
      return subscribe(symbols);
    };
    broker.unsubscribeQuotes = (symbols) => {
      unsubscribed.push(symbols);
      return unsubscribe(symbols);
    };
    const a = await h.open(url);
    const b = await h.open(url);
    const c = await h.open(url);
    assert.deepEqual((await ok(a, { type: "SUBSCRIBE", symbols: ["INFY"] })).symbols, ["NSE:INFY"]);
    assert.deepEqual((await ok(b, { type: "SUBSCRIBE", symbols: ["NSE:INFY", "TCS"] })).symbols, [
      "NSE:INFY",
      "NSE:TCS",
    ]);
    assert.deepEqual(subscribed, [["NSE:INFY"], ["NSE:TCS"]], "INFY asked of the broker once");

    broker.setPrice("INFY", 101);
    broker.setPrice("TCS", 3000);
    await b.next((m) => m.type === "QUOTE" && m.quote?.symbol === "TCS");
    await a.next((m) => m.type === "QUOTE" && m.quote?.symbol === "INFY");
    assert.deepEqual(
      b.all("QUOTE").map((m) => [m.quote?.symbol, m.quote?.last_price]),
      [
        ["INFY", 101],
        ["TCS", 3000],
      ],
    );
    assert.deepEqual(
      a.all("QUOTE").map((m) => m.quote?.symbol),
      ["INFY"],
    );
    assert.equal(c.all("QUOTE").length, 0);

    assert.deepEqual((await ok(a, { type: "UNSUBSCRIBE", symbols: ["INFY"] })).symbols, []);
    assert.deepEqual(unsubscribed, [], "b still wants INFY");
    await b.close();
    await GatewayClient.pause(20);
    assert.deepEqual(
      unsubscribed.map((s) => [...s].sort()),
      [["NSE:INFY", "NSE:TCS"]],
      "the last subscriber left",
    );
    broker.setPrice("INFY", 102);
    await GatewayClient.pause(20);
    assert.deepEqual(
      a.all("QUOTE").map((m) => m.quote?.last_price),
      [101],
    );
  });

  it("does not subscribe a connection the broker refused", async function () {
    const { url, broker } = await h.start();
    const subscribe = broker.subscribeQuotes.bind(broker);
    broker.subscribeQuotes = () => Promise.reject(new BrokerError("NOT_CONNECTED", "feed down"));
    const refused = await h.open(url);
    await fails(refused, { type: "SUBSCRIBE", symbols: ["INFY"] }, "NOT_CONNECTED");
    broker.subscribeQuotes = subscribe;
    const later = await h.open(url);
    await ok(later, { type: "SUBSCRIBE", symbols: ["INFY"] });
    broker.setPrice("INFY", 105);
    await later.next((m) => m.type === "QUOTE");
    await GatewayClient.pause(20);
    assert.equal(refused.all("QUOTE").length, 0);
  });
});
