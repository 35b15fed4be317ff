import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { IdempotencyIndex, istDay, orderHash } from "../../lib/gateway/idempotency-index";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

function market(clientOrderId: string, quantity = 1): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity, client_order_id: clientOrderId };
}

describe("Gateway: durable idempotency for the trading day", function () {
  this.timeout(120_000);
  let dir: string;
  let made: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "idem-"));
  });

  afterEach(async function () {
    for (const client of clients.splice(0)) await client.close();
    await made?.close();
    made = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<PaperGateway> {
    made = await startPaperGateway(
      {
        idempotencyFile: path.join(dir, "idempotency.jsonl"),
        durable: () => made!.broker.flush(),
        rate: { perSecond: 1_000_000, burst: 1_000_000 },
      },
      { journalFile: path.join(dir, "journal.jsonl"), settings: { starting_cash: 1e12 } },
    );
    return made;
  }

  async function open(url: string): Promise<GatewayClient> {
    const client = await GatewayClient.open(url);
    clients.push(client);
    return client;
  }

  it("places no second order for an id older than the broker's retention, across a restart", async function () {
    const first = await start();
    const client = await open(first.url);
    const total = 10_050;
    const firstOrder = await client.call({ type: "PLACE_ORDER", order: market("old0") });
    for (let start = 1; start < total; start += 100) {
      const ids: string[] = [];
      const batch = [];
      for (let i = start; i < Math.min(total, start + 100); i++) {
        const id = `p${i}`;
        ids.push(id);
        batch.push({ type: "PLACE_ORDER", id, order: market(`old${i}`) });
      }
      client.send(batch);
      for (const id of ids) assert.equal((await client.reply(id, 30_000)).type, "RESULT");
    }
    const seqBefore = first.broker.lastSeq;

    // The broker has forgotten old0 (past its 10,000 retained ended orders): GET_ORDER and
    // PLACE_ORDER must still agree, and the retry must not place anything.
    const lookup = await client.request({ type: "GET_ORDER", client_order_id: "old0" });
    const retry = await client.request({ type: "PLACE_ORDER", order: market("old0") });
    assert.equal(lookup.type, retry.type, `${JSON.stringify(lookup)} vs ${JSON.stringify(retry)}`);
    assert.equal(lookup.error?.code, retry.error?.code);
    if (lookup.type === "ERROR") {
      assert.equal(lookup.error?.code, "DUPLICATE_ORDER");
      assert.match(lookup.error?.message ?? "", new RegExp(firstOrder.order_id));
    }
    assert.equal(first.broker.lastSeq, seqBefore, "the retry placed nothing");

    // Restart the gateway and the broker over the same files: the id is still known.
    for (const c of clients.splice(0)) await c.close();
    await first.close();
    made = undefined;
    const second = await start();
    const again = await open(second.url);
    const seqAfterRestart = second.broker.lastSeq;
    const lookup2 = await again.request({ type: "GET_ORDER", client_order_id: "old0" });
    const retry2 = await again.request({ type: "PLACE_ORDER", order: market("old0") });
    assert.equal(retry2.type, "ERROR", JSON.stringify(retry2));
    assert.equal(retry2.error?.code, "DUPLICATE_ORDER");
    assert.equal(lookup2.error?.code, "DUPLICATE_ORDER");
    assert.equal(second.broker.lastSeq, seqAfterRestart, "the retry after the restart placed nothing");
    const book = await again.wholeBook();
    assert.equal(book.filter((o) => o.client_order_id === "old0").length, 0);

    // The same id with other parameters is refused as such, not answered with the first order.
    const changed = await again.request({ type: "PLACE_ORDER", order: market("old0", 5) });
    assert.equal(changed.error?.code, "IDEMPOTENCY_MISMATCH");
    assert.match(changed.error?.message ?? "", /client_order_id old0 was already used/);
    const recent = await again.request({ type: "PLACE_ORDER", order: market(`old${total - 1}`, 2) });
    assert.equal(recent.error?.code, "IDEMPOTENCY_MISMATCH");
    const same = await again.call({ type: "PLACE_ORDER", order: market(`old${total - 1}`) });
    assert.equal(same.client_order_id, `old${total - 1}`);
    assert.equal(second.broker.lastSeq, seqAfterRestart);
  });

  it("refuses a concurrent retry with other parameters while the first is in flight", async function () {
    const made = await start();
    const client = await open(made.url);
    client.send([
      { type: "PLACE_ORDER", id: "a", order: market("twin") },
      { type: "PLACE_ORDER", id: "b", order: market("twin") },
      { type: "PLACE_ORDER", id: "c", order: market("twin", 3) },
    ]);
    const [a, b, c] = [await client.reply("a"), await client.reply("b"), await client.reply("c")];
    assert.equal(a.type, "RESULT");
    assert.deepEqual(b.result, a.result);
    assert.equal(c.error?.code, "IDEMPOTENCY_MISMATCH");
    assert.equal((await client.wholeBook()).filter((o) => o.client_order_id === "twin").length, 1);
  });

  it("keeps ids through their IST day and the next, and compacts the rest away on open", async function () {
    const file = path.join(dir, "idx.jsonl");
    let now = Date.parse("2026-12-04T18:00:00Z"); // 23:30 IST on the 4th
    const index = await IdempotencyIndex.open({ file, now: () => now });
    index.record("acct", "a1", "O1", orderHash(market("a1")));
    await index.flush();
    assert.equal(istDay(now), "2026-12-04");
    now += 60 * 60_000; // 00:30 IST on the 5th: a new trading day, the id still held
    const reopened = await IdempotencyIndex.open({ file, now: () => now });
    assert.equal(reopened.get("acct", "a1")?.orderId, "O1");
    now += 2 * 24 * 60 * 60_000;
    const later = await IdempotencyIndex.open({ file, now: () => now });
    assert.equal(later.get("acct", "a1"), undefined);
    assert.equal(fs.readFileSync(file, "utf8"), "");
  });

  it("ignores a line cut short by a crash", async function () {
    const file = path.join(dir, "idx.jsonl");
    const index = await IdempotencyIndex.open({ file });
    index.record("acct", "a1", "O1", "h");
    await index.flush();
    fs.appendFileSync(file, '["acct\\u0000a2","O2"');
    const reopened = await IdempotencyIndex.open({ file });
    assert.equal(reopened.get("acct", "a1")?.orderId, "O1");
    assert.equal(reopened.get("acct", "a2"), undefined);
  });

  it("hashes parameters, not their order or the id", function () {
    assert.equal(
      orderHash({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "x" }),
      orderHash({ quantity: 1, side: "BUY", symbol: "INFY", client_order_id: "y" }),
    );
    assert.notEqual(orderHash(market("x", 1)), orderHash(market("x", 2)));
  });
});
