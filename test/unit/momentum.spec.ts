import assert from "node:assert/strict";
import type { OrderSnapshot, Position } from "../../lib/protocol";
import { OrderRequest } from "../../lib/protocol/orders";
import type { MomentumSettingsInput, MomentumSignal } from "../../lib/strategy/momentum";
import { MomentumSettings, MomentumStrategy, UNSEEN_SIGNAL_TTL_MS } from "../../lib/strategy/momentum";

function strategy(settings: Partial<MomentumSettingsInput> = {}): MomentumStrategy {
  return new MomentumStrategy({
    lookback: 3,
    threshold: 0.01,
    quantity: 2,
    max_position: 5,
    cooldown: 0,
    ...settings,
  });
}

/** Feeds prices for one symbol; returns the signals, one entry per price (undefined = none). */
function feed(s: MomentumStrategy, prices: number[], symbol = "INFY"): (MomentumSignal | undefined)[] {
  return prices.map((last_price) => s.onQuote({ symbol, last_price }));
}

function sides(signals: (MomentumSignal | undefined)[]): string[] {
  return signals.map((signal) =>
    signal === undefined ? "-" : `${signal.order.side}${signal.order.quantity}`,
  );
}

describe("MomentumStrategy", function () {
  describe("settings", function () {
    it("has defaults a first flow can run with", function () {
      assert.deepEqual(MomentumSettings.parse({}), {
        lookback: 10,
        threshold: 0.002,
        quantity: 1,
        max_position: 10,
        allow_short: false,
        product: "MIS",
      });
      assert.equal(new MomentumStrategy({}).cooldown, 10, "cooldown defaults to the lookback");
    });

    it("refuses bad settings naming field and rule", function () {
      assert.throws(() => new MomentumStrategy({ lookback: 0 }), /lookback: must be at least 1/);
      assert.throws(() => new MomentumStrategy({ threshold: -1 }), /threshold: must be greater than 0/);
      assert.throws(() => new MomentumStrategy({ quantity: 1.5 }), /quantity: must be a whole number/);
      assert.throws(() => new MomentumStrategy({ cooldown: -1 }), /cooldown: must be at least 0/);
      assert.throws(
        () => new MomentumStrategy({ product: "X" as "MIS" }),
        /product: must be one of CNC, MIS, NRML/,
      );
    });
  });

  it("waits for lookback + 1 prices before it can signal", function () {
    assert.deepEqual(sides(feed(strategy(), [100, 101, 102, 110])), ["-", "-", "-", "BUY2"]);
  });

  it("computes ROC against the price lookback quotes ago", function () {
    const [, , , signal] = feed(strategy(), [100, 100, 100, 102]);
    assert.ok(signal);
    assert.equal(signal.roc, 0.02);
    assert.equal(signal.price, 102);
    assert.equal(signal.lookback, 3);
    assert.equal(signal.position_after, 2);
  });

  it("makes a MARKET order request that passes OrderRequest validation", function () {
    const [, , , signal] = feed(strategy({ product: "CNC" }), [100, 100, 100, 105]);
    assert.ok(signal);
    const { client_order_id: clientOrderId, ...order } = signal.order;
    assert.match(clientOrderId, /^[A-Za-z0-9]{1,20}$/);
    assert.deepEqual(order, {
      symbol: "INFY",
      exchange: "NSE",
      side: "BUY",
      quantity: 2,
      order_type: "MARKET",
      product: "CNC",
      tag: "momentum",
    });
    assert.ok(OrderRequest.safeParse(signal.order).success);
  });

  it("keeps the quote's exchange", function () {
    const s = strategy();
    let last: MomentumSignal | undefined;
    for (const p of [100, 100, 100, 105]) last = s.onQuote({ symbol: "TCS", exchange: "BSE", last_price: p });
    assert.equal(last?.order.exchange, "BSE");
    assert.equal(s.position("TCS", "BSE"), 2);
    assert.equal(s.position("TCS"), 0, "NSE:TCS is another instrument");
  });

  it("stays inside the threshold band", function () {
    assert.deepEqual(sides(feed(strategy(), [100, 100, 100, 100.99, 100.5, 99.5])), [
      "-",
      "-",
      "-",
      "-",
      "-",
      "-",
    ]);
  });

  it("caps buys at max_position", function () {
    const s = strategy({ quantity: 2, max_position: 5 });
    assert.deepEqual(sides(feed(s, [100, 100, 100, 110, 120, 130, 140])), [
      "-",
      "-",
      "-",
      "BUY2",
      "BUY2",
      "BUY1",
      "-",
    ]);
    assert.equal(s.position("INFY"), 5);
  });

  it("sells a long position down but not below zero without allow_short", function () {
    const s = strategy({ quantity: 2 });
    feed(s, [100, 100, 100, 110]);
    assert.equal(s.position("INFY"), 2);
    assert.deepEqual(sides(feed(s, [90, 80, 70])), ["SELL2", "-", "-"]);
    assert.equal(s.position("INFY"), 0);
  });

  it("caps a sell at the long position", function () {
    const s = strategy({ quantity: 3, max_position: 4 });
    feed(s, [100, 100, 100, 110, 120]);
    assert.equal(s.position("INFY"), 4);
    assert.deepEqual(sides(feed(s, [90, 80])), ["SELL3", "SELL1"]);
    assert.equal(s.position("INFY"), 0);
  });

  it("goes short when allowed, down to -max_position", function () {
    const s = strategy({ quantity: 2, max_position: 3, allow_short: true });
    assert.deepEqual(sides(feed(s, [100, 100, 100, 90, 80, 70])), ["-", "-", "-", "SELL2", "SELL1", "-"]);
    assert.equal(s.position("INFY"), -3);
    const [signal] = feed(s, [200]);
    assert.equal(signal?.order.side, "BUY");
    assert.equal(signal?.position_after, -1);
  });

  it("waits cooldown quotes after a signal (default: lookback)", function () {
    const s = new MomentumStrategy({ lookback: 2, threshold: 0.01, quantity: 1, max_position: 10 });
    assert.deepEqual(sides(feed(s, [100, 100, 110, 120, 130, 140, 150])), [
      "-",
      "-",
      "BUY1",
      "-",
      "-",
      "BUY1",
      "-",
    ]);
    const fast = strategy({ cooldown: 1, quantity: 1 });
    assert.deepEqual(sides(feed(fast, [100, 100, 100, 110, 120, 130])), ["-", "-", "-", "BUY1", "-", "BUY1"]);
  });

  it("keeps symbols apart", function () {
    const s = strategy();
    feed(s, [100, 100, 100], "INFY");
    assert.deepEqual(sides(feed(s, [200], "TCS")), ["-"]);
    assert.deepEqual(sides(feed(s, [110], "INFY")), ["BUY2"]);
  });

  it("forgets everything on reset", function () {
    const s = strategy();
    feed(s, [100, 100, 100, 110]);
    s.reset();
    assert.equal(s.position("INFY"), 0);
    assert.deepEqual(sides(feed(s, [120, 130, 140])), ["-", "-", "-"], "the window starts over");
  });

  it("refuses a quote without a usable price", function () {
    const s = strategy();
    assert.throws(() => s.onQuote({ symbol: "INFY" }), /invalid quote: last_price: is required/);
    assert.throws(() => s.onQuote({ symbol: "INFY", last_price: 0 }), /last_price: must be greater than 0/);
    assert.throws(() => s.onQuote({ symbol: "INFY", last_price: "1" }), /last_price: must be a number/);
    assert.throws(() => s.onQuote({ last_price: 1 }), /symbol: is required/);
    assert.throws(() => s.onQuote(42), /invalid quote: payload: /);
  });
});

