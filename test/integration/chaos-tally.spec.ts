import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OrderSnapshot } from "../../lib/protocol";
import { BlackholeProxy } from "../support/blackhole-proxy";
import type { Settled } from "../support/broker-chaos";
import { classify, fastSettings, ObservedBroker, within } from "../support/broker-chaos";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort, GatewayProcess } from "../support/gateway-process";
import { checkLives } from "../support/order-life";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function market(clientOrderId: string, side: "BUY" | "SELL" = "BUY") {
  return { symbol: "INFY", side, quantity: 1, client_order_id: clientOrderId } as const;
}

/**
 * The tally: 1,000 placements through a link with 40 ms of added delay each way, while
 * the gateway process is SIGKILLed and restarted 10 times, the link is blackholed (no FIN, no
 * RST) and reset (socket destroyed without a close frame). Afterwards every request has one
 * outcome, no order exists twice, each fill is reported once, no order goes backwards and nothing
 * is reported for an order that ended before the client connected.
 */
describe("chaos tally: 1,000 orders, 10 kills, blackholes and resets over a 40 ms link", function () {
  this.timeout(120_000);
  let dir: string;
  let gateway: GatewayProcess | undefined;
  const closers: (() => Promise<void>)[] = [];

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "chaos-tally-"));
  });

  after(async function () {
    for (const close of closers.reverse()) await close();
    await gateway?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("settles each placement once; 0 duplicates, each fill once, 0 regressions, 0 phantoms", async function () {
    const port = await freePort();
    const start = () =>
      GatewayProcess.start({
        port,
        journal: path.join(dir, "j.jsonl"),
        apiKey: TEST_KEY,
        apiSecret: TEST_SECRET,
        args: ["--volatility", "0", "--rate", "100000"],
      });
    gateway = await start();

    // Orders that ended before the client connected: it must never report them.
    const foreign = new Set<string>();
    const early = await GatewayClient.open(gateway.url);
    for (let i = 0; i < 20; i++) {
      foreign.add(
        (await early.call({ type: "PLACE_ORDER", order: market(`F${process.pid}x${i}`) })).order_id,
      );
    }
    await early.close();

    const relay = await WsTamperProxy.start(`ws://127.0.0.1:${port}/v1`);
    relay.delayMs = 40;
    closers.push(() => relay.close());
    const hole = await BlackholeProxy.start(Number(new URL(relay.url).port));
    closers.push(() => hole.close());
    const observed = new ObservedBroker(
      fastSettings(`${hole.url}/v1`, {
        heartbeat_ms: 800,
        request_timeout_ms: 2000,
        resolve_window_ms: 20_000,
        breaker: { failure_threshold: 50, cool_down_ms: 200 },
        queue: { max: 2000, ttl_ms: 4000 },
      }),
    );
    closers.push(() => observed.broker.close());
    const broker = observed.broker;
    await broker.connect();

    const total = 1000;
    const prefix = `C${process.pid}x`;
    const results = new Map<string, Settled<OrderSnapshot>>();
    const settledTimes = new Map<string, number>();
    const waits: Promise<void>[] = [];
    const faults: string[] = [];

    const chaos = (async () => {
      let kills = 0;
      let step = 0;
      while (kills < 10) {
        await delay(600);
        step += 1;
        if (step % 4 === 1) {
          hole.blackhole();
          await waitFor(
            () => broker.state !== "connected",
            "the broker to notice the blackhole",
            10_000,
          ).finally(() => hole.restore());
          faults.push("blackhole");
        } else if (step % 4 === 3) {
          relay.cutAll();
          faults.push("reset");
        } else {
          const victim = gateway;
          await victim.kill("SIGKILL");
          await delay(100);
          gateway = await start();
          kills += 1;
          faults.push("kill");
        }
      }
    })();

    for (let i = 0; i < total; i++) {
      const clientOrderId = `${prefix}${i}`;
      waits.push(
        classify(broker.placeOrder(market(clientOrderId, i % 2 === 0 ? "BUY" : "SELL"))).then((settled) => {
          settledTimes.set(clientOrderId, (settledTimes.get(clientOrderId) ?? 0) + 1);
          results.set(clientOrderId, settled);
        }),
      );
      // Spread over the faults: about 10 orders every 150 ms.
      if (i % 10 === 9) await delay(150);
    }
    await within(chaos, 60_000, "the faults");
    await within(Promise.all(waits), 60_000, "every placement to settle");

    const tally = { accepted: 0, rejected: 0, expired: 0, failed: 0 };
    const codes = new Map<string, number>();
    for (const settled of results.values()) {
      tally[settled.kind] += 1;
      if (settled.kind !== "accepted") {
        const key = `${settled.kind}:${settled.error.code}`;
        codes.set(key, (codes.get(key) ?? 0) + 1);
      }
    }
    assert.equal(results.size, total, "every placement settled");
    assert.deepEqual(
      [...settledTimes].filter(([, n]) => n !== 1),
      [],
      "placements that settled more than once",
    );

    const check = await GatewayClient.open(gateway.url);
    const wholeBook = await check.wholeBook();
    const { seq } = await check.call({ type: "PING" });
    await check.close();
    const book = wholeBook.filter((o) => o.client_order_id.startsWith(prefix));
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

    await waitFor(() => broker.lastSeq >= seq, `the broker to catch up to seq ${seq}`, 10_000);
    const report = checkLives(observed.orders, foreign);
    const fills = new Map<string, number>();
    for (const event of observed.orders) {
      if (event.type === "ORDER_FILLED")
        fills.set(event.order.order_id, (fills.get(event.order.order_id) ?? 0) + 1);
    }
    const filled = book.filter((o) => o.status === "FILLED");
    const unreported = filled.filter((o) => !fills.has(o.order_id)).map((o) => o.order_id);
    const bookIds = new Set(wholeBook.map((o) => o.order_id));
    const strangers = observed.orders
      .filter((e) => !bookIds.has(e.order.order_id))
      .map((e) => e.order.order_id);
    console.log(
      `      tally ${JSON.stringify(tally)} ${JSON.stringify(Object.fromEntries(codes))}; faults ${faults.join(",")}; ` +
        `${filled.length} filled, ${unreported.length} fills unreported, ${report.doubleFills.length} twice, ` +
        `${report.regressions.length} regressions, ${report.phantoms.length + strangers.length} phantoms; ` +
        `${broker.stats.reconnects} reconnects`,
    );
    assert.deepEqual(unreported, [], "fills never reported");
    assert.deepEqual(report.doubleFills, [], "fills reported twice");
    assert.deepEqual(report.regressions, [], "orders reported backwards");
    assert.deepEqual(report.phantoms, [], "events for orders that ended before the client connected");
    assert.deepEqual(strangers, [], "events for orders the account does not hold");
    // Not a speed check: it keeps the checks above from passing on a run where almost nothing was
    // acknowledged. Under a heavily loaded CI machine many placements time out across the faults
    // (280 of 1,000 accepted at load 15, 990 when idle), so the floor is a fifth, not a half.
    assert.ok(
      tally.accepted >= total / 5,
      `too few acknowledged for the checks to mean much: ${JSON.stringify(tally)}`,
    );
  });
});
