// Old state against the gateway: a client_order_id older than the broker's retention and than its
// trading day, with and without restarts; RESUME from seqs older than the replay buffer, from 0 and
// from the future across 10 restarts; an idempotency index with thousands of lines from yesterday
// and the day before, intents among them.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import { istDay } from "../../lib/gateway/idempotency-index";
import type { Clock } from "../../lib/paper/clock";
import type { Received } from "../support/gateway-client";
import { GatewayClient, TEST_KEY, TEST_SECRET } from "../support/gateway-client";

const DAY = 24 * 60 * 60_000;

/** Real timers, a wall clock the test moves: the paper broker and the gateway share it. */
class ShiftedClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  setTimeout(callback: () => void, ms: number): NodeJS.Timeout {
    return setTimeout(callback, ms);
  }
  clearTimeout(timer: unknown): void {
    clearTimeout(timer as NodeJS.Timeout);
  }
}

interface Host {
  broker: PaperBroker;
  gateway: Gateway;
  close(): Promise<void>;
}

async function host(
  dir: string,
  clock: ShiftedClock,
  options: { retention?: number; replayBuffer?: number } = {},
): Promise<Host> {
  const broker = new PaperBroker(
    {
      seed: 1,
      volatility: 0,
      spread_bps: 0,
      slippage_bps: 0,
      interval_ms: 60_000,
      retention: options.retention ?? 10_000,
    },
    { journalFile: path.join(dir, "paper.jsonl"), clock },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  const gateway = await Gateway.start({
    broker,
    credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
    idempotencyFile: path.join(dir, "index.jsonl"),
    now: () => clock.now(),
    heartbeat: { intervalMs: 0, maxMissedPongs: 2 },
    ...(options.replayBuffer === undefined ? {} : { replayBuffer: options.replayBuffer }),
  });
  return {
    broker,
    gateway,
    async close() {
      await gateway.close();
      await broker.close();
    },
  };
}

async function open(made: Host, clock: ShiftedClock): Promise<GatewayClient> {
  const client = await GatewayClient.connect(made.gateway.url);
  const reply = await client.auth({ timestamp: clock.now() });
  assert.equal(reply.type, "RESULT", JSON.stringify(reply));
  return client;
}

function market(clientOrderId: string, quantity = 1): Record<string, unknown> {
  return { symbol: "INFY", side: "BUY", quantity, client_order_id: clientOrderId };
}

function codeOf(reply: Received): string {
  return reply.type === "RESULT" ? "RESULT" : (reply.error?.code ?? "?");
}

describe("Gateway: old state", function () {
  this.timeout(30_000);
  let dir: string;
  let made: Host | undefined;
  const clients: GatewayClient[] = [];

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-old-"));
  });

  afterEach(async function () {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await made?.close();
    made = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("an id past the broker's retention: DUPLICATE_ORDER through its day and the next, with or without restarts; then free, once", async function () {
    const clock = new ShiftedClock();
    // Midday IST, so the steps below cross whole IST days.
    clock.offset = Date.UTC(2026, 11, 7, 6, 30) - Date.now();
    made = await host(dir, clock, { retention: 10 });
    let client = await open(made, clock);
    clients.push(client);
    const original = await client.call({ type: "PLACE_ORDER", order: market("OLD0") });
    for (let i = 1; i <= 40; i++) await client.call({ type: "PLACE_ORDER", order: market(`OLD${i}`) });

    const expectRemembered = async (when: string): Promise<void> => {
      const retry = await client.request({ type: "PLACE_ORDER", order: market("OLD0") });
      assert.equal(codeOf(retry), "DUPLICATE_ORDER", `${when}: ${JSON.stringify(retry)}`);
      assert.match(retry.error?.message ?? "", new RegExp(original.order_id));
      const lookup = await client.request({ type: "GET_ORDER", client_order_id: "OLD0" });
      assert.equal(codeOf(lookup), "DUPLICATE_ORDER", `${when}: ${JSON.stringify(lookup)}`);
      const other = await client.request({ type: "PLACE_ORDER", order: market("OLD0", 7) });
      assert.equal(codeOf(other), "IDEMPOTENCY_MISMATCH", `${when}: ${JSON.stringify(other)}`);
    };
    const restart = async (): Promise<void> => {
      await client.close();
      clients.splice(clients.indexOf(client), 1);
      await made?.close();
      made = await host(dir, clock, { retention: 10 });
      client = await open(made, clock);
      clients.push(client);
    };

    await expectRemembered("the same day");
    await restart();
    await expectRemembered("the same day, after a restart");
    clock.offset += DAY;
    await expectRemembered("the next day");
    await restart();
    await expectRemembered("the next day, after a restart");

    // Two days on, the id's days are over: one rule, whether or not the gateway restarted since.
    clock.offset += DAY;
    const placedAgain = await client.request({ type: "PLACE_ORDER", order: market("OLD0") });
    assert.equal(
      codeOf(placedAgain),
      "RESULT",
      `two days on, without a restart: ${JSON.stringify(placedAgain)}`,
    );
    const fresh = (placedAgain.result as { order_id: string }).order_id;
    assert.notEqual(fresh, original.order_id);
    const again = await client.request({ type: "PLACE_ORDER", order: market("OLD0") });
    assert.equal((again.result as { order_id?: string } | undefined)?.order_id, fresh, "and once");
    await restart();
    const afterRestart = await client.request({ type: "PLACE_ORDER", order: market("OLD0") });
    assert.equal(
      (afterRestart.result as { order_id?: string } | undefined)?.order_id,
      fresh,
      "and once, after a restart",
    );
    const book = await client.wholeBook();
    assert.equal(book.filter((order) => order.client_order_id === "OLD0").length, 1);
  });

  it("RESUME across 10 restarts: from 0, from before the buffer, from the future; seqs never reused for another event", async function () {
    const clock = new ShiftedClock();
    made = await host(dir, clock, { replayBuffer: 5 });
    const bySeq = new Map<number, string>();
    const record = (client: GatewayClient): void => {
      for (const message of client.received) {
        if (message.type !== "EVENT" || message.event === undefined) continue;
        const text = JSON.stringify(message.event);
        const before = bySeq.get(message.event.seq);
        assert.ok(
          before === undefined || before === text,
          `seq ${message.event.seq} named two events:\n${before}\n${text}`,
        );
        bySeq.set(message.event.seq, text);
      }
    };
    let lastSeq = 0;
    for (let restart = 0; restart < 10; restart++) {
      const where = `restart ${restart}`;
      const client = await open(made, clock);
      clients.push(client);
      const auth = client.received[0]?.result as { seq: number };
      assert.ok(auth.seq >= lastSeq, `${where}: seq ${auth.seq} went back from ${lastSeq}`);
      const startSeq = auth.seq;
      const placed = 3 + restart;
      for (let i = 0; i < placed; i++)
        await client.call({ type: "PLACE_ORDER", order: market(`R${restart}x${i}`) });
      const { seq } = await client.call({ type: "PING" });
      assert.ok(seq > startSeq, `${where}: events were issued`);
      const issued = seq - startSeq;
      // From 0 and from before this start: a gap (the buffer holds at most 5, and none before this start).
      for (const from of [0, Math.max(0, startSeq - 1), lastSeq > 0 ? lastSeq - 1 : 0]) {
        const result = await client.call({ type: "RESUME", from_seq: from });
        assert.equal(result.seq, seq, where);
        assert.equal(result.gap, from < seq, `${where}: RESUME from ${from} of ${seq}`);
        assert.equal(result.replayed, Math.min(5, issued, seq - from), `${where}: RESUME from ${from}`);
      }
      const inside = await client.call({ type: "RESUME", from_seq: seq - 2 });
      assert.deepEqual(inside, { replayed: 2, gap: false, seq }, where);
      const current = await client.call({ type: "RESUME", from_seq: seq });
      assert.deepEqual(current, { replayed: 0, gap: false, seq }, where);
      for (const from of [seq + 1, seq + 1000, Number.MAX_SAFE_INTEGER]) {
        const ahead = await client.call({ type: "RESUME", from_seq: from });
        assert.deepEqual(ahead, { replayed: 0, gap: true, seq }, `${where}: RESUME from the future ${from}`);
      }
      await GatewayClient.pause(20);
      record(client);
      lastSeq = seq;
      await client.close();
      clients.splice(clients.indexOf(client), 1);
      await made.close();
      made = await host(dir, clock, { replayBuffer: 5 });
    }
    assert.ok(bySeq.size >= 50, `${bySeq.size} distinct events seen`);
  });

  it("an index with 6,000 lines from yesterday and the day before, intents among them: starts, answers each by its day", async function () {
    const clock = new ShiftedClock();
    const now = clock.now();
    const today = istDay(now);
    const yesterday = istDay(now - DAY);
    const before = istDay(now - 2 * DAY);
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++)
      lines.push(JSON.stringify([`default\u0000Y${i}`, `X${String(i).padStart(9, "0")}`, "", yesterday]));
    for (let i = 0; i < 2000; i++)
      lines.push(JSON.stringify([`default\u0000B${i}`, `Z${String(i).padStart(9, "0")}`, "", before]));
    // Placements cut short yesterday and the day before: the broker holds none of them.
    for (let i = 0; i < 1000; i++)
      lines.push(JSON.stringify(["i", `default\u0000IY${i}`, "h", yesterday, ""]));
    for (let i = 0; i < 1000; i++) lines.push(JSON.stringify(["i", `default\u0000IB${i}`, "h", before, ""]));
    // A broker that has forgotten orders (retention 10): it cannot show an intent made none.
    made = await host(dir, clock, { retention: 10 });
    for (let i = 0; i < 30; i++) await made.broker.placeOrder(market(`P${i}`) as never);
    await made.close();
    fs.writeFileSync(path.join(dir, "index.jsonl"), `${lines.join("\n")}\n`);
    const started = performance.now();
    made = await host(dir, clock, { retention: 10 });
    const startMs = Math.round(performance.now() - started);
    const client = await open(made, clock);
    clients.push(client);
    const ask = async (id: string): Promise<string> =>
      codeOf(await client.request({ type: "PLACE_ORDER", order: market(id) }));
    // Yesterday's ids are remembered (their orders are gone: DUPLICATE_ORDER); the day before's are free.
    assert.equal(await ask("Y0"), "DUPLICATE_ORDER");
    assert.equal(await ask("Y1999"), "DUPLICATE_ORDER");
    assert.equal(await ask("B0"), "RESULT");
    // Yesterday's cut-short intents cannot be settled: refused; the day before's have expired.
    assert.equal(await ask("IY0"), "IDEMPOTENCY_UNKNOWN");
    assert.equal(await ask("IB0"), "RESULT");
    const compacted = fs
      .readFileSync(path.join(dir, "index.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line !== "");
    assert.ok(compacted.length < 3100, `compacted to yesterday's and today's lines: ${compacted.length}`);
    assert.ok(!compacted.some((line) => line.includes(before)), "no line of the day before is kept");
    console.log(
      `      started over 6,000 old lines in ${startMs} ms; ${compacted.length} lines kept (today ${today})`,
    );

    // A day on, without a restart: yesterday's ids and intents are as free as after a restart.
    clock.offset += DAY;
    assert.equal(await ask("Y1"), "RESULT", "a day on, yesterday's id is free");
    assert.equal(await ask("IY1"), "RESULT", "a day on, yesterday's unsettled intent is free");
  });

  it("DUPLICATE_ORDER says the day the id was used: today, then that day by date the next day, after restarts too", async function () {
    const clock = new ShiftedClock();
    clock.offset = Date.UTC(2026, 11, 7, 6, 30) - Date.now();
    const usedOn = istDay(clock.now());
    made = await host(dir, clock, { retention: 10 });
    let client = await open(made, clock);
    clients.push(client);
    const original = await client.call({ type: "PLACE_ORDER", order: market("DAY0") });
    for (let i = 1; i <= 30; i++) await client.call({ type: "PLACE_ORDER", order: market(`DAY${i}`) });
    const messages = async (): Promise<string[]> => {
      const retry = await client.request({ type: "PLACE_ORDER", order: market("DAY0") });
      const lookup = await client.request({ type: "GET_ORDER", client_order_id: "DAY0" });
      for (const reply of [retry, lookup])
        assert.equal(codeOf(reply), "DUPLICATE_ORDER", JSON.stringify(reply));
      return [retry.error?.message ?? "", lookup.error?.message ?? ""];
    };
    for (const message of await messages()) {
      assert.match(
        message,
        new RegExp(`already used today \\(${usedOn}, IST\\) for order ${original.order_id}`),
      );
    }
    for (let round = 0; round < 3; round++) {
      clock.offset += round === 0 ? DAY : 0;
      for (const message of await messages()) {
        assert.doesNotMatch(message, /today/, `the next day, round ${round}: ${message}`);
        assert.match(message, new RegExp(`was used on ${usedOn} \\(IST\\) for order ${original.order_id}`));
        assert.match(message, /the gateway keeps an id through the IST day it was used and the next/);
      }
      await client.close();
      clients.splice(clients.indexOf(client), 1);
      await made.close();
      made = await host(dir, clock, { retention: 10 });
      client = await open(made, clock);
      clients.push(client);
    }
  });

  it("an id read back from the broker's book at a restart keeps the day its order was placed, not the restart's", async function () {
    const clock = new ShiftedClock();
    clock.offset = Date.UTC(2026, 11, 7, 6, 30) - Date.now();
    made = await host(dir, clock, { retention: 10 });
    let client = await open(made, clock);
    clients.push(client);
    const original = await client.call({ type: "PLACE_ORDER", order: market("SEED0") });
    await client.close();
    clients.splice(clients.indexOf(client), 1);
    await made.close();
    // The index loses its line (a crash before it was written, or a new file): the restart two days
    // on reads the id back from the broker's book, which still holds the order.
    fs.rmSync(path.join(dir, "index.jsonl"));
    clock.offset += 2 * DAY;
    made = await host(dir, clock, { retention: 10 });
    client = await open(made, clock);
    clients.push(client);
    // Ten orders more push SEED0 past the broker's retention of ended orders.
    for (let i = 1; i <= 12; i++) await client.call({ type: "PLACE_ORDER", order: market(`SEED${i}`) });
    // Its days (the day it was used and the next) are over: a new order, as without the restart.
    const again = await client.request({ type: "PLACE_ORDER", order: market("SEED0") });
    assert.equal(codeOf(again), "RESULT", JSON.stringify(again));
    assert.notEqual((again.result as { order_id: string }).order_id, original.order_id);
  });
});
