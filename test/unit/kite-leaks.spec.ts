import assert from "node:assert/strict";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { FakeKite } from "../fakes/fake-kite";

function resources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r !== "TTYWrap")
    .sort();
}

async function settle(baseline: string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let now = resources();
  while (Date.now() < deadline) {
    if (JSON.stringify(now) === JSON.stringify(baseline)) return now;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    now = resources();
  }
  return now;
}

describe("KiteBroker leaves nothing behind", function () {
  it("50 create/connect/use/close cycles leave no socket and no timer", async function () {
    this.timeout(20_000);
    const fake = await FakeKite.start({ heartbeatMs: 50 });
    try {
      fake.setPrice("INFY", 1500);
      const baseline = await settle(resources(), 200);
      for (let i = 0; i < 50; i++) {
        const broker = new KiteBroker(
          KiteSettings.parse({
            api_key: fake.apiKey,
            access_token: fake.accessToken,
            root: fake.restUrl,
            ticker_url: fake.tickerUrl,
            gtt_poll_ms: 200,
          }),
        );
        await broker.connect();
        if (i % 10 === 0) {
          // Use everything that opens something: REST sockets, a GTT poll timer, subscriptions.
          await broker.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 1,
            order_type: "LIMIT",
            price: 1000 + i,
          });
          await broker.placeGtt({
            type: "single",
            symbol: "INFY",
            last_price: 1500,
            trigger_values: [1600],
            orders: [{ side: "SELL", quantity: 1, price: 1590 }],
          });
          await broker.subscribeQuotes(["INFY"]);
        }
        await broker.close();
        assert.equal(broker.state, "disconnected");
      }
      const after = await settle(baseline, 3000);
      assert.deepEqual(after, baseline, "resources left after the cycles");
      assert.equal(fake.tickerConnections, 0);
    } finally {
      await fake.close();
    }
  });

  it("close() during a reconnect and during a hung request ends cleanly", async function () {
    const fake = await FakeKite.start();
    try {
      const baseline = await settle(resources(), 200);
      const broker = new KiteBroker(
        KiteSettings.parse({
          api_key: fake.apiKey,
          access_token: fake.accessToken,
          root: fake.restUrl,
          ticker_url: fake.tickerUrl,
          reconnect: { initial_ms: 5000, max_ms: 5000 },
        }),
      );
      await broker.connect();
      fake.refuseTicker();
      fake.closeTicker();
      fake.hangNext("GET /portfolio/positions");
      const hung = broker.getPositions().then(
        () => "resolved",
        (e: { code: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 50));
      await broker.close();
      assert.equal(await hung, "CLOSED");
      assert.deepEqual(await settle(baseline, 2000), baseline);
    } finally {
      await fake.close();
    }
  });

  it("close() while connect() waits for Kite ends both at once", async function () {
    const fake = await FakeKite.start();
    try {
      const baseline = await settle(resources(), 200);
      const broker = new KiteBroker(
        KiteSettings.parse({
          api_key: fake.apiKey,
          access_token: fake.accessToken,
          root: fake.restUrl,
          ticker_url: fake.tickerUrl,
        }),
      );
      fake.hangNext("GET /orders");
      const connecting = broker.connect().then(
        () => "connected",
        (e: { code: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      await broker.close();
      assert.equal(await connecting, "CLOSED");
      assert.ok(performance.now() - started < 1000, "close() did not wait for the REST timeout");
      assert.deepEqual(await settle(baseline, 2000), baseline);
    } finally {
      await fake.close();
    }
  });
});
