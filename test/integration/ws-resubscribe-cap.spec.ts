// A gateway that refuses the SUBSCRIBE a WebSocket broker sends again after a reconnect (its api
// key's symbol cap is taken, or the symbols were refused when first asked for) must not keep the
// broker from connecting: the session goes on, the refusal is reported, and orders go through.
import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { BrokerError } from "../../lib/protocol/errors";
import { fastSettings, useCleanup } from "../support/broker-chaos";
import { GatewayClient } from "../support/gateway-client";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

describe("WebSocket broker: a SUBSCRIBE refused on reconnect", function () {
  this.timeout(20_000);
  const cleanup = useCleanup();

  async function setup(): Promise<{ host: PaperHost; broker: WebSocketBroker; errors: BrokerError[] }> {
    const host = await PaperHost.start({ maxSymbolsPerKey: 2 });
    cleanup(() => host.close());
    const broker = new WebSocketBroker(fastSettings(host.url));
    const errors: BrokerError[] = [];
    broker.on("error", (error) => errors.push(error));
    cleanup(() => broker.close());
    await broker.connect();
    return { host, broker, errors };
  }

  /** Three gateway restarts: after each the broker is connected and places an order. */
  async function assertServesAfterRestarts(
    host: PaperHost,
    broker: WebSocketBroker,
    label: string,
  ): Promise<void> {
    for (let round = 0; round < 3; round++) {
      const before = broker.stats.reconnects;
      await host.stopGateway();
      await host.startGateway();
      await waitFor(
        () => broker.state === "connected" && broker.stats.reconnects > before,
        `${label}, restart ${round}: connected again (state ${broker.state}, reconnects ${broker.stats.reconnects})`,
        8000,
      );
      const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      assert.equal(order.status, "FILLED", `${label}, restart ${round}`);
    }
  }

  it("symbols refused when first asked for are not asked for again at every reconnect", async function () {
    const { host, broker } = await setup();
    await assert.rejects(broker.subscribeQuotes(["INFY", "TCS", "WIPRO"]), /api key/);
    await assertServesAfterRestarts(host, broker, "refused at first");
    // What was refused is not held: a smaller request within the cap is served.
    await broker.subscribeQuotes(["INFY"]);
  });

  it("another connection of the key took the room while the broker was away: reported, and the session goes on", async function () {
    const { host, broker, errors } = await setup();
    await broker.subscribeQuotes(["INFY", "TCS"]);
    // Another client of the same api key takes the whole cap before the broker is back; the broker
    // may win that race, and then the gateway is restarted again.
    let taken = false;
    for (let attempt = 0; attempt < 20 && !taken; attempt++) {
      await host.stopGateway();
      await host.startGateway();
      const other = await GatewayClient.open(host.url);
      cleanup(() => other.close());
      const reply = await other.request({ type: "SUBSCRIBE", symbols: ["WIPRO", "HDFCBANK"] });
      taken = reply.type === "RESULT";
      if (!taken) await other.close();
    }
    assert.ok(taken, "another client took the api key's symbol cap before the broker was back");
    await waitFor(() => broker.state === "connected", `connected again (state ${broker.state})`, 8000);
    const order = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.equal(order.status, "FILLED");
    await waitFor(
      () => errors.some((error) => /subscrib/i.test(error.message) && error.message.includes("INFY")),
      `the refusal reported: ${errors.map((error) => error.message).join("; ")}`,
    );
    await assertServesAfterRestarts(host, broker, "room taken");
  });
});
