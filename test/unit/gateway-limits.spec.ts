import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { AuthVerifier, MAX_NONCES_PER_KEY, signAuth } from "../../lib/gateway/auth";
import { Gateway } from "../../lib/gateway/gateway";
import { CLOSE_CODES } from "../../lib/protocol/wire";
import { fastSettings } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, newNonce, startPaperGateway, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { waitFor } from "../support/wait";

const OTHER_KEY = "other-key";
const OTHER_SECRET = "other-secret-0123456789";

describe("Gateway: limits a client cannot knock over", function () {
  this.timeout(20_000);
  let gateways: PaperGateway[] = [];
  let clients: GatewayClient[] = [];
  let brokers: WebSocketBroker[] = [];

  afterEach(async function () {
    for (const broker of brokers) await broker.close();
    await Promise.all(clients.map((c) => c.close()));
    for (const g of gateways) await g.close();
    gateways = [];
    clients = [];
    brokers = [];
  });

  async function start(options: Parameters<typeof startPaperGateway>[0] = {}): Promise<PaperGateway> {
    const made = await startPaperGateway({
      credentials: new Map([
        [TEST_KEY, { secret: TEST_SECRET }],
        [OTHER_KEY, { secret: OTHER_SECRET }],
      ]),
      ...options,
    });
    gateways.push(made);
    return made;
  }

  async function connect(url: string): Promise<GatewayClient> {
    const client = await GatewayClient.connect(url);
    clients.push(client);
    return client;
  }

  async function open(
    url: string,
    auth: Parameters<typeof GatewayClient.open>[1] = {},
  ): Promise<GatewayClient> {
    const client = await GatewayClient.open(url, auth);
    clients.push(client);
    return client;
  }

  it("closes an unauthenticated socket that keeps sending, after a few answers, unparsed", async function () {
    const { url } = await start();
    const client = await connect(url);
    for (let i = 0; i < 200; i++) client.send("not json!");
    const closed = await client.closed;
    assert.equal(closed.code, CLOSE_CODES.policy);
    assert.ok(client.received.length <= 4, `${client.received.length} answers to a flood`);
  });

  it("answers frames over the rate once, then closes a connection that keeps on", async function () {
    const { url } = await start({ rate: { perSecond: 1, burst: 3 }, maxStrikes: 5 });
    const client = await open(url); // AUTH takes one token
    for (let i = 0; i < 500; i++) client.send({ type: "GET_ACCOUNT", id: `g${i}` });
    const closed = await client.closed;
    assert.equal(closed.code, CLOSE_CODES.policy);
    const limited = client.received.filter((m) => m.error?.code === "RATE_LIMITED");
    assert.equal(limited.length, 1, JSON.stringify(client.received.slice(0, 6)));
    assert.equal(limited[0]?.id, null);
    assert.ok(client.received.length <= 4, `${client.received.length} answers`);
  });

  it("limits an api key over all its connections, not per connection", async function () {
    const { url } = await start({
      rate: { perSecond: 1000, burst: 1000 },
      keyRate: { perSecond: 1, burst: 6 },
    });
    const sockets = [await open(url), await open(url), await open(url), await open(url)];
    const replies = await Promise.all(
      sockets.flatMap((socket) => [1, 2, 3].map(() => socket.request({ type: "GET_ACCOUNT" }))),
    );
    const ok = replies.filter((r) => r.type === "RESULT").length;
    const limited = replies.filter((r) => r.error?.code === "RATE_LIMITED");
    assert.equal(ok, 6, "the key's burst, shared by its 4 connections");
    assert.equal(limited.length, 6);
    assert.match(limited[0]?.error?.message ?? "", /api key's rate limit/);
    // Another key has its own budget.
    assert.equal(
      (await (await open(url, { apiKey: OTHER_KEY, secret: OTHER_SECRET })).request({ type: "GET_ACCOUNT" }))
        .type,
      "RESULT",
    );
  });

  it("caps connections per IP address (HTTP 429) and per api key (AUTH_RETRY, 1013)", async function () {
    const { url } = await start({ maxConnectionsPerIp: 3, maxConnectionsPerKey: 2 });
    await open(url);
    await open(url);
    const third = await connect(url);
    const refused = await third.auth();
    assert.equal(refused.error?.code, "AUTH_RETRY");
    assert.ok((refused.error?.retry_after_ms ?? 0) > 0);
    assert.equal((await third.closed).code, CLOSE_CODES.tryAgainLater);
    await waitFor(() => gateways[0]!.gateway.connections === 2, "the refused connection to go");
    await open(url, { apiKey: OTHER_KEY, secret: OTHER_SECRET }); // the third from this IP
    await assert.rejects(GatewayClient.connect(url), /429/);
  });

  it("refuses a second AUTH on an authenticated connection and keeps it", async function () {
    const { url } = await start();
    const client = await open(url);
    const again = await client.auth();
    assert.equal(again.error?.code, "VALIDATION");
    assert.match(again.error?.message ?? "", /already authenticated/);
    assert.equal((await client.request({ type: "GET_ACCOUNT" })).type, "RESULT");
  });

  it("refuses a captured AUTH frame replayed after a gateway restart", async function () {
    const first = await start();
    const victim = await connect(first.url);
    const captured = victim.authMessage({ id: "cap" });
    assert.equal((await victim.request(captured)).type, "RESULT");
    await victim.close();
    await first.gateway.close();
    // AUTH timestamps are whole milliseconds, so a frame signed in the very millisecond a gateway
    // starts cannot be told apart from one signed just after; an in-process restart can land in
    // that millisecond (a real one takes far longer), so start the new one on a later tick.
    while (Date.now() <= (captured.timestamp as number))
      await new Promise((resolve) => setTimeout(resolve, 1));
    // A new gateway over the same broker: the nonce table starts empty.
    const second = await Gateway.start({
      broker: first.broker,
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
    });
    try {
      const attacker = await connect(second.url);
      const reply = await attacker.request(captured);
      assert.equal(reply.type, "ERROR");
      assert.match(reply.error?.message ?? "", /predates this server's start/);
      const fresh = await connect(second.url);
      assert.equal((await fresh.auth()).type, "RESULT");
    } finally {
      await second.close();
    }
  });

  it("bounds nonces per key: one key's flood is told to retry later and other keys still get in", function () {
    const now = 1_000_000;
    const verifier = new AuthVerifier({
      credentials: new Map([
        ["a", { secret: "sa" }],
        ["b", { secret: "sb" }],
      ]),
      windowMs: 30_000,
      now: () => now,
      defaultAccount: "x",
    });
    const auth = (key: string, secret: string) => {
      const nonce = newNonce();
      return {
        type: "AUTH" as const,
        id: "i",
        api_key: key,
        timestamp: now,
        nonce,
        signature: signAuth(secret, key, now, nonce),
      };
    };
    for (let i = 0; i < MAX_NONCES_PER_KEY; i++) assert.equal(verifier.verify(auth("a", "sa")).ok, true);
    const over = verifier.verify(auth("a", "sa"));
    assert.equal(over.ok, false);
    assert.ok(!over.ok && over.retryAfterMs !== undefined && over.retryAfterMs > 0, JSON.stringify(over));
    assert.equal(verifier.verify(auth("b", "sb")).ok, true);
  });

  it("refuses a second request with an id still in flight, and executes the first once", async function () {
    const { url, broker } = await start();
    const client = await open(url);
    client.send([
      {
        type: "PLACE_ORDER",
        id: "same",
        order: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "dupA" },
      },
      {
        type: "PLACE_ORDER",
        id: "same",
        order: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "dupB" },
      },
    ]);
    await waitFor(() => client.received.filter((m) => m.id === "same").length === 2, "both answers");
    const answers = client.received.filter((m) => m.id === "same");
    assert.deepEqual(answers.map((m) => m.error?.code ?? m.type).sort(), ["RESULT", "VALIDATION"]);
    assert.match(
      answers.find((m) => m.type === "ERROR")?.error?.message ?? "",
      /id: a request with id same is still in flight/,
    );
    const book = await broker.getOrderbook();
    assert.deepEqual(
      book.map((o) => o.client_order_id),
      ["dupA"],
    );
    // Once answered, the id may be used again.
    assert.equal((await client.request({ type: "GET_ACCOUNT", id: "same" })).type, "RESULT");
  });

  it("caps symbols per connection and stops tracking a symbol when its last subscriber goes", async function () {
    let tracked = 0;
    const made = await start();
    const subscribe = made.broker.subscribeQuotes.bind(made.broker);
    const unsubscribe = made.broker.unsubscribeQuotes.bind(made.broker);
    made.broker.subscribeQuotes = async (symbols) => {
      tracked += symbols.length;
      return subscribe(symbols);
    };
    made.broker.unsubscribeQuotes = async (symbols) => {
      tracked -= symbols.length;
      return unsubscribe(symbols);
    };
    const client = await open(made.url);
    for (let round = 0; round < 20; round++) {
      const symbols = Array.from({ length: 3000 }, (_, i) => `R${round}S${i}`);
      await client.call({ type: "SUBSCRIBE", symbols });
      await client.call({ type: "UNSUBSCRIBE", symbols });
    }
    assert.equal(tracked, 0, "symbols still tracked after every one was unsubscribed");
    await client.call({ type: "SUBSCRIBE", symbols: Array.from({ length: 3000 }, (_, i) => `K${i}`) });
    const over = await client.request({ type: "SUBSCRIBE", symbols: ["ONEMORE"] });
    assert.equal(over.error?.code, "VALIDATION");
    assert.match(over.error?.message ?? "", /symbols: a connection may hold at most 3000 subscriptions/);
    await client.close();
    await waitFor(() => tracked === 0, "the closed connection's symbols to be released");
  });

  it("keeps a WebSocketBroker told AUTH_RETRY reconnecting until it gets in", async function () {
    const { url } = await start({ maxConnectionsPerKey: 1 });
    const holder = await open(url);
    const broker = new WebSocketBroker(fastSettings(url));
    brokers.push(broker);
    await broker.connect();
    await waitFor(() => broker.state === "reconnecting", "the refused first attempt");
    await holder.close();
    await waitFor(() => broker.state === "connected", "the broker to get in once the slot is free", 5000);
    assert.ok((await broker.getAccount()).cash > 0);
  });
});
