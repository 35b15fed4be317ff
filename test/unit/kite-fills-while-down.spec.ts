import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import type { OrderEvent } from "../../lib/protocol";
import { EventLog } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import { fakeKiteSettings } from "../fakes/kite-harness";

/**
 * Issue kite10, item 3: open orders that are in Kite's book at the day's first start (placed from
 * Kite's web app, or by a run before the ledger existed) and fill while Node-RED is down are
 * reported after the restart: once, in order, over ten restarts. The ledger decides what was told.
 */
describe("KiteBroker: orders open at the day's first start that fill while down (issue kite10, item 3)", function () {
  let fake: FakeKite;
  let dir: string;
  const running: { broker: KiteBroker; log: EventLog }[] = [];

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-fills-while-down-"));
    // One unit per order per price move: a price move is one partial fill of each resting order.
    fake = await FakeKite.start({ heartbeatMs: 200, maxFillPerQuote: 1 });
    fake.setPrice("INFY", 1500);
  });

  afterEach(async function () {
    for (const { broker, log } of running.splice(0)) {
      log.detach();
      await broker.close();
    }
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const broker = (cacheDir: string | undefined): KiteBroker =>
    new KiteBroker(
      KiteSettings.parse({
        ...fakeKiteSettings(fake),
        ...(cacheDir === undefined ? {} : { cache_dir: cacheDir, instance_id: "cfg" }),
      }),
      { ledgerWaitMs: 200 },
    );

  async function start(): Promise<{ broker: KiteBroker; log: EventLog }> {
    const run = { broker: broker(dir), log: undefined as unknown as EventLog };
    run.log = new EventLog(run.broker);
    running.push(run);
    await run.broker.connect();
    return run;
  }

  async function stop(run: { broker: KiteBroker; log: EventLog }): Promise<void> {
    running.splice(running.indexOf(run), 1);
    run.log.detach();
    await run.broker.close();
  }

  /** A fill of one unit of every resting buy at 1400 (a move through it and back). */
  function fillOneEach(): void {
    fake.setPrice("INFY", 1395);
    fake.setPrice("INFY", 1500);
  }

  it("ten restarts, fills made while down: each reported once after the restart, in order, none again", async function () {
    this.timeout(40_000);
    // Placed before the day's first start, by something other than this broker config.
    const elsewhere = broker(undefined);
    await elsewhere.connect();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const order = await elsewhere.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 5,
        order_type: "LIMIT",
        price: 1400,
        client_order_id: `web${i}`,
      });
      ids.push(order.order_id);
    }
    await elsewhere.close();
    assert.equal(fs.readdirSync(dir).length, 0, "the day's first start is still to come");

    let run = await start();
    assert.equal(run.log.orders.length, 0, "what Kite already had is no news");
    const all: OrderEvent[] = [];
    let filled = 0;
    for (let restart = 0; restart < 10; restart++) {
      await stop(run);
      // Five of the ten downtimes carry a fill of each order; the others nothing.
      const fills = restart % 2 === 0 && filled < 5;
      if (fills) {
        fillOneEach();
        filled++;
      }
      run = await start();
      const log = run.log;
      if (fills) {
        const type = filled === 5 ? "ORDER_FILLED" : "ORDER_PARTIALLY_FILLED";
        for (const id of ids) {
          await log.until(() => log.typesFor(id).length > 0, `restart ${restart}: ${id}'s fill`);
          assert.deepEqual(log.typesFor(id), [type], `restart ${restart}: ${id}`);
          const event = log.orders.find((e) => e.order.order_id === id)!;
          assert.equal(event.order.filled_quantity, filled);
          assert.equal(event.synthesized, true);
        }
      }
      // Give a repeat its chance to show.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(log.orders.length, fills ? ids.length : 0, `restart ${restart}: ${log.orders.length}`);
      all.push(...log.orders);
    }
    // Each order's life told once, in order: four partial fills, then the fill, no step twice.
    for (const id of ids) {
      const mine = all.filter((e) => e.order.order_id === id);
      assert.deepEqual(
        mine.map((e) => e.order.filled_quantity),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        mine.map((e) => e.type),
        [
          "ORDER_PARTIALLY_FILLED",
          "ORDER_PARTIALLY_FILLED",
          "ORDER_PARTIALLY_FILLED",
          "ORDER_PARTIALLY_FILLED",
          "ORDER_FILLED",
        ],
      );
    }
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.seq > all[i - 1]!.seq, "seqs only go up");
  });

  it("a fill while running is reported live, and not again after a restart", async function () {
    this.timeout(20_000);
    const elsewhere = broker(undefined);
    await elsewhere.connect();
    const order = await elsewhere.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 2,
      order_type: "LIMIT",
      price: 1400,
      client_order_id: "web9",
    });
    await elsewhere.close();
    let run = await start();
    fillOneEach();
    await run.log.until(() => run.log.typesFor(order.order_id).length > 0, "the live partial fill");
    await stop(run);
    run = await start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(run.log.orders.length, 0);
    await stop(run);
    fillOneEach();
    run = await start();
    await run.log.until(() => run.log.typesFor(order.order_id).length > 0, "the fill while down");
    assert.deepEqual(run.log.typesFor(order.order_id), ["ORDER_FILLED"]);
  });
});
