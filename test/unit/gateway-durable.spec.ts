import assert from "node:assert/strict";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, order, startPaperGateway } from "../support/gateway-client";

/**
 * With `durable` set, the gateway says nothing about a change (answer or event) before the
 * barrier resolves: what a client is told survives the gateway being killed.
 */
describe("Gateway durable acknowledgements", function () {
  let made: PaperGateway | undefined;
  let client: GatewayClient | undefined;
  afterEach(async function () {
    await client?.close();
    await made?.close();
  });

  it("answers PLACE_ORDER and pushes its events only after the barrier", async function () {
    const log: string[] = [];
    const releases: (() => void)[] = [];
    made = await startPaperGateway({
      durable: () => {
        log.push("barrier");
        return new Promise<void>((resolve) => {
          releases.push(() => {
            log.push("released");
            resolve();
          });
        });
      },
    });
    client = await GatewayClient.open(made.url);
    const reply = client.request({ type: "PLACE_ORDER", order: order() });
    const event = client.next((m) => m.type === "EVENT");
    void reply.then(() => log.push("answered"));
    void event.then(() => log.push("event"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      log.filter((l) => l !== "barrier"),
      [],
      "nothing sent before the barrier resolves",
    );
    assert.ok(log.includes("barrier"));
    // The answer and the event flush each wait on a barrier of their own.
    assert.equal(releases.length, 2);
    for (const release of releases) release();
    await Promise.all([reply, event]);
    assert.ok(log.indexOf("answered") > log.indexOf("released"));
    assert.ok(log.indexOf("event") > log.indexOf("released"));
  });

  it("does not wait for reads", async function () {
    made = await startPaperGateway({ durable: () => new Promise<void>(() => undefined) });
    client = await GatewayClient.open(made.url);
    const reply = await client.request({ type: "GET_ORDERBOOK" });
    assert.equal(reply.type, "RESULT");
  });
});
