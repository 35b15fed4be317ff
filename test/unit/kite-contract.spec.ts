import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { brokerContract } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";

/** The shared contract through kiteconnect's REST client and our ticker client, against the fake Kite. */
brokerContract("KiteBroker via the fake Kite", async () => {
  const fake = await FakeKite.start();
  const broker = new KiteBroker(
    KiteSettings.parse({
      api_key: fake.apiKey,
      access_token: fake.accessToken,
      root: fake.restUrl,
      ticker_url: fake.tickerUrl,
    }),
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
