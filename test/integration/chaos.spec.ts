import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { OrderSnapshot } from "../../lib/protocol";
import { BlackholeProxy } from "../support/blackhole-proxy";
import type { Settled } from "../support/broker-chaos";
import {
  classify,
  depsFor,
  fastSettings,
  ObservedBroker,
  stallable,
  useCleanup,
  within,
} from "../support/broker-chaos";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort, GatewayProcess } from "../support/gateway-process";
import { PaperHost } from "../support/paper-host";
import { activeResources, describeResources, waitFor } from "../support/wait";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A raw authenticated connection of the test's own, to see the gateway's view. */
async function withClient<T>(url: string, use: (client: GatewayClient) => Promise<T>): Promise<T> {
  const client = await GatewayClient.connect(url, { protocols: [GatewayClient.subprotocol] });
  try {
    const reply = await client.auth();
    assert.equal(reply.type, "RESULT", JSON.stringify(reply));
    return await use(client);
  } finally {
    await client.close();
  }
}

/** The account's latest event seq, as a fresh connection's AUTH reports it. */
function serverSeq(url: string): Promise<number> {
  return withClient(url, async (client) => (await client.call({ type: "PING" })).seq);
}

function market(clientOrderId: string, side: "BUY" | "SELL" = "BUY") {
  return { symbol: "INFY", side, quantity: 1, client_order_id: clientOrderId } as const;
}

function limitBuy(clientOrderId: string, price: number) {
  return { ...market(clientOrderId), order_type: "LIMIT", price } as const;
}

function count(kind: string): number {
  return activeResources().get(kind) ?? 0;
}

/**
 * Blackholes the proxy (nothing forwarded, nothing closed), runs `whileDead`, and heals the link
 * the moment the broker reports it gone — before its first reconnect attempt is dialled. Returns
 * how long the broker took to notice.
 */
async function cutUntilNoticed(
  proxy: BlackholeProxy,
  broker: WebSocketBroker,
  whileDead: () => void | Promise<void>,
): Promise<number> {
  let noticedAt = 0;
  const noticed = new Promise<void>((resolve) => {
    const onState = (state: string): void => {
      if (state === "connected") return;
      noticedAt = performance.now();
      broker.off("state", onState);
      proxy.restore();
      resolve();
    };
    broker.on("state", onState);
  });
  const cutAt = performance.now();
  proxy.blackhole();
  await whileDead();
  await within(noticed, 5000, "the broker to notice the dead link");
  return noticedAt - cutAt;
}

