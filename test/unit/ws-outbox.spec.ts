import assert from "node:assert/strict";
import { BrokerError } from "../../lib/protocol/errors";
import { ReconnectingClient } from "../../lib/ws/reconnecting-client";
import { activeResources, nextEvent, outcome } from "../support/wait";
import { TestServer } from "../support/ws-test-server";

/**
 * Requests made on a ready link skip the send queue and its expiry timer: the flush scheduled for
 * the same turn writes them. What must hold anyway: each is written once, in order, and one that
 * the flush cannot write (its link dropped first) waits for the next link like a queued request.
 */
describe("ReconnectingClient: requests made on a ready link", function () {
  this.timeout(10_000);
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async function () {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function connect(url: string, queueMax = 1000): Promise<ReconnectingClient> {
    const client = new ReconnectingClient({
      url,
      backoff: { initialMs: 5, factor: 2, maxMs: 20 },
      heartbeat: { intervalMs: 5000 },
      queue: { max: queueMax, ttlMs: 5000 },
    });
    client.on("error", () => undefined);
    cleanups.push(() => client.close());
    const connected = nextEvent(client, "state", (state) => state === "connected", 2000);
    client.start();
    await connected;
    return client;
  }

  async function server(): Promise<TestServer> {
    const started = await TestServer.start();
    cleanups.push(() => started.stop());
    return started;
  }

  it("arms no timer per request: a sequential request on a ready link adds no Timeout", async function () {
    const client = await connect((await server()).url);
    // The first request arms the link's shared deadline timer, which stays armed.
    await client.request({ type: "PING", n: -1 });
    for (let n = 0; n < 50; n++) {
      const before = activeResources().get("Timeout") ?? 0;
      const answer = client.request({ type: "PING", n });
      assert.equal(activeResources().get("Timeout") ?? 0, before, `request ${n} armed a timer`);
      await answer;
    }
  });

  it("writes a burst made in one turn once each and in order", async function () {
    const peer = await server();
    const client = await connect(peer.url);
    for (let round = 0; round < 5; round++) {
      const keys = Array.from({ length: 300 }, (_, n) => `r${round}-${n}`);
      await Promise.all(keys.map((key) => client.request({ type: "PING", key })));
      const seen = peer.messages.map((message) => message.key).filter((key) => keys.includes(key as string));
      assert.deepEqual(seen, keys);
    }
  });

  it("refuses a request beyond queue.max made in one turn with QUEUE_FULL, and sends the rest", async function () {
    const peer = await server();
    const client = await connect(peer.url, 10);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, n) => outcome(client.request({ type: "PING", n }))),
    );
    const refused = results.filter((result) => !result.ok);
    assert.equal(refused.length, 2);
    for (const result of refused) {
      assert.ok(!result.ok && result.error instanceof BrokerError);
      assert.equal(result.error.code, "QUEUE_FULL");
      assert.match(result.error.message, /send queue full \(10 waiting\); PING \S+ not sent/);
    }
    assert.equal(peer.messages.filter((message) => message.type === "PING").length, 10);
  });

  it("sends on the next link, once, what was made on a link that dropped before the flush", async function () {
    const peer = await server();
    const client = await connect(peer.url);
    for (let round = 0; round < 10; round++) {
      const key = `drop-${round}`;
      // Made while the link still counts as ready; the server has cut it, so the flush (or the
      // link's end) finds it unwritable and the request waits for the next link.
      peer.dropAll();
      const answer = outcome(client.request({ type: "PING", key }));
      const result = await answer;
      if (!result.ok) {
        // Written before the drop was seen: an unknown outcome, never a silent loss.
        assert.ok(result.error instanceof BrokerError);
        assert.equal(result.error.code, "NETWORK", result.error.message);
      }
      if (client.state !== "connected")
        await nextEvent(client, "state", (state) => state === "connected", 2000);
      const sent = peer.messages.filter((message) => message.key === key).length;
      assert.ok(sent <= 1, `${key} written ${sent} times`);
      if (result.ok) assert.equal(sent, 1, `${key} answered but not seen by the server`);
    }
  });
});
