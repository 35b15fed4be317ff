import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol/orders";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { Settled } from "../support/broker-chaos";
import { startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";

/** A journal sync a test holds: shut, every `durable` waits until it is opened. */
function slowJournal(): { sync(): Promise<void>; shut(): void; open(): void; syncs: number } {
  let held: { promise: Promise<void>; release: () => void } | undefined;
  const journal = {
    syncs: 0,
    sync: () => {
      journal.syncs += 1;
      return held?.promise ?? Promise.resolve();
    },
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
  return journal;
}

/** A pipelined MARKET order is about this long on the wire; a socket read is at most 64 KiB. */
const REQUEST_BYTES = 150;
const SOCKET_READ_BYTES = 64 * 1024;

describe("gateway: events held for a slow journal are capped (maxHeldEvents)", function () {
  this.timeout(60_000);
  const cleanup = useCleanup();

  for (const round of [1, 2, 3]) {
    it(`stops reading requests at the cap, then delivers every event once and in order (round ${round})`, async function () {
      const cap = 100;
      const journal = slowJournal();
      const made = await startPaperGateway(
        {
          durable: () => journal.sync(),
          maxHeldEvents: cap,
          rate: { perSecond: 1_000_000, burst: 1_000_000 },
          keyRate: { perSecond: 1_000_000, burst: 1_000_000 },
        },
        { settings: { starting_cash: 100_000_000 } },
      );
      cleanup(() => made.close());
      const protocols = ["v1", "v1.1 skip", "v1.1"] as const;
      const clients = protocols.map((protocol) => {
        const observed = new ObservedBroker(
          fastSettings(made.url, {
            heartbeat_ms: 10_000,
            request_timeout_ms: 30_000,
            queue: { max: 5000, ttl_ms: 30_000 },
          }),
          protocol,
        );
        cleanup(() => observed.broker.close());
        return observed;
      });
      await Promise.all(clients.map((c) => c.broker.connect()));

      // The journal stalls; every client floods orders without waiting for answers.
      journal.shut();
      const perClient = 1500;
      const outcomes: Promise<Settled<OrderSnapshot>>[] = [];
      for (let i = 0; i < perClient; i++) {
        for (const client of clients) {
          outcomes.push(
            classify(
              client.broker.placeOrder({ symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1 }),
            ),
          );
        }
      }
      // While it stays stalled, the events held (made, not yet durable) stay near the cap: what
      // crossed before the sockets paused is at most one socket read per connection.
      const slack = clients.length * Math.ceil(SOCKET_READ_BYTES / REQUEST_BYTES) * 2;
      let mostHeld = 0;
      let samples = 0;
      // Until the flood has reached the cap (seconds on a loaded machine), then 800 ms more.
      let stalledUntil = Date.now() + 15_000;
      while (Date.now() < stalledUntil) {
        mostHeld = Math.max(mostHeld, made.broker.lastSeq - made.gateway.seq);
        if (mostHeld >= cap && stalledUntil - Date.now() > 800) stalledUntil = Date.now() + 800;
        samples += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      console.log(`      most held: ${mostHeld}`);
      assert.ok(mostHeld >= cap, `the flood reached the cap (${mostHeld} held, ${samples} samples)`);
      assert.ok(
        mostHeld <= cap + slack,
        `${mostHeld} events held for the journal, over the cap of ${cap} (+ ${slack} already read)`,
      );
      assert.ok(
        made.logs.some((l) => l.level === "warn" && /not reading requests/.test(l.message)),
        "the gateway says it stopped reading",
      );

      // The journal recovers (each sync now returns at once): every order is answered once and
      // every event reaches every client once, in seq order, as the orders' lives went.
      journal.open();
      const settled = await Promise.all(outcomes);
      assert.deepEqual(
        settled.flatMap((s) => (s.kind === "accepted" ? [] : [s.error.message])),
        [],
      );
      assert.equal(settled.length, perClient * clients.length);
      const last = made.broker.lastSeq;
      assert.equal(last, perClient * clients.length * 2, "each MARKET order: placed, filled");
      await waitFor(
        () => clients.every((c) => c.broker.lastSeq === last),
        "every client to catch up",
        20_000,
      );
      for (const client of clients) {
        const seqs = client.orders.map((e) => e.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: last }, (_, i) => i + 1),
        );
        assert.deepEqual(checkLives(client.orders), {
          regressions: [],
          doubleFills: [],
          phantoms: [],
          seqOutOfOrder: [],
        });
      }
      assert.ok(
        made.logs.some((l) => /reading requests again/.test(l.message)),
        "the gateway says it reads again",
      );
    });
  }
});
