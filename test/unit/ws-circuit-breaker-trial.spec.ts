import assert from "node:assert/strict";
import { ERROR_CODES } from "../../lib/protocol/errors";
import { CircuitBreaker, linkVerdict } from "../../lib/ws/circuit-breaker";

function tripped(coolDownMs = 100): { breaker: CircuitBreaker; advance: (ms: number) => void } {
  let now = 0;
  const breaker = new CircuitBreaker({ failureThreshold: 2, coolDownMs, now: () => now });
  breaker.failure(0);
  breaker.failure(0);
  return {
    breaker,
    advance: (ms) => {
      now += ms;
    },
  };
}

describe("CircuitBreaker trial tickets", function () {
  it("takes only the trial's own report as its outcome, over 50 rounds of late reports", function () {
    const { breaker, advance } = tripped();
    for (let round = 0; round < 50; round++) {
      advance(100);
      assert.equal(breaker.state, "half-open");
      const trial = breaker.check();
      assert.ok(trial > 0, "the trial gets a ticket");
      // Requests admitted while the circuit was closed (ticket 0) answer late, either way.
      breaker.success(0);
      breaker.failure(0);
      breaker.release(0);
      assert.equal(breaker.state, "half-open", `round ${round}: a late report decided the trial`);
      assert.equal(breaker.acquire(), undefined, "the trial is still the only one in flight");
      if (round % 2 === 0) {
        breaker.failure(trial);
        assert.equal(breaker.state, "open");
        // The old trial's ticket, reported again after the circuit half-opens anew, is stale.
        advance(100);
        const next = breaker.check();
        breaker.success(trial);
        assert.equal(breaker.state, "half-open", "a stale ticket closed the circuit");
        breaker.failure(next);
      } else {
        breaker.success(trial);
        assert.equal(breaker.state, "closed");
        breaker.failure(0);
        breaker.failure(0);
      }
      assert.equal(breaker.state, "open");
    }
  });

  it("a trial that ends without asking the link gives its slot back, over 50 rounds", function () {
    const { breaker, advance } = tripped();
    advance(100);
    for (let round = 0; round < 50; round++) {
      const trial = breaker.check();
      assert.throws(() => breaker.check(), /half-open: a trial request is in flight/);
      breaker.release(trial);
      assert.equal(breaker.state, "half-open");
      breaker.release(trial);
      const next = breaker.acquire();
      assert.ok(next !== undefined && next > trial, "the next caller is the new trial");
      breaker.release(trial);
      assert.equal(breaker.acquire(), undefined, "a stale release freed the new trial's slot");
      breaker.release(next);
    }
    const last = breaker.check();
    breaker.success(last);
    assert.equal(breaker.state, "closed");
  });

  it("puts every error code in exactly one verdict, with refusals on the merits healthy", function () {
    const verdicts = Object.fromEntries(ERROR_CODES.map((code) => [code, linkVerdict(code)]));
    for (const code of ["TIMEOUT", "NETWORK", "INTERNAL", "NOT_CONNECTED", "CIRCUIT_OPEN"] as const) {
      assert.equal(verdicts[code], "unhealthy", code);
    }
    for (const code of ["VALIDATION", "INSUFFICIENT_FUNDS", "NOT_FOUND", "RISK", "ORDER_REJECTED"] as const) {
      assert.equal(verdicts[code], "healthy", code);
    }
    for (const code of ["QUEUE_FULL", "EXPIRED", "CLOSED", "RATE_LIMITED"] as const) {
      assert.equal(verdicts[code], "neutral", code);
    }
  });
});
