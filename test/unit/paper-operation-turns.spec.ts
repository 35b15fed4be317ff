// When an operation runs relative to its call, without a journal: never inside the call (a caller
// may note what it asked for after the call returns, and a listener must not see an event first),
// in call order, its events before its answer. The broker skips promise hops on this path
// (#ready() gives one settled promise while connected; a result is returned, not wrapped), so
// these pin what those hops used to guarantee.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { rejectsWithCode } from "../contract/broker-contract";

async function connected(): Promise<{ broker: PaperBroker; events: OrderEvent[] }> {
  const broker = new PaperBroker({ seed: 3, volatility: 0, spread_bps: 0, slippage_bps: 0, retention: 40 });
  await broker.connect();
  broker.setPrice("INFY", 100);
  const events: OrderEvent[] = [];
  broker.on("order", (event) => events.push(event));
  return { broker, events };
}

describe("PaperBroker without a journal: when an operation runs", function () {
  it("runs each call after it returns, in call order, events before answers (many rounds)", async function () {
    const { broker, events } = await connected();
    try {
      for (let round = 0; round < 50; round += 1) {
        const before = events.length;
        const answers: OrderSnapshot[] = [];
        const calls: Promise<void>[] = [];
        // Placements, a resting LIMIT, a quote and a cancel, all in one turn.
        for (let i = 0; i < 7; i += 1) {
          const side = (round + i) % 2 === 0 ? "BUY" : "SELL";
          calls.push(
            broker.placeOrder({ symbol: "INFY", side, quantity: 1 + i }).then((answer) => {
              // Every event of this order was out before its answer.
              const own = events.filter((e) => e.order.order_id === answer.order_id);
              assert.deepEqual(
                own.map((e) => e.type),
                ["ORDER_PLACED", "ORDER_FILLED"],
              );
              answers[i] = answer;
            }),
          );
          assert.equal(events.length, before, `round ${round}: an event came inside call ${i}`);
        }
        const resting = broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 90,
        });
        // Set in the same turn, but the placements above run after it: they meet this price.
        broker.setPrice("INFY", 100 + (round % 3));
        assert.equal(events.length, before, `round ${round}: an event came inside the calls`);
        await Promise.all(calls);
        const limit = await resting;
        assert.equal(limit.status, "OPEN");
        const cancelled = await broker.cancelOrder(limit.order_id);
        assert.equal(cancelled.status, "CANCELLED");
        // In call order: ids and seqs increase with the calls.
        for (let i = 1; i < answers.length; i += 1) {
          assert.ok(
            answers[i]!.order_id > answers[i - 1]!.order_id,
            `round ${round}: order ${i} out of order`,
          );
        }
        const mine = events.slice(before);
        for (let i = 1; i < mine.length; i += 1) assert.equal(mine[i]!.seq, mine[i - 1]!.seq + 1);
        for (const answer of answers) assert.equal(answer.average_price, 100 + (round % 3));
      }
    } finally {
      await broker.close();
    }
  });

  it("refuses before connect, while closing and after close, and runs again after a reconnect", async function () {
    const broker = new PaperBroker({ seed: 4, volatility: 0, spread_bps: 0, slippage_bps: 0 });
    const order = { symbol: "INFY", side: "BUY", quantity: 1 } as const;
    await rejectsWithCode(broker.placeOrder(order), "NOT_CONNECTED");
    for (let round = 0; round < 20; round += 1) {
      broker.setPrice("INFY", 100);
      // Called while connect() runs: waits for it, then places.
      const connecting = broker.connect();
      const early = broker.placeOrder(order);
      await connecting;
      assert.equal((await early).status, "FILLED");
      assert.equal((await broker.placeOrder(order)).status, "FILLED");
      const closing = broker.close();
      await rejectsWithCode(broker.placeOrder(order), "NOT_CONNECTED");
      await closing;
      await rejectsWithCode(broker.placeOrder(order), "NOT_CONNECTED");
      await rejectsWithCode(broker.cancelOrder("P000000001"), "NOT_CONNECTED");
    }
  });
});
