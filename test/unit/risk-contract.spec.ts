import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../../lib/brokers/websocket-settings";
import { Gateway } from "../../lib/gateway/gateway";
import { ManualClock } from "../../lib/paper/clock";
import { guardBroker } from "../../lib/risk/guard";
import type { RiskSettingsInput } from "../../lib/risk/settings";
import { brokerContract } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";

/**
 * The guard is a broker like the others: the shared contract runs through it over every broker,
 * with limits set (so every check runs) but wide enough not to refuse what the contract places.
 */
const WIDE: RiskSettingsInput = {
  max_order_quantity: 100_000,
  max_position_quantity: 1_000_000,
  max_open_orders: 10_000,
  max_orders_per_second: 1000,
  max_orders_per_minute: 60_000,
  allowed_symbols: ["INFY", "TCS"],
  max_daily_loss: 1e12,
};

function paper(): PaperBroker {
  return new PaperBroker(
    { seed: 7, slippage_bps: 0, spread_bps: 0, volatility: 0 },
    { clock: new ManualClock() },
  );
}

brokerContract("RiskGuard over PaperBroker", async () => {
  const inner = paper();
  const broker = guardBroker(inner, { settings: WIDE });
  await broker.connect();
  return {
    broker,
    setPrice: (symbol, price) => {
      inner.setPrice(symbol, price);
      return Promise.resolve();
    },
    close: () => broker.close(),
  };
});

brokerContract("RiskGuard over WebSocketBroker via the gateway", async () => {
  const venue = paper();
  await venue.connect();
  const gateway = await Gateway.start({
    broker: venue,
    port: 0,
    credentials: new Map([["key1", { secret: "s3cret" }]]),
  });
  const broker = guardBroker(
    new WebSocketBroker(WebSocketSettings.parse({ url: gateway.url, api_key: "key1", api_secret: "s3cret" })),
    { settings: WIDE },
  );
  await broker.connect();
  return {
    broker,
    setPrice: (symbol, price) => {
      venue.setPrice(symbol, price);
      return Promise.resolve();
    },
    close: async () => {
      await broker.close();
      await gateway.close();
      await venue.close();
    },
  };
});

brokerContract("RiskGuard over KiteBroker via the fake Kite", async () => {
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
    { settings: WIDE },
  );
  await broker.connect();
  return {
    broker,
    setPrice: (symbol, price) => {
      fake.setPrice(symbol, price);
      return Promise.resolve();
    },
    close: async () => {
      await broker.close();
      await fake.close();
    },
  };
});
