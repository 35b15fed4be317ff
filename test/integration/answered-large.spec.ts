import assert from "node:assert/strict";
import type { OrderEvent } from "../../lib/protocol";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/** A gate `durable` can wait on: open, it resolves at once; shut, it holds until opened. */
function gate(): { wait(): Promise<void>; shut(): void; open(): void } {
  let held: { promise: Promise<void>; release: () => void } | undefined;
  return {
    wait: () => held?.promise ?? Promise.resolve(),
    shut() {
      let release = (): void => undefined;
      const promise = new Promise<void>((resolve) => (release = resolve));
      held ??= { promise, release };
    },
    open() {
      const was = held;
      held = undefined;
      was?.release();
    },
  };
}

/** Every order event seq a connection was handed, pushed or inside an answer, in arrival order. */
function seqsDelivered(proxy: WsTamperProxy): number[] {
  const seqs: number[] = [];
  for (const seen of proxy.seen) {
    if (seen.direction !== "down") continue;
    for (const message of seen.messages) {
      if (message.type === "EVENT" || message.type === "EVENT_DELTA") {
        seqs.push((message.event as { seq: number }).seq);
      } else if (message.type === "RESULT" && Array.isArray(message.events)) {
        for (const event of message.events as { seq: number }[]) seqs.push(event.seq);
      }
    }
  }
  return seqs;
}

