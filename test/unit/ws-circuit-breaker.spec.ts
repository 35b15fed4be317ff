import assert from "node:assert/strict";
import { BrokerError } from "../../lib/protocol/errors";
import { CircuitBreaker } from "../../lib/ws/circuit-breaker";
import type { CircuitState } from "../../lib/ws/circuit-breaker";

function setup(failureThreshold = 3, coolDownMs = 1000) {
  let now = 0;
  const changes: CircuitState[] = [];
  const breaker = new CircuitBreaker({
    failureThreshold,
    coolDownMs,
    now: () => now,
    onStateChange: (state) => changes.push(state),
  });
  return {
    breaker,
    changes,
    advance: (ms: number) => {
      now += ms;
    },
    trip: () => {
      for (let i = 0; i < failureThreshold; i++) breaker.failure();
    },
  };
}

describe("CircuitBreaker", function () {
  it("stays closed below the failure threshold, and a success resets the count", function () {
    const { breaker, changes } = setup(3);
    breaker.failure();
    breaker.failure();
    breaker.success();
    breaker.failure();
    breaker.failure();
    assert.equal(breaker.state, "closed");
    assert.equal(breaker.failures, 2);
    assert.equal(breaker.tryAcquire(), true);
    assert.deepEqual(changes, []);
  });

  it("opens after failureThreshold consecutive failures and fails fast, naming the wait", function () {
    const { breaker, changes, trip, advance } = setup(3, 1000);
    trip();
    assert.equal(breaker.state, "open");
    assert.deepEqual(changes, ["open"]);
    assert.equal(breaker.tryAcquire(), false);
    advance(400);
    assert.throws(
      () => breaker.check(),
      (error: unknown) => {
        assert.ok(error instanceof BrokerError);
        assert.equal(error.code, "CIRCUIT_OPEN");
        assert.match(error.message, /after 3 consecutive failures; retry in 600 ms/);
        assert.equal(error.retryAfterMs, 600);
        return true;
      },
    );
    assert.equal(breaker.retryInMs, 600);
  });

  it("ignores late reports while open: the cool-down stands", function () {
    const { breaker, trip, advance } = setup(2, 1000);
    trip();
    advance(500);
    breaker.success();
    breaker.failure();
    assert.equal(breaker.state, "open");
    assert.equal(breaker.retryInMs, 500);
  });

  it("half-opens when the cool-down has passed and admits exactly one trial", function () {
    const { breaker, changes, trip, advance } = setup(2, 1000);
    trip();
    advance(999);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.state, "half-open");
    assert.deepEqual(changes, ["open", "half-open"]);
    assert.equal(breaker.tryAcquire(), true, "the trial");
    assert.equal(breaker.tryAcquire(), false, "a second caller while the trial runs");
    assert.throws(() => breaker.check(), /half-open: a trial request is in flight/);
    assert.equal(breaker.retryInMs, 0);
  });

  it("closes when the trial succeeds", function () {
    const { breaker, changes, trip, advance } = setup(2, 100);
    trip();
    advance(100);
    breaker.check();
    breaker.success();
    assert.equal(breaker.state, "closed");
    assert.equal(breaker.failures, 0);
    assert.deepEqual(changes, ["open", "half-open", "closed"]);
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), true);
  });

  it("re-opens for a full cool-down when the trial fails", function () {
    const { breaker, changes, trip, advance } = setup(2, 100);
    trip();
    advance(150);
    assert.equal(breaker.tryAcquire(), true);
    advance(30);
    breaker.failure();
    assert.equal(breaker.state, "open");
    assert.equal(breaker.retryInMs, 100);
    advance(99);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.tryAcquire(), true);
    assert.deepEqual(changes, ["open", "half-open", "open", "half-open"]);
  });

  it("does not take a report made before the trial was admitted as the trial's outcome", function () {
    const { breaker, trip, advance } = setup(2, 100);
    trip();
    advance(100);
    assert.equal(breaker.state, "half-open");
    breaker.success();
    assert.equal(breaker.state, "half-open");
    breaker.failure();
    assert.equal(breaker.state, "half-open");
  });

  it("leaves no timer behind: opening and cooling down create no active handles", function () {
    const before = process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 60_000 });
    breaker.failure();
    assert.equal(breaker.state, "open");
    const after = process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    assert.equal(after, before);
  });

  it("rejects bad options with a RangeError naming them", function () {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0, coolDownMs: 1 }), /failureThreshold/);
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1.5, coolDownMs: 1 }), /failureThreshold/);
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1, coolDownMs: -1 }), /coolDownMs/);
  });
});
