import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OrderSnapshot } from "../../lib/protocol";
import { BlackholeProxy } from "../support/blackhole-proxy";
import { fastSettings, ObservedBroker, stallable, useCleanup, within } from "../support/broker-chaos";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort, GatewayProcess } from "../support/gateway-process";
import { checkLives } from "../support/order-life";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

function limitBuy(clientOrderId: string, price: number) {
  return {
    symbol: "INFY",
    side: "BUY",
    quantity: 1,
    order_type: "LIMIT",
    price,
    client_order_id: clientOrderId,
  } as const;
}

function market(clientOrderId: string, side: "BUY" | "SELL" = "BUY") {
  return { symbol: "INFY", side, quantity: 1, client_order_id: clientOrderId } as const;
}

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

/**
 * Blackholes the proxy, runs `whileDead`, and heals the link the moment the broker reports it
 * gone, before its first reconnect attempt is dialled (a holed dial would wait out its timeout).
 */
async function cutUntilNoticed(
  proxy: BlackholeProxy,
  observed: ObservedBroker,
  whileDead: () => Promise<void>,
): Promise<void> {
  const broker = observed.broker;
  const noticed = new Promise<void>((resolve) => {
    const onState = (state: string): void => {
      if (state === "connected") return;
      broker.off("state", onState);
      proxy.restore();
      resolve();
    };
    broker.on("state", onState);
  });
  proxy.blackhole();
  await whileDead();
  await within(noticed, 5000, "the broker to notice the dead link");
}

