// A connection may have at most MAX_LISTED_ROWS order book and GTT rows built and not yet handed to
// its socket. A GET_ORDERBOOK (or GET_GTTS) without `limit` was counted as a whole page of 1,000
// rows however few it listed: a batch of 100 over a book of 3 orders had 80 refused RATE_LIMITED
// while the whole batch's answers were 300 rows. Rows are now counted as they are listed.
import assert from "node:assert/strict";
import { MAX_LISTED_ROWS } from "../../lib/gateway/frame-budget";
import type { GttSnapshot, OrderSnapshot } from "../../lib/protocol";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import { waitFor } from "../support/wait";

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

// A page refused over MAX_LISTED_ROWS was refused after the book was scanned and sorted: a
// connection that kept its listed rows at the bound (pages in a frame whose answers wait on one
// slow request) made the gateway scan the whole book for nothing, once per frame after every change.
describe("Gateway: a page with no room left is refused before the list is scanned", function () {
  this.timeout(60_000);
  let made: PaperGateway | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await made?.close();
    made = undefined;
  });

  for (const type of ["GET_ORDERBOOK", "GET_GTTS"] as const) {
    it(`${type}: with 20,000 rows held by a waiting frame, 5 frames of 100 pages over a changed list cost no scan`, async function () {
      made = await startPaperGateway(
        { rate: { perSecond: 1e6, burst: 1e6 } },
        { settings: { starting_cash: 1e12 } },
      );
      const broker = made.broker;
      if (type === "GET_ORDERBOOK") await restingOrders(made, 1000);
      else {
        for (let i = 0; i < 1000; i++) {
          await broker.placeGtt({
            type: "single",
            symbol: "INFY",
            trigger_values: [50],
            orders: [{ side: "BUY", quantity: 1, price: 50 }],
          });
        }
      }
      let scans = 0;
      if (type === "GET_ORDERBOOK") {
        const scan = broker.getOrderbook.bind(broker);
        broker.getOrderbook = () => ((scans += 1), scan());
      } else {
        const scan = broker.getGtts.bind(broker);
        broker.getGtts = () => ((scans += 1), scan());
      }
      // GET_POSITIONS answers only when released: the frame's 20 whole pages stay listed, unsent.
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      const positions = broker.getPositions.bind(broker);
      broker.getPositions = async () => (await held, positions());
      const open = await GatewayClient.open(made.url);
      clients.push(open);
      const holding = [
        ...Array.from({ length: 20 }, (_, i) => ({ type, id: `h${i}`, limit: 1000 })),
        { type: "GET_POSITIONS", id: "held" },
      ];
      open.send(holding);
      await waitFor(() => scans === 1, "the holding frame's scan");
      // Its pages listed: the next frame's pages find no room.
      await new Promise((resolve) => setImmediate(resolve));
      const before = scans;
      let refused = 0;
      for (let round = 0; round < 5; round++) {
        // The list changes between frames: nothing cached may answer the next one.
        if (type === "GET_ORDERBOOK") {
          await broker.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 1,
            order_type: "LIMIT",
            price: 50,
          });
        } else {
          await open.call({
            type: "PLACE_GTT",
            gtt: {
              type: "single",
              symbol: "INFY",
              trigger_values: [50],
              orders: [{ side: "BUY", quantity: 1, price: 50 }],
            },
          });
        }
        const frame = Array.from({ length: 100 }, (_, i) => ({
          type,
          id: `r${round}x${i}`,
          ...(i % 2 === 0 ? { limit: 1000 } : {}),
        }));
        const answers = await batch(open, frame);
        assert.equal(scans - before, 0, `round ${round}: list scans made for 100 pages all refused`);
        for (const answer of answers) {
          assert.equal(
            answer.error?.code,
            "RATE_LIMITED",
            `round ${round}: ${JSON.stringify(answer).slice(0, 300)}`,
          );
          assert.equal(answer.error?.retry_after_ms, 100);
          assert.match(
            answer.error?.message ?? "",
            new RegExp(
              `^${type}: 20000 order book and GTT rows listed .* this page of up to 1000 was not answered`,
            ),
          );
          refused += 1;
        }
      }
      console.log(
        `      ${type}: ${refused} pages refused over the row bound, ${scans - before} list scans for them`,
      );
      assert.equal(scans - before, 0, "scans made for pages that were refused");
      release();
      const held20 = await Promise.all(holding.map((request) => open.reply(request.id, 30_000)));
      assert.ok(held20.every((answer) => answer.type === "RESULT"));
      // Room again: the next page is answered, from a fresh scan.
      const page = await open.call({ type, limit: 1000 });
      assert.equal((page as unknown[]).length, 1000);
    });
  }
});
