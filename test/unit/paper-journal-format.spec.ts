// Journal record format 3 (lib/paper/compact-record.ts) and events built when they go out
// (lib/paper/event-log.ts): the journaled broker must look exactly like the in-memory one.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import type { PaperSettingsInput } from "../../lib/paper/settings";
import type { AccountEvent } from "../../lib/protocol";
import { seededRandom } from "../../lib/paper/random";

const SETTINGS: PaperSettingsInput = {
  seed: 1,
  volatility: 0,
  spread_bps: 0,
  slippage_bps: 0,
  interval_ms: 60_000,
  retention: 20,
  max_fill_per_quote: 2,
};

describe("PaperBroker: journal record format 3 and events built when they go out", function () {
  let dir: string;
  const opened: PaperBroker[] = [];
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-format-"))));
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close().catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function make(clock: ManualClock, file?: string): Promise<PaperBroker> {
    const broker = new PaperBroker(SETTINGS, file === undefined ? { clock } : { clock, journalFile: file });
    opened.push(broker);
    await broker.connect();
    return broker;
  }

  const state = async (b: PaperBroker) => ({
    book: await b.getOrderbook(),
    positions: await b.getPositions(),
    account: await b.getAccount(),
    gtts: await b.getGtts(),
  });

  it("a MARKET place+fill is one record of under 300 bytes, marked as format 3", async function () {
    const file = path.join(dir, "small.jsonl");
    const broker = await make(new ManualClock(), file);
    broker.setPrice("INFY", 100);
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "warm" });
    const before = fs.statSync(file).size;
    await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "one" });
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    const last = lines.at(-1)!;
    assert.ok(last.startsWith('{"r":[3,'), last);
    assert.ok(fs.statSync(file).size - before < 300, `${fs.statSync(file).size - before} bytes: ${last}`);
  });

  it("an order placed, modified and cancelled before its first fsync shows each event with the fields it had then", async function () {
    const clock = new ManualClock();
    const memory = await make(clock);
    const journaled = await make(clock, path.join(dir, "same-burst.jsonl"));
    const heard = new Map<PaperBroker, AccountEvent[]>([
      [memory, []],
      [journaled, []],
    ]);
    for (const [b, into] of heard) b.on("order", (e) => into.push(structuredClone(e)));
    for (const b of [memory, journaled]) {
      b.setPrice("INFY", 100);
      // Not awaited: with the journal all of them run before the first fsync lets any event out.
      const ops: Promise<unknown>[] = [];
      for (let k = 0; k < 30; k++) {
        const id = `P${String(k + 1).padStart(9, "0")}`;
        ops.push(
          b.placeOrder({
            symbol: "INFY",
            side: "BUY",
            quantity: 3,
            order_type: "LIMIT",
            price: 90 + k / 10,
            client_order_id: `sameburst${k}`,
          }),
        );
        ops.push(b.modifyOrder(id, { quantity: 5 + k, price: 95 + k / 20 }));
        if (k % 3 === 0) ops.push(b.modifyOrder(id, { price: 101, quantity: 4 + k }));
        if (k % 3 === 1) ops.push(b.cancelOrder(id));
      }
      await Promise.allSettled(ops);
    }
    const events = heard.get(journaled)!;
    assert.ok(events.filter((e) => e.type === "ORDER_MODIFIED").length >= 40, "modifies ran");
    assert.deepEqual(events, heard.get(memory));
  });

  // Bursts fired without awaiting, so events wait for the fsync while later operations (modifies
  // among them) change the same orders; the journaled broker must emit what the in-memory one does.
  for (let seed = 1; seed <= 20; seed++) {
    it(`seed ${seed}: bursts of place, modify, cancel and quotes give the same events and answers as in memory, and reopen to the same state`, async function () {
      const clock = new ManualClock();
      const file = path.join(dir, `burst-${seed}.jsonl`);
      const memory = await make(clock);
      let journaled = await make(clock, file);
      const random = seededRandom(seed);
      const heard = new Map<PaperBroker, AccountEvent[]>([
        [memory, []],
        [journaled, []],
      ]);
      const listen = (b: PaperBroker, into: AccountEvent[]) => {
        b.on("order", (e) => into.push(structuredClone(e)));
        b.on("gtt", (e) => into.push(structuredClone(e)));
      };
      listen(memory, heard.get(memory)!);
      listen(journaled, heard.get(journaled)!);
      const answers = new Map<PaperBroker, unknown[]>([
        [memory, []],
        [journaled, []],
      ]);
      let next = 0;
      for (let burst = 0; burst < 12; burst++) {
        clock.advance(1000);
        const price = 95 + Math.floor(random() * 1000) / 100;
        const ops: ((b: PaperBroker) => Promise<unknown>)[] = [];
        const known = next;
        for (let k = 0; k < 6; k++) {
          const pick = random();
          const id = `P${String(1 + Math.floor(random() * Math.max(1, known))).padStart(9, "0")}`;
          if (pick < 0.45) {
            const cid = `c${seed}x${next++}`;
            const limit = random() < 0.6;
            const side = random() < 0.5 ? "BUY" : "SELL";
            const quantity = 1 + Math.floor(random() * 4);
            const limitPrice = Math.round((price - 2 + random() * 4) * 100) / 100;
            ops.push((b) =>
              b.placeOrder(
                limit
                  ? {
                      symbol: "INFY",
                      side,
                      quantity,
                      order_type: "LIMIT",
                      price: limitPrice,
                      client_order_id: cid,
                    }
                  : { symbol: "INFY", side, quantity, client_order_id: cid },
              ),
            );
          } else if (pick < 0.75) {
            const quantity = 2 + Math.floor(random() * 6);
            const newPrice = Math.round((price - 3 + random() * 6) * 100) / 100;
            ops.push((b) => b.modifyOrder(id, { quantity, price: newPrice, order_type: "LIMIT" }));
          } else {
            ops.push((b) => b.cancelOrder(id));
          }
        }
        for (const b of [memory, journaled]) {
          // All at once: the journaled broker runs them now, its events waiting for one fsync.
          const settled = Promise.allSettled(ops.map((op) => op(b)));
          const results = await settled;
          answers
            .get(b)!
            .push(
              ...results.map((r) =>
                r.status === "fulfilled" ? r.value : `${(r.reason as { code?: string }).code ?? "?"}`,
              ),
            );
          b.setPrice("INFY", price);
        }
        await journaled.flush();
      }
      assert.deepEqual(answers.get(journaled), answers.get(memory), "answers");
      assert.deepEqual(heard.get(journaled), heard.get(memory), "events");
      const before = await state(journaled);
      assert.deepEqual(before, await state(memory));
      await journaled.close();
      journaled = await make(clock, file);
      assert.deepEqual(await state(journaled), before, "reopened from format 3 records");
    });
  }
});
