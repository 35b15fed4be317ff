import assert from "node:assert/strict";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { toKiteOrderParams, toOrderSnapshot } from "../../lib/kite/mapping";
import { OrderRequest, OrderSnapshot } from "../../lib/protocol";
import { rejectsWithCode } from "../contract/broker-contract";
import type { RecordedRequest } from "../fakes/fake-kite";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

const limit = { symbol: "INFY", side: "BUY", quantity: 100, order_type: "LIMIT", price: 90 } as const;

function sent(kite: KiteHarness, method: string): RecordedRequest[] {
  return kite.fake.requests.filter((r) => r.method === method && r.path.startsWith("/orders/"));
}

describe("Kite: variety, TTL, disclosed quantity, iceberg", function () {
  describe("mapping", function () {
    it("sends each option as Kite's form field, and reads it back from Kite's order", function () {
      const request = OrderRequest.parse({
        ...limit,
        variety: "iceberg",
        iceberg_legs: 4,
        iceberg_quantity: 25,
        validity: "TTL",
        validity_ttl: 15,
        disclosed_quantity: 10,
      });
      const params = toKiteOrderParams(request, "c1", -1);
      assert.equal(params.validity, "TTL");
      assert.equal(params.validity_ttl, 15);
      assert.equal(params.disclosed_quantity, 10);
      assert.equal(params.iceberg_legs, 4);
      assert.equal(params.iceberg_quantity, 25);
      assert.equal("variety" in params, false, "the variety goes in the URL path, not the params");
      const snapshot = toOrderSnapshot(
        {
          order_id: "1",
          status: "OPEN",
          tradingsymbol: "INFY",
          exchange: "NSE",
          transaction_type: "BUY",
          order_type: "LIMIT",
          product: "MIS",
          validity: "TTL",
          validity_ttl: 15,
          variety: "iceberg",
          quantity: 25,
          price: 90,
          disclosed_quantity: 10,
          meta: {
            iceberg: { leg: 1, legs: 4, leg_quantity: 25, total_quantity: 100, remaining_quantity: 100 },
          },
          tag: "c1",
        },
        { now: "2026-01-05T03:45:00.000Z" },
      );
      assert.equal(snapshot.variety, "iceberg");
      assert.equal(snapshot.validity_ttl, 15);
      assert.equal(snapshot.disclosed_quantity, 10);
      assert.equal(snapshot.iceberg_legs, 4);
      assert.equal(snapshot.iceberg_quantity, 25);
      assert.ok(OrderSnapshot.safeParse(snapshot).success);
    });

    it("leaves out what Kite reports as unset (0, regular, DAY minutes) and what is out of bounds", function () {
      const snapshot = toOrderSnapshot(
        {
          order_id: "2",
          status: "OPEN",
          tradingsymbol: "INFY",
          exchange: "NSE",
          transaction_type: "BUY",
          order_type: "LIMIT",
          product: "MIS",
          validity: "DAY",
          validity_ttl: 5,
          variety: "regular",
          quantity: 10,
          price: 90,
          disclosed_quantity: 0,
          meta: { iceberg: { legs: 999, leg_quantity: -1 } },
        },
        { now: "2026-01-05T03:45:00.000Z" },
      );
      for (const key of [
        "variety",
        "validity_ttl",
        "disclosed_quantity",
        "iceberg_legs",
        "iceberg_quantity",
      ]) {
        assert.equal(key in snapshot, false, key);
      }
      assert.ok(OrderSnapshot.safeParse(snapshot).success);
    });
  });

  describe("against the fake Kite", function () {
    let kite: KiteHarness;
    beforeEach(async function () {
      kite = await startKite();
      kite.fake.setPrice("INFY", 100);
    });
    afterEach(async function () {
      await kite.close();
    });

    for (const variety of ["amo", "iceberg"] as const) {
      const options =
        variety === "iceberg" ? { variety, iceberg_legs: 4, iceberg_quantity: 25 } : ({ variety } as const);
      it(`places, modifies and cancels an ${variety} order under /orders/${variety}`, async function () {
        const placed = await kite.broker.placeOrder({ ...limit, ...options });
        assert.equal(placed.variety, variety);
        const [post] = sent(kite, "POST");
        assert.equal(post?.path, `/orders/${variety}`);
        if (variety === "iceberg") {
          assert.equal(post?.body.iceberg_legs, "4");
          assert.equal(post?.body.iceberg_quantity, "25");
        } else {
          assert.equal(post?.body.iceberg_legs, undefined);
        }
        const modified = await kite.broker.modifyOrder(placed.order_id, { price: 91 });
        assert.equal(modified.price, 91);
        assert.deepEqual(
          sent(kite, "PUT").map((r) => r.path),
          [`/orders/${variety}/${placed.order_id}`],
        );
        const cancelled = await kite.broker.cancelOrder(placed.order_id);
        assert.equal(cancelled.status, "CANCELLED");
        assert.deepEqual(
          sent(kite, "DELETE").map((r) => r.path),
          [`/orders/${variety}/${placed.order_id}`],
        );
      });
    }

    it("sends TTL minutes and a disclosed quantity, and reports them back", async function () {
      const placed = await kite.broker.placeOrder({
        ...limit,
        validity: "TTL",
        validity_ttl: 30,
        disclosed_quantity: 20,
      });
      const [post] = sent(kite, "POST");
      assert.equal(post?.path, "/orders/regular");
      assert.equal(post?.body.validity, "TTL");
      assert.equal(post?.body.validity_ttl, "30");
      assert.equal(post?.body.disclosed_quantity, "20");
      assert.equal(placed.validity_ttl, 30);
      assert.equal(placed.disclosed_quantity, 20);
      const book = await kite.broker.getOrderbook();
      assert.equal(book.find((o) => o.order_id === placed.order_id)?.disclosed_quantity, 20);
    });

    it("modifies the disclosed quantity, reported once as ORDER_MODIFIED", async function () {
      const placed = await kite.broker.placeOrder({ ...limit, disclosed_quantity: 10 });
      const modified = await kite.broker.modifyOrder(placed.order_id, { disclosed_quantity: 50 });
      assert.equal(modified.disclosed_quantity, 50);
      assert.equal(sent(kite, "PUT")[0]?.body.disclosed_quantity, "50");
      await kite.log.until(
        () => kite.log.typesFor(placed.order_id).includes("ORDER_MODIFIED"),
        "ORDER_MODIFIED",
      );
      assert.equal(kite.log.typesFor(placed.order_id).filter((t) => t === "ORDER_MODIFIED").length, 1);
    });

    it("changes and cancels an amo order from a broker started since, under its variety", async function () {
      const placed = await kite.broker.placeOrder({ ...limit, variety: "amo" });
      const again = new KiteBroker(
        KiteSettings.parse({
          api_key: kite.fake.apiKey,
          access_token: kite.fake.accessToken,
          root: kite.fake.restUrl,
          ticker_url: kite.fake.tickerUrl,
        }),
      );
      try {
        await again.connect();
        const modified = await again.modifyOrder(placed.order_id, { price: 92 });
        assert.equal(modified.price, 92);
        const cancelled = await again.cancelOrder(placed.order_id);
        assert.equal(cancelled.status, "CANCELLED");
      } finally {
        await again.close();
      }
      const changes = kite.fake.requests.filter((r) => r.method === "PUT" || r.method === "DELETE");
      assert.ok(changes.length >= 2);
      for (const change of changes) assert.equal(change.path, `/orders/amo/${placed.order_id}`);
    });

    it("settles a lost iceberg placement by tag and never places it twice", async function () {
      kite.fake.dropNextResponse("POST /orders/iceberg");
      const placed = await kite.broker.placeOrder({
        ...limit,
        variety: "iceberg",
        iceberg_legs: 2,
        iceberg_quantity: 50,
      });
      assert.equal(placed.variety, "iceberg");
      assert.equal(await kite.fake.orderCount(), 1);
      for (const post of sent(kite, "POST")) assert.equal(post.path, "/orders/iceberg");
    });

    it("refuses iceberg legs that are not whole lots before sending, and places whole-lot legs", async function () {
      const future = {
        symbol: "NIFTY26DECFUT",
        exchange: "NFO",
        side: "BUY",
        quantity: 150,
        order_type: "LIMIT",
        price: 100,
        product: "NRML",
        variety: "iceberg",
        iceberg_legs: 2,
      } as const;
      await rejectsWithCode(
        kite.broker.placeOrder({ ...future, iceberg_quantity: 80 }),
        "VALIDATION",
        /iceberg_quantity: must be a multiple of NFO:NIFTY26DECFUT's lot size 75 \(got 80\)/,
      );
      assert.equal(sent(kite, "POST").length, 0);
      const placed = await kite.broker.placeOrder({ ...future, iceberg_quantity: 75 });
      assert.equal(placed.iceberg_quantity, 75);
      assert.equal(sent(kite, "POST")[0]?.path, "/orders/iceberg");
    });

    it("sends nothing for an option Kite would refuse", async function () {
      const refusals: [Record<string, unknown>, RegExp][] = [
        [{ variety: "iceberg", iceberg_legs: 2 }, /iceberg_quantity: is required for iceberg orders/],
        [{ validity: "TTL" }, /validity_ttl: is required when validity is TTL/],
        [{ disclosed_quantity: 5 }, /disclosed_quantity: must be at least 10% of quantity on NSE/],
        [{ validity: "IOC", disclosed_quantity: 50 }, /disclosed_quantity: must not be set for IOC orders/],
      ];
      for (const [fields, rule] of refusals) {
        await rejectsWithCode(kite.broker.placeOrder({ ...limit, ...fields }), "VALIDATION", rule);
      }
      assert.equal(sent(kite, "POST").length, 0);
    });
  });
});