describe("MomentumStrategy: positions from the account", function () {
  const T = "2026-01-05T04:30:00.000Z";
  function position(symbol: string, quantity: number, product: "MIS" | "CNC" = "MIS"): Position {
    return {
      symbol,
      exchange: "NSE",
      product,
      quantity,
      average_price: 100,
      last_price: 100,
      realized_pnl: 0,
      unrealized_pnl: 0,
    };
  }
  function snapshot(
    signal: MomentumSignal,
    status: OrderSnapshot["status"],
    filled: number,
    id = "P1",
  ): OrderSnapshot {
    return {
      order_id: id,
      client_order_id: signal.order.client_order_id,
      symbol: signal.order.symbol,
      exchange: "NSE",
      side: signal.order.side,
      quantity: signal.order.quantity,
      order_type: "MARKET",
      product: "MIS",
      validity: "DAY",
      tag: "momentum",
      status,
      filled_quantity: filled,
      average_price: filled > 0 ? 100 : 0,
      placed_at: T,
      timestamp: T,
    };
  }
  function accountStrategy(now: () => number = Date.now): MomentumStrategy {
    return new MomentumStrategy(
      { lookback: 3, threshold: 0.01, quantity: 2, max_position: 5, cooldown: 0, allow_short: true },
      { fromAccount: true, now },
    );
  }

  it("sends nothing until it knows the account's positions", function () {
    const s = accountStrategy();
    assert.deepEqual(sides(feed(s, [100, 100, 100, 105, 110])), ["-", "-", "-", "-", "-"]);
    s.seed([], []);
    assert.deepEqual(sides(feed(s, [115])), ["BUY2"]);
  });

  it("starts from the account's position of its product, not zero", function () {
    const s = accountStrategy();
    s.seed([position("INFY", 4), position("INFY", 100, "CNC"), position("TCS", -5)], []);
    assert.equal(s.position("INFY"), 4, "the CNC holding is another product");
    assert.deepEqual(sides(feed(s, [100, 100, 100, 105, 110, 120])), ["-", "-", "-", "BUY1", "-", "-"]);
    assert.deepEqual(sides(feed(s, [100, 100, 100, 90], "TCS")), ["-", "-", "-", "-"], "already -5");
  });

  it("counts its orders on the way, then their fills once, however often an event repeats", function () {
    const s = accountStrategy();
    s.seed([], []);
    const [, , , first] = feed(s, [100, 100, 100, 105]);
    assert.ok(first);
    assert.equal(s.position("INFY"), 2, "in flight counts");
    const [second] = feed(s, [110]);
    assert.ok(second);
    assert.equal(s.position("INFY"), 4);
    s.onOrder(snapshot(first, "OPEN", 0, "P1"));
    s.onOrder(snapshot(first, "FILLED", 2, "P1"));
    s.onOrder(snapshot(first, "FILLED", 2, "P1"));
    s.onOrder(snapshot(second, "PARTIALLY_FILLED", 1, "P2"));
    s.onOrder(snapshot(second, "PARTIALLY_FILLED", 1, "P2"));
    assert.equal(s.position("INFY"), 4);
    s.onOrder(snapshot(second, "CANCELLED", 1, "P2"));
    assert.equal(s.position("INFY"), 3, "the cancelled rest never comes");
    assert.deepEqual(sides(feed(s, [120, 130])), ["BUY2", "-"]);
  });

  it("stops counting a signal the broker never reported (refused before it left)", function () {
    let now = 0;
    const s = accountStrategy(() => now);
    s.seed([], []);
    feed(s, [100, 100, 100, 105, 110, 120]);
    assert.equal(s.position("INFY"), 5);
    now += UNSEEN_SIGNAL_TTL_MS + 1;
    assert.equal(s.position("INFY"), 0);
  });

  it("counts fills of other flows' orders in the same symbol and product (whole-account scope)", function () {
    const s = accountStrategy();
    s.seed([], []);
    const manual = snapshot(
      { order: { symbol: "INFY", side: "BUY", quantity: 5, client_order_id: "manual1" } } as MomentumSignal,
      "FILLED",
      5,
      "P9",
    );
    s.onOrder(manual);
    assert.equal(s.position("INFY"), 5);
    assert.deepEqual(sides(feed(s, [100, 100, 100, 105])), ["-", "-", "-", "-"]);
  });
});
