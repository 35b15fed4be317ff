import assert from "node:assert/strict";
import { AuthVerifier, signAuth } from "../../lib/gateway/auth";
import { Gateway } from "../../lib/gateway/gateway";
import { ReplayBuffer } from "../../lib/gateway/replay-buffer";
import { AuthResult, CLOSE_CODES, ErrorMessage, WIRE_LIMITS } from "../../lib/protocol/wire";
import type { PaperGateway } from "../support/gateway-client";
import {
  GatewayClient,
  TEST_KEY,
  TEST_SECRET,
  newNonce,
  order,
  sign,
  startPaperGateway,
} from "../support/gateway-client";

/** Starts gateways for one test and closes them (and their clients) afterwards. */
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
    async start(options: Parameters<typeof startPaperGateway>[0] = {}) {
      const made = await startPaperGateway(options);
      gateways.push(made);
      return made;
    },
    async connect(url: string) {
      const client = await GatewayClient.connect(url);
      clients.push(client);
      return client;
    },
    async open(url: string) {
      const client = await GatewayClient.open(url);
      clients.push(client);
      return client;
    },
  };
}

function assertError(message: { type: string; id?: string | null; error?: { code: string } }, code: string) {
  assert.equal(message.type, "ERROR", `expected ERROR ${code}, got ${JSON.stringify(message)}`);
  assert.equal(message.error?.code, code, JSON.stringify(message));
  assert.ok(ErrorMessage.safeParse(message).success, `not a valid ERROR message: ${JSON.stringify(message)}`);
}

describe("Gateway: authentication", function () {
  const h = harness();

  it("answers a signed AUTH with the account, current seq, server time and limits", async function () {
    const { url, broker } = await h.start({ maxBatch: 50, rate: { perSecond: 200, burst: 400 } });
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }); // seq 1 and 2 (placed, filled)
    const client = await h.connect(url);
    const reply = await client.auth();
    assert.equal(reply.type, "RESULT");
    const result = AuthResult.parse(reply.result);
    assert.equal(result.account, "default");
    assert.equal(result.seq, 2);
    assert.ok(Math.abs(Date.parse(result.server_time) - Date.now()) < 5000);
    assert.deepEqual(result.limits, {
      max_frame_bytes: WIRE_LIMITS.maxFrameBytes,
      max_batch: 50,
      rate_per_second: 200,
      burst: 400,
    });
  });

  it("reports the account a credential names", async function () {
    const { url } = await h.start({
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET, account: "desk-7" }]]),
    });
    const client = await h.connect(url);
    assert.equal(AuthResult.parse((await client.auth()).result).account, "desk-7");
  });

  it("accepts a lookup function that returns the secret", async function () {
    const { url } = await h.start({ credentials: (key) => (key === "fn-key" ? "fn-secret" : undefined) });
    const client = await h.connect(url);
    assert.equal((await client.auth({ apiKey: "fn-key", secret: "fn-secret" })).type, "RESULT");
  });

  for (const [what, fields, text] of [
    ["a wrong signature", { secret: "not-the-secret" }, /api key or signature is invalid/],
    ["an unknown api key", { apiKey: "who-is-this" }, /api key or signature is invalid/],
  ] as const) {
    it(`refuses ${what} with AUTH, closes with 4001 and executes nothing after it`, async function () {
      const { url, broker } = await h.start();
      const client = await h.connect(url);
      client.send([
        client.authMessage({ ...fields, id: "a1" }),
        { type: "PLACE_ORDER", id: "p1", order: order() },
      ]);
      const closed = await client.closed;
      assert.equal(closed.code, CLOSE_CODES.authFailed);
      const auth = await client.reply("a1");
      assertError(auth, "AUTH");
      assert.match(auth.error!.message, text);
      assertError(await client.reply("p1"), "UNAUTHENTICATED");
      assert.equal((await broker.getOrderbook()).length, 0);
    });
  }

  it("refuses a timestamp outside the ±30 s window of the injected clock", async function () {
    let now = Date.UTC(2026, 0, 5, 9, 14);
    const { url, broker } = await h.start({ now: () => now });
    // A minute after the gateway started: no AUTH signed before its start is taken.
    now = Date.UTC(2026, 0, 5, 9, 15);
    const inside = await h.connect(url);
    // 29 s off the injected clock (and months off the real one): accepted, so the gateway uses `now`.
    assert.equal((await inside.auth({ timestamp: now - 29_000 })).type, "RESULT");
    const stale = await h.connect(url);
    stale.send([
      stale.authMessage({ id: "a1", timestamp: now - 31_000 }),
      { type: "GET_ORDERBOOK", id: "g1" },
    ]);
    assert.equal((await stale.closed).code, CLOSE_CODES.authFailed);
    const reply = await stale.reply("a1");
    assertError(reply, "AUTH");
    assert.match(reply.error!.message, /timestamp \d+ is outside the ±30 s window/);
    const future = await h.connect(url);
    assertError(await future.auth({ timestamp: now + 31_000 }), "AUTH");
    assert.equal((await future.closed).code, CLOSE_CODES.authFailed);
    assert.equal((await broker.getOrderbook()).length, 0);
  });

  it("refuses a replayed nonce, even on another connection", async function () {
    const { url } = await h.start();
    const first = await h.connect(url);
    const message = first.authMessage({ id: "a1" });
    assert.equal((await first.request(message)).type, "RESULT");
    const replay = await h.connect(url);
    const reply = await replay.request(message);
    assertError(reply, "AUTH");
    assert.match(reply.error!.message, /nonce already used/);
    assert.equal((await replay.closed).code, CLOSE_CODES.authFailed);
  });

  it("answers every request before AUTH with UNAUTHENTICATED and executes none", async function () {
    const { url, broker } = await h.start();
    const client = await h.connect(url);
    const replies = await Promise.all([
      client.request({ type: "PLACE_ORDER", order: order() }),
      client.request({ type: "GET_ACCOUNT" }),
      client.request({ type: "SUBSCRIBE", symbols: ["INFY"] }),
    ]);
    for (const reply of replies) assertError(reply, "UNAUTHENTICATED");
    assert.equal((await broker.getOrderbook()).length, 0);
    // The connection is still usable: AUTH now, then the same request runs.
    assert.equal((await client.auth()).type, "RESULT");
    assert.equal((await client.request({ type: "PLACE_ORDER", order: order() })).type, "RESULT");
    assert.equal((await broker.getOrderbook()).length, 1);
  });

  it("closes a socket that has not authenticated within authTimeoutMs with 4002", async function () {
    const { url } = await h.start({ authTimeoutMs: 80 });
    const idle = await h.connect(url);
    const authed = await h.open(url);
    assert.equal((await idle.closed).code, CLOSE_CODES.authTimeout);
    await GatewayClient.pause(100);
    assert.equal(authed.ws.readyState, authed.ws.OPEN);
  });
});

