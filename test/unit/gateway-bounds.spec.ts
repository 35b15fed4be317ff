import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { OrderSnapshot } from "../../lib/protocol";
import { MAX_LISTED_ROWS } from "../../lib/gateway/frame-budget";
import { WIRE_LIMITS } from "../../lib/protocol/wire";
import { fastSettings } from "../support/broker-chaos";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

/** Fails the test on any unhandled rejection while it runs (the gateway must handle every one). */
function watchUnhandled(): { readonly seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on("unhandledRejection", onRejection);
  return { seen, stop: () => process.off("unhandledRejection", onRejection) };
}

describe("Gateway: bounded answers", function () {
  this.timeout(120_000);
  let made: PaperGateway | undefined;
  const clients: GatewayClient[] = [];
  const brokers: WebSocketBroker[] = [];

  afterEach(async function () {
    for (const broker of brokers.splice(0)) await broker.close();
    for (const client of clients.splice(0)) await client.close();
    await made?.close();
    made = undefined;
  });

  /** A gateway over 20,000 resting orders: each GET_ORDERBOOK of the whole book would be ~8 MB. */
  async function bigBook(): Promise<PaperGateway> {
    made = await startPaperGateway({}, { settings: { starting_cash: 1e12 } });
    for (let i = 0; i < 20_000; i++) {
      await made.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 50,
        client_order_id: `B${i}`,
      });
    }
    return made;
  }

  it("survives one batch of 100 GET_ORDERBOOK over 20,000 resting orders, answering each once", async function () {
    const { url } = await bigBook();
    const watch = watchUnhandled();
    try {
      const client = await GatewayClient.open(url);
      clients.push(client);
      const frameBytes: number[] = [];
      client.ws.on("message", (data: Buffer) => frameBytes.push(data.length));

      // The attack: 100 whole-book requests in one 3.6 KB frame.
      const ids = Array.from({ length: 100 }, (_, i) => `ob${i}`);
      client.send(ids.map((id) => ({ type: "GET_ORDERBOOK", id })));
      const answers: Received[] = [];
      for (const id of ids) answers.push(await client.reply(id, 30_000));
      for (const answer of answers) {
        assert.equal(answer.type, "ERROR", JSON.stringify(answer).slice(0, 200));
        // A refusal lists nothing, so none is charged against MAX_LISTED_ROWS: each is refused for
        // what it is.
        assert.equal(answer.error?.code, "VALIDATION");
        assert.match(answer.error?.message ?? "", /limit: is required when more than 1000 orders/);
      }

      // The same batch paged: 100 pages of 1,000 orders, in frames of about 1 MiB at most. The
      // connection may have MAX_LISTED_ROWS rows listed and unsent: pages past them are refused.
      const paged = Array.from({ length: 100 }, (_, i) => ({
        type: "GET_ORDERBOOK",
        id: `pg${i}`,
        limit: WIRE_LIMITS.maxPage,
      }));
      client.send(paged);
      let pages = 0;
      for (const { id } of paged) {
        const reply = await client.reply(id, 60_000);
        if (reply.type === "ERROR") {
          assert.equal(reply.error?.code, "RATE_LIMITED", JSON.stringify(reply));
          continue;
        }
        pages++;
        assert.equal((reply.result as OrderSnapshot[]).length, WIRE_LIMITS.maxPage);
      }
      assert.equal(pages, MAX_LISTED_ROWS / WIRE_LIMITS.maxPage);
      assert.ok(Math.max(...frameBytes) < 2 * 1024 * 1024, `largest frame ${Math.max(...frameBytes)} bytes`);

      // Still serving, and the book reads whole page by page without a gap or a repeat.
      const account = await client.call({ type: "GET_ACCOUNT" });
      assert.ok(account.cash > 0);
      const seen = new Set<string>();
      let after: string | undefined;
      for (;;) {
        const page: OrderSnapshot[] = await client.call({
          type: "GET_ORDERBOOK",
          limit: 777,
          ...(after === undefined ? {} : { after }),
        });
        for (const order of page) {
          assert.ok(!seen.has(order.order_id), `${order.order_id} on two pages`);
          assert.ok(after === undefined || order.order_id > after, "pages follow order_id order");
          seen.add(order.order_id);
        }
        if (page.length < 777) break;
        after = page[page.length - 1]!.order_id;
      }
      assert.equal(seen.size, 20_000);
    } finally {
      watch.stop();
    }
    assert.deepEqual(watch.seen.map(String), []);
  });

  it("refuses a bad page with VALIDATION naming the field", async function () {
    made = await startPaperGateway();
    const client = await GatewayClient.open(made.url);
    clients.push(client);
    for (const [limit, rule] of [
      [0, "must be at least 1"],
      [1001, "must be at most 1000"],
      [1.5, "must be an integer"],
    ] as const) {
      const reply = await client.request({ type: "GET_ORDERBOOK", limit });
      assert.equal(reply.type, "ERROR");
      assert.equal(reply.error?.code, "VALIDATION");
      assert.match(reply.error?.message ?? "", new RegExp(`limit: ${rule}`));
    }
  });

  it("lets the WebSocketBroker read a book larger than one page", async function () {
    const { url } = await bigBook();
    const broker = new WebSocketBroker(fastSettings(url, { request_timeout_ms: 20_000 }));
    brokers.push(broker);
    await broker.connect();
    const book = await broker.getOrderbook();
    assert.equal(book.length, 20_000);
    assert.equal(new Set(book.map((o) => o.order_id)).size, 20_000);
  });
});