/** "order_id TYPE" pairs reported more than once. */
function repeated(observed: ObservedBroker): string[] {
  const seen = new Map<string, number>();
  for (const event of observed.orders) {
    const key = `${event.order.order_id} ${event.type}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([key]) => key);
}

for (const protocol of ["v1.1", "v1.1 skip", "v1"] as const) {
  describe(`chaos (${protocol}): the WebSocket broker against failing gateways`, function () {
    this.timeout(60_000);
    const cleanup = useCleanup();

    async function host(...args: Parameters<typeof PaperHost.start>): Promise<PaperHost> {
      const made = await PaperHost.start(...args);
      cleanup(() => made.close());
      return made;
    }

    async function blackhole(targetPort: number): Promise<BlackholeProxy> {
      const proxy = await BlackholeProxy.start(targetPort);
      cleanup(() => proxy.close());
      return proxy;
    }

    function observe(url: string, overrides: Parameters<typeof fastSettings>[1] = {}): ObservedBroker {
      const observed = new ObservedBroker(fastSettings(url, overrides), protocol);
      cleanup(() => observed.broker.close());
      return observed;
    }

    describe("gateway process SIGKILLed mid-stream and restarted on the same port and journal", function () {
      let dir: string;
      let gateway: GatewayProcess | undefined;

      before(function () {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "chaos-kill-"));
      });

      after(async function () {
        await gateway?.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      });

      it("settles each of 1,000 placements once, loses no acknowledged order and reports each fill once", async function () {
        const port = await freePort();
        const start = () =>
          GatewayProcess.start({
            port,
            journal: path.join(dir, "j.jsonl"),
            apiKey: TEST_KEY,
            apiSecret: TEST_SECRET,
            // Acks wait for the journal's fsync (the CLI default): acknowledged orders survive SIGKILL.
            args: ["--volatility", "0", "--rate", "100000"],
          });
        gateway = await start();
        // A burst of 700 orders queued across the outage is answered more slowly than usual: a
        // 1 s cool-down keeps a few timeouts from blocking the lookups for long.
        const observed = observe(gateway.url, { breaker: { cool_down_ms: 1000 } });
        const broker = observed.broker;
        await broker.connect();
        let restartedAt = 0;
        let reconnectedAt = 0;
        broker.on("state", (state) => {
          if (state === "connected" && restartedAt > 0 && reconnectedAt === 0)
            reconnectedAt = performance.now();
        });

        const total = 1000;
        const killAfter = 300;
        const prefix = `K${process.pid}x`;
        const settledTimes = new Map<string, number>();
        const results = new Map<string, Settled<OrderSnapshot>>();
        const waits: Promise<void>[] = [];
        let chaos: Promise<void> | undefined;
        let killedAt = 0;
        for (let i = 0; i < total; i++) {
          const clientOrderId = `${prefix}${i}`;
          const placing = broker.placeOrder(market(clientOrderId, i % 2 === 0 ? "BUY" : "SELL"));
          waits.push(
            classify(placing).then((settled) => {
              settledTimes.set(clientOrderId, (settledTimes.get(clientOrderId) ?? 0) + 1);
              results.set(clientOrderId, settled);
            }),
          );
          if (i + 1 === killAfter) {
            const victim = gateway;
            chaos = (async () => {
              killedAt = performance.now();
              await victim.kill("SIGKILL");
              await delay(200);
              gateway = await start();
              restartedAt = performance.now();
            })();
          }
          // A steady stream: bursts of 8 about every 2 ms (~4 orders/ms).
          if (i % 8 === 7) await delay(2);
        }
        await within(chaos!, 15_000, "the gateway restart");
        await within(Promise.all(waits), 30_000, "every placement to settle");

        const tally = { accepted: 0, rejected: 0, expired: 0, failed: 0 };
        const codes = new Map<string, number>();
        for (const settled of results.values()) {
          tally[settled.kind] += 1;
          if (settled.kind !== "accepted") {
            const key = `${settled.kind}:${settled.error.code}`;
            codes.set(key, (codes.get(key) ?? 0) + 1);
          }
        }
        const lookedUp = observed.warnings.filter((w) => w.includes("looking it up")).length;
        console.log(
          `      tally ${JSON.stringify(tally)} ${JSON.stringify(Object.fromEntries(codes))}; ` +
            `${lookedUp} outcomes unknown at first and looked up; ` +
            `kill → reconnected ${Math.round(reconnectedAt - killedAt)} ms (${Math.round(reconnectedAt - restartedAt)} ms after the restart listened)`,
        );
        assert.equal(results.size, total, "every placement settled");
        assert.deepEqual(
          [...settledTimes].filter(([, n]) => n !== 1),
          [],
          "placements that settled more than once",
        );
        assert.equal(tally.rejected, 0, JSON.stringify(Object.fromEntries(codes)));

        // The gateway's view, through a connection of the test's own.
        const url = gateway.url;
        const book = (await withClient(url, (client) => client.wholeBook())).filter((o) =>
          o.client_order_id.startsWith(prefix),
        );
        const byClientId = new Map<string, OrderSnapshot>();
        for (const order of book) {
          assert.ok(!byClientId.has(order.client_order_id), `${order.client_order_id} placed twice`);
          byClientId.set(order.client_order_id, order);
        }
        for (const [clientOrderId, settled] of results) {
          const inBook = byClientId.get(clientOrderId);
          if (settled.kind === "accepted") {
            assert.ok(inBook !== undefined, `acknowledged order ${clientOrderId} is not in the book`);
            assert.equal(inBook.order_id, settled.value.order_id);
          } else if (settled.kind === "expired") {
            assert.equal(inBook, undefined, `${clientOrderId} ended EXPIRED but was placed`);
          }
        }
        for (const order of book) assert.equal(order.status, "FILLED", `${order.order_id} ${order.status}`);

        // Once the broker has processed every event the account issued (live, replayed or
        // reconciled), each filled order has been reported filled exactly once.
        const seq = await serverSeq(url);
        await waitFor(() => broker.lastSeq >= seq, `the broker to catch up to seq ${seq}`, 5000);
        const fills = new Map<string, number>();
        for (const event of observed.orders) {
          if (event.type === "ORDER_FILLED") {
            fills.set(event.order.order_id, (fills.get(event.order.order_id) ?? 0) + 1);
          }
        }
        const bookIds = new Set(book.map((o) => o.order_id));
        assert.deepEqual(
          book.filter((o) => !fills.has(o.order_id)).map((o) => o.order_id),
          [],
          "fills never reported",
        );
        assert.deepEqual(
          [...fills].filter(([, n]) => n > 1).map(([id]) => id),
          [],
          "fills reported twice",
        );
        assert.deepEqual(
          [...fills.keys()].filter((id) => !bookIds.has(id)),
          [],
          "fills of orders the book does not hold",
        );
        const synthesized = observed.orders.filter((e) => e.synthesized === true).length;
        console.log(`      book ${book.length} orders, each filled once (${synthesized} fills synthesized)`);
      });
    });

    describe("TCP connection dropped without a close frame", function () {
      it("notices the dead link within the heartbeat bound, reconnects, and reports a fill from the gap once", async function () {
        const made = await host();
        const proxy = await blackhole(made.port);
        const heartbeatMs = 200;
        const observed = observe(`${proxy.url}/v1`, { heartbeat_ms: heartbeatMs });
        const broker = observed.broker;
        await broker.connect();
        const resting = await broker.placeOrder(limitBuy("rest1", 95));
        assert.equal(resting.status, "OPEN");
        await waitFor(() => observed.eventsFor(resting.order_id).length === 1, "ORDER_PLACED");

        let during: Promise<Settled<OrderSnapshot>> | undefined;
        const noticedMs = await cutUntilNoticed(proxy, broker, () => {
          // The resting order fills while the link is dead: its event goes into the hole.
          made.paper.setPrice("INFY", 94);
          // So does this placement: its outcome is unknown until the broker has looked it up.
          during = classify(broker.placeOrder(market("holed1")));
        });
        console.log(
          `      dead link noticed after ${Math.round(noticedMs)} ms (heartbeat ${heartbeatMs} ms)`,
        );
        assert.ok(noticedMs < 3 * heartbeatMs + 400, `noticed after ${noticedMs} ms`);

        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        const outcome = await within(during!, 5000, "the placement made while the link was dead");
        assert.equal(outcome.kind, "accepted", JSON.stringify(outcome));
        const book = await made.paper.getOrderbook();
        assert.equal(book.filter((o) => o.client_order_id === "holed1").length, 1);

        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "events to catch up");
        // Replayed by RESUME (the buffer still holds it), so not synthesized; once.
        assert.deepEqual(observed.eventsFor(resting.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.deepEqual(repeated(observed), []);
        const after = await broker.placeOrder(market("afterhole1", "SELL"));
        assert.equal(after.status, "FILLED");
        assert.equal(broker.stats.reconnects, 1);
      });
    });

    describe("server stalled", function () {
      it("times requests out, opens the circuit, fails fast, and closes it after the cool-down", async function () {
        let control: ReturnType<typeof stallable> | undefined;
        const made = await host({}, (paper) => {
          control = stallable(paper, ["getAccount", "placeOrder"]);
          return control.broker;
        });
        cleanup(() => Promise.resolve(control!.release()));
        const observed = observe(made.url, {
          request_timeout_ms: 200,
          breaker: { failure_threshold: 3, cool_down_ms: 500 },
          resolve_window_ms: 5000,
        });
        const broker = observed.broker;
        await broker.connect();

        control!.stall();
        const placement = classify(broker.placeOrder(market("stall1")));
        const calls = await Promise.all([1, 2, 3].map(() => classify(broker.getAccount())));
        for (const call of calls) {
          assert.equal(call.kind, "failed");
          if (call.kind !== "failed") continue;
          assert.equal(call.error.code, "TIMEOUT");
          assert.match(call.error.message, /no response to GET_ACCOUNT \S+ within 200 ms; outcome unknown/);
        }
        await waitFor(() => broker.state === "circuit-open", "the circuit to open");
        assert.ok(observed.states.includes("circuit-open"));

        const fastStarted = performance.now();
        const fast = await classify(broker.getAccount());
        const fastPlacement = await classify(broker.placeOrder(market("stall2")));
        const fastMs = performance.now() - fastStarted;
        for (const call of [fast, fastPlacement]) {
          assert.equal(call.kind, "failed");
          if (call.kind !== "failed") continue;
          assert.equal(call.error.code, "CIRCUIT_OPEN");
          assert.match(call.error.message, /circuit open after 3 consecutive failures; retry in \d+ ms/);
        }
        assert.ok(fastMs < 50, `failing fast took ${fastMs} ms`);

        control!.release();
        const settled = await within(placement, 6000, "the placement made during the stall");
        assert.equal(settled.kind, "accepted", JSON.stringify(settled));
        const book = await made.paper.getOrderbook();
        assert.equal(book.filter((o) => o.client_order_id === "stall1").length, 1);
        assert.equal(book.filter((o) => o.client_order_id === "stall2").length, 0);

        // After the cool-down a trial goes through and the circuit closes.
        // broker.state reads no breaker state, so only the broker's own cool-down timer can move it.
        await waitFor(
          () => broker.state === "connected",
          "the state to leave circuit-open after the cool-down",
          2000,
        );
        const account = await broker.getAccount();
        assert.ok(account.cash > 0);
        assert.equal(broker.stats.circuit, "closed");
        assert.equal(broker.state, "connected");
        const open = observed.states.lastIndexOf("circuit-open");
        assert.ok(observed.states.slice(open).includes("connected"), observed.states.join(","));
      });
    });

    describe("resume after a gap", function () {
      it("reconciles a gap beyond the replay buffer: missed fills and a cancel reported once, synthesized", async function () {
        const made = await host({ replayBuffer: 5 });
        const proxy = await blackhole(made.port);
        const observed = observe(`${proxy.url}/v1`, { heartbeat_ms: 200 });
        const broker = observed.broker;
        await broker.connect();
        const resting: OrderSnapshot[] = [];
        for (const [i, price] of [95, 94, 93, 92].entries()) {
          resting.push(await broker.placeOrder(limitBuy(`gapR${i}`, price)));
        }
        const toCancel = await broker.placeOrder(limitBuy("gapC", 50));
        const later = await broker.placeOrder(limitBuy("gapL", 80));
        const mine = [...resting, toCancel, later];
        await waitFor(() => mine.every((o) => observed.eventsFor(o.order_id).length === 1), "ORDER_PLACED");

        const direct: OrderSnapshot[] = [];
        await cutUntilNoticed(proxy, broker, async () => {
          made.paper.setPrice("INFY", 91); // 4 fills
          await made.paper.cancelOrder(toCancel.order_id); // 1 cancel
          // Another client trades meanwhile: 6 more events push all of the above out of the buffer.
          for (const id of ["gapD0", "gapD1", "gapD2"])
            direct.push(await made.paper.placeOrder(market(id, "SELL")));
        });
        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "events to catch up");
        assert.ok(
          observed.warnings.some((w) => w.includes("no longer held by the server")),
          "the broker reconciled",
        );
        for (const order of resting) {
          assert.deepEqual(observed.eventsFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED*"]);
        }
        assert.deepEqual(observed.eventsFor(toCancel.order_id), ["ORDER_PLACED", "ORDER_CANCELLED*"]);
        // The server replayed what it still held (the last 5 events, all the other client's), but
        // with a gap the broker reports everything it missed from the order book, once.
        for (const order of direct) assert.deepEqual(observed.eventsFor(order.order_id), ["ORDER_FILLED*"]);
        assert.deepEqual(observed.eventsFor(later.order_id), ["ORDER_PLACED"]);

        // Live events flow as before.
        made.paper.setPrice("INFY", 79);
        await waitFor(() => observed.eventsFor(later.order_id).length === 2, "the live fill");
        assert.deepEqual(observed.eventsFor(later.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        const fresh = await broker.placeOrder(market("gapF"));
        await waitFor(() => observed.eventsFor(fresh.order_id).length === 2, "the new order's events");
        assert.deepEqual(observed.eventsFor(fresh.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.deepEqual(repeated(observed), []);
      });

      it("resumes within the replay buffer: missed events replayed once, in seq order, not synthesized", async function () {
        const made = await host({ replayBuffer: 5 });
        const proxy = await blackhole(made.port);
        const observed = observe(`${proxy.url}/v1`, { heartbeat_ms: 200 });
        const broker = observed.broker;
        await broker.connect();
        const a = await broker.placeOrder(limitBuy("bufA", 95));
        const b = await broker.placeOrder(limitBuy("bufB", 94));
        const c = await broker.placeOrder(limitBuy("bufC", 50));
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "ORDER_PLACED events");
        const seqBefore = broker.lastSeq;
        const seenBefore = observed.orders.length;

        await cutUntilNoticed(proxy, broker, async () => {
          made.paper.setPrice("INFY", 93); // 2 fills
          await made.paper.cancelOrder(c.order_id); // 1 cancel: 3 events, fewer than the buffer's 5
        });
        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "events to catch up");
        const missed = observed.orders.slice(seenBefore);
        assert.deepEqual(
          missed.map((e) => e.seq),
          [seqBefore + 1, seqBefore + 2, seqBefore + 3],
        );
        assert.ok(missed.every((e) => e.synthesized !== true));
        assert.deepEqual(
          missed.map((e) => `${e.order.order_id} ${e.type}`).sort(),
          [
            `${a.order_id} ORDER_FILLED`,
            `${b.order_id} ORDER_FILLED`,
            `${c.order_id} ORDER_CANCELLED`,
          ].sort(),
        );
        assert.ok(!observed.warnings.some((w) => w.includes("reconciling")), observed.warnings.join("; "));
        assert.deepEqual(repeated(observed), []);
      });
    });

    describe("redeploy-like churn", function () {
      it("leaves no socket or timer behind after 50 brokers connect and close", async function () {
        const made = await host();
        const gateway = made.gateway!;
        const before = activeResources();
        for (let i = 0; i < 50; i++) {
          const broker = new WebSocketBroker(fastSettings(made.url), depsFor(protocol));
          await broker.connect();
          await broker.getAccount();
          await broker.close();
        }
        const slack = 1;
        await waitFor(
          () =>
            gateway.connections === 0 &&
            count("TCPSocketWrap") <= (before.get("TCPSocketWrap") ?? 0) + slack &&
            count("Timeout") <= (before.get("Timeout") ?? 0) + slack,
          `resources back to ${describeResources(before)}; now ${describeResources(activeResources())}, ${gateway.connections} gateway connections`,
          3000,
        );
      });
    });
  });
}
