import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { Gateway } from "../../lib/gateway/gateway";
import { EventLog } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import { fakeKiteSettings } from "../fakes/kite-harness";
import type { Received } from "../support/gateway-client";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";

/**
 * Issue kite10, item 5: a gateway over Kite hears the events the broker emits while it connects
 * (a fill made while Node-RED was down, reported from the ledger at start): its clients get them.
 */
describe("Gateway over Kite: events emitted while the broker connects (issue kite10, item 5)", function () {
  let fake: FakeKite;
  let dir: string;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-gateway-start-"));
    fake = await FakeKite.start({ heartbeatMs: 200 });
    fake.setPrice("INFY", 1500);
  });

  afterEach(async function () {
    for (const close of closers.splice(0).reverse()) await close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const kite = (): KiteBroker =>
    new KiteBroker(KiteSettings.parse({ ...fakeKiteSettings(fake), cache_dir: dir, instance_id: "gw" }), {
      ledgerWaitMs: 200,
    });

  it("three restarts, a fill while down each time: the gateway holds it, and RESUME replays it once", async function () {
    this.timeout(30_000);
    for (let round = 0; round < 3; round++) {
      const first = kite();
      await first.connect();
      const order = await first.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1490,
        client_order_id: `gw${round}`,
      });
      await first.close();
      // Down: the order fills.
      fake.setPrice("INFY", 1485);
      fake.setPrice("INFY", 1500);

      const broker = kite();
      // What the broker emits, heard from before the gateway starts it.
      const heard = new EventLog(broker);
      const gateway = await Gateway.start({
        broker,
        port: 0,
        credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      });
      const close = async (): Promise<void> => {
        await gateway.close();
        await broker.close();
      };
      closers.push(close);
      const fill = heard.orders.find((e) => e.type === "ORDER_FILLED" && e.order.order_id === order.order_id);
      heard.detach();
      assert.ok(fill !== undefined, `round ${round}: the broker reported the fill as it connected`);
      const client = await GatewayClient.open(gateway.url);
      closers.push(() => client.close());
      // A client that processed everything before the fill: the gateway must hold the fill for it.
      const reply = await client.request({ type: "RESUME", from_seq: fill.seq - 1 });
      const events = client.received
        .slice(0, client.received.indexOf(reply))
        .filter((m: Received) => m.type === "EVENT");
      const fills = events.filter(
        (m) =>
          m.event?.type === "ORDER_FILLED" &&
          (m.event.order as { order_id?: string }).order_id === order.order_id,
      );
      assert.equal(
        fills.length,
        1,
        `round ${round}: ${JSON.stringify(reply.result)} ${JSON.stringify(events)}`,
      );
      assert.equal((reply.result as { gap?: boolean }).gap, false, `round ${round}`);
      assert.equal(gateway.seq, broker.lastSeq, `round ${round}: the gateway's seq is the broker's`);
      await client.close();
      await close();
      closers.splice(0);
    }
  });
});
