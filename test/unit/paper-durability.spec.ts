// Issue 12's durability and identity defects (6-9, 11-13), one test each against a real journal file.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { rejectsWithCode } from "../contract/broker-contract";
import { readJournal } from "../support/paper-journal-file";

const SETTINGS: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 60_000,
};

/** A journal line as the broker writes it: the value, then a CRC32 of the line without it. */
function sealed(entry: object): string {
  const body = JSON.stringify(entry);
  return `${body.slice(0, -1)},"k":"${crc32(body).toString(16).padStart(8, "0")}"}\n`;
}

describe("PaperBroker: durability and identity (issue 12)", function () {
  let dir: string;
  let file: string;
  let opened: PaperBroker[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  const log = {
    info: () => undefined,
    warn: (m: string) => warnings.push(m),
    error: (m: string) => errors.push(m),
  };

  function broker(settings: PaperSettingsInput = {}, clock = new ManualClock()): PaperBroker {
    const made = new PaperBroker({ ...SETTINGS, ...settings }, { clock, journalFile: file, log });
    opened.push(made);
    return made;
  }
  async function connected(settings: PaperSettingsInput = {}): Promise<PaperBroker> {
    const made = broker(settings);
    await made.connect();
    return made;
  }

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-durable-"));
    file = path.join(dir, "paper-default.jsonl");
    warnings.length = 0;
    errors.length = 0;
  });
  afterEach(async function () {
    await Promise.all(opened.map((b) => b.close().catch(() => undefined)));
    opened = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("8. every event is in the journal file before any listener hears of it; so is every answer", async function () {
    const paper = await connected();
    paper.setPrice("INFY", 100);
    const unwritten: string[] = [];
    paper.on("order", (event: OrderEvent) => {
      // Read back as a restart would: the event's seq is covered and its order is in a record.
      const records = readJournal(file).filter((line) => line.kind === "r");
      const covered = records.some((r) => r.seq >= event.seq);
      const held = records.some((r) => r.orders.some((o) => o.order_id === event.order.order_id));
      if (!covered || !held) unwritten.push(`${event.type} ${event.order.order_id} seq ${event.seq}`);
    });
    const placed = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        paper.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 90 + (i % 5),
        }),
      ),
    );
    for (const order of placed)
      assert.ok(readJournal(file).some((line) => line.orders.some((o) => o.order_id === order.order_id)));
    paper.setPrice("INFY", 89);
    await paper.flush();
    assert.deepEqual(unwritten, [], "events heard before their record was written");
  });

  it("11. an order placed while close() runs is either refused or kept: none is lost", async function () {
    const paper = await connected();
    paper.setPrice("INFY", 100);
    let closed = false;
    const closing = paper.close().then(() => (closed = true));
    // Orders at every point of close(): at once, after each microtask, after each turn of the loop.
    const attempts: PromiseSettledResult<OrderSnapshot>[] = [];
    const place = () =>
      paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 90 });
    const pending: Promise<void>[] = [];
    for (let turn = 0; !closed && turn < 500; turn++) {
      for (let i = 0; i < 5; i++) {
        pending.push(Promise.allSettled([place()]).then(([result]) => void attempts.push(result)));
        await Promise.resolve();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await closing;
    await Promise.all(pending);
    assert.ok(attempts.length >= 5);
    const accepted = attempts.flatMap((a) => (a.status === "fulfilled" ? [a.value.order_id] : []));
    for (const attempt of attempts) {
      if (attempt.status === "rejected")
        assert.equal((attempt.reason as { code?: string }).code, "NOT_CONNECTED");
    }
    const reopened = await connected();
    const book = new Set((await reopened.getOrderbook()).map((o) => o.order_id));
    for (const id of accepted) assert.ok(book.has(id), `accepted order ${id} survives`);
  });

  it("12. close() then connect() on the same broker loads the journal once, not on top of what it holds", async function () {
    const paper = await connected();
    paper.setPrice("INFY", 100);
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, order_type: "LIMIT", price: 100 });
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 5, order_type: "LIMIT", price: 90 });
    const before = await paper.getAccount();
    for (let i = 0; i < 3; i++) {
      await paper.close();
      await paper.connect();
    }
    assert.deepEqual(await paper.getAccount(), before);
    assert.equal((await paper.getPositions())[0]?.quantity, 10);
    assert.equal((await paper.getOrderbook()).length, 2);
    paper.setPrice("INFY", 89);
    assert.equal((await paper.getPositions())[0]?.quantity, 15, "the resting order filled once");
  });

  it("7. ids and seq are never reused, even when a corrupt tail had to be set aside", async function () {
    const first = await connected();
    first.setPrice("INFY", 100);
    const seen = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const order = await first.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: `first${i}`,
      });
      seen.set(order.order_id, order.client_order_id);
    }
    const seqBefore = first.lastSeq;
    await first.close();
    // Damage the 3rd record: records 3-6 (and their ids) are not applied, but they were seen.
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const third = lines[2]!;
    lines[2] = third.replace('"INFY"', '"INFX"');
    assert.notEqual(lines[2], third);
    fs.writeFileSync(file, lines.join("\n"));
    const second = await connected();
    assert.equal(second.restoreReport?.quarantine?.lineNo, 3);
    assert.ok(second.restoreReport.quarantine.droppedAfter >= 3);
    assert.match(errors.join("\n"), /NOT applied/);
    second.setPrice("INFY", 100);
    const events: OrderEvent[] = [];
    second.on("order", (e) => events.push(e));
    for (let i = 0; i < 6; i++) {
      const order = await second.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: `second${i}`,
      });
      assert.ok(
        !seen.has(order.order_id),
        `order id ${order.order_id} was already given to ${seen.get(order.order_id)}`,
      );
    }
    assert.ok(
      events.every((e) => e.seq > seqBefore),
      "seq never goes back to numbers already used",
    );
  });

  it('13. restore validates every record: a wrong status, `orders: 3` or `cash: "lots"` is quarantined, never loaded', async function () {
    const paper = await connected();
    paper.setPrice("INFY", 100);
    const resting = await paper.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      order_type: "LIMIT",
      price: 90,
    });
    await paper.close();
    const good = fs.readFileSync(file, "utf8");
    // The last record (format 3, a positional array): its order tuple, cash at [3], orders at [6].
    const record = JSON.parse(
      good
        .trim()
        .split("\n")
        .at(-1)!
        .replace(/,"k":"[0-9a-f]{8}"\}$/, "}"),
    ) as { r: unknown[] };
    assert.equal(record.r[0], 3, "written in format 3");
    const opem = structuredClone(record);
    const tuple = (opem.r[6] as unknown[][])[0]!;
    assert.equal(tuple[9], "OPEN");
    tuple[9] = "OPEM";
    const three = { r: record.r.map((v, i) => (i === 6 ? 3 : v)) };
    const lots = { r: record.r.map((v, i) => (i === 3 ? "lots" : v)) };
    for (const [name, bad, reason] of [
      ["OPEM", opem, /status/],
      ["orders: 3", three, /orders/],
      ['cash: "lots"', lots, /cash/],
    ] as const) {
      fs.writeFileSync(file, good + sealed(bad));
      const again = broker();
      await again.connect();
      assert.equal(again.restoreReport?.quarantine?.lineNo, good.split("\n").length, name);
      assert.match(again.restoreReport.quarantine.reason, reason, name);
      const [order] = await again.getOrderbook();
      assert.equal(order?.status, "OPEN", `${name}: the record before it stands`);
      again.setPrice("INFY", 89);
      assert.equal(
        (await again.getOrder(resting.order_id)).status,
        "FILLED",
        `${name}: the account still trades`,
      );
      await again.close();
      for (const f of fs.readdirSync(dir)) if (f.includes(".corrupt-")) fs.rmSync(path.join(dir, f));
    }
  });

  it("13. a corrupt snapshot never silently resets the account to its starting cash", async function () {
    const paper = await connected({ retention: 10 });
    paper.setPrice("INFY", 100);
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
    await paper.resetAccount(); // compacts: line 1 is now a snapshot
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 3 });
    await paper.close();
    const text = fs.readFileSync(file, "utf8");
    assert.ok(text.startsWith('{"s":'));
    // Snapshots are written as version 3 (orders as tuples); an unknown version 4 is damage.
    const damaged = text.replace('"version":3', '"version":4');
    assert.notEqual(damaged, text, "the snapshot line was damaged");
    fs.writeFileSync(file, damaged);
    await rejectsWithCode(connected(), "CONFIG", /line 1 .*corrupt/);
    assert.equal(fs.readFileSync(file, "utf8"), damaged, "left for a human to repair");
  });

  it("13b. a version 3 snapshot (orders as tuples) reopens the account as it was; a tuple that reads wrong is refused naming the field", async function () {
    // Compacting after every record, so line 1 is a snapshot holding both orders.
    const paper = new PaperBroker(
      { ...SETTINGS, retention: 10 },
      { clock: new ManualClock(), journalFile: file, log, compactEvery: 1 },
    );
    opened.push(paper);
    await paper.connect();
    paper.setPrice("INFY", 100);
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10, tag: "snap3" });
    await paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 5, order_type: "LIMIT", price: 90 });
    const state = async (b: PaperBroker) => [
      await b.getAccount(),
      await b.getOrderbook(),
      await b.getPositions(),
    ];
    const before = await state(paper);
    await paper.close();
    const lines = fs.readFileSync(file, "utf8").split("\n");
    assert.ok(lines[0]!.startsWith('{"s":{"version":3,'), lines[0]!.slice(0, 40));
    const line1 = JSON.parse(lines[0]!) as { s: { orders: unknown[][] } };
    assert.equal(line1.s.orders.length, 2);
    assert.ok(line1.s.orders.every((tuple) => Array.isArray(tuple) && tuple.length === 17));

    const reopened = await connected({ retention: 10 });
    assert.deepEqual(await state(reopened), before);
    await reopened.close();

    // Resealed, so only the schema can catch it: the first order's status (position 9) is "OPEM".
    line1.s.orders[0]![9] = "OPEM";
    fs.writeFileSync(file, sealed({ s: line1.s }) + lines.slice(1).join("\n"));
    await rejectsWithCode(connected({ retention: 10 }), "CONFIG", /line 1 .*corrupt.*orders\.0\.status/);
  });

  for (const [name, fixture] of [
    ["records only", "paper-v1-records.jsonl"],
    ["a compacted snapshot", "paper-v1-snapshot.jsonl"],
  ] as const) {
    it(`opens a version 1 journal (rupees, no checksums; ${name}) as the account it was`, async function () {
      // Written by the broker before this change: 30 MARKET orders at 100.37, a LIMIT BUY 5 @ 90, a GTT.
      fs.copyFileSync(path.join(__dirname, "..", "..", "..", "test", "fixtures", fixture), file);
      const paper = await connected({ retention: 10 });
      assert.equal(paper.restoreReport?.legacy, true);
      assert.equal(paper.restoreReport.quarantine, undefined);
      const account = await paper.getAccount();
      assert.equal(account.cash, 997691.49);
      const [position] = await paper.getPositions();
      assert.equal(position?.quantity, 23);
      assert.equal(position.average_price, 100.37);
      assert.equal((await paper.getOrderbook()).length, 11);
      assert.equal((await paper.getGtts()).length, 1);
      // The resting BUY 5 @ 90 still holds its 450 back: 997,241.49 is all a new BUY may use.
      paper.setPrice("INFY", 100);
      const tooBig = await paper.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 9974,
        order_type: "LIMIT",
        price: 99.99,
      });
      assert.equal(tooBig.status, "REJECTED");
      assert.match(tooBig.status_message ?? "", /available 997241.49/);
      await rejectsWithCode(
        paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "c29" }).then(() => {
          throw Object.assign(new Error("placed"), { code: "PLACED" });
        }),
        "PLACED",
      ); // c29 is retained: the same order, answered again
      assert.equal((await paper.getOrderbook()).filter((o) => o.client_order_id === "c29").length, 1);
      await paper.close();
      // Written back in version 2, it opens again the same.
      const again = await connected({ retention: 10 });
      assert.equal((await again.getAccount()).cash, 997691.49);
    });
  }

  it("6. reopening gives back exactly the state before: last prices, time priority, retention", async function () {
    const clock = new ManualClock();
    const settings: PaperSettingsInput = { retention: 10, max_fill_per_quote: 2 };
    const twin = new PaperBroker({ ...SETTINGS, ...settings }, { clock });
    await twin.connect();
    opened.push(twin);
    let paper = broker(settings, clock);
    await paper.connect();
    const both = async <T>(act: (b: PaperBroker) => Promise<T> | T): Promise<[T, T]> => [
      await act(paper),
      await act(twin),
    ];
    await both((b) => b.setPrice("INFY", 100, { bid: 100, ask: 100 }));
    await both((b) => b.placeOrder({ symbol: "INFY", side: "BUY", quantity: 6, product: "CNC" }));
    await both((b) => b.setPrice("INFY", 100, { bid: 100, ask: 100 }));
    await both((b) => b.setPrice("INFY", 100, { bid: 100, ask: 100 }));
    for (let i = 0; i < 4; i++) {
      await both((b) =>
        b.placeOrder({ symbol: "INFY", side: "SELL", quantity: 1, order_type: "LIMIT", price: 101 + i }),
      );
      await both((b) =>
        b.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 99 - i }),
      );
    }
    for (let i = 0; i < 12; i++)
      await both((b) =>
        b
          .placeOrder({ symbol: "TCS", side: "BUY", quantity: 1, order_type: "LIMIT", price: 1 })
          .then((o) => b.cancelOrder(o.order_id)),
      );
    await both((b) => b.setPrice("INFY", 103.5, { bid: 103.5, ask: 103.6 }));
    const state = async (b: PaperBroker) => ({
      account: await b.getAccount(),
      positions: await b.getPositions(),
      orders: (await b.getOrderbook()).map(({ client_order_id: _c, ...o }) => o),
    });
    await paper.close();
    paper = broker(settings, clock);
    await paper.connect();
    assert.deepEqual(await state(paper), await state(twin), "reopen = the state before");
    // The same future: one quote that fills resting orders of both sides in time priority.
    await both((b) => b.setPrice("INFY", 97, { bid: 97, ask: 97 }));
    await both((b) => b.setPrice("INFY", 104, { bid: 104, ask: 104 }));
    assert.deepEqual(await state(paper), await state(twin), "and the same future");
  });
});
