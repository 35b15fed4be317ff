import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import type { KiteSettingsInput } from "../../lib/brokers/kite-settings";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { DAY_IDS_CAP } from "../../lib/kite/bounded-ids";
import { ledgerFile } from "../../lib/kite/reported-ledger";
import { BrokerError } from "../../lib/protocol/errors";
import { EventLog } from "../contract/broker-contract";
import { FakeKite } from "../fakes/fake-kite";
import { fakeKiteSettings } from "../fakes/kite-harness";

/** Held in full (the rest of the ended orders keep only their client_order_id). */
const RETENTION = 10;
/** 60 past the cap on ended client_order_ids a broker keeps in memory: old0..old59 fall out. */
const COUNT = DAY_IDS_CAP + RETENTION + 60;

const buy = (clientId: string) => ({
  symbol: "INFY",
  side: "BUY" as const,
  quantity: 1,
  client_order_id: clientId,
});

/**
 * Issue kite11, item 3: a client_order_id retried after it fell past the 10,000 ended ids the
 * broker keeps in memory is neither placed a second time nor reported a second time, with or
 * without the reported ledger, across restarts. Kite's book holds 10,070 filled orders tagged
 * old0..old10069 (made on the fake's exchange directly: 10,070 placements through the REST API
 * would take minutes under Kite's 10/s); the retries go to the oldest.
 */
describe("KiteBroker: client_order_ids past the 10,000 kept in memory (issue kite11, item 3)", function () {
  this.timeout(60_000);
  let fake: FakeKite;
  let dir: string;
  let kiteIds: Map<string, string>;
  const running: { broker: KiteBroker; log: EventLog }[] = [];

  before(async function () {
    fake = await FakeKite.start({ heartbeatMs: 200 });
    fake.setPrice("INFY", 1500);
    for (let i = 0; i < COUNT; i++) {
      await fake.paper.placeOrder({ ...buy(`x${i}`), tag: `old${i}` });
    }
    // Kite's own ids, from its order book (as an earlier run's ledger recorded them).
    const reply = await fetch(`${fake.restUrl}/orders`, {
      headers: { "X-Kite-Version": "3", Authorization: `token ${fake.apiKey}:${fake.accessToken}` },
    });
    const book = ((await reply.json()) as { data: { order_id: string; tag: string; status: string }[] }).data;
    assert.equal(book.length, COUNT);
    assert.ok(book.every((o) => o.status === "COMPLETE"));
    kiteIds = new Map(book.map((o) => [o.tag, o.order_id]));
  });

  after(async function () {
    await fake.close();
  });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-ids-past-cap-"));
  });

  afterEach(async function () {
    for (const { broker, log } of running.splice(0)) {
      log.detach();
      await broker.close();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(
    extra: Partial<KiteSettingsInput> = {},
  ): Promise<{ broker: KiteBroker; log: EventLog }> {
    const broker = new KiteBroker(
      KiteSettings.parse({ ...fakeKiteSettings(fake), retention: RETENTION, ...extra }),
      {
        ledgerWaitMs: 200,
      },
    );
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

  const posts = (): number =>
    fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;

  /** The oldest ids, those at the cap's edge, and the newest: each answered once, none sent, nothing reported. */
  async function retryAll(run: { broker: KiteBroker; log: EventLog }, round: number): Promise<void> {
    const before = posts();
    const newest = await run.broker.placeOrder(buy(`old${COUNT - 1}`));
    assert.equal(newest.order_id, kiteIds.get(`old${COUNT - 1}`), "a retained order answers itself");
    for (const i of [0, 1, 2, 59, 60, COUNT - RETENTION - 1]) {
      const answer = await run.broker.placeOrder(buy(`old${i}`)).then(
        (order) => order,
        (error: unknown) => error as BrokerError,
      );
      if (!(answer instanceof BrokerError)) {
        assert.fail(
          `round ${round}: old${i} answered order ${answer.order_id} (Kite's was ${kiteIds.get(`old${i}`)}); ${posts() - before} sent, events ${run.log.orders.map((e) => e.type).join(",")}`,
        );
      }
      assert.equal(answer.code, "DUPLICATE_ORDER", answer.message);
      assert.match(
        answer.message,
        new RegExp(`old${i} was already used today by order ${kiteIds.get(`old${i}`)}`),
      );
    }
    assert.equal(posts(), before, `round ${round}: a retry was sent to Kite`);
    assert.equal(run.log.orders.length, 0, `round ${round}: a retry was reported again`);
  }

  it("without the reported ledger: retries of the oldest ids answer DUPLICATE_ORDER, none placed again, over restarts", async function () {
    for (let round = 0; round < 2; round++) {
      const run = await start();
      await retryAll(run, round);
      await stop(run);
    }
    assert.equal(await fake.orderCount(), COUNT);
  });

  it("with the reported ledger an earlier run left: retries answer DUPLICATE_ORDER, nothing reported twice, over restarts", async function () {
    // What the run that placed them and reported their fills wrote.
    const lines = [];
    for (let i = 0; i < COUNT; i++) lines.push(JSON.stringify({ placing: `old${i}` }));
    for (let i = 0; i < COUNT; i++) {
      lines.push(JSON.stringify({ order: kiteIds.get(`old${i}`), status: "FILLED", filled: 1 }));
    }
    fs.writeFileSync(ledgerFile(dir, fake.apiKey, { instance: "cfg" }), `${lines.join("\n")}\n`);
    for (let round = 0; round < 2; round++) {
      const run = await start({ cache_dir: dir, instance_id: "cfg" });
      await retryAll(run, round);
      await stop(run);
    }
    assert.equal(await fake.orderCount(), COUNT);
  });
});
