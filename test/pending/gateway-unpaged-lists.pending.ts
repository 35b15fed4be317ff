// FAILING ON PURPOSE, not in the suite (the suite runs dist/test/**/*.spec.js): two defects found by
// the atkgw9 attacks that need a protocol addition, for the lead to schedule. Run with
//   npx mocha --no-config --timeout 120000 dist/test/pending/gateway-unpaged-lists.pending.js
// and rename to .spec.ts once fixed.
//
// 1. GET_GTTS does not page (DESIGN §10: "every answer that lists things pages"). 30,000 active
//    GTTs, placed within every limit, make one ~9.4 MB answer: past the 8 MiB unsent limit, so the
//    honest client that asked is terminated as a slow consumer, every time, and can never read its
//    GTTs (a WebSocketBroker's getGtts neither).
// 2. Quote subscriptions are capped per connection (3,000) but not per api key: one key's 64
//    connections may hold 192,000 symbols. With the paper broker ticking once a second, at ~17
//    connections × 3,000 symbols the gateway stopped answering AUTH within 2 s and RSS grew by
//    ~280 MB (in one process with its clients).
import assert from "node:assert/strict";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

describe("pending: lists and tables the gateway does not bound yet", function () {
  this.timeout(120_000);
  let paper: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await paper?.close();
    paper = undefined;
  });

  it("GET_GTTS over 30,000 active GTTs: answered (paged), the client not cut off", async function () {
    paper = await startPaperGateway({ rate: { perSecond: 1e6, burst: 1e6 } });
    const client = await GatewayClient.open(paper.url);
    clients.push(client);
    for (let i = 0; i < 30_000; i += 100) {
      client.send(
        Array.from({ length: 100 }, (_, j) => ({
          type: "PLACE_GTT",
          id: `g${i + j}`,
          gtt: {
            type: "single",
            symbol: "INFY",
            trigger_values: [50],
            orders: [{ side: "BUY", quantity: 1, price: 50 }],
          },
        })),
      );
      await client.reply(`g${i + 99}`, 20_000);
    }
    const reply = await Promise.race([
      client.request({ type: "GET_GTTS" }),
      client.closed.then(({ code }) => ({ type: `the connection closed (${code})` })),
    ]);
    assert.equal(reply.type, "RESULT");
    assert.equal(paper.gateway.connections, 1, "the client that asked is still connected");
  });

  it("one api key's connections at 3,000 symbols each: the key's subscriptions are bounded, others still served", async function () {
    paper = await startPaperGateway(
      { rate: { perSecond: 1e6, burst: 1e6 } },
      { settings: { interval_ms: 1000 } },
    );
    const probe = await GatewayClient.open(paper.url);
    clients.push(probe);
    let granted = 0;
    for (let c = 0; c < 40; c++) {
      const client = await GatewayClient.open(paper.url);
      clients.push(client);
      const reply = await client.request({
        type: "SUBSCRIBE",
        symbols: Array.from({ length: 3000 }, (_, i) => `S${c}x${i}`),
      });
      if (reply.type === "RESULT") granted += 3000;
      const ping = await probe.request({ type: "PING" });
      assert.equal(ping.type, "RESULT", `after ${c + 1} connections`);
    }
    assert.ok(granted <= 9000, `one key holds ${granted} subscriptions`);
  });
});
