// Attacks on durable acks with intents (issue 11): a disk that fails the idempotency index's
// fdatasync or write in the middle of a burst, hostile client_order_ids and bursts, and an index
// with a torn last line and an intent older than the broker's retention through ten restarts.
// Every request must get exactly one answer, an answer that reports failure must mean no order
// exists, nothing acknowledged may be unrecorded, and the next start must settle every intent.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import { IdempotencyIndex } from "../../lib/gateway/idempotency-index";
import { seededRandom } from "../../lib/paper/random";
import type { OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { BrokerError, type ErrorCode } from "../../lib/protocol/errors";
import { fastSettings, ObservedBroker } from "../support/broker-chaos";
import { FdFaults, type WriteFault } from "../support/fd-faults";
import type { Received } from "../support/gateway-client";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function market(clientOrderId: string, quantity = 1): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity, client_order_id: clientOrderId };
}

function retryable(code: string): boolean {
  return new BrokerError(code as ErrorCode, "").retryable;
}

describe("Gateway: durable acks on a failing disk, hostile ids and torn indexes", function () {
  this.timeout(30_000);
  let dir: string;
  let journalFile: string;
  let indexFile: string;
  let faults: FdFaults | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "intent-faults-"));
    journalFile = path.join(dir, "journal.jsonl");
    indexFile = path.join(dir, "journal.jsonl.idempotency.jsonl");
  });

  afterEach(async function () {
    faults?.uninstall();
    faults = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openBroker(retention = 100_000): Promise<PaperBroker> {
    const broker = new PaperBroker(
      {
        seed: 1,
        volatility: 0,
        spread_bps: 0,
        slippage_bps: 0,
        interval_ms: 60_000,
        starting_cash: 1e12,
        retention,
      },
      { journalFile },
    );
    await broker.connect();
    broker.setPrice("INFY", 100);
    cleanups.push(() => broker.close());
    return broker;
  }

  async function startGateway(broker: BrokerInterface, paper: PaperBroker): Promise<Gateway> {
    const gateway = await Gateway.start({
      broker,
      credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      idempotencyFile: indexFile,
      durable: () => paper.flush(),
      rate: { perSecond: 1_000_000, burst: 1_000_000 },
    });
    cleanups.push(() => gateway.close());
    return gateway;
  }

  async function connect(gateway: Gateway): Promise<GatewayClient> {
    const client = await GatewayClient.open(gateway.url);
    cleanups.push(() => client.close());
    return client;
  }

  async function up(retention?: number): Promise<{ paper: PaperBroker; client: GatewayClient }> {
    const paper = await openBroker(retention);
    const gateway = await startGateway(paper, paper);
    return { paper, client: await connect(gateway) };
  }

  /**
   * A SIGKILL as this process can stage it: the files as they are now (page cache included, which
   * a killed process keeps) are what the next start reads, whatever closing writes after this.
   */
  async function killNow(): Promise<void> {
    const journal = fs.readFileSync(journalFile);
    const index = fs.readFileSync(indexFile);
    faults?.uninstall();
    faults = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    fs.writeFileSync(journalFile, journal);
    fs.writeFileSync(indexFile, index);
  }

  /**
   * Sends `ids` as PLACE_ORDER frames of 100 without waiting for answers, keeping at most 800 in
   * flight (the gateway refuses past 1,000 on one connection), then waits for every answer.
   */
  async function burst(client: GatewayClient, ids: readonly string[], tag: string): Promise<Received[]> {
    const replies: Promise<Received>[] = ids.map((_, i) => client.reply(`${tag}${i}`, 20_000));
    for (let from = 0; from < ids.length; from += 100) {
      if (from >= 800) await replies[from - 800];
      client.send(
        ids
          .slice(from, from + 100)
          .map((id, i) => ({ type: "PLACE_ORDER", id: `${tag}${from + i}`, order: market(id) })),
      );
    }
    return Promise.all(replies);
  }

  function answersPer(client: GatewayClient, requestId: string): number {
    return client.received.filter((m) => m.id === requestId && (m.type === "RESULT" || m.type === "ERROR"))
      .length;
  }

  function orderOf(reply: Received): OrderSnapshot {
    assert.equal(reply.type, "RESULT", JSON.stringify(reply));
    return reply.result as OrderSnapshot;
  }

  /**
   * The checks every fault run ends with. The first answers: each request answered once; a final
   * error means no order was made for the id. Retries, on the same connection once the disk is
   * healthy, of everything not acknowledged: one order per id. Then a kill and a fresh start: every
   * id answers its one order, no id made two, and the reopened index holds no open intent.
   */
  async function audit(
    client: GatewayClient,
    ids: readonly string[],
    first: readonly Received[],
    tag: string,
    seed: number,
  ): Promise<{ acked: number; unknown: number }> {
    const where = `seed ${seed}`;
    const book = new Map((await client.wholeBook()).map((o) => [o.client_order_id, o]));
    const made = new Map<string, string>();
    let unknown = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const reply = first[i]!;
      assert.equal(answersPer(client, `${tag}${i}`), 1, `${where}: ${id} answered once`);
      if (reply.type === "RESULT") {
        made.set(id, orderOf(reply).order_id);
        assert.equal(book.get(id)?.order_id, orderOf(reply).order_id, `${where}: acked ${id} is in the book`);
        continue;
      }
      const code = reply.error?.code ?? "";
      if (!retryable(code)) {
        // A final answer is what a client reports; it must be true.
        assert.equal(
          book.get(id),
          undefined,
          `${where}: ${id} was answered ${code} (final: "${reply.error?.message}") but order ${book.get(id)?.order_id} exists`,
        );
        continue;
      }
      unknown += 1;
      const retry = await client.request({ type: "PLACE_ORDER", order: market(id) });
      made.set(id, orderOf(retry).order_id);
      if (book.has(id))
        assert.equal(orderOf(retry).order_id, book.get(id)?.order_id, `${where}: ${id} retry`);
    }
    const acked = made.size;
    await killNow();
    const { client: again } = await up();
    const after = await again.wholeBook();
    const perId = new Map<string, number>();
    for (const order of after) perId.set(order.client_order_id, (perId.get(order.client_order_id) ?? 0) + 1);
    for (const [id, count] of perId) assert.equal(count, 1, `${where}: ${id} made ${count} orders`);
    const replies = await burst(again, [...made.keys()], "again");
    [...made.entries()].forEach(([id, orderId], i) => {
      assert.equal(orderOf(replies[i]!).order_id, orderId, `${where}: ${id} answers its order after a kill`);
    });
    assert.equal((await again.wholeBook()).length, after.length, `${where}: the retries placed nothing`);
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    const index = await IdempotencyIndex.open({ file: indexFile });
    assert.deepEqual(index.intents("default"), [], `${where}: every intent settled`);
    for (const [id, orderId] of made)
      assert.equal(index.get("default", id)?.orderId, orderId, `${where}: ${id}`);
    await index.close();
    return { acked, unknown };
  }

  for (let seed = 1; seed <= 6; seed++) {
    it(`seed ${seed}: the index's fdatasync fails with EIO in the middle of a burst`, async function () {
      const random = seededRandom(seed);
      const { client } = await up();
      const ids = Array.from({ length: 300 }, (_, i) => `s${seed}n${i}`);
      // One to three failing flushes among the first: a burst of 300 shares only a few flushes.
      const from = Math.floor(random() * 2);
      const count = 1 + Math.floor(random() * 3);
      faults = new FdFaults(indexFile, { sync: (n) => n >= from && n < from + count });
      faults.install();
      const first = await burst(client, ids, "p");
      const failed = faults.failedSyncs;
      faults.uninstall();
      assert.ok(failed > 0, `seed ${seed}: the fault was met (flushes ${from}..${from + count - 1})`);
      const { unknown } = await audit(client, ids, first, "p", seed);
      assert.ok(unknown > 0, `seed ${seed}: some answers waited on a failed flush`);
    });
  }

  for (let seed = 1; seed <= 6; seed++) {
    it(`seed ${seed}: the index's writes fail with ENOSPC (whole and part-way) in the middle of a burst`, async function () {
      const random = seededRandom(100 + seed);
      const { client } = await up();
      const ids = Array.from({ length: 300 }, (_, i) => `w${seed}n${i}`);
      const plan = new Map<number, WriteFault>();
      for (let k = 0; k < 12; k++) plan.set(Math.floor(random() * 500), random() < 0.5 ? "fail" : "partial");
      faults = new FdFaults(indexFile, { write: (n) => plan.get(n) ?? "none" });
      faults.install();
      const first = await burst(client, ids, "p");
      const failed = faults.failedWrites;
      faults.uninstall();
      assert.ok(failed > 0, `seed ${seed}: the fault was met`);
      const refused = first.filter((r) => r.type === "ERROR");
      assert.ok(refused.length > 0, `seed ${seed}: some placements met a failed write`);
      await audit(client, ids, first, "p", seed);
    });
  }

  it("a retry while the index still cannot be flushed stays an unknown outcome, and answers the one order once it can", async function () {
    const { paper, client } = await up();
    let failing = true;
    faults = new FdFaults(indexFile, { sync: () => failing });
    faults.install();
    const first = await client.request({ type: "PLACE_ORDER", order: market("D") });
    for (let attempt = 0; attempt < 5; attempt++) {
      const retry = await client.request({ type: "PLACE_ORDER", order: market("D") });
      assert.equal(retry.error?.code, "TIMEOUT", `attempt ${attempt}: ${JSON.stringify(retry)}`);
      assert.match(retry.error?.message ?? "", /client_order_id D: order P\d+ was placed .*\(EIO\)/);
      assert.doesNotMatch(
        retry.error?.message ?? "",
        new RegExp(dir),
        "the index's path stays on the gateway",
      );
    }
    assert.equal(first.error?.code, "TIMEOUT", JSON.stringify(first));
    failing = false;
    const healed = orderOf(await client.request({ type: "PLACE_ORDER", order: market("D") }));
    assert.equal((await paper.getOrderbook()).filter((o) => o.client_order_id === "D").length, 1);
    assert.equal(healed.client_order_id, "D");
  });

  it("a WebSocketBroker whose placement met a failed flush reports the order placed, once", async function () {
    const paper = await openBroker();
    const gateway = await startGateway(paper, paper);
    // A breaker this burst's unknown outcomes would open for its whole cool-down would keep the
    // settling lookups out past the window (reported apart); here the gateway's answers are tested.
    const observed = new ObservedBroker(fastSettings(gateway.url, { breaker: { failure_threshold: 1000 } }));
    cleanups.push(() => observed.broker.close());
    await observed.broker.connect();
    let flushes = 0;
    faults = new FdFaults(indexFile, { sync: () => flushes++ < 3 });
    faults.install();
    const orders = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        observed.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `ws${i}` }),
      ),
    );
    assert.ok(faults.failedSyncs > 0, "the fault was met");
    faults.uninstall();
    const book = await paper.getOrderbook();
    orders.forEach((outcome, i) => {
      const made = book.filter((o) => o.client_order_id === `ws${i}`);
      assert.equal(made.length, 1, `ws${i} placed once`);
      if (outcome.status === "rejected")
        assert.fail(`ws${i} exists as ${made[0]?.order_id} but was reported ${String(outcome.reason)}`);
      assert.equal(outcome.value.order_id, made[0]?.order_id);
    });
  });

  it("10,000 distinct 20-character ids of every class in one burst, then a kill: each answers its one order", async function () {
    this.timeout(60_000);
    const random = seededRandom(7);
    const ids = new Set<string>();
    while (ids.size < 5_000) {
      let id = "";
      for (let c = 0; c < 20; c++) id += ALNUM[Math.floor(random() * ALNUM.length)];
      ids.add(id);
    }
    // Ids that differ only in case are different ids: each pair makes two orders.
    for (const id of [...ids]) ids.add(id.toLowerCase() === id ? id.toUpperCase() : id.toLowerCase());
    for (const edge of ["A".repeat(20), "a".repeat(20), "0".repeat(20), "9".repeat(20), "Z", "z", "0"])
      ids.add(edge);
    const all = [...ids].slice(0, 10_000);
    assert.equal(all.length, 10_000);
    const { client } = await up();
    const first = await burst(client, all, "h");
    const orderIds = new Set<string>();
    for (const reply of first) orderIds.add(orderOf(reply).order_id);
    assert.equal(orderIds.size, 10_000, "one order per id");
    await audit(client, all, first, "h", 7);
  });

  it("an intent older than the broker's retention and a torn last line, through ten restarts in a row", async function () {
    this.timeout(60_000);
    const retention = 10;
    // Crash while placing X: the broker takes it, the gateway never hears back.
    {
      const paper = await openBroker(retention);
      let reached!: () => void;
      const atBroker = new Promise<void>((resolve) => (reached = resolve));
      const broker = new Proxy(paper, {
        get(target, prop) {
          if (prop === "placeOrder") {
            return async (order: OrderRequestInput): Promise<OrderSnapshot> => {
              const placed = await target.placeOrder(order);
              if (order.client_order_id !== "X") return placed;
              reached();
              return new Promise<OrderSnapshot>(() => undefined);
            };
          }
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const client = await connect(await startGateway(broker, paper));
      await client.call({ type: "PLACE_ORDER", order: market("A") });
      client.send({ type: "PLACE_ORDER", id: "x", order: market("X") });
      await atBroker;
      await killNow();
    }
    // The account trades on without the gateway until X's order has left the broker's memory.
    {
      const paper = await openBroker(retention);
      for (let i = 0; i < 15; i++) {
        await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `B${i}` });
      }
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }
    const answered = new Map<string, string>();
    for (let restart = 0; restart < 10; restart++) {
      // A placement cut mid-line by the last kill: nothing was answered for it.
      fs.appendFileSync(
        indexFile,
        JSON.stringify(["i", `default\u0000T${restart}`, "h", "2099-01-01", ""]).slice(0, 17 + restart),
      );
      const { paper, client } = await up(retention);
      const seq = paper.lastSeq;
      const refused = await client.request({ type: "PLACE_ORDER", order: market("X") });
      assert.equal(
        refused.error?.code,
        "IDEMPOTENCY_UNKNOWN",
        `restart ${restart}: ${JSON.stringify(refused)}`,
      );
      assert.equal(
        (await client.request({ type: "GET_ORDER", client_order_id: "X" })).error?.code,
        "IDEMPOTENCY_UNKNOWN",
      );
      assert.equal(paper.lastSeq, seq, `restart ${restart}: X placed nothing`);
      // The torn id was never answered: it is free, and the line after the tear is read back.
      const torn = orderOf(await client.request({ type: "PLACE_ORDER", order: market(`T${restart}`) }));
      answered.set(`T${restart}`, torn.order_id);
      const fresh = orderOf(await client.request({ type: "PLACE_ORDER", order: market(`N${restart}`) }));
      answered.set(`N${restart}`, fresh.order_id);
      for (const [id, orderId] of answered) {
        const again = await client.request({ type: "PLACE_ORDER", order: market(id) });
        // Past the broker's retention the id is still known: refused, never placed again.
        if (again.type === "ERROR")
          assert.equal(again.error?.code, "DUPLICATE_ORDER", `restart ${restart} ${id}`);
        else assert.equal(orderOf(again).order_id, orderId, `restart ${restart} ${id}`);
        assert.match(JSON.stringify(again), new RegExp(orderId), `restart ${restart} ${id} names its order`);
      }
      const book = await client.wholeBook();
      assert.equal(book.filter((o) => o.client_order_id === "X").length, 0, `restart ${restart}`);
      assert.equal(
        new Set(book.map((o) => o.client_order_id)).size,
        book.length,
        `restart ${restart}: one order per id`,
      );
      await killNow();
    }
  });
});
