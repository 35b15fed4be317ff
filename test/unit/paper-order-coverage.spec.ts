import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { visibleQuantity } from "../../lib/paper/order-coverage";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";

const MINUTE = 60_000;
const SETTINGS: PaperSettingsInput = { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 };

describe("PaperBroker: TTL, iceberg, disclosed quantity, amo", function () {
  let opened: PaperBroker[] = [];
  let dir: string | undefined;
  async function open(settings: PaperSettingsInput = {}, clock = new ManualClock(), journalFile?: string) {
    const broker = new PaperBroker(
      { ...SETTINGS, ...settings },
      journalFile === undefined ? { clock } : { clock, journalFile },
    );
    await broker.connect();
    opened.push(broker);
    return { broker, clock, log: new EventLog(broker) };
  }
  afterEach(async function () {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const resting = { symbol: "INFY", side: "BUY", quantity: 10, order_type: "LIMIT", price: 90 } as const;

  describe("TTL validity", function () {
    it("expires validity_ttl minutes after placement, once, with ORDER_EXPIRED", async function () {
      const { broker, clock, log } = await open();
      broker.setPrice("INFY", 100);
      const placed = await broker.placeOrder({ ...resting, validity: "TTL", validity_ttl: 5 });
      assert.equal(placed.status, "OPEN");
      assert.equal(placed.validity_ttl, 5);
      clock.advance(5 * MINUTE - 1);
      assert.equal((await broker.getOrder(placed.order_id)).status, "OPEN");
      clock.advance(1);
      await log.until(() => log.typesFor(placed.order_id).includes("ORDER_EXPIRED"), "expiry");
      const expired = await broker.getOrder(placed.order_id);
      assert.equal(expired.status, "EXPIRED");
      assert.match(expired.status_message ?? "", /TTL: 5 minutes passed/);
      clock.advance(60 * MINUTE);
      await broker.flush();
      assert.deepEqual(log.typesFor(placed.order_id), ["ORDER_PLACED", "ORDER_EXPIRED"]);
      // The expired order holds no cash back: the full amount can be spent again.
      const all = await broker.placeOrder({ ...resting, quantity: 1, price: 100 });
      assert.equal(all.status, "FILLED");
    });

    it("expires each of many orders at its own minute, keeping what filled, with one timer", async function () {
      const { broker, clock, log } = await open({ max_fill_per_quote: 1 });
      broker.setPrice("INFY", 100);
      const ids: { id: string; ttl: number }[] = [];
      for (let i = 0; i < 120; i++) {
        const ttl = 1 + ((i * 37) % 365);
        const order = await broker.placeOrder({ ...resting, validity: "TTL", validity_ttl: ttl });
        ids.push({ id: order.order_id, ttl });
      }
      // One partly filled order: its fill stays, the rest expires.
      const partial = await broker.placeOrder({
        ...resting,
        price: 100,
        validity: "TTL",
        validity_ttl: 2,
      });
      assert.equal(partial.filled_quantity, 1);
      // Above its limit from now on: the rest waits, and expires.
      broker.setPrice("INFY", 100.5);
      const timersBefore = clock.pendingTimers;
      for (let minute = 1; minute <= 366; minute++) {
        clock.advance(MINUTE);
        await broker.flush();
        for (const { id, ttl } of ids) {
          const expired = log.typesFor(id).includes("ORDER_EXPIRED");
          assert.equal(expired, ttl <= minute, `order ${id} (ttl ${ttl}) at minute ${minute}`);
        }
        assert.ok(clock.pendingTimers <= timersBefore, "no timer per order");
      }
      const after = await broker.getOrder(partial.order_id);
      assert.equal(after.status, "EXPIRED");
      assert.equal(after.filled_quantity, 1);
      const expiries = log.orders.filter((e) => e.type === "ORDER_EXPIRED");
      assert.equal(expiries.length, 121, "one expiry per order, none twice");
    });

    it("does not expire an order that filled, was cancelled or was modified to DAY", async function () {
      const { broker, clock, log } = await open();
      broker.setPrice("INFY", 100);
      const filled = await broker.placeOrder({ ...resting, validity: "TTL", validity_ttl: 3 });
      const cancelled = await broker.placeOrder({ ...resting, validity: "TTL", validity_ttl: 3 });
      const daily = await broker.placeOrder({ ...resting, price: 80, validity: "TTL", validity_ttl: 3 });
      await broker.cancelOrder(cancelled.order_id);
      const modified = await broker.modifyOrder(daily.order_id, { validity: "DAY" });
      assert.equal(modified.validity, "DAY");
      assert.equal(modified.validity_ttl, undefined);
      broker.setPrice("INFY", 89);
      await log.until(() => log.typesFor(filled.order_id).includes("ORDER_FILLED"), "fill");
      clock.advance(10 * MINUTE);
      await broker.flush();
      assert.equal(log.orders.filter((e) => e.type === "ORDER_EXPIRED").length, 0);
      assert.equal((await broker.getOrder(daily.order_id)).status, "OPEN");
    });

    it("refuses a modification into TTL, naming the rule", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder(resting);
      await rejectsWithCode(
        broker.modifyOrder(order.order_id, { validity: "TTL" }),
        "VALIDATION",
        /validity: cannot be changed to TTL/,
      );
    });

    for (const [name, closedFor, expiredOnOpen] of [
      ["expires at reopen when its minutes ran out while closed", 6 * MINUTE, true],
      ["keeps its deadline across a restart", 2 * MINUTE, false],
    ] as const) {
      it(name, async function () {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-ttl-"));
        const file = path.join(dir, "account.jsonl");
        const clock = new ManualClock();
        const first = await open({}, clock, file);
        first.broker.setPrice("INFY", 100);
        const placed = await first.broker.placeOrder({ ...resting, validity: "TTL", validity_ttl: 5 });
        await first.broker.close();
        clock.advance(closedFor);
        const second = await open({}, clock, file);
        const early = await second.broker.getOrder(placed.order_id);
        if (expiredOnOpen) {
          await second.log.until(
            () => second.log.typesFor(placed.order_id).includes("ORDER_EXPIRED"),
            "expiry",
          );
        } else {
          assert.equal(early.status, "OPEN");
          clock.advance(3 * MINUTE - 1);
          await second.broker.flush();
          assert.equal((await second.broker.getOrder(placed.order_id)).status, "OPEN");
          clock.advance(1);
          await second.log.until(
            () => second.log.typesFor(placed.order_id).includes("ORDER_EXPIRED"),
            "expiry",
          );
        }
        assert.equal((await second.broker.getOrder(placed.order_id)).status, "EXPIRED");
        assert.deepEqual(second.log.typesFor(placed.order_id), ["ORDER_EXPIRED"]);
      });
    }
  });

  describe("iceberg", function () {
    it("fills one leg per quote under one order_id, the last leg holding the rest", async function () {
      const { broker, log } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "LIMIT",
        price: 100,
        variety: "iceberg",
        iceberg_legs: 3,
        iceberg_quantity: 34,
      });
      assert.equal(order.filled_quantity, 34);
      assert.equal(order.status, "PARTIALLY_FILLED");
      assert.equal(order.variety, "iceberg");
      broker.setPrice("INFY", 100);
      broker.setPrice("INFY", 99);
      await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "the last leg");
      const fills = log.orders
        .filter((e) => e.order.order_id === order.order_id && e.type !== "ORDER_PLACED")
        .map((e) => e.order.filled_quantity);
      assert.deepEqual(fills, [34, 68, 100]);
      const done = await broker.getOrder(order.order_id);
      assert.equal(done.filled_quantity, 100);
      assert.equal(done.iceberg_legs, 3);
      assert.equal(done.iceberg_quantity, 34);
      const [position] = await broker.getPositions();
      assert.equal(position?.quantity, 100);
    });

    it("never shows more than one leg, for every split (property over quantities and legs)", function () {
      for (let quantity = 2; quantity <= 300; quantity += 7) {
        for (let legs = 2; legs <= Math.min(50, quantity); legs += 3) {
          const leg = Math.ceil(quantity / legs);
          if ((legs - 1) * leg >= quantity) continue;
          let filled = 0;
          let steps = 0;
          while (filled < quantity) {
            const visible = visibleQuantity({
              quantity,
              filled_quantity: filled,
              variety: "iceberg",
              iceberg_quantity: leg,
            });
            assert.ok(visible > 0 && visible <= leg, `${quantity}/${legs}: ${visible} visible at ${filled}`);
            filled += visible;
            steps += 1;
          }
          assert.equal(filled, quantity);
          assert.equal(steps, legs, `${quantity} in ${legs} legs of ${leg}`);
        }
      }
      // A leg partly filled shows only its own rest.
      assert.equal(
        visibleQuantity({ quantity: 100, filled_quantity: 30, variety: "iceberg", iceberg_quantity: 25 }),
        20,
      );
      assert.equal(visibleQuantity({ quantity: 100, filled_quantity: 30 }), 70);
    });

    it("cancels the legs not yet filled with the order", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({
        ...resting,
        quantity: 40,
        price: 100,
        variety: "iceberg",
        iceberg_legs: 4,
        iceberg_quantity: 10,
      });
      assert.equal(order.filled_quantity, 10);
      const cancelled = await broker.cancelOrder(order.order_id);
      assert.equal(cancelled.status, "CANCELLED");
      assert.equal(cancelled.filled_quantity, 10);
    });

    it("refuses a quantity change the legs no longer cover", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({
        ...resting,
        quantity: 40,
        variety: "iceberg",
        iceberg_legs: 4,
        iceberg_quantity: 10,
      });
      await rejectsWithCode(
        broker.modifyOrder(order.order_id, { quantity: 50 }),
        "VALIDATION",
        /iceberg_quantity: must cover quantity/,
      );
      assert.equal((await broker.getOrder(order.order_id)).quantity, 40);
    });
  });

  describe("disclosed quantity and amo", function () {
    it("fills the whole order at once: the disclosed part only hides it from other traders", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({
        ...resting,
        quantity: 100,
        price: 100,
        disclosed_quantity: 10,
      });
      assert.equal(order.status, "FILLED");
      assert.equal(order.filled_quantity, 100);
      assert.equal(order.disclosed_quantity, 10);
    });

    it("modifies the disclosed quantity, within the exchange's 10 % rule", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({ ...resting, quantity: 100, disclosed_quantity: 10 });
      assert.equal(
        (await broker.modifyOrder(order.order_id, { disclosed_quantity: 50 })).disclosed_quantity,
        50,
      );
      await rejectsWithCode(
        broker.modifyOrder(order.order_id, { quantity: 1000 }),
        "VALIDATION",
        /disclosed_quantity: must be at least 10% of quantity on NSE/,
      );
      assert.equal((await broker.getOrder(order.order_id)).quantity, 100);
    });

    it("takes an amo order as a regular one and reports its variety", async function () {
      const { broker } = await open();
      broker.setPrice("INFY", 100);
      const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, variety: "amo" });
      assert.equal(order.status, "FILLED");
      assert.equal(order.variety, "amo");
      assert.equal((await broker.getOrderbook())[0]?.variety, "amo");
    });
  });
});
