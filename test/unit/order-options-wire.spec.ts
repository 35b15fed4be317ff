import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../../lib/brokers/websocket-settings";
import { Gateway } from "../../lib/gateway/gateway";
import { ManualClock } from "../../lib/paper/clock";
import type { OrderSnapshot } from "../../lib/protocol";
import { OrderSnapshot as OrderSnapshotSchema } from "../../lib/protocol";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";
import { GatewayClient, TEST_KEY, TEST_SECRET, newClientId } from "../support/gateway-client";

const MINUTE = 60_000;

/** Kite's order options through a real gateway on 127.0.0.1: the wire carries them unchanged. */
describe("order options over the WebSocket protocol", function () {
  let paper: PaperBroker;
  let gateway: Gateway;
  let broker: WebSocketBroker;
  let clock: ManualClock;
  let log: EventLog;

  beforeEach(async function () {
    clock = new ManualClock();
    paper = new PaperBroker({ seed: 3, slippage_bps: 0, spread_bps: 0, volatility: 0 }, { clock });
    await paper.connect();
    paper.setPrice("INFY", 100);
    gateway = await Gateway.start({
      broker: paper,
      port: 0,
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
    });
    broker = new WebSocketBroker(
      WebSocketSettings.parse({ url: gateway.url, api_key: TEST_KEY, api_secret: TEST_SECRET }),
    );
    await broker.connect();
    log = new EventLog(broker);
  });

  afterEach(async function () {
    await broker.close();
    await gateway.close();
    await paper.close();
  });

  const options: [string, Record<string, unknown>][] = [
    ["amo", { variety: "amo" }],
    ["TTL", { validity: "TTL", validity_ttl: 7 }],
    ["disclosed quantity", { disclosed_quantity: 20 }],
    ["iceberg", { variety: "iceberg", iceberg_legs: 4, iceberg_quantity: 25 }],
    [
      "all at once",
      {
        variety: "iceberg",
        iceberg_legs: 2,
        iceberg_quantity: 50,
        validity: "TTL",
        validity_ttl: 1,
        disclosed_quantity: 10,
      },
    ],
  ];
  for (const [name, fields] of options) {
    it(`carries ${name} in the answer, the events and the order book, unchanged`, async function () {
      const request = {
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "LIMIT",
        price: 90,
        ...fields,
      } as const;
      const placed = await broker.placeOrder(request);
      const direct = await paper.getOrder(placed.order_id);
      const shown = (order: OrderSnapshot) =>
        Object.fromEntries(Object.keys(fields).map((key) => [key, (order as Record<string, unknown>)[key]]));
      assert.deepEqual(shown(placed), fields);
      assert.deepEqual(shown(direct), fields, "the broker behind the gateway got them");
      await log.until(() => log.typesFor(placed.order_id).includes("ORDER_PLACED"), "ORDER_PLACED");
      const event = log.orders.find((e) => e.order.order_id === placed.order_id);
      assert.ok(event !== undefined);
      assert.deepEqual(shown(event.order), fields);
      const listed = (await broker.getOrderbook()).find((o) => o.order_id === placed.order_id);
      assert.ok(listed !== undefined);
      assert.deepEqual(shown(listed), fields);
      assert.ok(OrderSnapshotSchema.safeParse(listed).success);
    });
  }

  it("reports a TTL expiry from the server as ORDER_EXPIRED", async function () {
    const placed = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 5,
      order_type: "LIMIT",
      price: 90,
      validity: "TTL",
      validity_ttl: 2,
    });
    clock.advance(2 * MINUTE);
    await log.until(() => log.typesFor(placed.order_id).includes("ORDER_EXPIRED"), "ORDER_EXPIRED");
    const expired = log.orders.find(
      (e) => e.type === "ORDER_EXPIRED" && e.order.order_id === placed.order_id,
    );
    assert.equal(expired?.order.status, "EXPIRED");
    assert.equal(expired?.order.validity_ttl, 2);
  });

  it("fills an iceberg leg by leg, one order_id, over the wire", async function () {
    const placed = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 30,
      order_type: "LIMIT",
      price: 100,
      variety: "iceberg",
      iceberg_legs: 3,
      iceberg_quantity: 10,
    });
    assert.equal(placed.filled_quantity, 10);
    paper.setPrice("INFY", 100);
    paper.setPrice("INFY", 100);
    await log.until(() => log.typesFor(placed.order_id).includes("ORDER_FILLED"), "ORDER_FILLED");
    const filled = log.orders
      .filter((e) => e.order.order_id === placed.order_id && e.type !== "ORDER_PLACED")
      .map((e) => e.order.filled_quantity);
    assert.deepEqual(filled, [10, 20, 30]);
  });

  it("modifies disclosed_quantity over the wire", async function () {
    const placed = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 100,
      order_type: "LIMIT",
      price: 90,
      disclosed_quantity: 10,
    });
    const modified = await broker.modifyOrder(placed.order_id, { disclosed_quantity: 40 });
    assert.equal(modified.disclosed_quantity, 40);
    assert.equal((await paper.getOrder(placed.order_id)).disclosed_quantity, 40);
  });

  it("refuses a bad option on the client, before anything is sent", async function () {
    await rejectsWithCode(
      broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 100,
        order_type: "LIMIT",
        price: 90,
        variety: "iceberg",
        iceberg_legs: 2,
      }),
      "VALIDATION",
      /iceberg_quantity: is required for iceberg orders/,
    );
    assert.equal((await paper.getOrderbook()).length, 0);
  });

  it("refuses a bad option at the gateway too, naming the field and the rule", async function () {
    const client = await GatewayClient.open(gateway.url);
    try {
      const refusals: [Record<string, unknown>, RegExp][] = [
        [{ validity: "TTL" }, /validity_ttl: is required when validity is TTL/],
        [{ validity_ttl: 5 }, /validity_ttl: must not be set unless validity is TTL/],
        [
          { variety: "iceberg", iceberg_legs: 3, iceberg_quantity: 10 },
          /iceberg_quantity: must cover quantity/,
        ],
        [{ disclosed_quantity: 5 }, /disclosed_quantity: must be at least 10% of quantity on NSE/],
        [{ variety: "bo" }, /variety: must be one of regular, amo, iceberg/],
      ];
      for (const [fields, rule] of refusals) {
        const reply = await client.request({
          type: "PLACE_ORDER",
          id: client.newId(),
          order: {
            symbol: "INFY",
            side: "BUY",
            quantity: 100,
            order_type: "LIMIT",
            price: 90,
            client_order_id: newClientId(),
            ...fields,
          },
        });
        assert.equal(reply.type, "ERROR", JSON.stringify(reply));
        assert.equal(reply.error?.code, "VALIDATION");
        assert.match(reply.error?.message ?? "", rule);
      }
      const change = await client.request({
        type: "MODIFY_ORDER",
        id: client.newId(),
        order_id: "P1",
        changes: { validity: "TTL" },
      });
      assert.equal(change.error?.code, "VALIDATION");
      assert.match(change.error?.message ?? "", /validity: cannot be changed to TTL/);
    } finally {
      await client.close();
    }
    assert.equal((await paper.getOrderbook()).length, 0, "nothing refused reached the broker");
  });
});
