import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { brokerContract } from "../contract/broker-contract";

brokerContract("PaperBroker", async () => {
  const broker = new PaperBroker(
    { seed: 7, slippage_bps: 0, spread_bps: 0, volatility: 0 },
    { clock: new ManualClock() },
  );
  await broker.connect();
  return {
    broker,
    setPrice: (symbol, price) => {
      broker.setPrice(symbol, price);
      return Promise.resolve();
    },
    close: () => broker.close(),
  };
});
