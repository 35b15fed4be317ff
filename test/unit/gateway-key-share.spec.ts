// Gateway defect list, item 4: the per-api-key rate defaults to one connection's rate, so one
// connection spending its own budget spends the whole key's and its siblings, which sent
// nothing, are refused. Refill is made negligible (1 token/s) so the buckets are read by their
// bursts alone, with no timing in the assertions.
import assert from "node:assert/strict";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

const BURST = 100;

function refused(replies: readonly Received[]): number {
  return replies.filter((r) => r.type === "ERROR" && r.error?.code === "RATE_LIMITED").length;
}

async function pings(client: GatewayClient, count: number): Promise<Received[]> {
  const replies: Promise<Received>[] = [];
  // One PING a frame: a batch would be refused whole past the connection's own burst.
  for (let i = 0; i < count; i++) replies.push(client.request({ type: "PING" }));
  return Promise.all(replies);
}

describe("gateway: one connection cannot spend its api key's whole rate budget", function () {
  this.timeout(20_000);
  let made: PaperGateway | undefined;
  const open: GatewayClient[] = [];

  afterEach(async function () {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await made?.close();
    made = undefined;
  });

  for (const siblings of [1, 2, 4]) {
    it(`a connection at its own burst leaves each of ${siblings} sibling(s) a fair share of the key's`, async function () {
      made = await startPaperGateway({
        rate: { perSecond: 1, burst: BURST },
        // The default key rate: the same as one connection's.
        maxStrikes: 1_000_000,
      });
      const flooder = await GatewayClient.open(made.url);
      open.push(flooder);
      const others: GatewayClient[] = [];
      for (let i = 0; i < siblings; i++) {
        const other = await GatewayClient.open(made.url);
        open.push(other);
        others.push(other);
      }
      // Its whole own budget (AUTH took one token); each AUTH took one of the key's too.
      const flooded = await pings(flooder, BURST - 1);
      const share = Math.floor(BURST / (siblings + 1));
      const flooderServed = flooded.length - refused(flooded);
      assert.ok(
        flooderServed >= share - siblings - 2,
        `the flooder was served ${flooderServed}, its share is ~${share}`,
      );
      for (const [i, other] of others.entries()) {
        const replies = await pings(other, Math.floor(share / 2));
        assert.equal(
          refused(replies),
          0,
          `sibling ${i} sent ${replies.length} PINGs after the flooder's ${BURST} (served ${flooderServed}) and had ${refused(replies)} refused over the key's rate`,
        );
      }
    });
  }
});
