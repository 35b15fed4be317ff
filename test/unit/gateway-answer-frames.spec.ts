import assert from "node:assert/strict";
import fc from "fast-check";
import { silentLogger } from "../../lib/brokers/logger";
import type { Client } from "../../lib/gateway/client";
import { Pushes } from "../../lib/gateway/pushes";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";

/** Strings a JSON writer must escape, and plain ones. */
const text = fc.oneof(
  fc.constantFrom("INFY", "M&M", 'quo"te', "back\\slash", "line\nbreak", "\u0000\u001f", "é€𝄞", "\ud800"),
  fc.string({ maxLength: 12 }),
);

/** One state of order P1: every state has the same fields, so each earlier one overlays the last. */
const snapshotArb = fc.record({
  status: fc.constantFrom("OPEN", "PARTIALLY_FILLED", "FILLED"),
  filled_quantity: fc.nat({ max: 1000 }),
  average_price: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(0)),
  timestamp: text,
});

const runArb = fc.record({
  id: text,
  symbol: text,
  states: fc.array(
    fc.record({
      state: snapshotArb,
      type: fc.constantFrom("ORDER_PLACED", "ORDER_PARTIALLY_FILLED", "ORDER_FILLED"),
      trades: fc.option(
        fc.array(
          fc.record({
            trade_id: text,
            quantity: fc.integer({ min: 1, max: 1e6 }),
            price: fc.double({ noNaN: true }),
            timestamp: text,
          }),
          { minLength: 1, maxLength: 3 },
        ),
        { nil: undefined },
      ),
      timestamp: text,
    }),
    { minLength: 1, maxLength: 5 },
  ),
  /** The limit: any, or at a byte of the length of the RESULT that carries the last `near` events. */
  limit: fc.oneof(
    fc.integer({ min: 50, max: 3000 }).map((bytes) => ({ bytes, near: -1, by: 0 })),
    fc.record({ bytes: fc.constant(0), near: fc.nat({ max: 5 }), by: fc.integer({ min: -1, max: 1 }) }),
  ),
});

describe("Pushes.answer: the frames a skipping connection gets for an order request", function () {
  it("are the RESULT as JSON.stringify writes it, carrying the last events that fit, the rest pushed before it (property)", function () {
    fc.assert(
      fc.property(runArb, ({ id, symbol, states, limit: limitArb }) => {
        const events: OrderEvent[] = states.map(({ state, type, trades, timestamp }, i) => {
          const order = { order_id: "P1", symbol, ...state } as unknown as OrderSnapshot;
          const event: Record<string, unknown> = { type, seq: i + 1, order };
          if (trades !== undefined) event.trades = trades;
          event.timestamp = timestamp;
          return event as unknown as OrderEvent;
        });
        const answer = events[events.length - 1]!.order;
        // Independently: each answered event with the fields in which it differs from the answer.
        const answered = events.map((event, i) => {
          const item: Record<string, unknown> = { type: event.type, seq: event.seq };
          if (i < events.length - 1) {
            const overlay: Record<string, unknown> = {};
            const was = event.order as unknown as Record<string, unknown>;
            const now = answer as unknown as Record<string, unknown>;
            for (const key in was) if (was[key] !== now[key]) overlay[key] = was[key];
            if (Object.keys(overlay).length > 0) item.order = overlay;
          }
          if (event.trades !== undefined) item.trades = event.trades;
          item.timestamp = event.timestamp;
          return item;
        });
        const resultOf = (carried: unknown[]): string =>
          JSON.stringify(
            carried.length === 0
              ? { type: "RESULT", id, result: answer }
              : { type: "RESULT", id, result: answer, events: carried },
          );
        const near = Math.min(limitArb.near, answered.length);
        const limit =
          limitArb.near < 0
            ? limitArb.bytes
            : resultOf(answered.slice(answered.length - near)).length + limitArb.by;

        const pushes = new Pushes({
          clients: new Set(),
          durable: undefined,
          log: silentLogger,
          replayBuffer: 100,
          maxAnswerFrameBytes: limit,
        });
        const client = { sentSeq: 0, heldFrom: 0, deltas: false } as unknown as Client;
        for (const event of events) pushes.event(event);

        const frames: string[] = ["an earlier answer's frame"];
        pushes.answer(client, id, answer, frames);

        // As many of the last events as keep the frame within the limit; the ones before are pushed.
        let keep = answered.length;
        while (keep > 0 && resultOf(answered.slice(answered.length - keep)).length > limit) keep--;
        const pushed = events
          .slice(0, events.length - keep)
          .map((event) => JSON.stringify({ type: "EVENT", event }));
        assert.deepEqual(frames, [
          "an earlier answer's frame",
          ...pushed,
          resultOf(answered.slice(answered.length - keep)),
        ]);
        assert.equal(client.sentSeq, events.length);
      }),
      { numRuns: 500 },
    );
  });
});