describe("Gateway: frames and limits", function () {
  const h = harness();

  it("answers malformed JSON with BAD_FRAME id null and stays usable", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    client.send('{"type":"GET_ACCOUNT","id":"x"');
    const bad = await client.next((m) => m.type === "ERROR");
    assertError(bad, "BAD_FRAME");
    assert.equal(bad.id, null);
    assert.equal((await client.request({ type: "GET_ACCOUNT" })).type, "RESULT");
  });

  it("answers non-objects and type-less messages with BAD_FRAME, by id when it can be read", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    for (const frame of ["42", "null", '"GET_ACCOUNT"']) {
      client.send(frame);
      const reply = await client.next((m) => m.type === "ERROR");
      assertError(reply, "BAD_FRAME");
      assert.equal(reply.id, null);
    }
    client.send([
      1,
      null,
      ["nested"],
      { id: "no-type" },
      { type: 5, id: "num-type" },
      { type: "GET_GTTS", id: "ok" },
    ]);
    await client.next((m) => m.id === "ok");
    const frame = client.frames.at(-1) as { type: string; id: string | null; error?: { code: string } }[];
    assert.equal(frame.length, 6, "one reply per message, in one array frame");
    assert.deepEqual(
      frame.map((m) => [m.id, m.error?.code ?? m.type]),
      [
        [null, "BAD_FRAME"],
        [null, "BAD_FRAME"],
        [null, "BAD_FRAME"],
        ["no-type", "BAD_FRAME"],
        ["num-type", "BAD_FRAME"],
        ["ok", "RESULT"],
      ],
    );
  });

  it("answers an empty batch and a binary frame with BAD_FRAME", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    client.send("[]");
    assertError(await client.next((m) => m.type === "ERROR"), "BAD_FRAME");
    client.ws.send(Buffer.from(JSON.stringify({ type: "GET_ACCOUNT", id: "b" })), { binary: true });
    const reply = await client.next((m) => m.type === "ERROR");
    assertError(reply, "BAD_FRAME");
    assert.match(reply.error!.message, /binary/);
  });

  it("answers an unknown type with UNKNOWN_TYPE naming it", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    const reply = await client.request({ type: "PLACE_ORDERS", id: "u1" });
    assertError(reply, "UNKNOWN_TYPE");
    assert.equal(reply.id, "u1");
    assert.match(reply.error!.message, /"PLACE_ORDERS"/);
  });

  it("answers an invalid order with VALIDATION naming field and rule, and places nothing", async function () {
    const { url, broker } = await h.start();
    const client = await h.open(url);
    const reply = await client.request({ type: "PLACE_ORDER", order: order({ quantity: -3 }) });
    assertError(reply, "VALIDATION");
    assert.match(reply.error!.message, /order\.quantity: must be greater than 0/);
    const limit = await client.request({ type: "PLACE_ORDER", order: order({ order_type: "LIMIT" }) });
    assert.match(limit.error!.message, /order\.price: is required for LIMIT orders/);
    const noId = await client.request({ type: "PLACE_ORDER", order: order({ client_order_id: undefined }) });
    assert.match(noId.error!.message, /order\.client_order_id: is required/);
    assert.equal((await broker.getOrderbook()).length, 0);
  });

  it("names the rule when GET_ORDER has neither or both ids", async function () {
    const { url } = await h.start();
    const client = await h.open(url);
    const neither = await client.request({ type: "GET_ORDER" });
    assertError(neither, "VALIDATION");
    assert.match(neither.error!.message, /exactly one of order_id or client_order_id/);
    const both = await client.request({ type: "GET_ORDER", order_id: "P1", client_order_id: "c1" });
    assert.match(both.error!.message, /exactly one of order_id or client_order_id/);
    const bad = await client.request({ type: "GET_ORDER", client_order_id: "not valid!" });
    assert.match(bad.error!.message, /client_order_id: must be 1 to 20 letters or digits/);
  });

  it("answers an oversized frame with FRAME_TOO_LARGE without reading it, and stays usable", async function () {
    const { url, broker } = await h.start({ maxFrameBytes: 1024 });
    const client = await h.open(url);
    client.send({ type: "PLACE_ORDER", id: "big", order: order(), pad: "x".repeat(2000) });
    const reply = await client.next((m) => m.type === "ERROR");
    assertError(reply, "FRAME_TOO_LARGE");
    assert.equal(reply.id, null, "the frame was not parsed, so its id is unknown");
    assert.match(reply.error!.message, /exceeds the limit of 1024 bytes/);
    assert.equal((await client.request({ type: "PLACE_ORDER", order: order() })).type, "RESULT");
    assert.equal((await broker.getOrderbook()).length, 1);
  });

  it("closes with 1009 past the hard payload limit", async function () {
    const { url } = await h.start({ maxFrameBytes: 1024 });
    const client = await h.open(url);
    client.send("x".repeat(16 * 1024 + 1));
    assert.equal((await client.closed).code, 1009);
  });

  it("refuses a batch over maxBatch whole and once: one BATCH_TOO_LARGE (id null), nothing executed", async function () {
    const { url, broker } = await h.start({ maxBatch: 5 });
    const client = await h.open(url);
    const batch = Array.from({ length: 6 }, (_, i) => ({ type: "PLACE_ORDER", id: `b${i}`, order: order() }));
    client.send(batch);
    const reply = await client.next((m) => m.type === "ERROR");
    assertError(reply, "BATCH_TOO_LARGE");
    assert.equal(reply.id, null);
    await GatewayClient.pause(50);
    assert.equal(client.all("ERROR").length, 1, "one answer for the whole batch");
    assert.equal((await broker.getOrderbook()).length, 0);
  });

  it("answers a valid batch with one array frame holding one reply per request", async function () {
    const { url, broker } = await h.start();
    const client = await h.open(url);
    const framesBefore = client.frames.length;
    client.send([
      { type: "PLACE_ORDER", id: "o1", order: order() },
      { type: "PLACE_ORDER", id: "o2", order: order({ side: "SELL" }) },
      { type: "CANCEL_ORDER", id: "c1", order_id: "P404" },
      { type: "GET_ACCOUNT", id: "a1" },
    ]);
    const replies = await Promise.all(["o1", "o2", "c1", "a1"].map((id) => client.reply(id)));
    assert.deepEqual(
      replies.map((r) => r.type),
      ["RESULT", "RESULT", "ERROR", "RESULT"],
    );
    assertError(replies[2]!, "NOT_FOUND");
    const answer = client.frames
      .slice(framesBefore)
      .find((f) => Array.isArray(f) && f.some((m: { type: string }) => m.type === "RESULT"));
    assert.ok(Array.isArray(answer));
    assert.deepEqual(
      answer.map((m: { id: string }) => m.id),
      ["o1", "o2", "c1", "a1"],
    );
    assert.equal((await broker.getOrderbook()).length, 2);
  });

  it("runs requests batched after AUTH in the same frame", async function () {
    const { url, broker } = await h.start();
    const client = await h.connect(url);
    client.send([client.authMessage({ id: "a" }), { type: "PLACE_ORDER", id: "p", order: order() }]);
    assert.equal((await client.reply("a")).type, "RESULT");
    assert.equal((await client.reply("p")).type, "RESULT");
    assert.equal((await broker.getOrderbook()).length, 1);
  });

  it("answers requests over the rate limit with RATE_LIMITED and retry_after_ms, not executed", async function () {
    const { url, broker } = await h.start({ rate: { perSecond: 1, burst: 3 } });
    const client = await h.open(url); // AUTH takes one token
    const batch = Array.from({ length: 4 }, (_, i) => ({ type: "PLACE_ORDER", id: `r${i}`, order: order() }));
    client.send(batch);
    const replies = await Promise.all(batch.map((m) => client.reply(m.id)));
    assert.deepEqual(
      replies.map((r) => r.error?.code ?? r.type),
      ["RESULT", "RESULT", "RATE_LIMITED", "RATE_LIMITED"],
    );
    for (const limited of replies.slice(2)) {
      assert.ok(ErrorMessage.safeParse(limited).success);
      assert.ok(limited.error!.retry_after_ms! > 0 && limited.error!.retry_after_ms! <= 1000);
    }
    assert.equal((await broker.getOrderbook()).length, 2);
  });

  it("charges frames refused whole against the rate limit too", async function () {
    const { url } = await h.start({ rate: { perSecond: 1, burst: 2 } });
    const client = await h.open(url); // AUTH takes one token
    client.send("not json");
    assertError(await client.next((m) => m.type === "ERROR"), "BAD_FRAME");
    client.send("not json either");
    const limited = await client.next((m) => m.type === "ERROR");
    assertError(limited, "RATE_LIMITED");
    assert.equal(limited.id, null);
    assert.ok(limited.error!.retry_after_ms! > 0);
  });

  it("refuses options above the published limits", async function () {
    const { broker } = await h.start();
    const credentials = new Map([[TEST_KEY, { secret: TEST_SECRET }]]);
    await assert.rejects(
      Gateway.start({ broker, credentials, maxFrameBytes: WIRE_LIMITS.maxFrameBytes + 1 }),
      RangeError,
    );
    await assert.rejects(Gateway.start({ broker, credentials, maxBatch: 101 }), RangeError);
    await assert.rejects(Gateway.start({ broker, credentials, authWindowMs: 60_000 }), RangeError);
  });
});

