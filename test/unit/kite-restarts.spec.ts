import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { EventLog } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";

/**
 * Node-RED restarting while a Kite order is live: every run is a new KiteBroker (as broker-config
 * makes one per start) over the same user directory. What was reported, and which placements
 * were under way, must come from disk (DESIGN §10): a fill made while Node-RED was down is
 * reported by the next run, once; an order reported before is not reported again.
 */
describe("KiteBroker across restarts: what was reported lives on disk (issue kite8, item 4)", function () {
  let fake: FakeKite;
  let dir: string;
  let broker: KiteBroker | undefined;
  let log: EventLog | undefined;

  /** `quiet`: no OPEN postback (Kite does not promise one), so only the order book tells. */
  async function startFake(quiet = false): Promise<void> {
    fake = await FakeKite.start({ heartbeatMs: 200, ...(quiet ? { skipPostbackStatuses: ["OPEN"] } : {}) });
    fake.setPrice("INFY", 1500);
  }

  beforeEach(function () {
    broker = undefined;
    log = undefined;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-restarts-"));
  });

  afterEach(async function () {
    log?.detach();
    await broker?.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    log?.detach();
    await broker?.close();
    broker = new KiteBroker(
      KiteSettings.parse({
        api_key: fake.apiKey,
        access_token: fake.accessToken,
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        cache_dir: dir,
      }),
    );
    log = new EventLog(broker);
    await broker.connect();
  }

  it("ten restarts, each with a fill made while Node-RED was down: each fill reported once, by the next run", async function () {
    this.timeout(30_000);
    await startFake();
    await start();
    for (let round = 0; round < 10; round++) {
      const order = await broker!.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1490,
        client_order_id: `rs${round}`,
      });
      await log!.until(() => log!.typesFor(order.order_id).includes("ORDER_PLACED"), "placed");
      await broker!.close();
      // Down: the order fills, and nobody hears the postback.
      fake.setPrice("INFY", 1485);
      fake.setPrice("INFY", 1500);
      await start();
      await log!.until(() => log!.typesFor(order.order_id).includes("ORDER_FILLED"), `round ${round}: fill`);
      assert.deepEqual(log!.typesFor(order.order_id), ["ORDER_FILLED"], `round ${round}`);
      assert.equal(log!.orders.length, 1, `round ${round}: earlier orders are not reported again`);
      assert.equal(log!.orders[0]!.synthesized, true);
    }
    assert.equal(await fake.orderCount(), 10);
  });

  it("a placement under way when Node-RED stops: the next run announces the order Kite made, once", async function () {
    this.timeout(30_000);
    await startFake(true);
    await start();
    for (let round = 0; round < 5; round++) {
      fake.delayNext("POST /orders/regular", 300);
      const placing = broker!
        .placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 1400,
          client_order_id: `fly${round}`,
        })
        .then(
          () => "answered",
          (error: { code?: string }) => error.code,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
      await broker!.close();
      assert.equal(await placing, "CLOSED", `round ${round}`);
      await start();
      const mine = (await fake.paper.getOrderbook()).filter((o) => o.tag === `fly${round}`);
      assert.equal(mine.length, 1);
      await log!.until(() => log!.orders.length > 0, `round ${round}: the order announced`);
      const placed = log!.orders.filter((e) => e.order.client_order_id === `fly${round}`);
      assert.deepEqual(
        placed.map((e) => e.type),
        ["ORDER_PLACED"],
        `round ${round}`,
      );
      assert.equal(log!.orders.length, 1, "nothing else reported again");
      // Sent again with the same client_order_id: the order Kite has, not a second one.
      const again = await broker!.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1400,
        client_order_id: `fly${round}`,
      });
      assert.equal(again.order_id, placed[0]!.order.order_id);
    }
    assert.equal(await fake.orderCount(), 5);
  });
});
