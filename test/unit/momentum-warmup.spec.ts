import assert from "node:assert/strict";
import { MomentumStrategy } from "../../lib/strategy/momentum";
import { WARMUP_SPAN_MS, offersCandles, warmUpFromCandles } from "../../lib/strategy/momentum-warmup";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/** Issue 10 item 5: the momentum lookback warmed from Kite's minute candles (the fake Kite). */
describe("momentum warm-up from candles", function () {
  this.timeout(20_000);
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  const NOW = Date.parse("2026-12-04T06:00:00Z");

  function strategy(lookback = 3): MomentumStrategy {
    return new MomentumStrategy({ lookback, threshold: 0.01, quantity: 1, max_position: 5, cooldown: 0 });
  }

  it("fills the lookback from the last lookback + 1 closes without a signal; the first live quote signals", async function () {
    h = await startKite();
    const s = strategy(3);
    assert.equal(await warmUpFromCandles(s, h.broker, "NSE", "INFY", NOW), 4);
    const request = h.fake.requests.find((r) => r.path.startsWith("/instruments/historical/"))!;
    assert.equal(request.path, `/instruments/historical/${h.fake.tokenOf("INFY")}/minute`);
    // The fake's candles close 100, 101, … oldest first: the last four closes went in.
    const candles = await h.broker.getCandles({
      symbol: "INFY",
      interval: "minute",
      from: new Date(NOW - WARMUP_SPAN_MS).toISOString(),
      to: new Date(NOW).toISOString(),
    });
    const last = candles.at(-1)!.close;
    assert.ok(candles.length > 4);
    // Without warm-up the strategy needs lookback quotes first; warmed, one rising quote signals.
    const cold = strategy(3);
    assert.equal(cold.onQuote({ symbol: "INFY", last_price: last * 1.05 }), undefined);
    const signal = s.onQuote({ symbol: "INFY", last_price: last * 1.05 });
    assert.ok(signal !== undefined, "a warmed strategy signals on its first live quote");
    assert.equal(signal.order.side, "BUY");
    // roc is measured from the close lookback candles back: last - 2 (the window slid by one).
    assert.ok(Math.abs(signal.roc - (last * 1.05 - (last - 2)) / (last - 2)) < 1e-12);
  });

  it("never signals while warming, whatever the candles say, and keeps positions at zero", async function () {
    h = await startKite();
    for (let i = 0; i < 6; i++) {
      const s = strategy(1 + (i % 5));
      const held = await warmUpFromCandles(s, h.broker, "NSE", i % 2 ? "INFY" : "TCS", NOW - i * 60_000);
      assert.equal(held, s.settings.lookback + 1);
      assert.equal(s.position("INFY"), 0);
      assert.equal(s.position("TCS"), 0);
    }
  });

  it("keeps live prices already seen after the candles; a longer history never grows the window", function () {
    const s = strategy(3);
    assert.equal(s.onQuote({ symbol: "INFY", last_price: 200 }), undefined);
    // 200 came live, so it stays newest: the window is the last three candles, then 200.
    assert.equal(s.warmUp("NSE", "INFY", [95, 96, 97, 98, 99, 100]), 4);
    const signal = s.onQuote({ symbol: "INFY", last_price: 210 });
    assert.ok(signal !== undefined);
    // Window before this quote: 99, 100, 200; the quote pushed out 98 → then = 99.
    assert.ok(Math.abs(signal.roc - (210 - 99) / 99) < 1e-12);
    // Bad prices in the history are dropped, not fed.
    const t = strategy(3);
    assert.equal(t.warmUp("NSE", "TCS", [Number.NaN, -1, 0, 100]), 1);
  });

  it("fails with the broker's error for an unknown symbol, and leaves the strategy cold", async function () {
    h = await startKite();
    const s = strategy(3);
    await assert.rejects(
      warmUpFromCandles(s, h.broker, "NSE", "NOSUCH", NOW),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "VALIDATION");
        assert.match(error.message, /symbol: NSE:NOSUCH/);
        return true;
      },
    );
    assert.equal(s.onQuote({ symbol: "NOSUCH", last_price: 100 }), undefined);
  });

  it("tells brokers with candles from those without", async function () {
    h = await startKite(undefined, undefined, false);
    assert.equal(offersCandles(h.broker), true);
    assert.equal(offersCandles({ getOrderbook: () => [] }), false);
  });
});
