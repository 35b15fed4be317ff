import assert from "node:assert/strict";
import { KiteTickerClient } from "../../lib/kite/ticker-client";
import type { Tick } from "../../lib/kite/ticker-parser";
import type { BrokerError } from "../../lib/protocol";
import { FakeKite } from "../fakes/fake-kite";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";
import { waitFor } from "../support/wait";

const FAST = { read_timeout_ms: 400, reconnect: { initial_ms: 10, factor: 2, max_ms: 50 } };

function subscribes(fake: FakeKite): unknown[] {
  return fake.tickerMessages.filter((m) => (m as { a: string }).a === "subscribe");
}

describe("Kite ticker client", function () {
  let fake: FakeKite;
  let client: KiteTickerClient;
  beforeEach(async function () {
    fake = await FakeKite.start({ heartbeatMs: 100 });
  });
  afterEach(async function () {
    await client.close();
    await fake.close();
  });

  function newClient(
    overrides: Partial<ConstructorParameters<typeof KiteTickerClient>[0]> = {},
  ): KiteTickerClient {
    return new KiteTickerClient({
      url: fake.tickerUrl,
      apiKey: fake.apiKey,
      accessToken: fake.accessToken,
      readTimeoutMs: 400,
      backoff: { initialMs: 10, maxMs: 50 },
      ...overrides,
    });
  }

  it("authenticates in the query string, subscribes per mode, and resubscribes after every reconnect", async function () {
    client = newClient();
    const ticks: Tick[] = [];
    client.on("ticks", (t) => ticks.push(...t));
    const opens: boolean[] = [];
    client.on("open", (reconnect) => opens.push(reconnect));
    client.subscribe([fake.tokenOf("INFY")], "ltp");
    client.subscribe([fake.tokenOf("TCS")], "full");
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    fake.closeTicker();
    await waitFor(() => fake.tickerConnects === 2 && client.state === "connected", "reconnected");
    await waitFor(() => fake.tickerMessages.length >= 8, "subscriptions sent twice");
    assert.deepEqual(opens, [false, true]);
    assert.deepEqual(fake.tickerMessages.slice(4), fake.tickerMessages.slice(0, 4));
    assert.deepEqual(fake.tickerMessages.slice(0, 4), [
      { a: "subscribe", v: [fake.tokenOf("INFY")] },
      { a: "mode", v: ["ltp", [fake.tokenOf("INFY")]] },
      { a: "subscribe", v: [fake.tokenOf("TCS")] },
      { a: "mode", v: ["full", [fake.tokenOf("TCS")]] },
    ]);
    fake.setPrice("INFY", 1500.5);
    fake.setPrice("TCS", 3500);
    await waitFor(() => ticks.length >= 2, "ticks after the reconnect");
    assert.deepEqual(
      ticks.map((t) => [t.mode, t.last_price]),
      [
        ["ltp", 1500.5],
        ["full", 3500],
      ],
    );
    client.unsubscribe([fake.tokenOf("INFY")]);
    await waitFor(() => fake.tickerMessages.length >= 9, "unsubscribe");
    assert.deepEqual(fake.tickerMessages.at(-1), { a: "unsubscribe", v: [fake.tokenOf("INFY")] });
  });

  it("a stalled server (no heartbeat) is left after the read timeout and dialled again", async function () {
    client = newClient({ readTimeoutMs: 500 });
    const states: string[] = [];
    client.on("state", (state, reason) => states.push(`${state}: ${reason ?? ""}`));
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    // Heartbeats every 100 ms keep a healthy link up well past the read timeout.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(fake.tickerConnects, 1);
    const stalledAt = performance.now();
    fake.stallTicker();
    await waitFor(() => fake.tickerConnects === 2 && client.state === "connected", "reconnected", 5000);
    const took = performance.now() - stalledAt;
    assert.ok(took >= 200, `reconnected ${Math.round(took)} ms after the stall, before the read timeout`);
    assert.ok(
      states.some((s) => /no data from the ticker for 500 ms/.test(s)),
      states.join("\n"),
    );
  });

  it("a refused handshake (503) is retried with backoff until accepted", async function () {
    fake.refuseTicker(4, 503);
    client = newClient();
    const reasons: string[] = [];
    client.on("state", (state, reason) => reasons.push(`${state}: ${reason ?? ""}`));
    client.start();
    await waitFor(() => client.state === "connected", "connected after refusals", 3000);
    assert.equal(fake.tickerRefusals, 4);
    assert.equal(reasons.filter((r) => /Unexpected server response: 503/.test(r)).length, 4);
  });

  it("a 403 handshake stops it for good with AUTH (a dead token)", async function () {
    client = newClient({ accessToken: "dead" });
    const errors: BrokerError[] = [];
    client.on("error", (e) => errors.push(e));
    client.start();
    await waitFor(() => errors.length === 1, "AUTH error");
    assert.equal(errors[0]!.code, "AUTH");
    assert.match(errors[0]!.message, /refused the access token \(HTTP 403\)/);
    assert.equal(client.state, "disconnected");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fake.tickerRefusals, 1);
  });

  it("passes order postbacks on and reports bad frames without dropping the link", async function () {
    client = newClient();
    const orders: unknown[] = [];
    const errors: BrokerError[] = [];
    client.on("order", (o) => orders.push(o));
    client.on("error", (e) => errors.push(e));
    client.start();
    await waitFor(() => client.state === "connected", "connected");
    fake.sendTickerFrame(Buffer.from([0, 2, 0, 8, 0, 0, 0, 1]));
    fake.sendTickerFrame("not json");
    fake.sendTickerFrame(JSON.stringify({ type: "message", data: "hello" }));
    fake.sendTickerFrame(JSON.stringify({ type: "error", data: "subscription limit" }));
    await fake.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 10 });
    await waitFor(() => orders.length === 1, "postback");
    assert.equal((orders[0] as { status: string }).status, "OPEN");
    assert.deepEqual(
      errors.map((e) => e.code),
      ["BAD_FRAME", "INTERNAL"],
    );
    assert.match(errors[1]!.message, /subscription limit/);
    assert.equal(fake.tickerConnects, 1);
    assert.equal(client.state, "connected");
  });
});

