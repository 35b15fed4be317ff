import assert from "node:assert/strict";
import { settlePlacement, isUnknownOutcome } from "../../lib/common/unknown-outcome";
import type { UnknownPlacement } from "../../lib/common/unknown-outcome";
import { BrokerError } from "../../lib/protocol/errors";

interface Order {
  id: string;
  client: string;
}

/** A venue whose answers to placements can be lost: the order may land while the answer does not. */
class LossyVenue {
  readonly orders = new Map<string, Order>();
  placements = 0;
  /** Placements sent for an order the venue already had: the second order a real venue would make. */
  resentExisting = 0;
  lookups = 0;
  /** Lost answers to come, for placements and for lookups. */
  loseNextPlacements = 0;
  loseNextLookups = 0;
  /** Placements that land, but that the next `hideFor` lookups do not list yet (Kite lists late). */
  hideFor = 0;
  #hidden = new Map<string, number>();
  #next = 1;

  place(client: string): Order {
    this.placements += 1;
    let order = this.orders.get(client);
    if (order !== undefined) this.resentExisting += 1;
    if (order === undefined) {
      order = { id: `O${this.#next++}`, client };
      this.orders.set(client, order);
      if (this.hideFor > 0) this.#hidden.set(client, this.hideFor);
    }
    if (this.loseNextPlacements > 0) {
      this.loseNextPlacements -= 1;
      throw new BrokerError("TIMEOUT", "placement answer lost");
    }
    return order;
  }

  lookup(client: string): Order | undefined {
    this.lookups += 1;
    if (this.loseNextLookups > 0) {
      this.loseNextLookups -= 1;
      throw new BrokerError("NETWORK", "lookup answer lost");
    }
    const hidden = this.#hidden.get(client) ?? 0;
    if (hidden > 0) {
      this.#hidden.set(client, hidden - 1);
      return undefined;
    }
    return this.orders.get(client);
  }
}

/** `answer()` on a later turn of the event loop, as a venue's reply comes; a throw becomes a rejection. */
function later<T>(answer: () => T): Promise<T> {
  return new Promise<void>((resolve) => setImmediate(resolve)).then(answer);
}

function placement(
  venue: LossyVenue,
  overrides: Partial<UnknownPlacement<Order>> = {},
): UnknownPlacement<Order> {
  const clientId = overrides.clientId ?? "C1";
  return {
    clientId,
    first: new BrokerError("TIMEOUT", "no answer to the placement"),
    windowMs: 2000,
    sendBy: Date.now() + 1000,
    ttlMs: 1000,
    venue: "the venue",
    signal: new AbortController().signal,
    isUnknown: isUnknownOutcome,
    lookup: () => later(() => venue.lookup(clientId)),
    isFinal: (err) => err.code === "DUPLICATE_ORDER",
    resend: () => later(() => venue.place(clientId)),
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BrokerError, `not a BrokerError: ${String(error)}`);
    return error;
  }
  assert.fail("expected a rejection");
}

