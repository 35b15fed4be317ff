// GET_ORDERBOOK sorted the whole book for every page it answered: reading a book of n orders in
// pages of p cost n/p scans and sorts of n, quadratic in the book for a fixed page. The pages now
// share one sorted scan until an order changes (as GET_GTTS pages do, id-pages.ts). Counted here as
// the broker's book scans (each one a sort of the book), not timed.
import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

const BOOK = 5000;

async function restingBook(): Promise<PaperGateway> {
  const made = await startPaperGateway(
    { rate: { perSecond: 1e6, burst: 1e6 } },
    { settings: { starting_cash: 1e12 } },
  );
  for (let i = 0; i < BOOK; i++) {
    await made.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1 + (i % 5),
      order_type: "LIMIT",
      price: 50,
      client_order_id: `P${i}`,
    });
  }
  return made;
}

/** Counts the gateway's reads of the broker's whole book from now on. */
function countScans(made: PaperGateway): { readonly scans: number } {
  const broker = made.broker;
  const read = broker.getOrderbook.bind(broker);
  const counter = { scans: 0 };
  broker.getOrderbook = () => {
    counter.scans++;
    return read();
  };
  return counter;
}

async function page(
  client: GatewayClient,
  limit: number,
  after: string | undefined,
): Promise<OrderSnapshot[]> {
  return client.call({ type: "GET_ORDERBOOK", limit, ...(after === undefined ? {} : { after }) });
}

describe("Gateway: GET_ORDERBOOK pages share one sorted scan", function () {
  this.timeout(60_000);
  let made: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await made?.close();
    made = undefined;
  });

  it("a 5,000-order book read whole in pages of 7 to 1000: one scan per second of reading, not one per page", async function () {
    made = await restingBook();
    const client = await GatewayClient.open(made.url);
    clients.push(client);
    const counter = countScans(made);
    let expected: string[] | undefined;
    for (const size of [7, 100, 333, 1000]) {
      const before = counter.scans;
      const started = performance.now();
      const ids: string[] = [];
      let pages = 0;
      let after: string | undefined;
      for (;;) {
        const got = await page(client, size, after);
        pages++;
        for (const order of got) {
          assert.ok(after === undefined || order.order_id > after, `${order.order_id} after ${after}`);
          after = order.order_id;
          ids.push(order.order_id);
        }
        if (got.length < size) break;
      }
      expected ??= ids;
      assert.deepEqual(ids, expected, `pages of ${size} list the same book`);
      assert.equal(ids.length, BOOK);
      assert.equal(pages, Math.floor(BOOK / size) + 1);
      // Before: `pages` scans (715 for pages of 7), each a sort of 5,000 orders. Now at most one, and one
      // more for each second the reading took (a scan answers pages for 1 s when nothing changes).
      const most = 1 + Math.ceil((performance.now() - started) / 1000);
      const scans = counter.scans - before;
      assert.ok(scans <= most, `pages of ${size}: ${scans} scans for ${pages} pages`);
    }
  });

  it("a page read right after an order changes sees the change: placed, cancelled, filled, between pages", async function () {
    made = await restingBook();
    const client = await GatewayClient.open(made.url);
    clients.push(client);
    const counter = countScans(made);
    const first = await page(client, 1000, undefined);
    const second = await page(client, 1000, first[first.length - 1]!.order_id);
    assert.equal(counter.scans, 1);
    // Cancelled on the wire, in a range not yet read: the next page shows it cancelled.
    const target = second[second.length - 1]!;
    const third0 = await page(client, 1000, target.order_id);
    const victim = third0[10]!;
    await client.call({ type: "CANCEL_ORDER", order_id: victim.order_id });
    const third = await page(client, 1000, target.order_id);
    assert.equal(third.find((order) => order.order_id === victim.order_id)?.status, "CANCELLED");
    // Placed straight on the broker (no request of this connection): its event makes the pages read again.
    const placed = await made.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 50,
      client_order_id: "LATE1",
    });
    await client.next(
      (m) =>
        m.type === "EVENT" &&
        m.event !== undefined &&
        "order" in m.event &&
        m.event.order.order_id === placed.order_id,
    );
    const seen: string[] = [];
    for (let after = third[third.length - 1]!.order_id; ;) {
      const next = await page(client, 1000, after);
      seen.push(...next.map((order) => order.order_id));
      if (next.length < 1000) break;
      after = next[next.length - 1]!.order_id;
    }
    assert.ok(seen.includes(placed.order_id), "the order placed between pages is listed");
    // Filled by a quote: the page after it shows the fill.
    const buyer = third[0]!;
    made.broker.setPrice("INFY", 49);
    await client.next(
      (m) =>
        m.type === "EVENT" &&
        m.event !== undefined &&
        "order" in m.event &&
        m.event.order.order_id === buyer.order_id &&
        m.event.order.status === "FILLED",
      10_000,
    );
    const again = await page(client, 1, second[second.length - 1]!.order_id);
    assert.equal(again[0]?.order_id, buyer.order_id);
    assert.equal(again[0]?.status, "FILLED");
    // Each change cost one scan more, not one per page.
    assert.ok(counter.scans <= 6, `${counter.scans} scans`);
  });
});
