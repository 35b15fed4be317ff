// Frames asking for too much, from peers at their limits: answers stay bounded, so does the
// gateway's memory, and a well-behaved client is still served. Memory is judged by what the
// gateway serializes for a peer that reads nothing (deterministic); RSS is printed, not asserted.
import assert from "node:assert/strict";
import type WebSocket from "ws";
import type { PaperGateway, Received } from "../support/gateway-client";
import { GatewayClient, order, startPaperGateway } from "../support/gateway-client";

const MiB = 1024 * 1024;

function rssMiB(): string {
  return (process.memoryUsage().rss / MiB).toFixed(1);
}

/** Counts the characters JSON.stringify produces while installed: what the gateway built to send. */
class StringifyMeter {
  bytes = 0;
  readonly #original = JSON.stringify;

  install(): void {
    const original = this.#original;
    JSON.stringify = ((...args: Parameters<typeof JSON.stringify>): string => {
      const text = original(...args);
      if (typeof text === "string") this.bytes += text.length;
      return text;
    }) as typeof JSON.stringify;
  }

  uninstall(): void {
    JSON.stringify = this.#original;
  }
}

async function restingBook(paper: PaperGateway, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await paper.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 50,
      client_order_id: `R${i}`,
    });
  }
}

describe("Gateway: hostile sizes from peers at their limits", function () {
  this.timeout(30_000);
  let paper: PaperGateway | undefined;
  const sockets: WebSocket[] = [];
  const clients: GatewayClient[] = [];
  let meter: StringifyMeter | undefined;

  afterEach(async () => {
    meter?.uninstall();
    meter = undefined;
    for (const ws of sockets.splice(0)) ws.terminate();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await paper?.close();
    paper = undefined;
  });

  it("a peer that reads nothing and asks for 1,000 pages of 1,000 orders in ten 36 KB frames costs the gateway a bounded amount", async function () {
    paper = await startPaperGateway({}, { settings: { starting_cash: 1e12 } });
    await restingBook(paper, 1000);
    const good = await GatewayClient.open(paper.url);
    clients.push(good);
    const hostile = await GatewayClient.open(paper.url);
    sockets.push(hostile.ws);
    // It stops reading: TCP pushes back on the gateway, whose unsent bytes grow.
    (hostile.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const rssBefore = rssMiB();
    meter = new StringifyMeter();
    meter.install();
    for (let frame = 0; frame < 10; frame++) {
      hostile.send(
        Array.from({ length: 100 }, (_, i) => ({ type: "GET_ORDERBOOK", id: `f${frame}p${i}`, limit: 1000 })),
      );
    }
    // Served meanwhile and after.
    for (let i = 0; i < 20; i++) {
      const reply = await good.request({ type: "PLACE_ORDER", order: order() });
      assert.equal(reply.type, "RESULT", JSON.stringify(reply));
    }
    await GatewayClient.pause(300);
    meter.uninstall();
    const built = meter.bytes;
    console.log(
      `      built ${(built / MiB).toFixed(1)} MiB of answers for the peer; RSS ${rssBefore} → ${rssMiB()} MiB`,
    );
    // One page of 1,000 orders is ~0.4 MB: the whole ask is ~400 MB. The gateway may build what its
    // slow-consumer limit (8 MiB unsent) lets a connection have, and a batch or so more.
    assert.ok(built < 40 * MiB, `built ${(built / MiB).toFixed(1)} MiB for a peer that reads nothing`);
  });

  it("a batch of 100 pages to a peer that reads: each answered once, pages or RATE_LIMITED, and paging one by one reads the book", async function () {
    paper = await startPaperGateway({}, { settings: { starting_cash: 1e12 } });
    await restingBook(paper, 1000);
    const client = await GatewayClient.open(paper.url);
    clients.push(client);
    for (let round = 0; round < 3; round++) {
      const ids = Array.from({ length: 100 }, (_, i) => `r${round}p${i}`);
      client.send(ids.map((id) => ({ type: "GET_ORDERBOOK", id, limit: 1000 })));
      const answers: Received[] = [];
      for (const id of ids) answers.push(await client.reply(id, 10_000));
      let pages = 0;
      for (const answer of answers) {
        if (answer.type === "RESULT") {
          pages++;
          assert.equal((answer.result as unknown[]).length, 1000);
        } else {
          assert.equal(answer.error?.code, "RATE_LIMITED", JSON.stringify(answer).slice(0, 300));
          assert.ok((answer.error?.retry_after_ms ?? 0) > 0);
          assert.match(answer.error?.message ?? "", /order book/);
        }
      }
      assert.ok(pages >= 1, `round ${round}: at least one page answered`);
      // The refused ones, retried one at a time as retry_after_ms says, are answered.
      const retry = await client.request({ type: "GET_ORDERBOOK", limit: 1000 });
      assert.equal(retry.type, "RESULT", JSON.stringify(retry).slice(0, 300));
    }
    assert.equal((await client.wholeBook()).length, 1000);
  });
});
