// connect()'s start-up reads (order book, profile, GTTs) against a Kite that answers 429 or a
// passing 5xx: a deploy right after another app's burst must still come up, within a bounded
// budget, and a Kite that stays refusing fails connect with the endpoint and the rule named.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { silentLogger } from "../../lib/brokers/logger";
import { mapKiteError } from "../../lib/kite/errors";
import { RETRY_AFTER, retryAfterMs } from "../../lib/kite/retry-after";
import { isTransientRead, startupRead } from "../../lib/kite/startup-read";
import { BrokerError } from "../../lib/protocol/errors";
import { FakeKite } from "../fakes/fake-kite";

const TOO_MANY = {
  status: "error",
  message: "Too many requests",
  data: null,
  error_type: "NetworkException",
};
const GENERAL = {
  status: "error",
  message: "Something went wrong",
  data: null,
  error_type: "GeneralException",
};
const READS = ["/orders", "/user/profile", "/gtt/triggers"] as const;

/** Quick pacing so many rounds stay fast; the budget is what a case past it changes. */
const FAST = { budgetMs: 5000, initialMs: 5, maxMs: 40 };
/**
 * For the many-round cases: our own limiter (10 reads/s, each 429 holding its place for a second)
 * would make ten rounds of thirteen reads last eleven seconds; the cases past the budget and with
 * Retry-After keep Kite's real figure.
 */
const ROOMY = { rate_limit: { requests_per_second: 100 } };

interface Setup {
  fake: FakeKite;
  broker: KiteBroker;
  warnings: string[];
  close(): Promise<void>;
}

async function setup(
  startup: { budgetMs: number; initialMs: number; maxMs: number },
  settings: { rate_limit?: { requests_per_second: number } } = {},
): Promise<Setup> {
  const fake = await FakeKite.start();
  // Built as a variable, so this spec also compiles against a KiteBroker without `startup`.
  const warnings: string[] = [];
  const deps = { log: { ...silentLogger, warn: (m: string) => warnings.push(m) }, startup };
  const broker = new KiteBroker(
    KiteSettings.parse({
      api_key: fake.apiKey,
      access_token: fake.accessToken,
      root: fake.restUrl,
      ticker_url: fake.tickerUrl,
      ...settings,
    }),
    deps,
  );
  return {
    fake,
    broker,
    warnings,
    close: async () => {
      await broker.close();
      await fake.close();
    },
  };
}

const gets = (fake: FakeKite, path: string): number =>
  fake.requests.filter((r) => r.method === "GET" && r.path === path).length;