function oneToN(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

describe("answered_events skip: one order with thousands of events", function () {
  this.timeout(60_000);
  const cleanup = useCleanup();

  async function gateway(options: Parameters<typeof startPaperGateway>[0]): Promise<PaperGateway> {
    // Each quote fills at most one share: a large order fills in as many parts as it has shares.
    const made = await startPaperGateway(options, { settings: { max_fill_per_quote: 1 } });
    cleanup(() => made.close());
    return made;
  }

  async function relayTo(url: string): Promise<WsTamperProxy> {
    const made = await WsTamperProxy.start(url);
    cleanup(() => made.close());
    return made;
  }

  function observe(url: string, protocol: "v1" | "v1.1 skip"): ObservedBroker {
    const observed = new ObservedBroker(
      fastSettings(url, { heartbeat_ms: 5000, request_timeout_ms: 20_000 }),
      protocol,
    );
    cleanup(() => observed.broker.close());
    return observed;
  }

  for (const [fills, maxAnswerFrameBytes] of [
    [3000, 16 * 1024],
    [6000, undefined],
  ] as const) {
    it(`a modify answered after ${fills} partial fills waited for the journal: its answer and the pushes before it carry them all, each once and in order, no answer frame over the limit${maxAnswerFrameBytes === undefined ? " (1 MiB)" : " (16 KiB)"}`, async function () {
      const durable = gate();
      const made = await gateway({
        durable: () => durable.wait(),
        ...(maxAnswerFrameBytes === undefined ? {} : { maxAnswerFrameBytes }),
      });
      const relay = await relayTo(made.url);
      // The length of every frame down that holds an answer.
      const answerFrames: number[] = [];
      relay.tap = (direction, text) => {
        if (direction === "down" && text.includes('"RESULT"')) answerFrames.push(text.length);
        return undefined;
      };
      const skip = observe(relay.url, "v1.1 skip");
      const whole = observe(made.url, "v1");
      await Promise.all([skip.broker.connect(), whole.broker.connect()]);
      const heapBefore = process.memoryUsage().heapUsed;

      const order = await skip.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: fills + 10,
        order_type: "LIMIT",
        price: 100,
      });
      assert.equal(order.filled_quantity, 1, "one share per quote");
      // A journal that is always syncing: the gateway's pushes wait for it, flush after flush.
      durable.shut();
      made.broker.setPrice("INFY", 100);
      await new Promise((resolve) => setImmediate(resolve)); // that fill's flush now waits for the sync
      for (let i = 2; i < fills; i++) made.broker.setPrice("INFY", 100); // the next flush, chained behind
      // A modify: its snapshot differs from the fills' only in fields they have, so the answer
      // can carry each of them as an overlay (a cancel's status_message would end the run).
      const modifying = skip.broker.modifyOrder(order.order_id, { quantity: fills + 20 });
      await waitFor(
        () => relay.messages("up", "MODIFY_ORDER").length === 1,
        "the modify to reach the gateway",
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      // One sync ends: the first flush is published and the modify may be answered, while the next
      // sync (for the thousands of fills after it) has already begun. The answer carries those fills.
      durable.open();
      durable.shut();
      await waitFor(
        () => relay.messages("down", "RESULT").some((m) => Array.isArray(m.events) && m.events.length > 2),
        "the modify's answer",
        20_000,
      );
      durable.open();
      const modified = await modifying;
      assert.equal(modified.quantity, fills + 20);
      // The modified order meets the current quote again: one more share.
      assert.equal(modified.filled_quantity, fills + 1);
      const cancelled = await skip.broker.cancelOrder(order.order_id);
      assert.equal(cancelled.status, "CANCELLED");

      const last = made.broker.lastSeq;
      await waitFor(
        () => skip.broker.lastSeq === last && whole.broker.lastSeq === last,
        "both clients to process every event",
        20_000,
      );
      // Every seq reached the skipping client once and in order, and it reported what a v1.0 client did.
      assert.deepEqual(seqsDelivered(relay), oneToN(last));
      assert.equal(skip.orders.length, last);
      assert.deepEqual(skip.orders, whole.orders);
      assert.deepEqual(checkLives(skip.orders), {
        regressions: [],
        doubleFills: [],
        phantoms: [],
        seqOutOfOrder: [],
      });
      const partials = skip.orders.filter((e: OrderEvent) => e.type === "ORDER_PARTIALLY_FILLED");
      assert.equal(partials.length, fills + 1);
      assert.deepEqual(
        partials.map((e) => e.order.filled_quantity),
        oneToN(fills + 1),
      );
      // The answer is where the events were: one RESULT carrying the cancel and the fills before it.
      const carrying = relay.messages("down", "RESULT").filter((m) => Array.isArray(m.events));
      const biggest = Math.max(...carrying.map((m) => (m.events as unknown[]).length));
      const answerBytes = Math.max(...carrying.map((m) => JSON.stringify(m).length));
      // Bounded: no frame holding an answer is longer than the answer frame limit; the events that
      // did not fit in the answer went as pushes just before it (answer-size.ts).
      const limit = maxAnswerFrameBytes ?? 1024 * 1024;
      assert.ok(
        Math.max(...answerFrames) <= limit,
        `a frame with an answer is ${Math.max(...answerFrames)} long, over the ${limit} limit`,
      );
      const frameCount = relay.seen.length;
      // Still carried in the answer: as many as fit (a 16 KiB answer holds dozens of fills).
      assert.ok(
        biggest >= Math.min(fills - 1, Math.floor(limit / 400)),
        `the largest answer carried ${biggest} events`,
      );
      assert.equal(relay.messages("up", "RESUME").length, 0, "nothing was missing");
      assert.deepEqual(skip.errors, []);
      const heapAfter = process.memoryUsage().heapUsed;
      console.log(
        `      ${fills} fills; largest answer ${biggest} events, ${Math.round(answerBytes / 1024)} KiB; ${frameCount} frames; ` +
          `heap ${Math.round(heapBefore / 1e6)} → ${Math.round(heapAfter / 1e6)} MB`,
      );
    });
  }

  it("a resting order filled by thousands of small quotes: every fill pushed once, in order, to a skipping client", async function () {
    const made = await gateway({});
    const relay = await relayTo(made.url);
    const skip = observe(relay.url, "v1.1 skip");
    const whole = observe(made.url, "v1");
    await Promise.all([skip.broker.connect(), whole.broker.connect()]);
    const fills = 4000;
    const order = await skip.broker.placeOrder({
      symbol: "INFY",
      side: "SELL",
      quantity: fills,
      order_type: "LIMIT",
      price: 100,
    });
    for (let i = 1; i < fills; i++) {
      made.broker.setPrice("INFY", 100);
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const last = made.broker.lastSeq;
    await waitFor(
      () => skip.broker.lastSeq === last && whole.broker.lastSeq === last,
      "both clients to process every event",
      20_000,
    );
    assert.equal((await made.broker.getOrder(order.order_id)).status, "FILLED");
    assert.deepEqual(seqsDelivered(relay), oneToN(last));
    assert.deepEqual(skip.orders, whole.orders);
    assert.equal(skip.orders.filter((e) => e.type === "ORDER_FILLED").length, 1);
    assert.deepEqual(checkLives(skip.orders), {
      regressions: [],
      doubleFills: [],
      phantoms: [],
      seqOutOfOrder: [],
    });
  });
});

describe("RESUME from before the replay buffer", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it("says gap: true with what it still holds, and a skipping client reconciles every order it missed", async function () {
    const made = await startPaperGateway({ replayBuffer: 100 }, { settings: { max_fill_per_quote: 1 } });
    cleanup(() => made.close());
    const relay = await WsTamperProxy.start(made.url);
    cleanup(() => relay.close());
    const skip = new ObservedBroker(fastSettings(relay.url, { heartbeat_ms: 5000 }), "v1.1 skip");
    cleanup(() => skip.broker.close());
    await skip.broker.connect();
    const resting = await skip.broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1000,
      order_type: "LIMIT",
      price: 100,
    });
    const seqBefore = skip.broker.lastSeq;
    // Everything the gateway sends is lost while 1,000 more events happen, ten times the buffer.
    relay.tap = (direction) => (direction === "down" ? null : undefined);
    for (let i = 1; i < 1000; i++) made.broker.setPrice("INFY", 100);
    const others: string[] = [];
    for (let i = 0; i < 20; i++) {
      others.push((await made.broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1 })).order_id);
    }
    // A raw client asking from the same old seq sees the clear answer the protocol gives.
    const raw = await GatewayClient.open(made.url);
    cleanup(() => raw.close());
    const resume = await raw.call({ type: "RESUME", from_seq: seqBefore });
    assert.equal(resume.gap, true);
    assert.equal(resume.seq, made.broker.lastSeq);
    assert.ok(resume.replayed <= 100, `${resume.replayed} replayed`);

    relay.tap = undefined;
    relay.cutAll();
    const last = made.broker.lastSeq;
    await waitFor(() => skip.broker.lastSeq >= last, "the client to catch up", 10_000);
    assert.ok(
      skip.warnings.some((w) => w.includes("no longer held")),
      `the client reconciled: ${skip.warnings.join("; ")}`,
    );
    // Nothing lost silently: the resting order ends FILLED once, every other order's fill is reported.
    const filled = new Map<string, number>();
    for (const event of skip.orders) {
      if (event.type === "ORDER_FILLED")
        filled.set(event.order.order_id, (filled.get(event.order.order_id) ?? 0) + 1);
    }
    assert.equal(filled.get(resting.order_id), 1);
    for (const id of others) assert.equal(filled.get(id), 1, `${id} filled once`);
    assert.deepEqual(checkLives(skip.orders).regressions, []);
    assert.deepEqual(checkLives(skip.orders).doubleFills, []);
  });
});
