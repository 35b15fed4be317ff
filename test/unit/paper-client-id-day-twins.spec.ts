// A retired client_order_id (its order left retention) is remembered for its trading day (IST)
// and no longer (README "Admission"; DESIGN §10: "idempotency keys outlive order retention for the
// trading day, durably"). The same PLACE_ORDER must get the same answer whether or not the process
// restarted: twins given the same calls, one that never restarts and one restarted ten times across
// a day boundary, answer alike, and by that rule.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { BrokerError } from "../../lib/protocol/errors";

const HOUR = 60 * 60 * 1000;
/** 09:30 IST on Monday 2026-01-05. */
const MONDAY = Date.UTC(2026, 0, 5, 4, 0);
const SETTINGS = { volatility: 0, spread_bps: 0, slippage_bps: 0, retention: 10, starting_cash: 1e9 };

/** One paper account behind a journal file, reopened on demand; it remembers each id's first order. */
class Twin {
  broker: PaperBroker | undefined;
  restarts = 0;
  readonly #first = new Map<string, string>();

  constructor(
    readonly file: string,
    readonly clock: ManualClock,
  ) {}

  async open(): Promise<void> {
    this.broker = new PaperBroker(SETTINGS, { clock: this.clock, journalFile: this.file, compactEvery: 40 });
    await this.broker.connect();
  }

  async restart(): Promise<void> {
    await this.broker?.close();
    this.restarts += 1;
    await this.open();
  }

  /** "first" (the id's first order), "again" (the id made a second order), or the error code. */
  async place(clientId: string): Promise<string> {
    try {
      const order = await this.broker!.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: clientId,
      });
      const first = this.#first.get(clientId);
      if (first === undefined) this.#first.set(clientId, order.order_id);
      return first === undefined ? "first" : first === order.order_id ? "same" : "again";
    } catch (error) {
      if (error instanceof BrokerError) return error.code;
      throw error;
    }
  }
}

describe("PaperBroker: a retired client_order_id is refused for its trading day and accepted the next, restart or not", function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-id-twins-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("twins, one restarted ten times, answer every placement alike over Monday and Tuesday", async function () {
    const clock = new ManualClock(MONDAY);
    const steady = new Twin(path.join(dir, "steady.jsonl"), clock);
    const restarted = new Twin(path.join(dir, "restarted.jsonl"), clock);
    await steady.open();
    await restarted.open();
    steady.broker!.setPrice("INFY", 100);
    restarted.broker!.setPrice("INFY", 100);
    const log: { step: string; steady: string; restarted: string }[] = [];
    const both = async (step: string, clientId: string): Promise<void> => {
      log.push({ step, steady: await steady.place(clientId), restarted: await restarted.place(clientId) });
    };
    try {
      // Restarts at these steps (ten of them), on both days.
      const restartAt = new Set([3, 9, 14, 20, 26, 31, 37, 43, 48, 55]);
      let step = 0;
      const tick = async (): Promise<void> => {
        step += 1;
        if (restartAt.has(step)) await restarted.restart();
      };
      // Monday: 30 ids; each filled order leaves retention ten orders later.
      for (let i = 0; i < 30; i++) {
        await both(`mon place m${i}`, `m${i}`);
        await tick();
      }
      // Later on Monday: the ids that left retention are refused, those still held name their order.
      clock.advance(5 * HOUR);
      for (const i of [0, 7, 19, 22]) {
        await both(`mon retry m${i}`, `m${i}`);
        await tick();
      }
      // Tuesday 09:30 IST, and nothing of Tuesday has left retention yet: Monday's ids are free again.
      clock.advance(19 * HOUR);
      for (const i of [1, 2, 3, 8]) {
        await both(`tue retry m${i}`, `m${i}`);
        await tick();
      }
      for (let i = 0; i < 16; i++) {
        await both(`tue place t${i}`, `t${i}`);
        await tick();
      }
      for (const i of [0, 5, 9, 15, 16, 17]) {
        await both(`tue retry m${i}/t${i}`, i < 16 ? `t${i}` : `m${i}`);
        await tick();
      }
      assert.equal(restarted.restarts, 10);
      assert.equal(steady.restarts, 0);
      // The twins agree, step by step.
      assert.deepEqual(
        log.filter((l) => l.steady !== l.restarted),
        [],
        "the same placement answered differently after a restart",
      );
      // And the answers are the rule's.
      const answers = log.map((l) => `${l.step}: ${l.steady}`);
      assert.deepEqual(answers, [
        ...Array.from({ length: 30 }, (_, i) => `mon place m${i}: first`),
        "mon retry m0: DUPLICATE_ORDER",
        "mon retry m7: DUPLICATE_ORDER",
        "mon retry m19: DUPLICATE_ORDER",
        "mon retry m22: same",
        "tue retry m1: again",
        "tue retry m2: again",
        "tue retry m3: again",
        "tue retry m8: again",
        ...Array.from({ length: 16 }, (_, i) => `tue place t${i}: first`),
        "tue retry m0/t0: DUPLICATE_ORDER",
        "tue retry m5/t5: DUPLICATE_ORDER",
        "tue retry m9/t9: same",
        "tue retry m15/t15: same",
        "tue retry m16/t16: again",
        "tue retry m17/t17: again",
      ]);
    } finally {
      await steady.broker?.close();
      await restarted.broker?.close();
    }
  });
});