describe("KiteBroker.connect: start-up reads meeting 429 and passing 5xx", function () {
  this.timeout(30_000);
  let s: Setup | undefined;
  afterEach(async function () {
    await s?.close();
    s = undefined;
  });

  for (const n of [1, 3, 10]) {
    it(`the first ${n} start-up reads answered 429: connects, each read reaching Kite once more per 429 (10 rounds)`, async function () {
      for (let round = 0; round < 10; round++) {
        s = await setup(FAST, ROOMY);
        // Spread over the three reads, a different one first each round.
        const faults: Record<string, number> = {};
        for (let i = 0; i < n; i++) {
          const path = READS[(i + round) % READS.length]!;
          faults[path] = (faults[path] ?? 0) + 1;
          s.fake.failNext(`GET ${path}`, 429, TOO_MANY);
        }
        await s.broker.connect();
        assert.equal(s.broker.state, "connected", `round ${round}`);
        for (const path of READS) {
          assert.equal(gets(s.fake, path), (faults[path] ?? 0) + 1, `round ${round}: GET ${path}`);
        }
        assert.equal(s.broker.session?.user_id !== undefined, true, `round ${round}: profile read`);
        // Each retry said why the deploy sits in "connecting", naming its endpoint, never the token.
        assert.equal(s.warnings.length, n, `round ${round}: ${s.warnings.join(" | ")}`);
        for (const w of s.warnings) {
          assert.match(w, /\(GET \/(orders|user\/profile|gtt\/triggers)\).*429/);
          assert.ok(!w.includes(s.fake.accessToken));
        }
        await s.close();
        s = undefined;
      }
    });
  }

  it("429s, Kite's 500, a gateway's 502 page, a 503 and a dropped request on the reads: connects (10 rounds)", async function () {
    for (let round = 0; round < 10; round++) {
      s = await setup(FAST, ROOMY);
      s.fake.failNext("GET /orders", 500, GENERAL);
      s.fake.failNext("GET /orders", 429, TOO_MANY);
      s.fake.failNext("GET /user/profile", 502, "<html><body>502 Bad Gateway</body></html>", "text/html");
      s.fake.dropNextRequest("GET /user/profile");
      s.fake.failNext("GET /gtt/triggers", 503, {
        status: "error",
        message: "Service unavailable",
        data: null,
        error_type: "NetworkException",
      });
      await s.broker.connect();
      assert.equal(s.broker.state, "connected", `round ${round}`);
      assert.deepEqual(
        READS.map((p) => gets(s!.fake, p)),
        [3, 3, 2],
        `round ${round}`,
      );
      await s.close();
      s = undefined;
    }
  });

  it("with the shipped defaults (no startup option, as create-broker builds it): a 429 on each start-up read, connects", async function () {
    const fake = await FakeKite.start();
    const broker = new KiteBroker(
      KiteSettings.parse({
        api_key: fake.apiKey,
        access_token: fake.accessToken,
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
      }),
    );
    s = {
      fake,
      broker,
      warnings: [],
      close: async () => {
        await broker.close();
        await fake.close();
      },
    };
    for (const path of READS) fake.failNext(`GET ${path}`, 429, TOO_MANY);
    await broker.connect();
    assert.equal(broker.state, "connected");
    assert.deepEqual(
      READS.map((p) => gets(fake, p)),
      [2, 2, 2],
    );
  });

  it("a final refusal at start-up is not retried: a 400 InputException on the order book fails connect after one read", async function () {
    s = await setup(FAST);
    s.fake.failNext("GET /orders", 400, {
      status: "error",
      message: "bad input",
      data: null,
      error_type: "InputException",
    });
    await assert.rejects(s.broker.connect(), (error: BrokerError) => error.code === "VALIDATION");
    assert.equal(gets(s.fake, "/orders"), 1);
    assert.equal(s.broker.state, "disconnected");
  });

  it("past the budget: connect fails RATE_LIMITED naming the endpoint and the budget, then connects once Kite calms", async function () {
    s = await setup({ budgetMs: 400, initialMs: 20, maxMs: 60 });
    // More 429s than the budget can wait through (about 10 tries fit in 400 ms at this pacing).
    for (let i = 0; i < 40; i++) s.fake.failNext("GET /gtt/triggers", 429, TOO_MANY);
    const started = performance.now();
    await assert.rejects(s.broker.connect(), (error: BrokerError) => {
      assert.equal(error.code, "RATE_LIMITED");
      assert.match(error.message, /GTT list request \(GET \/gtt\/triggers\)/);
      assert.match(error.message, /at most 400 ms/);
      assert.match(error.message, /429/);
      return true;
    });
    const tries = gets(s.fake, "/gtt/triggers");
    assert.ok(tries > 1 && tries < 40, `tried ${tries} times within the budget`);
    // Bounded: it gave up rather than waiting through all 40 (generous: the machine is shared).
    assert.ok(performance.now() - started < 10_000);
    assert.equal(s.broker.state, "disconnected");
    // The storm passes (the remaining injected 429s used up by hand); a later connect comes up.
    for (let i = tries; i < 40; i++) {
      await fetch(`${s.fake.restUrl}/gtt/triggers`).then((r) => r.text());
    }
    await s.broker.connect();
    assert.equal(s.broker.state, "connected");
  });

  it("close() during the start-up backoff ends connect at once with CLOSED", async function () {
    s = await setup({ budgetMs: 20_000, initialMs: 5000, maxMs: 5000 });
    s.fake.failNext("GET /orders", 429, TOO_MANY);
    const connecting = s.broker.connect();
    while (gets(s.fake, "/orders") < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    await s.broker.close();
    await assert.rejects(connecting, (error: BrokerError) => error.code === "CLOSED");
    assert.equal(gets(s.fake, "/orders"), 1);
  });

  it("a 429 with Retry-After: the read waits what Kite asked (not the short backoff), then connects", async function () {
    const inner = await FakeKite.start();
    // A front on 127.0.0.1 that answers the first order book read 429 with Retry-After: 1.
    let refusedAt: number | undefined;
    let retriedAt: number | undefined;
    const target = new URL(inner.restUrl);
    const front = http.createServer((req, res) => {
      if (req.method === "GET" && req.url?.startsWith("/orders") === true) {
        if (refusedAt === undefined) {
          refusedAt = performance.now();
          res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "1" });
          res.end(JSON.stringify(TOO_MANY));
          return;
        }
        retriedAt ??= performance.now();
      }
      const upstream = http.request(
        { host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: req.headers },
        (reply) => {
          res.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
    const port = (front.address() as AddressInfo).port;
    const deps = { log: silentLogger, startup: FAST };
    const broker = new KiteBroker(
      KiteSettings.parse({
        api_key: inner.apiKey,
        access_token: inner.accessToken,
        root: `http://127.0.0.1:${port}`,
        ticker_url: inner.tickerUrl,
      }),
      deps,
    );
    s = {
      fake: inner,
      broker,
      warnings: [],
      close: async () => {
        await broker.close();
        await inner.close();
        front.closeAllConnections();
        await new Promise<void>((resolve) => front.close(() => resolve()));
      },
    };
    await broker.connect();
    assert.equal(broker.state, "connected");
    assert.ok(refusedAt !== undefined && retriedAt !== undefined, "refused once, then read again");
    // A lower bound only (Kite's word is a minimum): the 5 ms backoff would have come far sooner.
    assert.ok(retriedAt - refusedAt >= 950, `waited ${Math.round(retriedAt - refusedAt)} ms`);
  });

  it("an order placement answered 429 is never sent again (20 placements)", async function () {
    s = await setup(FAST);
    await s.broker.connect();
    s.fake.setPrice("INFY", 1500);
    for (let i = 0; i < 20; i++) {
      s.fake.failNext("POST /orders/regular", 429, TOO_MANY);
      await assert.rejects(
        s.broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 1400,
          client_order_id: `sr${i}`,
        }),
        (error: BrokerError) => error.code === "RATE_LIMITED",
      );
    }
    assert.equal(
      s.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length,
      20,
    );
  });
});

describe("start-up reads: what is tried again, and for how long", function () {
  const options = (budgetMs: number) => ({
    retry: { budgetMs, initialMs: 5, maxMs: 20 },
    deadline: performance.now() + budgetMs,
    signal: new AbortController().signal,
  });

  it("reads Retry-After as seconds or an HTTP date, and nothing else", function () {
    const now = Date.parse("2026-12-05T03:00:00Z");
    assert.equal(retryAfterMs("2", now), 2000);
    assert.equal(retryAfterMs(" 0 ", now), 0);
    assert.equal(retryAfterMs("Sat, 05 Dec 2026 03:00:03 GMT", now), 3000);
    assert.equal(retryAfterMs("Sat, 05 Dec 2026 02:59:00 GMT", now), 0);
    for (const bad of [undefined, "", "soon", "-1", "1.5", ["2"]])
      assert.equal(retryAfterMs(bad, now), undefined);
  });

  it("only 429s, no answer and Kite's 500 count as passing; refusals and bad shapes do not", function () {
    const kite = (error_type: string, message: string): BrokerError =>
      mapKiteError({ status: "error", message, data: null, error_type }, "order book request");
    assert.ok(isTransientRead(kite("NetworkException", "Too many requests")));
    assert.ok(isTransientRead(kite("NetworkException", "Bad Gateway")));
    assert.ok(isTransientRead(kite("GeneralException", "Something went wrong")));
    assert.ok(isTransientRead(new BrokerError("RATE_LIMITED", "our own limiter", { retryAfterMs: 300 })));
    assert.ok(!isTransientRead(kite("NetworkException", "connect ECONNREFUSED 127.0.0.1:9")));
    assert.ok(!isTransientRead(kite("NetworkException", "getaddrinfo ENOTFOUND api.kite.invalid")));
    assert.ok(isTransientRead(kite("NetworkException", "socket hang up")));
    assert.ok(!isTransientRead(kite("TokenException", "expired")));
    assert.ok(!isTransientRead(kite("InputException", "bad")));
    assert.ok(!isTransientRead(kite("PermissionException", "no")));
    assert.ok(!isTransientRead(kite("DataException", "Unknown content type")));
    assert.ok(
      !isTransientRead(new BrokerError("INTERNAL", "bad reply from Kite: the order book is not a list")),
    );
    assert.ok(!isTransientRead(new BrokerError("CLOSED", "closed")));
  });

  it("a Retry-After longer than the budget left fails at once, without waiting it out", async function () {
    let reads = 0;
    const started = performance.now();
    await assert.rejects(
      startupRead(
        "GET /orders",
        "order book request",
        () => {
          reads += 1;
          const body = {
            status: "error",
            message: "Too many requests",
            data: null,
            error_type: "NetworkException",
          };
          Object.defineProperty(body, RETRY_AFTER, { value: 60_000, enumerable: false });
          return Promise.reject(mapKiteError(body, "order book request"));
        },
        options(2000),
      ),
      (error: BrokerError) =>
        error.code === "RATE_LIMITED" &&
        /GET \/orders/.test(error.message) &&
        /at most 2000 ms/.test(error.message),
    );
    assert.equal(reads, 1);
    assert.ok(performance.now() - started < 1500, "did not sleep the 60 s");
  });

  it("our own limiter's refusal (no Kite body) waits the limiter's estimate, then reads again", async function () {
    let reads = 0;
    let firstAt = 0;
    let secondAt = 0;
    const value = await startupRead(
      "GET /gtt/triggers",
      "GTT list request",
      () => {
        reads += 1;
        if (reads === 1) {
          firstAt = performance.now();
          return Promise.reject(
            new BrokerError("RATE_LIMITED", "would wait too long", { retryAfterMs: 150 }),
          );
        }
        secondAt = performance.now();
        return Promise.resolve("ok");
      },
      options(5000),
    );
    assert.equal(value, "ok");
    assert.equal(reads, 2);
    // A lower bound (the estimate, not the 5 ms backoff): never a speed assertion.
    assert.ok(secondAt - firstAt >= 140, `waited ${Math.round(secondAt - firstAt)} ms`);
  });
});
