import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import type { KiteSettingsInput } from "../../lib/brokers/kite-settings";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { EventLog, rejectsWithCode } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import { fakeKiteSettings } from "../fakes/kite-harness";

/**
 * What the reported ledger (issue kite9, items 1-3) must keep across Node-RED restarts: two broker
 * configs on one Kite account each report each event once to their own flows; event seqs never
 * go back within the day; a GTT that triggered while Node-RED was down is reported once.
 */
describe("KiteBroker's reported ledger across restarts (issue kite9)", function () {
  let fake: FakeKite;
  let dir: string;
  const running: { broker: KiteBroker; log: EventLog }[] = [];

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-ledger-restarts-"));
    fake = await FakeKite.start({ heartbeatMs: 200 });
    fake.setPrice("INFY", 1500);
    fake.setPrice("TCS", 3500);
  });

  afterEach(async function () {
    for (const { broker, log } of running.splice(0)) {
      log.detach();
      await broker.close();
    }
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function make(instance: string | undefined, extra: Partial<KiteSettingsInput> = {}): KiteBroker {
    return new KiteBroker(
      KiteSettings.parse({
        ...fakeKiteSettings(fake),
        cache_dir: dir,
        ...(instance === undefined ? {} : { instance_id: instance }),
        ...extra,
      }),
      { ledgerWaitMs: 200 },
    );
  }

  async function start(
    instance: string | undefined,
    extra: Partial<KiteSettingsInput> = {},
  ): Promise<{ broker: KiteBroker; log: EventLog }> {
    const broker = make(instance, extra);
    const log = new EventLog(broker);
    const run = { broker, log };
    running.push(run);
    await broker.connect();
    return run;
  }

  async function stop(run: { broker: KiteBroker; log: EventLog }): Promise<void> {
    running.splice(running.indexOf(run), 1);
    run.log.detach();
    await run.broker.close();
  }

  it("two configs on one account, restarted in turn ten times: each reports each fill once, to its own flows", async function () {
    this.timeout(30_000);
    const runs = { A: await start("config-a"), B: await start("config-b") };
    for (let round = 0; round < 10; round++) {
      const down: "A" | "B" = round % 2 === 0 ? "A" : "B";
      const up: "A" | "B" = down === "A" ? "B" : "A";
      const order = await runs[up].broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1490,
        client_order_id: `two${round}`,
      });
      for (const name of ["A", "B"] as const) {
        const log = runs[name].log;
        await log.until(() => log.typesFor(order.order_id).includes("ORDER_PLACED"), `${name} placed`);
      }
      await stop(runs[down]);
      // While one is down the fill comes: the other reports it live (and records it in its ledger).
      fake.setPrice("INFY", 1485);
      fake.setPrice("INFY", 1500);
      const live = runs[up].log;
      await live.until(
        () => live.typesFor(order.order_id).includes("ORDER_FILLED"),
        `round ${round}: live fill`,
      );
      runs[down] = await start(down === "A" ? "config-a" : "config-b");
      const back = runs[down].log;
      await back.until(
        () => back.typesFor(order.order_id).includes("ORDER_FILLED"),
        `round ${round}: ${down}, restarted, reports the fill made while it was down`,
      );
      assert.deepEqual(back.typesFor(order.order_id), ["ORDER_FILLED"], `round ${round}`);
      assert.equal(back.orders.length, 1, `round ${round}: ${down} reports nothing else again`);
      assert.deepEqual(live.typesFor(order.order_id), ["ORDER_PLACED", "ORDER_FILLED"], `round ${round}`);
    }
    // Each config's own file, none shared.
    const ledgers = fs
      .readdirSync(dir)
      .filter((name) => name.startsWith("kite-reported-") && name.endsWith(".jsonl"));
    assert.equal(ledgers.length, 2, ledgers.join(", "));
    assert.equal(await fake.orderCount(), 10);
  });

  it("two brokers of one config at once: the second waits for the first to let the ledger go, else fails CONFIG naming it", async function () {
    this.timeout(20_000);
    for (let round = 0; round < 5; round++) {
      const first = await start("config-a");
      const second = make("config-a");
      running.push({ broker: second, log: new EventLog(second) });
      await rejectsWithCode(second.connect(), "CONFIG", /in use by .*config config-a/);
      // A redeploy: the old broker closes while the new one waits, and the new one then opens it.
      const third = make("config-a");
      const log = new EventLog(third);
      running.push({ broker: third, log });
      const connecting = third.connect();
      await stop(first);
      await connecting;
      await stop(running.find((r) => r.broker === third)!);
      await stop(running.find((r) => r.broker === second)!);
    }
  });

  it("ten restarts, each with events: no seq is issued twice, and seqs only go up", async function () {
    this.timeout(30_000);
    const seen: number[] = [];
    let run = await start("config-a");
    for (let round = 0; round < 10; round++) {
      const order = await run.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1490,
        client_order_id: `seq${round}`,
      });
      const log = run.log;
      await log.until(() => log.typesFor(order.order_id).includes("ORDER_PLACED"), "placed");
      if (round % 2 === 0) {
        fake.setPrice("INFY", 1485);
        fake.setPrice("INFY", 1500);
        await log.until(() => log.typesFor(order.order_id).includes("ORDER_FILLED"), "filled");
      }
      seen.push(...log.orders.map((e) => e.seq));
      await stop(run);
      if (round % 2 === 1) {
        // A fill while down: the next run's first event.
        fake.setPrice("INFY", 1485);
        fake.setPrice("INFY", 1500);
      }
      run = await start("config-a");
      if (round % 2 === 1) {
        const next = run.log;
        await next.until(
          () => next.typesFor(order.order_id).includes("ORDER_FILLED"),
          `round ${round}: fill`,
        );
      }
      assert.ok(
        run.broker.lastSeq >= Math.max(...seen),
        `round ${round}: restarted at seq ${run.broker.lastSeq}, below ${Math.max(...seen)} already issued`,
      );
    }
    seen.push(...run.log.orders.map((e) => e.seq));
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]! > seen[i - 1]!, `seq ${seen[i]} after ${seen[i - 1]}: ${seen.join(", ")}`);
    }
  });

  it("a GTT that triggers while Node-RED is down: GTT_TRIGGERED once after the restart, then never again over ten restarts", async function () {
    this.timeout(30_000);
    let run = await start("config-a", { gtt_poll_ms: 60_000 });
    const triggered: string[] = [];
    for (let round = 0; round < 10; round++) {
      if (round < 3) {
        const price = 3600 + round * 10;
        fake.setPrice("TCS", price - 100);
        const gtt = await run.broker.placeGtt({
          type: "single",
          symbol: "TCS",
          last_price: price - 100,
          trigger_values: [price],
          orders: [{ side: "SELL", quantity: 1, price: price - 5, product: "MIS" }],
        });
        await stop(run);
        // Down: the GTT triggers, and its order is placed.
        fake.setPrice("TCS", price + 10);
        run = await start("config-a", { gtt_poll_ms: 60_000 });
        const log = run.log;
        await log.until(
          () => log.gtts.some((e) => e.gtt.gtt_id === gtt.gtt_id && e.type === "GTT_TRIGGERED"),
          `round ${round}: GTT_TRIGGERED after the restart`,
        );
        triggered.push(gtt.gtt_id);
        const event = log.gtts.find((e) => e.type === "GTT_TRIGGERED")!;
        assert.equal(event.gtt.order_ids.length, 1, `round ${round}: the order it placed is named`);
        // Its order is announced after it, as when the trigger is seen live.
        const orderId = event.gtt.order_ids[0]!;
        await log.until(() => log.typesFor(orderId).includes("ORDER_PLACED"), `round ${round}: its order`);
        assert.ok(log.orders.find((e) => e.order.order_id === orderId)!.seq > event.seq);
        assert.equal(log.orders.find((e) => e.order.order_id === orderId)!.order.gtt_id, gtt.gtt_id);
      } else {
        await stop(run);
        run = await start("config-a", { gtt_poll_ms: 60_000 });
        // Give a wrong repeat its chance to show.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const log = run.log;
      const again = log.gtts.filter(
        (e) => e.type === "GTT_TRIGGERED" && triggered.slice(0, -1).includes(e.gtt.gtt_id),
      );
      const repeated = round < 3 ? again : log.gtts.filter((e) => e.type === "GTT_TRIGGERED");
      assert.deepEqual(repeated, [], `round ${round}: reported again`);
    }
  });
});
