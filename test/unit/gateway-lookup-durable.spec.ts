// Gateway defect list, item 3: GET_ORDER by client_order_id answered from the idempotency index in
// memory without waiting for the index line naming the order, while a PLACE_ORDER retry of the id
// waits for it. On a disk that fails the index's fdatasync, the placement is answered "outcome
// unknown" and its retry refused until the index is durable, but GET_ORDER reported the order as
// settled; a crash then loses the line, and once the broker no longer holds the order (past its
// retention) the id is free again: the retry the index promised to absorb places a second order.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { OrderSnapshot } from "../../lib/protocol";
import { FdFaults } from "../support/fd-faults";
import type { Received } from "../support/gateway-client";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";

function market(clientOrderId: string): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: clientOrderId };
}

function orderOf(reply: Received): OrderSnapshot {
  assert.equal(reply.type, "RESULT", JSON.stringify(reply));
  return reply.result as OrderSnapshot;
}

describe("Gateway: GET_ORDER by client_order_id reports only orders the index holds durably", function () {
  this.timeout(30_000);
  let dir: string;
  let faults: FdFaults | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lookup-durable-"));
  });

  afterEach(async function () {
    faults?.uninstall();
    faults = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const round of [1, 2, 3]) {
    it(`while the index's fdatasync fails: the lookup answers "unknown" as the retry does, then the order once the disk heals (round ${round})`, async function () {
      const journalFile = path.join(dir, "journal.jsonl");
      const indexFile = `${journalFile}.idempotency.jsonl`;
      const paper = new PaperBroker(
        {
          seed: round,
          volatility: 0,
          spread_bps: 0,
          slippage_bps: 0,
          interval_ms: 60_000,
          starting_cash: 1e12,
        },
        { journalFile },
      );
      await paper.connect();
      paper.setPrice("INFY", 100);
      cleanups.push(() => paper.close());
      const gateway = await Gateway.start({
        broker: paper,
        credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
        idempotencyFile: indexFile,
        durable: () => paper.flush(),
        rate: { perSecond: 1_000_000, burst: 1_000_000 },
      });
      cleanups.push(() => gateway.close());
      const client = await GatewayClient.open(gateway.url);
      cleanups.push(() => client.close());
      const looker = await GatewayClient.open(gateway.url);
      cleanups.push(() => looker.close());
      orderOf(await client.request({ type: "PLACE_ORDER", order: market(`W${round}`) }));

      let failing = true;
      faults = new FdFaults(indexFile, { sync: () => failing });
      faults.install();
      const ids = Array.from({ length: 20 }, (_, i) => `R${round}N${i}`);
      for (const [i, id] of ids.entries()) {
        // Half looked up in the placement's own frame (in flight), half after its answer.
        const inFlight = i % 2 === 0;
        const placeId = client.newId();
        const placed = client.reply(placeId, 10_000);
        const lookId = looker.newId();
        const looked = looker.reply(lookId, 10_000);
        client.send({ type: "PLACE_ORDER", id: placeId, order: market(id) });
        if (inFlight) looker.send({ type: "GET_ORDER", id: lookId, client_order_id: id });
        const placeReply = await placed;
        assert.equal(placeReply.type, "ERROR", `${id}: placed with its index line not durable`);
        assert.equal(placeReply.error?.code, "TIMEOUT");
        if (!inFlight) looker.send({ type: "GET_ORDER", id: lookId, client_order_id: id });
        const lookReply = await looked;
        assert.equal(
          lookReply.type,
          "ERROR",
          `${id} (${inFlight ? "in flight" : "after its answer"}): reported ${JSON.stringify(lookReply.result)} while its index line could not be made durable`,
        );
        assert.equal(lookReply.error?.code, "TIMEOUT", "an unknown outcome, as the placement's own");
        // A retry of the placement says the same.
        const retry = await client.request({ type: "PLACE_ORDER", order: market(id) });
        assert.equal(retry.error?.code, "TIMEOUT", JSON.stringify(retry));
      }
      assert.ok(faults.failedSyncs >= ids.length, `${faults.failedSyncs} fdatasyncs failed`);

      // The disk heals: the lookups now report the one order each id made, and so do the retries.
      failing = false;
      const book = new Map((await client.wholeBook()).map((o) => [o.client_order_id, o.order_id]));
      for (const id of ids) {
        const looked = orderOf(await looker.request({ type: "GET_ORDER", client_order_id: id }));
        assert.equal(looked.order_id, book.get(id), id);
        const retry = orderOf(await client.request({ type: "PLACE_ORDER", order: market(id) }));
        assert.equal(retry.order_id, book.get(id), id);
      }
      assert.equal((await client.wholeBook()).length, ids.length + 1, "no retry placed a second order");
    });
  }
});
