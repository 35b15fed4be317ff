import assert from "node:assert/strict";
import { BrokerMetrics, LATENCY_WINDOW, LatencyWindow, exposition } from "../../nodes/shared/metrics";
import { parsePrometheusText, sampleValue } from "../support/prometheus-text";

describe("metrics", function () {
  describe("LatencyWindow", function () {
    it("gives nearest-rank quantiles of what it holds", function () {
      const window = new LatencyWindow(100);
      for (let i = 1; i <= 100; i++) window.observe(i / 1000);
      assert.deepEqual(window.quantiles([0.5, 0.9, 0.99]), [0.05, 0.09, 0.099]);
      assert.equal(window.count, 100);
      assert.ok(Math.abs(window.sum - 5.05) < 1e-9);
    });

    it("keeps only the latest observations, but sums and counts them all", function () {
      const window = new LatencyWindow(4);
      for (const seconds of [9, 9, 9, 9, 1, 2, 3, 4]) window.observe(seconds);
      assert.equal(window.size, 4);
      assert.deepEqual(window.quantiles([0.5, 0.99]), [2, 4]);
      assert.equal(window.count, 8);
      assert.equal(window.sum, 46);
    });

    it("answers NaN when empty", function () {
      assert.ok(new LatencyWindow().quantiles([0.5]).every(Number.isNaN));
    });

    it("is bounded by default", function () {
      const window = new LatencyWindow();
      for (let i = 0; i < LATENCY_WINDOW * 3; i++) window.observe(i);
      assert.equal(window.size, LATENCY_WINDOW);
      assert.equal(window.count, LATENCY_WINDOW * 3);
    });
  });

  describe("exposition", function () {
    it("writes every family for every config node, and Prometheus text that parses", function () {
      const a = new BrokerMetrics("a1", "paper");
      a.placed = 3;
      a.rejected = 1;
      a.latency.observe(0.002);
      const b = new BrokerMetrics("b2", 'gateway "prod"\\eu\nwest');
      b.reconnects = 2;
      a.denied = 4;
      const text = exposition([
        { metrics: a, state: "connected", trading: "HALTED" },
        { metrics: b, state: "reconnecting" },
      ]);
      const families = parsePrometheusText(text);
      assert.deepEqual(
        [...families.keys()],
        [
          "trading_broker_connected",
          "trading_broker_state",
          "trading_broker_orders_placed_total",
          "trading_broker_orders_rejected_total",
          "trading_broker_orders_expired_total",
          "trading_broker_reconnects_total",
          "trading_broker_order_latency_seconds",
          "trading_broker_trading_state",
          "trading_broker_orders_denied_total",
        ],
      );
      assert.equal(families.get("trading_broker_order_latency_seconds")?.type, "summary");
      assert.equal(families.get("trading_broker_reconnects_total")?.type, "counter");

      const name = 'gateway "prod"\\eu\nwest';
      assert.equal(sampleValue(families, "trading_broker_connected", { id: "a1", name: "paper" }), 1);
      assert.equal(sampleValue(families, "trading_broker_connected", { id: "b2", name }), 0);
      assert.equal(sampleValue(families, "trading_broker_state", { id: "b2", state: "reconnecting" }), 1);
      assert.equal(sampleValue(families, "trading_broker_state", { id: "b2", state: "connected" }), 0);
      const states = families.get("trading_broker_state")!.samples.filter((s) => s.labels.id === "a1");
      assert.deepEqual(
        states.filter((s) => s.value === 1).map((s) => s.labels.state),
        ["connected"],
      );
      assert.equal(states.length, 5);
      assert.equal(sampleValue(families, "trading_broker_orders_placed_total", { id: "a1" }), 3);
      assert.equal(sampleValue(families, "trading_broker_orders_rejected_total", { id: "a1" }), 1);
      assert.equal(sampleValue(families, "trading_broker_reconnects_total", { id: "b2" }), 2);
      assert.equal(sampleValue(families, "trading_broker_orders_denied_total", { id: "a1" }), 4);
      assert.equal(sampleValue(families, "trading_broker_trading_state", { id: "a1", state: "HALTED" }), 1);
      assert.equal(sampleValue(families, "trading_broker_trading_state", { id: "a1", state: "ACTIVE" }), 0);
      assert.ok(
        !families.get("trading_broker_trading_state")!.samples.some((s) => s.labels.id === "b2"),
        "no trading state while no broker is up",
      );
      assert.equal(
        sampleValue(families, "trading_broker_order_latency_seconds", { id: "a1", quantile: "0.99" }),
        0.002,
      );
      assert.equal(sampleValue(families, "trading_broker_order_latency_seconds_count", { id: "a1" }), 1);
      assert.ok(
        Number.isNaN(
          sampleValue(families, "trading_broker_order_latency_seconds", { id: "b2", quantile: "0.5" }),
        ),
      );
    });

    it("writes only the headers when no config node is deployed", function () {
      const families = parsePrometheusText(exposition([]));
      assert.equal(families.size, 9);
      assert.ok([...families.values()].every((family) => family.samples.length === 0));
    });
  });

  describe("the test parser", function () {
    const bad: [string, string][] = [
      ["no final newline", "# TYPE a gauge\na 1"],
      ["a sample before its TYPE", "a 1\n"],
      ["a bad value", "# TYPE a gauge\na one\n"],
      ["an unquoted label", "# TYPE a gauge\na{x=1} 1\n"],
      ["a duplicate series", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'],
      ["a summary sample without quantile", "# TYPE a summary\na 1\n"],
    ];
    for (const [what, text] of bad) {
      it(`refuses ${what}`, function () {
        assert.throws(() => parsePrometheusText(text));
      });
    }
  });
});
