import assert from "node:assert/strict";
import http from "node:http";
import { RateLimiter, SlidingWindow } from "../../lib/kite/rate-limiter";
import type { BrokerError } from "../../lib/protocol/errors";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/**
 * The login's session exchange shares Kite's "other endpoints" limit with every background read
 * the broker makes (order-book polls, GTT lists, instrument loads, the risk guard's seeding). It
 * must not wait behind them, nor be refused because of them: it is the one call that brings a dead
 * session back. And reads queued when the session died are not sent with the dead token.
 */
describe("RateLimiter: urgent requests and places given back", function () {
  const never = new AbortController().signal;

  it("an urgent request takes the next free place, ahead of every ordinary one already waiting", async function () {
    for (let round = 0; round < 20; round++) {
      // One place per 5 ms: the first goes at once, the rest wait their turn.
      const limiter = new RateLimiter("test", [new SlidingWindow(1, 5)], 60_000);
      const order: string[] = [];
      const take = async (name: string, urgent: boolean): Promise<void> => {
        const release = await limiter.acquire(never, urgent);
        order.push(name);
        release();
      };
      const all = [0, 1, 2, 3, 4, 5].map((i) => take(`read${i}`, false));
      all.push(take("login", true));
      await Promise.all(all);
      // The login takes the first free place (read0's, or the one after it): before every read
      // still waiting, which keep their own order.
      assert.ok(order.indexOf("login") <= 1, `round ${round}: ${order.join(", ")}`);
      assert.deepEqual(
        order.filter((name) => name !== "login"),
        ["read0", "read1", "read2", "read3", "read4", "read5"],
      );
    }
  });

  it("urgent requests keep their own order among themselves", async function () {
    const limiter = new RateLimiter("test", [new SlidingWindow(1, 5)], 60_000);
    const order: string[] = [];
    const take = async (name: string, urgent: boolean): Promise<void> => {
      const release = await limiter.acquire(never, urgent);
      order.push(name);
      release();
    };
    await Promise.all([
      take("read0", false),
      take("read1", false),
      take("login0", true),
      take("read2", false),
      take("login1", true),
    ]);
    assert.deepEqual(
      order.filter((name) => name !== "read0"),
      ["login0", "login1", "read1", "read2"],
    );
  });

  it("an urgent request is not refused for the ordinary queue's length", async function () {
    // Ten places a minute, all taken, and ten more waiting: another ordinary request would wait
    // two minutes and is refused; the urgent one waits for one place only, and is accepted.
    const controller = new AbortController();
    const limiter = new RateLimiter("test", [new SlidingWindow(10, 60_000)], 90_000);
    for (let i = 0; i < 10; i++) (await limiter.acquire(controller.signal))();
    const outcome = (pending: Promise<unknown>): Promise<string> =>
      pending.then(
        () => "granted",
        (e: BrokerError) => e.code,
      );
    const queued = Array.from({ length: 10 }, () => outcome(limiter.acquire(controller.signal)));
    assert.equal(await outcome(limiter.acquire(controller.signal)), "RATE_LIMITED");
    const urgent = outcome(limiter.acquire(controller.signal, true));
    // Closing ends every request still waiting: the urgent one was queued, not refused.
    controller.abort();
    assert.equal(await urgent, "CLOSED");
    assert.deepEqual(new Set(await Promise.all(queued)), new Set(["CLOSED"]));
  });

  it("a place given back unsent is free at once: nothing counts a request that never went", async function () {
    const limiter = new RateLimiter("test", [new SlidingWindow(1, 60_000)], 1000);
    for (let i = 0; i < 50; i++) {
      const release = await limiter.acquire(never);
      release(true);
    }
    // Sent and answered: the place is now held for the window, so the next one is refused.
    (await limiter.acquire(never))();
    await assert.rejects(limiter.acquire(never), { code: "RATE_LIMITED" });
  });
});

