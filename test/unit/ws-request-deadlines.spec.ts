import assert from "node:assert/strict";
import { BrokerError } from "../../lib/protocol/errors";
import { ReconnectingClient } from "../../lib/ws/reconnecting-client";
import { activeResources, nextEvent, outcome } from "../support/wait";
import { TestServer } from "../support/ws-test-server";
import type { WireMessage } from "../support/ws-test-server";

/**
 * Request deadlines share one timer per connection. What must hold whatever the timer does: every
 * unanswered request ends TIMEOUT exactly once and never before its own timeoutMs, an answered one
 * never times out, and a short deadline behind long ones is not held up by them.
 */
describe("ReconnectingClient request deadlines", function () {
  this.timeout(10_000);
  const cleanups: (() => Promise<void>)[] = [];
  /** The test server's own timers (delayed answers), which share the process with the client's. */
  let serverTimers = 0;

  afterEach(async function () {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A server that answers only requests with `answer: true`, after `delayMs` when given. */
  async function selective(): Promise<TestServer> {
    const server = await TestServer.start({
      respond: (message: WireMessage, reply) => {
        if (message.answer !== true) return;
        const send = () => reply({ type: "RESULT", id: message.id, result: { n: message.n } });
        if (typeof message.delayMs !== "number") return send();
        serverTimers += 1;
        setTimeout(() => {
          serverTimers -= 1;
          send();
        }, message.delayMs);
      },
    });
    cleanups.push(() => server.stop());
    return server;
  }

  async function connect(url: string): Promise<ReconnectingClient> {
    const client = new ReconnectingClient({
      url,
      requestTimeoutMs: 5000,
      heartbeat: { intervalMs: 5000 },
      queue: { max: 5000, ttlMs: 5000 },
    });
    client.on("error", () => undefined);
    cleanups.push(() => client.close());
    const connected = nextEvent(client, "state", (state) => state === "connected", 2000);
    client.start();
    await connected;
    return client;
  }

  function timers(): number {
    return (activeResources().get("Timeout") ?? 0) - serverTimers;
  }

  it("times out many in-flight requests of mixed timeouts once each, never early, on one timer", async function () {
    const server = await selective();
    const client = await connect(server.url);
    const before = timers();
    const timeouts = [150, 300, 200, 400, 250];
    for (let round = 0; round < 3; round++) {
      const count = 300;
      const started: number[] = [];
      const results = Array.from({ length: count }, (_, n) => {
        const timeoutMs = timeouts[n % timeouts.length]!;
        started.push(performance.now());
        // Every third is answered, some of those a little later, in a turn of their own.
        const answer = n % 3 === 0;
        const delayMs = answer && n % 2 === 0 ? 5 : undefined;
        return outcome(
          client
            .request(
              { type: "PING", n, answer, ...(delayMs === undefined ? {} : { delayMs }) },
              { timeoutMs },
            )
            .then((value) => ({ value, at: performance.now() })),
        ).then((result) => ({ result, at: performance.now(), timeoutMs, answer }));
      });
      // However many requests wait, the client holds one deadline timer, not one per request.
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(timers() <= before + 2, `timers ${before} -> ${timers()} with ${count} requests in flight`);
      const settled = await Promise.all(results);
      settled.forEach(({ result, at, timeoutMs, answer }, n) => {
        if (answer) {
          assert.equal(result.ok, true, `request ${n} was answered within its window`);
          return;
        }
        assert.equal(result.ok, false, `request ${n} was never answered`);
        const error = (result as { error: unknown }).error;
        assert.ok(error instanceof BrokerError && error.code === "TIMEOUT", String(error));
        assert.match(error.message, new RegExp(`within ${timeoutMs} ms; outcome unknown`));
        assert.ok(
          at - started[n]! >= timeoutMs,
          `request ${n} timed out after ${at - started[n]!} ms < ${timeoutMs}`,
        );
      });
      const unanswered = settled.filter((s) => !s.answer).length;
      assert.equal(client.stats.timeouts, unanswered * (round + 1));
    }
  });

  it("does not let a long deadline already armed hold up a shorter one written after it", async function () {
    const server = await selective();
    const client = await connect(server.url);
    const order: string[] = [];
    const long = client.request({ type: "PING" }, { timeoutMs: 3000 }).catch(() => order.push("long"));
    // Written in a later turn, so the timer is already armed for the long one's deadline.
    await new Promise((resolve) => setImmediate(resolve));
    for (let round = 0; round < 5; round++) {
      const short = await outcome(client.request({ type: "PING", round }, { timeoutMs: 40 }));
      order.push("short");
      assert.equal(short.ok, false);
      assert.equal((short as { error: BrokerError }).error.code, "TIMEOUT");
    }
    // Had a short request waited for the long one's timer, it would have ended after it.
    assert.deepEqual(order, ["short", "short", "short", "short", "short"]);
    await client.close();
    await long;
    assert.equal(order.at(-1), "long");
  });

  it("ends every in-flight request CLOSED once at close, none later TIMEOUT, and holds no timer open", async function () {
    const server = await selective();
    const client = await connect(server.url);
    await new Promise((resolve) => setImmediate(resolve));
    const idle = timers();
    let settled = 0;
    const pending = Array.from({ length: 50 }, (_, n) =>
      outcome(client.request({ type: "PING", n }, { timeoutMs: 40 + n })).finally(() => (settled += 1)),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    await client.close();
    const ended = await Promise.all(pending);
    for (const result of ended) {
      assert.equal(result.ok, false);
      assert.equal((result as { error: BrokerError }).error.code, "CLOSED");
    }
    // Past every request's deadline: nothing fires on the closed link.
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(settled, 50);
    assert.equal(client.stats.timeouts, 0);
    // The heartbeat went with the link, and the deadline timer never held the process open.
    assert.ok(timers() < idle, `timers after close: ${timers()} (idle link had ${idle})`);
  });
});
