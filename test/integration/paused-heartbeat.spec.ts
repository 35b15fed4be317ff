import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol/orders";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { Settled } from "../support/broker-chaos";
import { GatewayClient, startPaperGateway } from "../support/gateway-client";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";

/** A journal sync a test holds (as durable-backlog.spec does): shut, every `durable` waits until opened. */
function slowJournal(): { sync(): Promise<void>; shut(): void; open(): void } {
  let held: { promise: Promise<void>; release: () => void } | undefined;
  return {
    sync: () => held?.promise ?? Promise.resolve(),
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

/** Generous enough for a loaded machine while reading; the hold is several times the limit. */
const HEARTBEAT = { intervalMs: 400, maxMissedPongs: 2 };
/** What the gateway allows a silent peer: at most (maxMissedPongs + 1) pings. */
const PONG_LIMIT_MS = HEARTBEAT.intervalMs * (HEARTBEAT.maxMissedPongs + 1);
const PING_IDLE_MS = 1200;
/** The journal is held this long: several times every heartbeat limit. */
const HOLD_MS = 3 * PONG_LIMIT_MS;

describe("gateway: connections it paused for the journal are not judged by pongs it could not read", function () {
  this.timeout(60_000);
  const cleanup = useCleanup();

  for (const round of [1, 2]) {
    it(`a journal sync held ${HOLD_MS} ms at maxHeldEvents: every client survives and gets every event in order (round ${round})`, async function () {
      const cap = 100;
      const journal = slowJournal();
      const made = await startPaperGateway(
        {
          durable: () => journal.sync(),
          maxHeldEvents: cap,
          heartbeat: HEARTBEAT,
          pingIdleMs: PING_IDLE_MS,
          rate: { perSecond: 1_000_000, burst: 1_000_000 },
          keyRate: { perSecond: 1_000_000, burst: 1_000_000 },
        },
        { settings: { starting_cash: 100_000_000 } },
      );
      cleanup(() => made.close());
      const clients = (["v1", "v1.1 skip", "v1.1"] as const).map((protocol) => {
        // Their own heartbeat (and application PING, every half of it) is long: what is tested is
        // the gateway's judgement of them, pongs only; the raw pinger below is judged by its PINGs.
        const observed = new ObservedBroker(
          fastSettings(made.url, {
            heartbeat_ms: 120_000,
            request_timeout_ms: 30_000,
            queue: { max: 5000, ttl_ms: 30_000 },
          }),
          protocol,
        );
        cleanup(() => observed.broker.close());
        return observed;
      });
      await Promise.all(clients.map((c) => c.broker.connect()));
      // A raw client that keeps sending application PINGs (pingIdleMs applies to it): the gateway
      // reads none of them while paused.
      const pinger = await GatewayClient.open(made.url);
      cleanup(() => pinger.close());
      await pinger.call({ type: "PING" });
      const pinging = setInterval(() => pinger.send({ type: "PING", id: pinger.newId() }), 30);
      cleanup(() => {
        clearInterval(pinging);
        return Promise.resolve();
      });

      journal.shut();
      const perClient = 600;
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
      await waitFor(
        () => made.logs.some((l) => /not reading requests/.test(l.message)),
        "the gateway to stop reading",
        10_000,
      );
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      journal.open();

      const settled = await Promise.all(outcomes);
      assert.deepEqual(
        settled.flatMap((s) => (s.kind === "accepted" ? [] : [s.error.message])),
        [],
      );
      const last = made.broker.lastSeq;
      assert.equal(last, perClient * clients.length * 2, "each MARKET order: placed, filled");
      await waitFor(
        () => clients.every((c) => c.broker.lastSeq === last),
        "every client to catch up",
        20_000,
      );
      // Past several more heartbeats, reading again: none was cut off then either.
      await new Promise((resolve) => setTimeout(resolve, 2 * PONG_LIMIT_MS));
      const terminated = made.logs.filter((l) => /terminating/.test(l.message)).map((l) => l.message);
      assert.deepEqual(terminated, [], "no connection was terminated");
      for (const client of clients) {
        assert.deepEqual(
          client.states.slice(client.states.indexOf("connected") + 1),
          [],
          "the client never lost its connection",
        );
        assert.deepEqual(
          client.orders.map((e) => e.seq),
          Array.from({ length: last }, (_, i) => i + 1),
        );
        assert.deepEqual(checkLives(client.orders), {
          regressions: [],
          doubleFills: [],
          phantoms: [],
          seqOutOfOrder: [],
        });
      }
      assert.equal(pinger.ws.readyState, pinger.ws.OPEN, "the pinging client is still connected");
      assert.equal(made.gateway.connections, clients.length + 1);
    });
  }

  it(`a peer that answers no pings is still terminated, within ${PONG_LIMIT_MS} ms (+ a beat) of reading resuming`, async function () {
    const journal = slowJournal();
    const made = await startPaperGateway(
      {
        durable: () => journal.sync(),
        maxHeldEvents: 10,
        heartbeat: HEARTBEAT,
        rate: { perSecond: 1_000_000, burst: 1_000_000 },
        keyRate: { perSecond: 1_000_000, burst: 1_000_000 },
      },
      { settings: { starting_cash: 100_000_000 } },
    );
    cleanup(() => made.close());
    const dead = await GatewayClient.open(made.url, {}, { autoPong: false });
    cleanup(() => dead.close());
    const placer = await GatewayClient.open(made.url);
    cleanup(() => placer.close());
    journal.shut();
    const answers = Array.from({ length: 20 }, () => {
      const id = placer.newId();
      placer.send({
        type: "PLACE_ORDER",
        id,
        order: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: id },
      });
      return placer.reply(id, 30_000);
    });
    await waitFor(
      () => made.logs.some((l) => /not reading requests/.test(l.message)),
      "the gateway to stop reading",
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    const resumedAt = performance.now();
    journal.open();
    await Promise.all(answers);
    const closed = await Promise.race([dead.closed, GatewayClient.pause(10_000).then(() => undefined)]);
    const after = performance.now() - resumedAt;
    assert.ok(closed !== undefined, "the silent peer was terminated");
    assert.ok(
      made.logs.some((l) => /missed \d+ pongs; terminating/.test(l.message)),
      "as a peer that missed its pongs",
    );
    // Generous: the bound is PONG_LIMIT_MS + one beat; the machine is noisy, so only its order is checked.
    assert.ok(after < 20 * PONG_LIMIT_MS, `terminated ${Math.round(after)} ms after reading resumed`);
    assert.equal(placer.ws.readyState, placer.ws.OPEN, "the placer, which answers its pings, is not");
  });
});
