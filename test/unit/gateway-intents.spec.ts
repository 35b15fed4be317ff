// Issue 11: a durable PLACE_ORDER writes an intent to the idempotency index before the broker
// hears of the order, and a stop between the two is settled at the next start, never by placing
// an order twice.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BrokerInterface } from "../../lib/brokers/interface";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import { IdempotencyIndex } from "../../lib/gateway/idempotency-index";
import { Placements } from "../../lib/gateway/placements";
import { BrokerError } from "../../lib/protocol/errors";
import type { OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";

function market(clientOrderId: string, quantity = 1): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity, client_order_id: clientOrderId };
}

/** The broker with some members replaced; everything else is the broker's own, bound to it. */
function wrap(broker: PaperBroker, overrides: Record<string, unknown>): BrokerInterface {
  return new Proxy(broker, {
    get(target, prop) {
      if (typeof prop === "string" && prop in overrides) return overrides[prop];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe("Gateway: placement intents and their recovery after a stop", function () {
  this.timeout(30_000);
  let dir: string;
  let journalFile: string;
  let indexFile: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-"));
    journalFile = path.join(dir, "journal.jsonl");
    indexFile = path.join(dir, "journal.jsonl.idempotency.jsonl");
  });

  afterEach(async function () {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openBroker(): Promise<PaperBroker> {
    const broker = new PaperBroker(
      {
        seed: 1,
        volatility: 0,
        spread_bps: 0,
        slippage_bps: 0,
        interval_ms: 60_000,
        starting_cash: 1e7,
        retention: 10,
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

  /** Stops in the order a crash leaves things: whatever was in flight never finishes. */
  async function stopAll(): Promise<void> {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }

  function indexLines(): unknown[] {
    return fs
      .readFileSync(indexFile, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as unknown);
  }

  function linesFor(clientOrderId: string): unknown[][] {
    return indexLines().filter(
      (line): line is unknown[] =>
        Array.isArray(line) &&
        line.some((v) => typeof v === "string" && v.endsWith(`\u0000${clientOrderId}`)),
    );
  }

  /**
   * Places a few orders, then X through a broker that either takes X and never answers (`taken`)
   * or never passes it on; then stops everything, as a kill between the broker and the index would.
   */
  async function crashWhilePlacing(taken: boolean): Promise<{ placedId: string | undefined }> {
    const paper = await openBroker();
    let placedId: string | undefined;
    let intentFirst = false;
    let reached!: () => void;
    const atBroker = new Promise<void>((resolve) => (reached = resolve));
    const broker = wrap(paper, {
      placeOrder: async (order: OrderRequestInput): Promise<OrderSnapshot> => {
        if (order.client_order_id !== "X") return paper.placeOrder(order);
        intentFirst = fs.readFileSync(indexFile, "utf8").includes('["i","default\\u0000X"');
        if (taken) placedId = (await paper.placeOrder(order)).order_id;
        reached();
        return new Promise<OrderSnapshot>(() => undefined);
      },
    });
    const gateway = await startGateway(broker, paper);
    const client = await connect(gateway);
    for (const id of ["A1", "A2", "A3"]) await client.call({ type: "PLACE_ORDER", order: market(id) });
    client.send({ type: "PLACE_ORDER", id: "x", order: market("X") });
    await atBroker;
    // Written (to the page cache) before the broker heard of the order.
    assert.ok(intentFirst, "the intent is in the index file before the broker is asked");
    await stopAll();
    const lines = linesFor("X");
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0]?.[0], "i");
    return { placedId };
  }

  /** Ends `count` orders on the broker alone (the gateway down), as another user of the account would. */
  async function tradeWithoutGateway(count: number): Promise<void> {
    const paper = await openBroker();
    for (let i = 0; i < count; i++) {
      const order = await paper.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: `B${i}`,
      });
      assert.equal(order.status, "FILLED");
    }
    await stopAll();
  }

  it("completes an intent whose order the broker took: the retry answers that order, places none", async function () {
    const { placedId } = await crashWhilePlacing(true);
    assert.ok(placedId !== undefined);
    const paper = await openBroker();
    const gateway = await startGateway(paper, paper);
    const seq = paper.lastSeq;
    const client = await connect(gateway);
    const retry = await client.call({ type: "PLACE_ORDER", order: market("X") });
    assert.equal(retry.order_id, placedId);
    assert.equal(paper.lastSeq, seq, "nothing placed");
    assert.equal((await client.wholeBook()).filter((o) => o.client_order_id === "X").length, 1);
    await stopAll();
    const index = await IdempotencyIndex.open({ file: indexFile });
    assert.deepEqual(index.intents("default"), [], "the intent was completed on disk");
    assert.equal(index.get("default", "X")?.orderId, placedId);
    await index.close();
  });

  it("frees an intent the broker never took when it still holds every order made since", async function () {
    await crashWhilePlacing(false);
    await tradeWithoutGateway(4);
    const paper = await openBroker();
    const gateway = await startGateway(paper, paper);
    const client = await connect(gateway);
    const placed = await client.call({ type: "PLACE_ORDER", order: market("X") });
    const again = await client.call({ type: "PLACE_ORDER", order: market("X") });
    assert.equal(again.order_id, placed.order_id);
    assert.equal((await client.wholeBook()).filter((o) => o.client_order_id === "X").length, 1);
  });

  for (const taken of [true, false]) {
    it(`refuses the id when the broker has forgotten orders made since (${taken ? "taken" : "never taken"}), across restarts`, async function () {
      const { placedId } = await crashWhilePlacing(taken);
      await tradeWithoutGateway(15);
      for (let restart = 0; restart < 2; restart++) {
        const paper = await openBroker();
        if (placedId !== undefined) {
          assert.ok((await paper.lastForgottenOrderId()) >= placedId, "the broker has forgotten X's order");
          await assert.rejects(paper.getOrder(placedId), /not found/);
        }
        const gateway = await startGateway(paper, paper);
        const seq = paper.lastSeq;
        const client = await connect(gateway);
        for (const quantity of [1, 2]) {
          const retry = await client.request({ type: "PLACE_ORDER", order: market("X", quantity) });
          assert.equal(retry.error?.code, "IDEMPOTENCY_UNKNOWN", JSON.stringify(retry));
          assert.match(retry.error?.message ?? "", /client_order_id X: .*new client_order_id/);
        }
        const lookup = await client.request({ type: "GET_ORDER", client_order_id: "X" });
        assert.equal(lookup.error?.code, "IDEMPOTENCY_UNKNOWN");
        assert.equal(paper.lastSeq, seq, "nothing placed");
        assert.equal((await client.wholeBook()).filter((o) => o.client_order_id === "X").length, 0);
        await stopAll();
      }
    });
  }

  it("refuses an open intent when the broker cannot say what it has forgotten", async function () {
    await crashWhilePlacing(false);
    const paper = await openBroker();
    const gateway = await startGateway(wrap(paper, { lastForgottenOrderId: undefined }), paper);
    const client = await connect(gateway);
    const retry = await client.request({ type: "PLACE_ORDER", order: market("X") });
    assert.equal(retry.error?.code, "IDEMPOTENCY_UNKNOWN");
    assert.equal((await client.wholeBook()).filter((o) => o.client_order_id === "X").length, 0);
    // Other ids are placed as ever.
    assert.equal((await client.call({ type: "PLACE_ORDER", order: market("Y") })).client_order_id, "Y");
  });

  it("frees the id of an order the broker refused; leaves an unknown outcome's intent to the next start", async function () {
    const paper = await openBroker();
    const broker = wrap(paper, {
      placeOrder: (order: OrderRequestInput): Promise<OrderSnapshot> => {
        if (order.client_order_id === "R")
          return Promise.reject(new BrokerError("NO_QUOTE", "no quote for INFY"));
        if (order.client_order_id === "N")
          return Promise.reject(new BrokerError("NETWORK", "connection lost"));
        return paper.placeOrder(order);
      },
    });
    const gateway = await startGateway(broker, paper);
    const client = await connect(gateway);
    assert.equal((await client.request({ type: "PLACE_ORDER", order: market("R") })).error?.code, "NO_QUOTE");
    assert.equal((await client.request({ type: "PLACE_ORDER", order: market("N") })).error?.code, "NETWORK");
    await stopAll();
    assert.deepEqual(
      linesFor("R").map((line) => line[0]),
      ["i", "x"],
    );
    assert.deepEqual(
      linesFor("N").map((line) => line[0]),
      ["i"],
    );
    const reopened = await openBroker();
    const second = await startGateway(reopened, reopened);
    const again = await connect(second);
    // Other parameters are fine: no order was made with either id.
    assert.equal((await again.call({ type: "PLACE_ORDER", order: market("R", 2) })).quantity, 2);
    assert.equal((await again.call({ type: "PLACE_ORDER", order: market("N", 3) })).quantity, 3);
  });

  it("asks no broker when the intent cannot be written", async function () {
    const paper = await openBroker();
    const index = await IdempotencyIndex.open({ file: indexFile });
    const placements = new Placements(paper, index, "default");
    await index.close();
    const order = { ...market("W"), exchange: "NSE", order_type: "MARKET", product: "MIS", validity: "DAY" };
    await assert.rejects(
      placements.place(order as Parameters<Placements["place"]>[0]),
      /idempotency index .*: write failed: the index is closed/,
    );
    assert.equal((await paper.getOrderbook()).length, 0, "nothing placed");
  });

  it("reads back an intent alone at the end, ignores a line cut short, and a line after a torn one", async function () {
    const k = (id: string): string => `acct\u0000${id}`;
    const day = new Date().toISOString().slice(0, 10);
    const complete = JSON.stringify([k("a"), "P000000001", "h1", day]);
    const intent = JSON.stringify(["i", k("b"), "h2", day, "P000000001"]);
    const later = JSON.stringify([k("c"), "P000000003", "h3", day]);
    fs.writeFileSync(indexFile, `${complete}\n${intent.slice(0, 20)}\n${later}\n${intent}\n`);
    const index = await IdempotencyIndex.open({ file: indexFile });
    assert.equal(index.get("acct", "a")?.orderId, "P000000001");
    assert.equal(index.get("acct", "c")?.orderId, "P000000003");
    assert.deepEqual(index.intents("acct"), [{ clientOrderId: "b", hash: "h2", day, after: "P000000001" }]);
    assert.deepEqual(index.intents("other"), []);
    await index.close();

    // Cut inside the intent: nothing was answered for it, so nothing is read back.
    fs.writeFileSync(indexFile, `${complete}\n${intent.slice(0, -3)}`);
    const cut = await IdempotencyIndex.open({ file: indexFile });
    assert.deepEqual(cut.intents("acct"), []);
    // Appends after a cut line start on a line of their own (the compaction at open rewrote it).
    cut.record("acct", "d", "P000000004", "h4");
    await cut.close();
    const reread = await IdempotencyIndex.open({ file: indexFile });
    assert.equal(reread.get("acct", "d")?.orderId, "P000000004");
    assert.equal(reread.get("acct", "a")?.orderId, "P000000001");
    await reread.close();
  });

  it("many placements in one burst: every intent ends in an order line, and a reopen finds no open intent", async function () {
    const paper = await openBroker();
    const gateway = await startGateway(paper, paper);
    const client = await connect(gateway);
    const batch = Array.from({ length: 100 }, (_, i) => ({
      type: "PLACE_ORDER",
      id: `b${i}`,
      order: market(`burst${i}`),
    }));
    client.send(batch);
    for (let i = 0; i < 100; i++) assert.equal((await client.reply(`b${i}`)).type, "RESULT");
    await stopAll();
    const index = await IdempotencyIndex.open({ file: indexFile });
    assert.deepEqual(index.intents("default"), []);
    for (let i = 0; i < 100; i++) assert.ok(index.get("default", `burst${i}`) !== undefined);
    await index.close();
  });
});
