import assert from "node:assert/strict";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../../lib/brokers/websocket-settings";
import { Gateway } from "../../lib/gateway/gateway";
import { ManualClock } from "../../lib/paper/clock";
import { isTerminal } from "../../lib/protocol";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { rejectsWithCode } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";

interface Venue {
  broker: Guarded<BrokerInterface>;
  setPrice(symbol: string, price: number): void;
  close(): Promise<void>;
}

function paper(): PaperBroker {
  return new PaperBroker(
    { seed: 7, slippage_bps: 0, spread_bps: 0, volatility: 0 },
    { clock: new ManualClock() },
  );
}

const VENUES: [string, () => Promise<Venue>][] = [
  [
    "paper",
    async () => {
      const inner = paper();
      const broker = guardBroker(inner);
      await broker.connect();
      return { broker, setPrice: (s, p) => inner.setPrice(s, p), close: () => broker.close() };
    },
  ],
  [
    "websocket (gateway)",
    async () => {
      const venue = paper();
      await venue.connect();
      const gateway = await Gateway.start({
        broker: venue,
        port: 0,
        credentials: new Map([["key1", { secret: "s3cret" }]]),
      });
      const broker = guardBroker(
        new WebSocketBroker(
          WebSocketSettings.parse({ url: gateway.url, api_key: "key1", api_secret: "s3cret" }),
        ),
      );
      await broker.connect();
      return {
        broker,
        setPrice: (s, p) => venue.setPrice(s, p),
        close: async () => {
          await broker.close();
          await gateway.close();
          await venue.close();
        },
      };
    },
  ],
  [
    "kite (fake)",
    async () => {
      const fake = await FakeKite.start();
      const broker = guardBroker(
        new KiteBroker(
          KiteSettings.parse({
            api_key: fake.apiKey,
            access_token: fake.accessToken,
            root: fake.restUrl,
            ticker_url: fake.tickerUrl,
          }),
        ),
      );
      await broker.connect();
      return {
        broker,
        setPrice: (s, p) => fake.setPrice(s, p),
        close: async () => {
          await broker.close();
          await fake.close();
        },
      };
    },
  ],
];

async function until(predicate: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const [name, open] of VENUES) {
  describe(`kill switch with flatten: ${name}`, function () {
    this.timeout(20_000);
    let venue: Venue;
    beforeEach(async function () {
      venue = await open();
      venue.setPrice("INFY", 1500);
      venue.setPrice("TCS", 3500);
    });
    afterEach(async function () {
      await venue.close();
    });

    it("leaves no open orders and no positions, and refuses new orders until resumed", async function () {
      const { broker } = venue;
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 6 });
      await broker.placeOrder({ symbol: "TCS", side: "SELL", quantity: 2 });
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3, order_type: "LIMIT", price: 1400 });
      await broker.placeOrder({
        symbol: "TCS",
        side: "SELL",
        quantity: 1,
        order_type: "SL-M",
        trigger_price: 3000,
      });
      await until(async () => {
        const positions = await broker.getPositions();
        return (
          positions.find((p) => p.symbol === "INFY")?.quantity === 6 &&
          positions.find((p) => p.symbol === "TCS")?.quantity === -2
        );
      }, "the opening fills");
      const outcome = await broker.risk.kill("halt", "test", "end of day", { flatten: true });
      assert.equal(outcome.state, "HALTED");
      assert.equal(outcome.cancelled.length, 2);
      assert.deepEqual(outcome.failures, []);
      assert.deepEqual(outcome.placed.map((o) => `${o.side} ${o.quantity} ${o.symbol}`).sort(), [
        "BUY 2 TCS",
        "SELL 6 INFY",
      ]);
      await until(async () => (await broker.getPositions()).every((p) => p.quantity === 0), "flat positions");
      await until(
        async () => (await broker.getOrderbook()).every((o) => isTerminal(o.status)),
        "no open orders",
      );
      await rejectsWithCode(
        broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
        "RISK",
        /HALTED/,
      );
      await broker.risk.kill("resume", "test", "next day");
      const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      assert.ok(!["REJECTED"].includes(order.status));
    });
  });
}
