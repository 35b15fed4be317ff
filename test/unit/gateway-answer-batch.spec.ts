import assert from "node:assert/strict";
import fc from "fast-check";
import type { Answer } from "../../lib/gateway/answer-batch";
import { AnswerBatch } from "../../lib/gateway/answer-batch";
import type { Client } from "../../lib/gateway/client";
import { arrayFrame } from "../../lib/gateway/client";
import { answeredEvent, answeredEventJson, answerFrame, overlayJson } from "../../lib/gateway/pushes";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { SUBPROTOCOL, SUBPROTOCOL_V1_1 } from "../../lib/protocol/wire";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, newClientId, order, startPaperGateway } from "../support/gateway-client";

type Received = GatewayClient["received"][number];

describe("AnswerBatch: one frame's answers, gathered by slot", function () {
  it("writes once, after the seal and the last slot, with every answer in its message's place (property)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((size) =>
          fc.tuple(
            fc.constant(size),
            // The order slots are settled in, and how many of them settle before the seal.
            fc.shuffledSubarray(
              Array.from({ length: size }, (_, i) => i),
              { minLength: size, maxLength: size },
            ),
            fc.integer({ min: 0, max: size }),
          ),
        ),
        ([size, order, beforeSeal]) => {
          const writes: Answer[][] = [];
          const batch = new AnswerBatch({} as Client, size, size > 1, (b) => writes.push([...b.answers]));
          order.slice(0, beforeSeal).forEach((slot) => batch.settle(slot, `a${slot}`));
          assert.equal(writes.length, 0, "written before it was sealed");
          batch.seal();
          order.slice(beforeSeal).forEach((slot, k) => {
            assert.equal(writes.length, 0, `written with ${order.length - beforeSeal - k} slots empty`);
            batch.settle(slot, `a${slot}`);
          });
          assert.deepEqual(writes, [Array.from({ length: size }, (_, i) => `a${i}`)]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Strings a JSON writer must escape, and plain ones. */
const text = fc.oneof(
  fc.constantFrom("INFY", "M&M", 'quo"te', "back\\slash", "line\nbreak", "\u0000\u001f", "é€𝄞", "\ud800"),
  fc.string({ maxLength: 12 }),
);
const eventArb = fc.record(
  {
    type: fc.constantFrom("ORDER_PLACED", "ORDER_FILLED", "ORDER_PARTIALLY_FILLED", "ORDER_CANCELLED"),
    seq: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    timestamp: fc.oneof(text, fc.constant("2026-12-04T22:00:00.000Z")),
    trades: fc.array(
      fc.record({
        trade_id: text,
        quantity: fc.integer({ min: 1, max: 1e6 }),
        price: fc.double({ noNaN: true }),
      }),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: ["type", "seq", "timestamp"] },
);
const overlayArb = fc.option(
  fc.dictionary(text, fc.oneof(text, fc.integer(), fc.double({ noNaN: true }), fc.constant(null)), {
    maxKeys: 4,
  }),
  { nil: undefined },
);

describe("answered events: concatenated JSON equals JSON.stringify of the object", function () {
  it("each answered event, with and without order overlay and trades (property)", function () {
    fc.assert(
      fc.property(eventArb, overlayArb, (event, overlay) => {
        // What the answer built before: an object per event, then JSON.stringify.
        const item: Record<string, unknown> = { type: event.type, seq: event.seq };
        if (overlay !== undefined && Object.keys(overlay).length > 0) item.order = overlay;
        if (event.trades !== undefined) item.trades = event.trades;
        item.timestamp = event.timestamp;
        const concatenated = answeredEvent(event as unknown as OrderEvent, overlay);
        assert.equal(concatenated, JSON.stringify(item));
        assert.deepEqual(JSON.parse(concatenated), JSON.parse(JSON.stringify(item)));
      }),
      { numRuns: 500 },
    );
  });

  it("an overlay written as JSON equals JSON.stringify of the overlay object (property)", function () {
    const key = fc.oneof(text, fc.constantFrom("0", "1", "10", "01", "-1", "4294967295", "status", "price"));
    const value = fc.oneof(
      text,
      fc.integer(),
      fc.double(),
      fc.constant(null),
      fc.constant(undefined),
      fc.boolean(),
      fc.constant(() => 1),
    );
    const record = fc.dictionary(key, value, { maxKeys: 6 });
    fc.assert(
      fc.property(record, record, fc.boolean(), (answer, event, share) => {
        // Shared keys with equal values are what an overlay leaves out.
        if (share) for (const k of Object.keys(answer)) if (k in event) event[k] = answer[k];
        // The definition: the event's defined fields that differ; none when the answer has a field the event lacks.
        let expected: string | undefined;
        if (!Object.keys(answer).some((k) => answer[k] !== undefined && event[k] === undefined)) {
          const overlay: Record<string, unknown> = {};
          for (const k in event) if (event[k] !== undefined && answer[k] !== event[k]) overlay[k] = event[k];
          expected = Object.keys(overlay).length === 0 ? "" : JSON.stringify(overlay);
        }
        const written = overlayJson(answer as unknown as OrderSnapshot, event as unknown as OrderSnapshot);
        assert.equal(written, expected);
      }),
      { numRuns: 1000 },
    );
  });

  it("answeredEventJson with the overlay's JSON equals answeredEvent with its object (property)", function () {
    fc.assert(
      fc.property(eventArb, overlayArb, (event, overlay) => {
        const json =
          overlay === undefined || Object.keys(overlay).length === 0 ? "" : JSON.stringify(overlay);
        assert.equal(
          answeredEventJson(event as unknown as OrderEvent, json),
          answeredEvent(event as unknown as OrderEvent, overlay),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("the RESULT frame around them", function () {
    fc.assert(
      fc.property(text, fc.array(fc.tuple(eventArb, overlayArb), { maxLength: 4 }), (id, events) => {
        const snapshot = { order_id: "P1", status: "FILLED", symbol: id } as unknown as OrderSnapshot;
        const parts = events.map(([event, overlay]) =>
          answeredEvent(event as unknown as OrderEvent, overlay),
        );
        const frame = answerFrame(id, snapshot, parts.join(","));
        const expected: Record<string, unknown> = { type: "RESULT", id, result: snapshot };
        if (parts.length > 0) expected.events = parts.map((part) => JSON.parse(part) as unknown);
        assert.equal(frame, JSON.stringify(expected));
      }),
      { numRuns: 300 },
    );
  });
});

describe("Gateway: a batch's answers leave as one frame", function () {
  this.timeout(20_000);
  let made: PaperGateway | undefined;
  let clients: GatewayClient[] = [];
  afterEach(async function () {
    await Promise.all(clients.map((client) => client.close()));
    clients = [];
    await made?.close();
    made = undefined;
  });

  async function open(protocols: string[], options?: Record<string, unknown>): Promise<GatewayClient> {
    // Past the default burst: the test counts answers, not the rate limit.
    made ??= await startPaperGateway({ rate: { perSecond: 100_000, burst: 100_000 } });
    const client = await GatewayClient.connect(made.url, { protocols });
    clients.push(client);
    const auth = await client.request(
      options === undefined ? client.authMessage() : { ...client.authMessage(), options },
    );
    assert.equal(auth.type, "RESULT", JSON.stringify(auth));
    return client;
  }

  /** 100 messages: orders, a repeat of one still in flight, a bad one, an unknown type, a lookup. */
  function mixedBatch(round: number): Record<string, unknown>[] {
    const batch: Record<string, unknown>[] = [];
    const repeated = order({ side: "SELL" });
    for (let i = 0; i < 100; i++) {
      const id = `b${round}-${i}`;
      if (i === 10) batch.push({ type: "PLACE_ORDER", id, order: repeated });
      else if (i === 11) batch.push({ type: "PLACE_ORDER", id, order: repeated });
      else if (i === 12) batch.push({ type: "PLACE_ORDER", id, order: { ...repeated, quantity: 2 } });
      else if (i === 20) batch.push({ type: "PLACE_ORDER", id, order: order({ quantity: 0 }) });
      else if (i === 30) batch.push({ type: "NO_SUCH_TYPE", id });
      else if (i === 40) batch.push({ type: "GET_ACCOUNT", id });
      else batch.push({ type: "PLACE_ORDER", id, order: order({ side: i % 2 === 0 ? "BUY" : "SELL" }) });
    }
    return batch;
  }

  function checkAnswers(answers: Received[], round: number): void {
    assert.deepEqual(
      answers.map((answer) => answer.id),
      Array.from({ length: 100 }, (_, i) => `b${round}-${i}`),
      "one answer per message, in the batch's order",
    );
    const byIndex = (i: number) => answers[i] as Received;
    assert.equal(byIndex(20).type, "ERROR");
    assert.equal((byIndex(20).error as { code: string }).code, "VALIDATION");
    assert.equal((byIndex(30).error as { code: string }).code, "UNKNOWN_TYPE");
    assert.equal(byIndex(40).type, "RESULT");
    // The repeat while in flight gets the same order; other parameters are refused.
    assert.equal(byIndex(10).type, "RESULT");
    assert.equal(
      (byIndex(11).result as { order_id: string }).order_id,
      (byIndex(10).result as { order_id: string }).order_id,
    );
    assert.equal((byIndex(12).error as { code: string }).code, "IDEMPOTENCY_MISMATCH");
    for (const i of [0, 1, 50, 99]) assert.equal((byIndex(i).result as { status: string }).status, "FILLED");
  }

  for (const [name, protocols, options] of [
    ["v1", [SUBPROTOCOL], undefined],
    ["v1.1 skip", [SUBPROTOCOL_V1_1, SUBPROTOCOL], { event_format: "delta", answered_events: "skip" }],
  ] as const) {
    it(`${name}: 100 requests in one frame get their 100 answers in one array frame, 20 rounds`, async function () {
      const client = await open([...protocols], options);
      for (let round = 0; round < 20; round++) {
        const framesBefore = client.frames.length;
        const batch = mixedBatch(round);
        const last = client.reply(`b${round}-99`);
        client.send(batch);
        await last;
        // Every answer has arrived with the last one: they travel together.
        const answerFrames = client.frames
          .slice(framesBefore)
          .filter(
            (frame) =>
              Array.isArray(frame) &&
              frame.some((m: Received) => (m.type === "RESULT" || m.type === "ERROR") && m.id !== undefined),
          ) as Received[][];
        assert.equal(answerFrames.length, 1, `round ${round}: answers in ${answerFrames.length} frames`);
        const answers = (answerFrames[0] as Received[]).filter(
          (m) => m.type === "RESULT" || m.type === "ERROR",
        );
        checkAnswers(answers, round);
        if (name === "v1.1 skip") {
          // The events of these orders rode in the answers: nothing is pushed for them afterwards.
          await GatewayClient.pause(20);
          const pushed = client.frames.slice(framesBefore).filter((frame) => frame !== answerFrames[0]);
          assert.deepEqual(pushed, [], "no event pushed for an answered order");
        }
      }
    });
  }

  it("a batch answer many times maxBufferedBytes reaches a reader that pauses: paced, in order, not cut off", async function () {
    made = await startPaperGateway({ maxAnswerFrameBytes: 4096, maxBufferedBytes: 64 * 1024 });
    for (let i = 0; i < 300; i++)
      await made.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: newClientId(),
      });
    const client = await GatewayClient.open(made.url);
    clients.push(client);
    for (let round = 0; round < 3; round++) {
      const ids = Array.from({ length: 40 }, (_, i) => `p${round}-${i}`);
      const last = client.reply(ids[ids.length - 1] as string, 15_000);
      client.ws.pause();
      client.send(ids.map((id) => ({ type: "GET_ORDERBOOK", id, limit: 300 })));
      await GatewayClient.pause(100);
      client.ws.resume();
      await last;
      const answers = client.received.filter(
        (m) => typeof m.id === "string" && m.id.startsWith(`p${round}-`),
      );
      assert.deepEqual(
        answers.map((m) => m.id),
        ids,
      );
      for (const answer of answers) assert.equal((answer.result as unknown[]).length, 300);
    }
    assert.equal(made.gateway.connections, 1, "the reader was paced, not terminated");
    assert.ok(!made.logs.some((l) => /slow consumer/.test(l.message)));
  });
});

describe("arrayFrame: answers joined into one array frame", function () {
  it("is `[` + the slice joined with commas + `]`, for any slice (property)", function () {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 12 }).chain((frames) =>
          fc.tuple(
            fc.constant(frames),
            fc
              .integer({ min: 0, max: frames.length - 1 })
              .chain((start) =>
                fc.tuple(fc.constant(start), fc.integer({ min: start + 1, max: frames.length })),
              ),
          ),
        ),
        ([frames, [start, end]]) => {
          const copy = [...frames];
          assert.equal(arrayFrame(frames, start, end), `[${frames.slice(start, end).join(",")}]`);
          assert.deepEqual(frames, copy, "the caller's frames are left as they were");
        },
      ),
      { numRuns: 500 },
    );
  });
});