describe("AuthVerifier", function () {
  function verifier(now: () => number) {
    return new AuthVerifier({
      credentials: new Map([["k", { secret: "s" }]]),
      windowMs: 30_000,
      now,
      defaultAccount: "acct",
    });
  }
  function auth(timestamp: number, nonce = newNonce()) {
    return {
      type: "AUTH" as const,
      id: "1",
      api_key: "k",
      timestamp,
      nonce,
      signature: signAuth("s", "k", timestamp, nonce),
    };
  }

  it("signs as the spec's authPayload says", function () {
    assert.equal(signAuth("s", "k", 1, "n".repeat(16)), sign("s", "k", 1, "n".repeat(16)));
  });

  it("forgets nonces once their timestamps can no longer pass, and not before", function () {
    let now = 1_000_000;
    const v = verifier(() => now);
    const first = auth(now);
    assert.equal(v.verify(first).ok, true);
    assert.equal(v.verify(auth(now)).ok, true);
    assert.equal(v.nonceCount, 2);
    now += 30_000;
    assert.deepEqual(v.verify(first), { ok: false, message: "nonce already used" });
    now += 1;
    assert.equal(v.verify(auth(now)).ok, true);
    assert.equal(v.nonceCount, 1, "the two expired nonces were evicted");
  });

  it("accepts the edges of the window and refuses past them", function () {
    let now = 5_000_000 - 60_000;
    const v = verifier(() => now); // started a minute ago: the window's past edge is after the start
    now = 5_000_000;
    assert.equal(v.verify(auth(now - 30_000)).ok, true);
    assert.equal(v.verify(auth(now + 30_000)).ok, true);
    assert.equal(v.verify(auth(now - 30_001)).ok, false);
    assert.equal(v.verify(auth(now + 30_001)).ok, false);
  });
});

describe("ReplayBuffer", function () {
  const item = (seq: number) => ({ seq, frame: String(seq) });

  it("keeps the last capacity events and finds those after a seq", function () {
    const buffer = new ReplayBuffer(3);
    for (let seq = 1; seq <= 5; seq++) buffer.push(item(seq));
    assert.equal(buffer.size, 3);
    assert.deepEqual(
      buffer.after(0).map((e) => e.seq),
      [3, 4, 5],
    );
    assert.deepEqual(
      buffer.after(3).map((e) => e.seq),
      [4, 5],
    );
    assert.deepEqual(buffer.after(5), []);
    assert.equal(buffer.has(2), false);
    assert.equal(buffer.has(3), true);
    assert.equal(buffer.has(5), true);
    assert.equal(buffer.has(6), false);
  });

  it("ignores an event whose seq does not increase", function () {
    const buffer = new ReplayBuffer(4);
    buffer.push(item(2));
    buffer.push(item(2));
    buffer.push(item(1));
    assert.deepEqual(
      buffer.after(0).map((e) => e.seq),
      [2],
    );
  });
});