describe("settlePlacement (an unknown placement outcome)", function () {
  it("answers with the order when the venue has it, without sending it again", async function () {
    const venue = new LossyVenue();
    venue.place("C1");
    const order = await settlePlacement(placement(venue));
    assert.equal(order.id, "O1");
    assert.equal(venue.placements, 1);
  });

  it("sends an absent order again, once, with what is left of its time to live", async function () {
    const venue = new LossyVenue();
    const ttls: number[] = [];
    const order = await settlePlacement(
      placement(venue, {
        resend: (ttl) => {
          ttls.push(ttl);
          return later(() => venue.place("C1"));
        },
      }),
    );
    assert.equal(order.client, "C1");
    assert.equal(venue.placements, 1);
    assert.equal(ttls.length, 1);
    assert.ok(ttls[0]! > 0 && ttls[0]! <= 1000, `ttl ${ttls[0]}`);
  });

  it("with a grace period, a venue that lists the order late is asked again instead of resent", async function () {
    const venue = new LossyVenue();
    venue.hideFor = 1;
    venue.place("C1");
    const order = await settlePlacement(placement(venue, { absentGraceMs: 20 }));
    assert.equal(order.id, "O1");
    assert.equal(venue.placements, 1, "never sent twice");
    assert.equal(venue.lookups, 2);
  });

  it("never sends a stale order: absent after its time to live is EXPIRED, naming order, venue and cause", async function () {
    const venue = new LossyVenue();
    const err = await rejection(settlePlacement(placement(venue, { sendBy: Date.now() - 1 })));
    assert.equal(err.code, "EXPIRED");
    assert.match(err.message, /order C1 never reached the venue \(no answer to the placement\)/);
    assert.match(err.message, /1000 ms time to live has passed; not placed/);
    assert.equal(venue.placements, 0);
  });

  it("keeps asking while lookups fail, then reports the outcome unknown (NETWORK) after the window", async function () {
    const venue = new LossyVenue();
    venue.loseNextLookups = Number.POSITIVE_INFINITY;
    const err = await rejection(settlePlacement(placement(venue, { windowMs: 300 })));
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /order C1: outcome still unknown after 300 ms \(lookup answer lost\)/);
    assert.ok(venue.lookups >= 2, `asked ${venue.lookups} times`);
    assert.equal(venue.placements, 0);
  });

  it("a final lookup answer ends it at once", async function () {
    const venue = new LossyVenue();
    const refusal = new BrokerError("DUPLICATE_ORDER", "client_order_id C1 was used before");
    const err = await rejection(
      settlePlacement(
        placement(venue, {
          lookup: () => Promise.reject(refusal),
        }),
      ),
    );
    assert.equal(err, refusal);
  });

  it("a refused resend is the answer; a lost one is looked up again", async function () {
    const venue = new LossyVenue();
    const refusal = new BrokerError("ORDER_REJECTED", "margin");
    const err = await rejection(settlePlacement(placement(venue, { resend: () => Promise.reject(refusal) })));
    assert.equal(err, refusal);

    const lossy = new LossyVenue();
    lossy.loseNextPlacements = 1;
    const order = await settlePlacement(placement(lossy));
    assert.equal(order.id, "O1");
    assert.equal(lossy.placements, 1, "the lost resend landed: found, not sent a third time");
  });

  it("closing the broker mid-wait ends it at once with CLOSED", async function () {
    const venue = new LossyVenue();
    venue.loseNextLookups = Number.POSITIVE_INFINITY;
    const closing = new AbortController();
    const started = Date.now();
    const settling = settlePlacement(placement(venue, { windowMs: 60_000, signal: closing.signal }));
    setTimeout(() => closing.abort(), 30);
    const err = await rejection(settling);
    assert.equal(err.code, "CLOSED");
    assert.match(err.message, /broker closed while order C1's outcome was unknown \(lookup answer lost\)/);
    assert.ok(Date.now() - started < 30_000, "did not wait out the window");
  });

  it("400 orders whose answers are lost at random: each ends in exactly one order or one error, never two orders", async function () {
    this.timeout(60_000);
    const venue = new LossyVenue();
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const results = await Promise.allSettled(
      Array.from({ length: 400 }, async (_, i) => {
        const clientId = `C${i}`;
        // The first placement lands or not; its answer is lost either way.
        if (random() < 0.5) venue.orders.set(clientId, { id: `pre${i}`, client: clientId });
        return settlePlacement(
          placement(venue, {
            clientId,
            windowMs: 1000,
            absentGraceMs: random() < 0.5 ? 1 : 0,
            lookup: () =>
              later(() => {
                if (random() < 0.3) throw new BrokerError("TIMEOUT", "lookup lost");
                return venue.orders.get(clientId);
              }),
            resend: () =>
              later(() => {
                const order = venue.place(clientId);
                if (random() < 0.3) throw new BrokerError("NETWORK", "resend answer lost");
                return order;
              }),
          }),
        );
      }),
    );
    results.forEach((result, i) => {
      const landed = venue.orders.get(`C${i}`);
      if (result.status === "fulfilled") assert.equal(result.value, landed, `C${i}`);
      else if ((result.reason as BrokerError).code === "EXPIRED")
        // A lookup that found nothing after the time to live (sendBy comes a moment before the
        // window's end): "not placed" is then the answer, and it must be true.
        assert.equal(landed, undefined, `C${i}: reported not placed, but the venue has it`);
      else assert.equal((result.reason as BrokerError).code, "NETWORK", `C${i}: ${String(result.reason)}`);
    });
    assert.equal(venue.resentExisting, 0, "an order the venue had was sent again");
    assert.ok(results.filter((r) => r.status === "fulfilled").length > 350);
  });
});

describe("isUnknownOutcome", function () {
  it("is true only for answers that never came (TIMEOUT, NETWORK)", function () {
    assert.equal(isUnknownOutcome(new BrokerError("TIMEOUT", "x")), true);
    assert.equal(isUnknownOutcome(new BrokerError("NETWORK", "x")), true);
    for (const code of [
      "VALIDATION",
      "ORDER_REJECTED",
      "CLOSED",
      "EXPIRED",
      "INTERNAL",
      "RATE_LIMITED",
    ] as const) {
      assert.equal(isUnknownOutcome(new BrokerError(code, "x")), false, code);
    }
  });
});