for (const protocol of ["v1.1", "v1.1 skip", "v1"] as const) {
  describe(`exactly-once (${protocol}): each order's life reported once and in order, under every fault`, function () {
    this.timeout(60_000);
    const cleanup = useCleanup();

    async function host(...args: Parameters<typeof PaperHost.start>): Promise<PaperHost> {
      const made = await PaperHost.start(...args);
      cleanup(() => made.close());
      return made;
    }

    async function tamper(url: string): Promise<WsTamperProxy> {
      const proxy = await WsTamperProxy.start(url);
      cleanup(() => proxy.close());
      return proxy;
    }

    function observe(url: string, overrides: Parameters<typeof fastSettings>[1] = {}): ObservedBroker {
      const observed = new ObservedBroker(fastSettings(url, overrides), protocol);
      cleanup(() => observed.broker.close());
      return observed;
    }

    function isEventFrame(text: string): boolean {
      return text.includes('"type":"EVENT"') || text.includes('"type":"EVENT_DELTA"');
    }

    describe("a relay that drops frames while the socket stays up", function () {
      it("repairs a seq gap on the live connection with RESUME, without reconnecting", async function () {
        const made = await host();
        const proxy = await tamper(made.url);
        const observed = observe(proxy.url, { heartbeat_ms: 2000 });
        const broker = observed.broker;
        await broker.connect();
        const orders: OrderSnapshot[] = [];
        for (const [i, price] of [95, 94, 93].entries())
          orders.push(await broker.placeOrder(limitBuy(`gap${i}`, price)));
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "ORDER_PLACED events");

        let dropping = true;
        let dropped = 0;
        proxy.tap = (direction, text) => {
          if (direction === "down" && dropping && isEventFrame(text)) {
            dropped += 1;
            return null;
          }
          return undefined;
        };
        made.paper.setPrice("INFY", 94.5); // fills gap0: its event is lost
        await waitFor(() => dropped >= 1, "the fill's event to be dropped");
        dropping = false;
        made.paper.setPrice("INFY", 93.5); // fills gap1: its seq is one past the lost one
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "the gap to be repaired", 5000);
        assert.deepEqual(observed.eventsFor(orders[0]!.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.deepEqual(observed.eventsFor(orders[1]!.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.ok(
          observed.warnings.some((w) => w.includes("event seq jumped")),
          observed.warnings.join("; "),
        );
        assert.ok(proxy.messages("up", "RESUME").length >= 1, "the broker asked to RESUME");
        assert.equal(broker.stats.reconnects, 0);

        // The lost event is the last one: no later event shows the gap, the PING's seq does.
        dropping = true;
        dropped = 0;
        made.paper.setPrice("INFY", 92.5); // fills gap2
        await waitFor(() => dropped >= 1, "the last fill's event to be dropped");
        dropping = false;
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "the PING to reveal the lost event", 5000);
        assert.deepEqual(observed.eventsFor(orders[2]!.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.equal(broker.stats.reconnects, 0);
        const report = checkLives(observed.orders);
        assert.deepEqual(report, { regressions: [], doubleFills: [], phantoms: [], seqOutOfOrder: [] });
      });

      it("drops a link that carries no message for a heartbeat although WebSocket pings pass, and loses no fill", async function () {
        const made = await host();
        const proxy = await tamper(made.url);
        const heartbeatMs = 600;
        const observed = observe(proxy.url, { heartbeat_ms: heartbeatMs });
        const broker = observed.broker;
        await broker.connect();
        const resting = await broker.placeOrder(limitBuy("silent1", 95));
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "ORDER_PLACED");

        // Everything the server sends on this connection vanishes; the proxy's own WebSocket still
        // answers the client's pings, as a broken relay or load balancer would.
        proxy.tap = (direction, _text, connection) =>
          direction === "down" && connection.index === 1 ? null : undefined;
        const cutAt = performance.now();
        made.paper.setPrice("INFY", 94);
        await waitFor(() => broker.state !== "connected", "the broker to notice the silent link", 5000);
        const noticedMs = performance.now() - cutAt;
        console.log(
          `      silent link noticed after ${Math.round(noticedMs)} ms (heartbeat ${heartbeatMs} ms)`,
        );
        assert.ok(noticedMs < 4 * heartbeatMs, `noticed after ${noticedMs} ms`);
        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "the fill to be recovered", 5000);
        assert.deepEqual(observed.eventsFor(resting.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
        assert.ok(proxy.connections >= 2);
      });
    });

    describe("reconcile racing live events", function () {
      it("never reports an order backwards after a reconcile read a newer book than the held live events", async function () {
        let control: ReturnType<typeof stallable> | undefined;
        const made = await host({ replayBuffer: 2 }, (paper) => {
          control = stallable(paper, ["getOrderbook"]);
          return control.broker;
        });
        cleanup(() => Promise.resolve(control!.release()));
        const hole = await BlackholeProxy.start(made.port);
        cleanup(() => hole.close());
        const observed = observe(`${hole.url}/v1`, { heartbeat_ms: 200, request_timeout_ms: 5000 });
        const broker = observed.broker;
        await broker.connect();
        await broker.placeOrder(market("race0"));
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "the first fill");

        // Cut; while the link is dead, enough happens that the replay buffer cannot cover it.
        control!.stall();
        await cutUntilNoticed(hole, observed, async () => {
          for (const id of ["raceD0", "raceD1"]) await made.paper.placeOrder(market(id));
        });
        // The reconnect's RESUME reports a gap and its GET_ORDERBOOK hangs; meanwhile an order is
        // placed and filled and its live events reach the broker, which holds them.
        await waitFor(() => control!.held > 0, "the reconcile to ask for the book", 5000);
        const late = await made.paper.placeOrder(market("raceL"));
        assert.equal(late.status, "FILLED");
        await new Promise((resolve) => setTimeout(resolve, 50));
        control!.release();
        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "events to catch up", 5000);

        const lateEvents = observed.eventsFor(late.order_id);
        assert.equal(lateEvents.filter((e) => e.startsWith("ORDER_FILLED")).length, 1, lateEvents.join(","));
        const report = checkLives(observed.orders);
        assert.deepEqual(report.regressions, []);
        assert.deepEqual(report.doubleFills, []);
      });

      it("reports nothing for orders that ended before the client first connected, even after a gap", async function () {
        const made = await host({ replayBuffer: 2 });
        const before = new Set<string>();
        for (let i = 0; i < 20; i++) before.add((await made.paper.placeOrder(market(`old${i}`))).order_id);
        const hole = await BlackholeProxy.start(made.port);
        cleanup(() => hole.close());
        const observed = observe(`${hole.url}/v1`, { heartbeat_ms: 200 });
        const broker = observed.broker;
        await broker.connect();
        const mine = await broker.placeOrder(market("new0"));
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "the first fill");
        const during: string[] = [];
        await cutUntilNoticed(hole, observed, async () => {
          for (const id of ["dur0", "dur1"]) during.push((await made.paper.placeOrder(market(id))).order_id);
        });
        await waitFor(() => broker.state === "connected", "the reconnect", 5000);
        await waitFor(() => broker.lastSeq >= made.paper.lastSeq, "events to catch up", 5000);
        assert.ok(
          observed.warnings.some((w) => w.includes("no longer held")),
          "the broker reconciled",
        );
        const report = checkLives(observed.orders, before);
        assert.deepEqual(report.phantoms, []);
        for (const id of during) assert.deepEqual(observed.eventsFor(id), ["ORDER_FILLED*"]);
        assert.deepEqual(observed.eventsFor(mine.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
      });
    });

    describe("RESUME hands out only durable events", function () {
      it("replays and pushes an event only after durable() has resolved", async function () {
        const durable = gate();
        const made = await host({ durable: () => durable.wait() });
        const client = await GatewayClient.open(made.url);
        cleanup(() => client.close());
        await client.call({ type: "PLACE_ORDER", order: market("dur1") });
        await client.next((m) => m.type === "EVENT" && m.event?.seq === 2);

        durable.shut();
        await made.paper.placeOrder(market("dur2")); // seq 3 and 4, not yet durable
        const other = await GatewayClient.open(made.url);
        cleanup(() => other.close());
        const auth = other.received.find((m) => m.type === "RESULT");
        assert.equal((auth?.result as { seq: number }).seq, 2);
        assert.deepEqual(await other.call({ type: "RESUME", from_seq: 2 }), {
          replayed: 0,
          gap: false,
          seq: 2,
        });
        assert.deepEqual((await other.call({ type: "PING" })).seq, 2);
        assert.equal(client.all("EVENT").length, 2);

        durable.open();
        await other.next((m) => m.type === "EVENT" && m.event?.seq === 4);
        assert.deepEqual(await other.call({ type: "RESUME", from_seq: 2 }), {
          replayed: 2,
          gap: false,
          seq: 4,
        });
        await client.next((m) => m.type === "EVENT" && m.event?.seq === 4);
      });

      it("every event a RESUME replayed is still there after kill -9 and a restart", async function () {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "resume-kill-"));
        const port = await freePort();
        const start = () =>
          GatewayProcess.start({
            port,
            journal: path.join(dir, "j.jsonl"),
            apiKey: TEST_KEY,
            apiSecret: TEST_SECRET,
            args: ["--volatility", "0", "--rate", "100000"],
          });
        let gateway = await start();
        cleanup(async () => {
          await gateway.kill();
          fs.rmSync(dir, { recursive: true, force: true });
        });
        const placer = await GatewayClient.open(gateway.url);
        const reader = await GatewayClient.open(gateway.url);
        const maxSeen = (): number => Math.max(0, ...reader.all("EVENT").map((m) => m.event?.seq ?? 0));
        // 100 placements in one frame, and RESUMEs pipelined behind them on another connection: the
        // gateway answers those while the placements' journal writes are in flight. The kill lands
        // the moment the reader has been handed any event.
        placer.send(
          Array.from({ length: 100 }, (_, i) => ({
            type: "PLACE_ORDER",
            id: `p${i}`,
            order: market(`rk${process.pid}x${i}`),
          })),
        );
        reader.send(Array.from({ length: 100 }, (_, i) => ({ type: "RESUME", id: `r${i}`, from_seq: 0 })));
        await reader.next((m) => m.type === "EVENT", 10_000);
        await gateway.kill("SIGKILL");
        const seen = maxSeen();
        await placer.closed;
        gateway = await start();
        const after = await GatewayClient.open(gateway.url);
        cleanup(() => after.close());
        const seq = (after.received.find((m) => m.type === "RESULT")?.result as { seq: number }).seq;
        console.log(`      ${seen} events seen before the kill; the restarted gateway holds ${seq}`);
        assert.ok(seq >= seen, `events up to ${seen} were handed out but only ${seq} survived`);
      });
    });
  });
}
