import assert from "node:assert/strict";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import type { PaperGateway, Received } from "../support/gateway-client";

/** The longest symbol the wire allows (64 characters, single spaces between words). */
const SYMBOL = `${"A".repeat(31)} ${"B".repeat(32)}`;
const FRAME_BOUND = 16 * 1024;
/** Well under one replay of 10,000 such events (6.2 MB), which the old gateway wrote at once. */
const UNSENT_LIMIT = 2 * 1024 * 1024;

let orders = 0;
/** An order at the wire's longest fields that the paper broker rejects: one event of ~620 bytes. */
function hugeOrder(): Record<string, unknown> {
  orders += 1;
  return {
    symbol: SYMBOL,
    exchange: "NSE",
    side: "BUY",
    quantity: 10_000_000,
    order_type: "LIMIT",
    price: 1.05,
    product: "NRML",
    validity: "DAY",
    variety: "regular",
    tag: `T${orders}`.padEnd(20, "t"),
    client_order_id: `C${process.pid}x${orders}`.padEnd(20, "c"),
  };
}

/**
 * Places `batches` × 100 orders through `client`, at most 4 batches unanswered: the test's readers
 * share one loaded process, and what is asked of them here is to keep up, not to race the gateway.
 */
async function flood(client: GatewayClient, batches: number): Promise<void> {
  const replies: Promise<unknown>[] = [];
  for (let b = 0; b < batches; b++) {
    if (b >= 4) await replies[(b - 4) * 100 + 99];
    const batch = Array.from({ length: 100 }, () => {
      const id = client.newId();
      replies.push(client.reply(id, 30_000));
      return { type: "PLACE_ORDER", id, order: hugeOrder() };
    });
    client.send(batch);
  }
  await Promise.all(replies);
}

/** Every frame's length and the number of messages in it. */
function frameSizes(client: GatewayClient): { length: number; count: number }[] {
  return client.frames.map((frame) => ({
    length: JSON.stringify(frame).length,
    count: Array.isArray(frame) ? frame.length : 1,
  }));
}

function eventSeqs(received: readonly Received[]): number[] {
  return received.flatMap((m) => (m.type === "EVENT" && m.event !== undefined ? [m.event.seq] : []));
}

async function waitForEvents(client: GatewayClient, count: number): Promise<void> {
  const until = Date.now() + 30_000;
  while (eventSeqs(client.received).length < count) {
    if (Date.now() > until)
      throw new Error(`only ${eventSeqs(client.received).length} of ${count} events arrived`);
    await GatewayClient.pause(10);
  }
}

describe("gateway: push and replay frames are bounded by bytes, not only by count", function () {
  this.timeout(60_000);
  let made: PaperGateway;
  const open: GatewayClient[] = [];

  before(async function () {
    made = await startPaperGateway({
      maxAnswerFrameBytes: FRAME_BOUND,
      maxBufferedBytes: UNSENT_LIMIT,
      replayBuffer: 10_000,
      rate: { perSecond: 1_000_000, burst: 1_000_000 },
      keyRate: { perSecond: 1_000_000, burst: 1_000_000 },
    });
    made.broker.setPrice(SYMBOL, 100);
  });
  afterEach(async function () {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  after(() => made.close());

  async function connect(): Promise<GatewayClient> {
    const client = await GatewayClient.open(made.url);
    open.push(client);
    return client;
  }

  it("pushes 10,000 events at the longest fields in frames of at most the bound", async function () {
    const placer = await connect();
    const listener = await connect();
    const from = made.gateway.seq;
    await flood(placer, 100);
    await waitForEvents(listener, 10_000);
    const seqs = eventSeqs(listener.received);
    assert.deepEqual(
      seqs,
      Array.from({ length: 10_000 }, (_, i) => from + i + 1),
    );
    const sizes = frameSizes(listener);
    const over = sizes.filter((s) => s.length > FRAME_BOUND);
    assert.deepEqual(
      over.slice(0, 3),
      [],
      `${over.length} of ${sizes.length} push frames over ${FRAME_BOUND} bytes`,
    );
    assert.ok(
      sizes.every((s) => s.count <= 100),
      "never more than maxBatch in a frame",
    );
    assert.ok(
      sizes.some((s) => s.count > 1),
      "events still share frames",
    );
  });

  for (const round of [1, 2, 3]) {
    it(`RESUME over 10,000 such events: paced, bounded, in order, the reader not cut off (round ${round})`, async function () {
      const placer = await connect();
      // Enough events in the replay buffer: it holds the newest 10,000.
      if (made.gateway.seq < 10_000) await flood(placer, 100);
      const resumer = await connect();
      const from = made.gateway.seq - 10_000;
      const id = resumer.newId();
      const reply = resumer.reply(id, 30_000);
      resumer.send({ type: "RESUME", id, from_seq: from });
      // Live events made while the replay is being written come after it, each once.
      const live = flood(placer, 2);
      const cutOff = resumer.closed.then((c) => {
        throw new Error(
          `the resuming reader was cut off (${c.code}): ${made.logs.map((l) => l.message).join("; ")}`,
        );
      });
      const result = await Promise.race([reply, cutOff]);
      await live;
      const last = made.gateway.seq;
      await waitForEvents(resumer, last - from);
      assert.equal(result.type, "RESULT", JSON.stringify(result.error));
      assert.equal((result.result as { replayed: number }).replayed, 10_000);
      assert.deepEqual(
        eventSeqs(resumer.received),
        Array.from({ length: last - from }, (_, i) => from + i + 1),
      );
      // The replay comes before the RESULT.
      const resultAt = resumer.received.indexOf(result);
      assert.equal(eventSeqs(resumer.received.slice(0, resultAt)).slice(0, 10_000).length, 10_000);
      const sizes = frameSizes(resumer);
      const over = sizes.filter((s) => s.length > FRAME_BOUND);
      assert.deepEqual(
        over.slice(0, 3),
        [],
        `${over.length} of ${sizes.length} frames over ${FRAME_BOUND} bytes`,
      );
      assert.equal(resumer.ws.readyState, resumer.ws.OPEN, "the resuming reader is still connected");
      // Its own connection, named by its port: the other readers share this loaded process.
      const port = (resumer.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
      const cut = made.logs.filter((l) => /slow consumer/.test(l.message) && l.message.includes(`:${port})`));
      assert.deepEqual(
        cut.map((l) => l.message),
        [],
      );
    });
  }

  it("an event larger than the bound still goes, alone", async function () {
    const small = await startPaperGateway({ maxAnswerFrameBytes: 100 });
    try {
      small.broker.setPrice(SYMBOL, 100);
      const placer = await GatewayClient.open(small.url);
      const listener = await GatewayClient.open(small.url);
      open.push(placer, listener);
      const from = small.gateway.seq;
      await flood(placer, 2);
      await waitForEvents(listener, 200);
      assert.deepEqual(
        eventSeqs(listener.received),
        Array.from({ length: 200 }, (_, i) => from + i + 1),
      );
      const pushes = listener.frames.slice(1);
      assert.ok(
        pushes.every((frame) => !Array.isArray(frame)),
        "each event in a frame of its own",
      );
    } finally {
      await Promise.all(open.splice(0).map((c) => c.close()));
      await small.close();
    }
  });
});
