import { PaperBroker } from "../../lib/brokers/paper-broker";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { WebSocketSettings } from "../../lib/brokers/websocket-settings";
import { Gateway } from "../../lib/gateway/gateway";
import { ManualClock } from "../../lib/paper/clock";
import { brokerContract } from "../contract/broker-contract";

/** The same contract as PaperBroker, through a real gateway on 127.0.0.1 over protocol v1. */
brokerContract("WebSocketBroker via the gateway", async () => {
  const paper = new PaperBroker(
    { seed: 7, slippage_bps: 0, spread_bps: 0, volatility: 0 },
    { clock: new ManualClock() },
  );
  await paper.connect();
  const gateway = await Gateway.start({
    broker: paper,
    port: 0,
    credentials: new Map([["key1", { secret: "s3cret" }]]),
  });
  const broker = new WebSocketBroker(
    WebSocketSettings.parse({ url: gateway.url, api_key: "key1", api_secret: "s3cret" }),
  );
  await broker.connect();
  return {
    broker,
    setPrice: (symbol, price) => {
      paper.setPrice(symbol, price);
      return Promise.resolve();
    },
    close: async () => {
      await broker.close();
      await gateway.close();
      await paper.close();
    },
  };
});
