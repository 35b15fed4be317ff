import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GatewayClient, order, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort, GatewayProcess } from "../support/gateway-process";

/**
 * --fast-acks answers from memory: the paper broker behind it answers only once its journal
 * record is fsync'd, so with a journal every "fast" ack waited for the disk (the benchmark's
 * place → ack was 9-12× a raw echo for that reason alone).
 */
describe("gateway CLI --fast-acks", function () {
  this.timeout(30_000);
  let dir = "";
  const running: GatewayProcess[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "fast-acks-"));
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((gateway) => gateway.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Places five orders, stops the gateway cleanly; returns their client_order_ids. */
  async function placeThrough(args: string[], journal: string): Promise<string[]> {
    const gateway = await GatewayProcess.start({
      port: await freePort(),
      journal,
      apiKey: TEST_KEY,
      apiSecret: TEST_SECRET,
      args: ["--volatility", "0", ...args],
    });
    running.push(gateway);
    const client = await GatewayClient.open(gateway.url);
    const ids: string[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const placed = await client.call({ type: "PLACE_ORDER", order: order() });
        assert.equal(placed.status, "FILLED");
        ids.push(placed.client_order_id);
      }
    } finally {
      await client.close();
    }
    await gateway.stop();
    return ids;
  }

  it("writes no journal: its answers never wait for a disk", async function () {
    const journal = path.join(dir, "fast.jsonl");
    await placeThrough(["--fast-acks"], journal);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("without it, every answered placement is in the journal", async function () {
    const journal = path.join(dir, "durable.jsonl");
    const ids = await placeThrough([], journal);
    const text = fs.readFileSync(journal, "utf8");
    // Format-agnostic: the journal writes each client_order_id as a JSON string (format 2 or 3).
    for (const id of ids) assert.ok(text.includes(`"${id}"`), id);
  });
});
