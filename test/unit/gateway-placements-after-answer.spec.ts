// Issue 11: without an index file, a placement's idempotency hash and index entry are made after
// the turn's answers are written. Until then the placement itself answers for the id: a retry,
// a lookup or a mismatch is told what it would be told once the index holds the id.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { IdempotencyIndex, orderHash } from "../../lib/gateway/idempotency-index";
import { Placements } from "../../lib/gateway/placements";
import { BrokerError } from "../../lib/protocol/errors";
import { parseOrderRequest } from "../../lib/protocol/order-fast-path";

type PlaceRequest = Parameters<Placements["place"]>[0];

function request(clientOrderId: string, quantity = 1): PlaceRequest {
  return parseOrderRequest({
    symbol: "INFY",
    side: "BUY",
    quantity,
    client_order_id: clientOrderId,
  }) as PlaceRequest;
}

const nextImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("Placements in memory: hash and index entry after the answer", function () {
  this.timeout(20_000);
  let broker: PaperBroker;
  let index: IdempotencyIndex;

  beforeEach(async function () {
    broker = new PaperBroker({ seed: 1, volatility: 0, interval_ms: 60_000, starting_cash: 1e12 });
    await broker.connect();
    broker.setPrice("INFY", 100);
    index = await IdempotencyIndex.open();
  });

  afterEach(async function () {
    await index.close();
    await broker.close();
  });

  it("leaves the index to the end of the turn, then holds the id with the same hash as before", async function () {
    const placements = new Placements(broker, index, "default");
    for (let round = 0; round < 50; round++) {
      const order = request(`turn${round}`);
      const placed = await placements.place(order);
      // The answer is out before the index hears of the order (what the change is for).
      assert.equal(index.get("default", order.client_order_id), undefined, `round ${round}`);
      await nextImmediate();
      assert.equal(index.get("default", order.client_order_id)?.orderId, placed.order_id);
      assert.equal(index.get("default", order.client_order_id)?.hash, orderHash(order));
    }
  });

  it("answers retries, lookups and mismatches alike before and after the index has the id (many, at random points)", async function () {
    const placements = new Placements(broker, index, "default");
    const waits: (() => Promise<void>)[] = [
      () => Promise.resolve(undefined).then(() => undefined),
      () => Promise.resolve(),
      nextImmediate,
      () => new Promise((resolve) => setTimeout(resolve, 0)),
    ];
    const orders = 300;
    const firstIds = new Map<string, string>();
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const work: Promise<void>[] = [];
    for (let i = 0; i < orders; i++) {
      const id = `retry${i}`;
      const first = placements.place(request(id));
      work.push(
        (async () => {
          // Some retries are sent while the first is still in flight, others after it answered.
          if (random(2) === 0) await waits[random(waits.length)]!();
          const again = placements.place(request(id));
          const other = placements.place(request(id, 2));
          const placed = await first;
          firstIds.set(id, placed.order_id);
          await waits[random(waits.length)]!();
          const [retried, lookedUp] = await Promise.all([again, placements.byClientOrderId(id)]);
          assert.equal(retried.order_id, placed.order_id, `${id}: the retry made or found another order`);
          assert.equal(lookedUp.order_id, placed.order_id, `${id}: GET_ORDER by client_order_id`);
          await assert.rejects(other, (error: unknown) => {
            assert.ok(error instanceof BrokerError);
            assert.equal(error.code, "IDEMPOTENCY_MISMATCH", `${id}: ${error.message}`);
            return true;
          });
          const late = await placements.place(request(id));
          assert.equal(late.order_id, placed.order_id, `${id}: a later retry`);
          await assert.rejects(placements.place(request(id, 3)), /IDEMPOTENCY_MISMATCH|different parameters/);
        })(),
      );
    }
    await Promise.all(work);
    await nextImmediate();
    const book = await broker.getOrderbook();
    assert.equal(book.length, orders, "exactly one order per client_order_id");
    for (const [id, orderId] of firstIds) {
      assert.equal(index.get("default", id)?.orderId, orderId);
      assert.equal(index.get("default", id)?.hash, orderHash(request(id)));
    }
  });

  it("frees an id the broker refused, and recordPlaced() hands the index what waits (as close does)", async function () {
    let refuse = true;
    const refusing: BrokerInterface = new Proxy(broker, {
      get(target, prop) {
        if (prop === "placeOrder" && refuse) {
          return () => Promise.reject(new BrokerError("VALIDATION", "refused for the test"));
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const placements = new Placements(refusing, index, "default");
    await assert.rejects(placements.place(request("free")), /refused for the test/);
    refuse = false;
    const placed = await placements.place(request("free", 2));
    assert.equal(placed.quantity, 2, "the refused id placed again, with other parameters");
    placements.recordPlaced();
    assert.equal(
      index.get("default", "free")?.orderId,
      placed.order_id,
      "recorded without waiting for the turn",
    );
    assert.equal(index.get("default", "free")?.hash, orderHash(request("free", 2)));
  });
});
