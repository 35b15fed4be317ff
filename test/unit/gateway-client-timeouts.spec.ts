// The gateway tests' raw client (test/support/gateway-client.ts) after a test has gone wrong: a
// burst waits for thousands of answers, and when they do not come every waiter times out. Each
// timeout's error used to hold every message received, so 10,000 waiters over 10,000 received
// messages stringified gigabytes: the suite hung for over ten minutes after one failing test
// (gateway-intent-faults, "10,000 distinct 20-character ids", under load) instead of going on.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { GatewayClient } from "../support/gateway-client";
import { outcome } from "../support/wait";

const RECEIVED = 5_000;
const WAITERS = 200;
/** Far above a helpful message, far below one holding 5,000 messages (about 600 KB). */
const MESSAGE_BOUND = 8_192;

describe("GatewayClient: a waiter that times out", function () {
  let server: WebSocketServer;
  let client: GatewayClient;

  beforeEach(async function () {
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    server.on("connection", (socket) => {
      // One frame of RECEIVED events, none of them what the waiters look for.
      const events = Array.from({ length: RECEIVED }, (_, i) => ({
        type: "EVENT",
        event: { seq: i + 1, order_id: `order-${i}`, status: "OPEN", note: "x".repeat(64) },
      }));
      socket.send(JSON.stringify(events));
    });
    const { port } = server.address() as AddressInfo;
    client = await GatewayClient.connect(`ws://127.0.0.1:${port}/v1`);
    const deadline = Date.now() + 10_000;
    while (client.received.length < RECEIVED && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(client.received.length, RECEIVED, "the frame arrived");
  });

  afterEach(async function () {
    client.ws.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it(`fails with a bounded message that says how many were received, ${WAITERS} waiters over ${RECEIVED} messages`, async function () {
    const waits = Array.from({ length: WAITERS }, (_, i) => outcome(client.reply(`never-${i}`, 20)));
    const settled = await Promise.all(waits);
    for (const [i, result] of settled.entries()) {
      assert.equal(result.ok, false, `waiter ${i} timed out`);
      const message = (result.ok ? "" : (result.error as Error).message) ?? "";
      assert.match(message, /^no matching message within 20 ms; received 5000 messages/, `waiter ${i}`);
      assert.ok(message.length <= MESSAGE_BOUND, `waiter ${i}: ${message.length} characters`);
      // The latest messages are what a failing test's reader needs: the last one is named.
      assert.ok(
        message.includes(`"order_id":"order-${RECEIVED - 1}"`),
        `waiter ${i}: the last message shown`,
      );
    }
  });

  it("still resolves a waiter whose answer comes, and names the message count when none does", async function () {
    const first = await client.next((m) => m.type === "EVENT");
    assert.equal((first.event as { seq?: number } | undefined)?.seq, 1);
    const missing = await outcome(client.next((m) => m.type === "RESULT", 20));
    assert.equal(missing.ok, false);
    assert.match((missing as { error: Error }).error.message, /received 5000 messages/);
  });
});