describe("KiteBroker over a failing ticker", function () {
  let h: KiteHarness;
  afterEach(async function () {
    await h.close();
  });

  it("server closes: reconnects, resubscribes, quotes flow again", async function () {
    h = await startKite(FAST);
    await h.broker.subscribeQuotes(["INFY"]);
    h.fake.closeTicker();
    await waitFor(() => h.states.some(([s]) => s === "reconnecting"), "reconnecting");
    await waitFor(() => h.fake.tickerConnects === 2 && h.broker.state === "connected", "connected again");
    await waitFor(() => subscribes(h.fake).length === 2, "resubscribed");
    h.fake.setPrice("INFY", 1511);
    await h.log.until(() => h.log.quotes.some((q) => q.last_price === 1511), "quote after reconnect");
  });

  it("fills while the ticker was down are reported after the reconnect, as synthesized events, once", async function () {
    h = await startKite(FAST);
    h.fake.setPrice("INFY", 1500);
    const order = await h.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 5,
      order_type: "LIMIT",
      price: 1490,
    });
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_PLACED"), "placed");
    h.fake.refuseTicker(3);
    h.fake.closeTicker();
    await waitFor(() => h.fake.tickerConnections === 0, "ticker down");
    h.fake.setPrice("INFY", 1485);
    await waitFor(
      () => h.fake.tickerRefusals === 3 && h.broker.state === "connected",
      "back after refusals",
      3000,
    );
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "fill reconciled");
    const fill = h.log.orders.find((e) => e.type === "ORDER_FILLED")!;
    assert.equal(fill.synthesized, true);
    assert.equal(fill.order.filled_quantity, 5);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(h.log.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
  });

  it("a stalled ticker is noticed by the read timeout and replaced; postbacks resume", async function () {
    h = await startKite(FAST, { heartbeatMs: 100 });
    h.fake.setPrice("INFY", 1500);
    h.fake.stallTicker();
    await waitFor(() => h.fake.tickerConnects === 2 && h.broker.state === "connected", "replaced", 3000);
    const order = await h.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 1400,
    });
    h.fake.setPrice("INFY", 1399);
    await h.log.until(
      () => h.log.typesFor(order.order_id).includes("ORDER_FILLED"),
      "fill over the new link",
    );
    assert.deepEqual(h.log.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
  });

  it("a postback without an order id is reported, and the next one still counts", async function () {
    h = await startKite(FAST);
    h.fake.sendTickerFrame(JSON.stringify({ type: "order", data: { status: "COMPLETE" } }));
    await waitFor(() => h.errors.length === 1, "BAD_FRAME");
    assert.equal(h.errors[0]!.code, "BAD_FRAME");
    h.fake.setPrice("INFY", 1500);
    const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    await h.log.until(() => h.log.typesFor(order.order_id).includes("ORDER_FILLED"), "fill");
  });

  it("a refusing ticker at connect leaves the broker reconnecting, then connected", async function () {
    h = await startKite(FAST, {}, false);
    h.fake.refuseTicker(3);
    await h.broker.connect();
    assert.equal(h.broker.state, "reconnecting");
    await waitFor(() => h.broker.state === "connected", "connected", 3000);
  });
});
