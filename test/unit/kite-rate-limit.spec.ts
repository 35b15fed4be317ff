import assert from "node:assert/strict";
import fc from "fast-check";
import { SlidingWindow } from "../../lib/kite/rate-limiter";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/** The most requests inside any window of `ms` starting at a request. */
function busiest(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j += 1;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe("SlidingWindow", function () {
  it("never lets more than its limit into any window, whatever the arrival pattern", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 50, max: 2000 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 200 }),
        (limit, windowMs, gaps) => {
          const window = new SlidingWindow(limit, windowMs);
          const sent: number[] = [];
          let now = 0;
          for (const gap of gaps) {
            now += gap;
            // Each request goes as early as the window allows.
            const at = window.earliest(now);
            assert.ok(at >= now);
            window.record(at);
            sent.push(at);
            now = at;
          }
          assert.ok(busiest(sent, windowMs) <= limit);
        },
      ),
    );
  });

  it("never lets more than its limit arrive in any server window, however the network delays each request", function () {
    // The server counts arrivals; a request arrives somewhere between our send and its answer. A
    // window over send times alone fails this as soon as one batch is delayed and the next is not.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 100, max: 1000 }),
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 200 }),
            toServer: fc.integer({ min: 0, max: 800 }),
            back: fc.integer({ min: 0, max: 800 }),
          }),
          { minLength: 1, maxLength: 120 },
        ),
        (limit, windowMs, requests) => {
          const window = new SlidingWindow(limit, windowMs);
          const answers: number[] = []; // answer times of requests in flight
          const arrivals: number[] = [];
          let now = 0;
          const settle = (until: number): void => {
            answers.sort((a, b) => a - b);
            while (answers.length > 0 && answers[0]! <= until) window.finish(answers.shift()!);
          };
          for (const request of requests) {
            now += request.gap;
            for (;;) {
              settle(now);
              const at = window.earliest(now);
              if (at <= now) break;
              // Wake at the estimate or at the next answer, whichever comes first, and look again.
              now = Math.min(at, answers.length > 0 ? Math.min(...answers) : at);
            }
            window.start();
            arrivals.push(now + request.toServer);
            answers.push(now + request.toServer + request.back);
          }
          assert.ok(
            busiest(arrivals, windowMs) <= limit,
            `${busiest(arrivals, windowMs)} arrivals in ${windowMs} ms`,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("estimates a queue's wait: the 11th of 10/s waits for the first to leave the window", function () {
    const window = new SlidingWindow(10, 1000);
    for (let i = 0; i < 10; i++) window.record(i);
    assert.equal(window.earliest(10), 1000);
    assert.equal(window.earliest(10, 9), 1009);
    assert.equal(window.earliest(10, 10), 2000);
  });
});

describe("KiteBroker rate limits against a fake Kite that answers 429 over its own (issue 10, defect 2)", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  it("30 orders at once: never more than 10 POSTs in any sliding second, no 429, all placed", async function () {
    this.timeout(30_000);
    h = await startKite({ rate_limit: { max_wait_ms: 10_000 } }, { rateLimits: { order: 10, other: 10 } });
    h.fake.setPrice("INFY", 1500);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () =>
        h!.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 1000 }),
      ),
    );
    const posts = h.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular");
    assert.equal(h.fake.rateLimited, 0, "the fake answered 429");
    assert.ok(
      busiest(
        posts.map((r) => r.at),
        1000,
      ) <= 10,
      `${busiest(
        posts.map((r) => r.at),
        1000,
      )} POSTs in one second`,
    );
    assert.deepEqual(
      results.filter((r) => r.status === "rejected").map((r) => String(r.reason)),
      [],
    );
    assert.equal(posts.length, 30);
    assert.equal(await h.fake.orderCount(), 30);
  });

  it("other REST calls: 25 reads at once stay at 10 in any sliding second", async function () {
    this.timeout(30_000);
    h = await startKite({ rate_limit: { max_wait_ms: 10_000 } }, { rateLimits: { other: 10 } });
    await Promise.all(Array.from({ length: 25 }, () => h!.broker.getPositions()));
    const reads = h.fake.requests.filter((r) => r.path === "/portfolio/positions");
    assert.equal(reads.length, 25);
    assert.equal(h.fake.rateLimited, 0);
    assert.ok(
      busiest(
        reads.map((r) => r.at),
        1000,
      ) <= 10,
    );
  });

  it("quotes: 1 a second, with margin, for last-price lookups", async function () {
    this.timeout(30_000);
    h = await startKite({ rate_limit: { max_wait_ms: 10_000 } }, { rateLimits: { quote: 1 } });
    h.fake.setPrice("INFY", 1500);
    const gtt = {
      type: "single" as const,
      symbol: "INFY",
      trigger_values: [1400] as [number],
      orders: [{ side: "BUY" as const, quantity: 1, price: 1400 }] as [
        { side: "BUY"; quantity: number; price: number },
      ],
    };
    await Promise.all(Array.from({ length: 3 }, () => h!.broker.placeGtt(gtt)));
    const quotes = h.fake.requests.filter((r) => r.path === "/quote/ltp");
    assert.equal(quotes.length, 3);
    assert.equal(h.fake.rateLimited, 0);
    assert.ok(
      busiest(
        quotes.map((r) => r.at),
        1000,
      ) <= 1,
    );
  });
});
