// A connection may have at most MAX_LISTED_ROWS order book and GTT rows built and not yet handed to
// its socket. A GET_ORDERBOOK (or GET_GTTS) without `limit` was counted as a whole page of 1,000
// rows however few it listed: a batch of 100 over a book of 3 orders had 80 refused RATE_LIMITED
// while the whole batch's answers were 300 rows. Rows are now counted as they are listed.
import assert from "node:assert/strict";
import { MAX_LISTED_ROWS } from "../../lib/gateway/frame-budget";
import type { GttSnapshot, OrderSnapshot } from "../../lib/protocol";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";

async function restingOrders(made: PaperGateway, count: number): Promise<OrderSnapshot[]> {
  const placed: OrderSnapshot[] = [];
  for (let i = 0; i < count; i++) {
    placed.push(
      await made.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 50,
        client_order_id: `L${i}`,
      }),
    );
  }
  return placed;
}

/** Sends `requests` as one array frame and waits for every answer. */
async function batch(client: GatewayClient, requests: Record<string, unknown>[]): Promise<Received[]> {
  client.send(requests);
  return Promise.all(requests.map((request) => client.reply(request.id as string, 30_000)));
}

describe("Gateway: listed rows are counted as listed", function () {
  this.timeout(60_000);
  let made: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await made?.close();
    made = undefined;
  });

  async function open(): Promise<GatewayClient> {
    const client = await GatewayClient.open(made!.url);
    clients.push(client);
    return client;
  }

  it("a book of 3: ten frames of 100 GET_ORDERBOOK without limit, sent at once, are all answered with the 3", async function () {
    made = await startPaperGateway({ rate: { perSecond: 1e6, burst: 1e6 } });
    const placed = await restingOrders(made, 3);
    const client = await open();
    for (let round = 0; round < 3; round++) {
      const frames = Array.from({ length: 10 }, (_, f) =>
        Array.from({ length: 100 }, (_, i) => ({ type: "GET_ORDERBOOK", id: `b${round}x${f}x${i}` })),
      );
      // Every frame before any answer is read: 1,000 requests in flight, 3,000 rows listed.
      for (const frame of frames) client.send(frame);
      const answers = await Promise.all(frames.flat().map((request) => client.reply(request.id, 30_000)));
      for (const answer of answers) {
        assert.equal(answer.type, "RESULT", `round ${round}: ${JSON.stringify(answer).slice(0, 300)}`);
        assert.deepEqual(
          (answer.result as OrderSnapshot[]).map((order) => order.order_id),
          placed.map((order) => order.order_id),
        );
      }
    }
  });

  it("GTTs too: a frame of 100 GET_GTTS without limit over 5 GTTs is answered whole", async function () {
    made = await startPaperGateway({ rate: { perSecond: 1e6, burst: 1e6 } });
    for (let i = 0; i < 5; i++) {
      await made.broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [50 + i],
        orders: [{ side: "BUY", quantity: 1, price: 50 + i }],
      });
    }
    const client = await open();
    const answers = await batch(
      client,
      Array.from({ length: 100 }, (_, i) => ({ type: "GET_GTTS", id: `g${i}` })),
    );
    for (const answer of answers) {
      assert.equal(answer.type, "RESULT", JSON.stringify(answer).slice(0, 300));
      assert.equal((answer.result as GttSnapshot[]).length, 5);
    }
  });

  it("the bound holds by rows listed: pages of 500 in a frame of 100, 40 answered; a refusal names the rule", async function () {
    made = await startPaperGateway(
      { rate: { perSecond: 1e6, burst: 1e6 } },
      { settings: { starting_cash: 1e12 } },
    );
    const placed = await restingOrders(made, 1500);
    const after = placed.map((order) => order.order_id).sort()[999]!;
    const client = await open();
    for (let round = 0; round < 3; round++) {
      const answers = await batch(
        client,
        Array.from({ length: 100 }, (_, i) => ({
          type: "GET_ORDERBOOK",
          id: `p${round}x${i}`,
          limit: 1000,
          after,
        })),
      );
      const listed = answers.filter((answer) => answer.type === "RESULT");
      // One frame's answers are written together: what is listed and unsent is its answered pages.
      assert.equal(listed.length, MAX_LISTED_ROWS / 500, `round ${round}`);
      for (const answer of listed) assert.equal((answer.result as unknown[]).length, 500);
      for (const answer of answers) {
        if (answer.type === "RESULT") continue;
        assert.equal(answer.error?.code, "RATE_LIMITED", JSON.stringify(answer));
        assert.equal(answer.error?.retry_after_ms, 100);
        assert.match(
          answer.error?.message ?? "",
          /^GET_ORDERBOOK: 20000 order book and GTT rows listed on this connection are not yet sent \(the most is 20000\); this page of 500 was not answered, retry after 100 ms$/,
        );
      }
    }
    // Pages of 1 over the same connection afterwards: its budget was given back whole.
    const small = await batch(
      client,
      Array.from({ length: 100 }, (_, i) => ({ type: "GET_ORDERBOOK", id: `s${i}`, limit: 1 })),
    );
    assert.ok(small.every((answer) => answer.type === "RESULT"));
  });
});