describe("KiteBroker: the login is not queued behind background reads", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  /** A request_token from the fake's login page, as Kite's redirect would carry it. */
  async function requestToken(harness: KiteHarness): Promise<string> {
    const url = `${harness.fake.restUrl}/connect/login?v=3&api_key=${harness.fake.apiKey}`;
    const page = await fetch(url, { redirect: "manual" });
    assert.equal(page.status, 302);
    const token = new URL(page.headers.get("location")!).searchParams.get("request_token");
    assert.ok(token !== null);
    return token;
  }

  /** The requests the fake received from index `from` on, in arrival order. */
  function arrivals(harness: KiteHarness, from: number): string[] {
    return harness.fake.requests.slice(from).map((r) => `${r.method} ${r.path}`);
  }

  it("a live session with 25 reads waiting: the session exchange goes in the next free place", async function () {
    this.timeout(20_000);
    h = await startKite({ rate_limit: { max_wait_ms: 10_000 } }, { apiSecret: "lanesecret" });
    const harness = h;
    const token = await requestToken(harness);
    const from = harness.fake.requests.length;
    const reads = Array.from({ length: 25 }, () => harness.broker.getPositions());
    const session = await harness.broker.login(token, "lanesecret");
    assert.equal(session.session.user_id, "AB1234");
    // Every read succeeds: those that went with the old token (the login replaced it on their
    // way) are refused by Kite, which did nothing with them, and go again with the new one.
    await Promise.all(reads);
    assert.equal(
      harness.broker.sessionExpired,
      false,
      "a refusal of the replaced token ended the new session",
    );
    const seen = arrivals(harness, from);
    const at = seen.indexOf("POST /session/token");
    // Ten places a second: at most the first ten reads (already sent, or taking the free places)
    // go before it; before the fix it was the 26th, after every read.
    assert.ok(at >= 0 && at <= 10, `the session exchange came ${at + 1}th: ${seen.join(", ")}`);
    const positionReads = seen.filter((s) => s === "GET /portfolio/positions").length;
    // Only those sent with the old token (one second's ten places at most) went twice.
    assert.ok(positionReads >= 25 && positionReads <= 35, `${positionReads} position reads`);
  });

  it("with the default limits a login is never refused RATE_LIMITED because reads fill the lane", async function () {
    this.timeout(20_000);
    h = await startKite({}, { apiSecret: "lanesecret" });
    const harness = h;
    for (let round = 0; round < 2; round++) {
      const token = await requestToken(harness);
      // As many reads as the default 2 s of waiting admits: the lane is as full as it gets.
      const reads = Array.from({ length: 20 }, () =>
        harness.broker.getPositions().then(
          () => "ok",
          (e: BrokerError) => e.code,
        ),
      );
      const result = await harness.broker.login(token, "lanesecret").then(
        () => "logged in",
        (e: BrokerError) => `${e.code}: ${e.message}`,
      );
      assert.equal(result, "logged in", `round ${round}`);
      // A read sent with the replaced token goes again and may then find the lane too full:
      // refused RATE_LIMITED (not sent), never AUTH, and the new session stands.
      const outcomes = await Promise.all(reads);
      assert.deepEqual(
        outcomes.filter((o) => o !== "ok" && o !== "RATE_LIMITED"),
        [],
        `round ${round}`,
      );
      assert.equal(harness.broker.sessionExpired, false, `round ${round}`);
      // Let the window empty before the next round.
      await until(() => harness.broker.state === "connected");
      await new Promise((resolve) => setTimeout(resolve, 1200));
    }
    assert.equal(harness.fake.sessions, 2);
  });

  it("reads queued when the session dies are not sent with the dead token, and each ends AUTH once", async function () {
    this.timeout(20_000);
    h = await startKite({ rate_limit: { max_wait_ms: 10_000 } }, { apiSecret: "lanesecret" });
    const harness = h;
    const from = harness.fake.requests.length;
    harness.fake.expireSession();
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, () =>
        harness.broker.getPositions().then(
          () => "ok",
          (e: BrokerError) => e.code,
        ),
      ),
    );
    assert.deepEqual(new Set(outcomes), new Set(["AUTH"]));
    assert.equal(outcomes.length, 30);
    const sent = arrivals(harness, from).filter((s) => s === "GET /portfolio/positions").length;
    // The first ten went at once (one second's places); those queued behind them learn of the
    // expiry before their turn and stay home. Before the fix all 30 reached Kite.
    assert.ok(sent <= 10, `${sent} reads reached Kite with a dead token`);
    assert.equal(harness.broker.sessionExpired, true);
    // The login right after is served at once and revives the session.
    const token = await requestToken(harness);
    await harness.broker.login(token, "lanesecret");
    assert.equal(harness.broker.sessionExpired, false);
    assert.ok((await harness.broker.getPositions()) !== undefined);
  });
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("KiteBroker: the login's session exchange and kept-alive connections", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  it("Kite closing an idle kept-alive connection just as the login goes out does not fail the login", async function () {
    this.timeout(20_000);
    h = await startKite({}, { apiSecret: "lanesecret" });
    const harness = h;
    for (let round = 0; round < 10; round++) {
      const token = await freshRequestToken(harness);
      // A read leaves its connection idle in the broker's pool; the server closes it (its
      // keep-alive timeout) and the exchange is sent before this process has read the close.
      await harness.broker.getPositions();
      harness.fake.closeIdleConnections();
      const result = await harness.broker.login(token, "lanesecret").then(
        () => "logged in",
        (e: BrokerError) => `${e.code}: ${e.message}`,
      );
      assert.equal(result, "logged in", `round ${round}`);
    }
    assert.equal(harness.fake.sessions, 10);
  });

  it("a session exchange Kite never answers ends in an error (the REST timeout), and the next login works", async function () {
    this.timeout(20_000);
    h = await startKite({ timeout_ms: 300 }, { apiSecret: "lanesecret" });
    const harness = h;
    harness.fake.hangNext("POST /session/token");
    const stuck = await harness.broker.login(await freshRequestToken(harness), "lanesecret").then(
      () => "logged in",
      (e: BrokerError) => e.code,
    );
    // An answer the callback page can show, never a wait without end.
    assert.equal(stuck, "NETWORK");
    assert.equal(harness.fake.sessions, 0);
    await harness.broker.login(await freshRequestToken(harness), "lanesecret");
    assert.equal(harness.fake.sessions, 1);
  });
});

/** A request_token from the fake's login page, fetched on a connection of its own (not fetch()'s pool). */
function freshRequestToken(harness: KiteHarness): Promise<string> {
  const url = `${harness.fake.restUrl}/connect/login?v=3&api_key=${harness.fake.apiKey}`;
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        const token = new URL(res.headers.location ?? "http://x/").searchParams.get("request_token");
        if (token === null) reject(new Error(`no request_token: ${res.statusCode}`));
        else resolve(token);
      })
      .on("error", reject);
  });
}
