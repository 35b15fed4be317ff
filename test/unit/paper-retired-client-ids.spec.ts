// A client_order_id the caller gave stays an idempotency key for its trading day after its order
// leaves retention (PaperAccount.retiredClientIds). Past that day nothing reads it (a snapshot drops
// it too), so a broker running for days must not keep every earlier day's ids in memory.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { BrokerError } from "../../lib/protocol/errors";
import { PaperAccount } from "../../lib/paper/account";
import type { OrderState } from "../../lib/paper/account-state";
import { ManualClock } from "../../lib/paper/clock";

const DAY = 24 * 60 * 60 * 1000;
/** 09:30 IST on Monday 2026-01-05. */
const MONDAY = Date.UTC(2026, 0, 5, 4, 0);

function filledOrder(n: number, placedAt: string): OrderState {
  const id = `P${String(n).padStart(9, "0")}`;
  return {
    order_id: id,
    client_order_id: `given${n}`,
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 1,
    order_type: "MARKET",
    product: "MIS",
    validity: "DAY",
    status: "FILLED",
    filled_quantity: 1,
    average_price: 100,
    placed_at: placedAt,
    timestamp: placedAt,
    reserved: 0,
    filled_value: 10_000,
    client_id_given: true,
  };
}

describe("PaperAccount: retired client_order_ids of earlier days leave memory", function () {
  it("holds one day's retired ids, not every day's, over 20 days of 2,000 orders", function () {
    const retention = 10;
    const account = new PaperAccount(1e12, retention);
    let n = 0;
    for (let day = 0; day < 20; day++) {
      const placedAt = new Date(MONDAY + day * DAY).toISOString();
      for (let i = 0; i < 2000; i++) {
        const order = filledOrder(++n, placedAt);
        account.add(order);
        account.retire(undefined, order);
      }
      // Every order of the day but the last `retention` has left retention; earlier days are gone.
      assert.equal(account.retiredClientIds.size, 2000 - retention, `after day ${day + 1}`);
      assert.equal(account.orders.size, retention);
    }
  });

  it("an order placed on an earlier day and retired today is kept until a later day's id comes", function () {
    const account = new PaperAccount(1e12, 1);
    const monday = new Date(MONDAY).toISOString();
    const tuesday = new Date(MONDAY + DAY).toISOString();
    const old = filledOrder(1, monday);
    const fresh = [filledOrder(2, tuesday), filledOrder(3, tuesday), filledOrder(4, tuesday)];
    account.add(old);
    for (const order of fresh) account.add(order);
    account.retire(undefined, old);
    account.retire(undefined, fresh[0]!);
    assert.deepEqual(
      account.retiredClientIds.get("given1"),
      ["P000000001", "2026-01-05"],
      "Monday's id, retired on Tuesday",
    );
    // Asked on Monday it is refused; asked on Tuesday it is Monday's business no more.
    assert.equal(account.lookupClientId("given1", MONDAY), "P000000001");
    account.retire(undefined, fresh[1]!);
    // given2 (Tuesday) left retention after given1 (Monday): Monday's entry goes, Tuesday's stays.
    assert.equal(account.retiredClientIds.has("given1"), false);
    assert.equal(account.lookupClientId("given1", MONDAY + DAY), undefined);
    assert.equal(account.lookupClientId("given2", MONDAY + DAY), "P000000002");
    assert.equal(account.retiredClientIds.size, 1);
  });
});

describe("PaperBroker: a retired client_order_id is still refused for the rest of its day", function () {
  it("after earlier days' ids were let go", async function () {
    const clock = new ManualClock(MONDAY);
    const broker = new PaperBroker(
      { volatility: 0, spread_bps: 0, slippage_bps: 0, retention: 10, starting_cash: 1e9 },
      { clock },
    );
    await broker.connect();
    try {
      broker.setPrice("INFY", 100);
      for (let day = 0; day < 3; day++) {
        if (day > 0) clock.advance(DAY);
        for (let i = 0; i < 50; i++) {
          await broker.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 1,
            client_order_id: `d${day}n${i}`,
          });
        }
        // The day's first orders left retention; placing them again places nothing.
        for (let i = 0; i < 40; i++) {
          await assert.rejects(
            broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `d${day}n${i}` }),
            (error: unknown) => error instanceof BrokerError && error.code === "DUPLICATE_ORDER",
            `d${day}n${i}`,
          );
        }
      }
      assert.equal((await broker.getPositions())[0]?.quantity, 150, "one fill per id");
    } finally {
      await broker.close();
    }
  });
});
