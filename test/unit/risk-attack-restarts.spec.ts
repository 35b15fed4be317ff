import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderSnapshot } from "../../lib/protocol";
import { toBrokerError } from "../../lib/protocol/errors";
import { isTerminal } from "../../lib/protocol/orders";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";

/** Monday 2026-01-05 10:00 IST. */
const MONDAY_10_IST = Date.UTC(2026, 0, 5, 4, 30);
const SEED = Number(process.env.RISK_ATTACK_SEED ?? 20261205);
const LIMIT = 40;
const PAPER = { seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 } as const;

const opened: PaperBroker[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The account's worst BUY case: net INFY plus every open BUY's remaining quantity. */
async function worstBuy(paper: PaperBroker): Promise<{ net: number; open: number }> {
  const net = (await paper.getPositions()).reduce((sum, p) => sum + p.quantity, 0);
  let open = 0;
  for (const order of await paper.getOrderbook()) {
    if (!isTerminal(order.status) && order.side === "BUY") open += order.quantity - order.filled_quantity;
  }
  return { net, open };
}

/**
 * A process: a journaled paper account behind a guard, on a broker that answers late (every answer
 * 0–20 ms after the account took the request, so orders fill while the guard reads the book,
 * positions and book again, and answers cross events).
 */
async function start(
  dir: string,
  clock: ManualClock,
  random: () => number,
  account: string,
): Promise<{ broker: Guarded<PaperBroker>; paper: PaperBroker }> {
  const paper = new PaperBroker(PAPER, { clock, journalFile: path.join(dir, "paper.jsonl") });
  opened.push(paper);
  const late =
    <A extends unknown[], T>(fn: (...args: A) => Promise<T>) =>
    async (...args: A): Promise<T> => {
      const answer = await fn(...args);
      await sleep(Math.floor(random() * 20));
      return answer;
    };
  paper.placeOrder = late(paper.placeOrder.bind(paper));
  paper.modifyOrder = late(paper.modifyOrder.bind(paper));
  paper.getOrderbook = late(paper.getOrderbook.bind(paper));
  paper.getPositions = late(paper.getPositions.bind(paper));
  const broker = guardBroker(paper, {
    settings: { max_position_quantity: LIMIT, max_orders_per_second: 30 },
    clock,
    elapsed: clock,
    stateFile: path.join(dir, "risk-paper-a.json"),
    account,
  });
  await broker.connect();
  paper.setPrice("INFY", 1500);
  return { broker, paper };
}

describe(`RiskGuard under attack: 10 restarts mid-flight, late answers, enlarging modifies, a foreign state file (seed ${SEED}; RISK_ATTACK_SEED to replay)`, function () {
  this.timeout(30_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("the account never passes the position limit, and each new process counts what the account holds", async function () {
    const random = seededRandom(SEED);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "risk-attack-"));
    const clock = new ManualClock(MONDAY_10_IST);
    let refusedForeign = 0;
    let accepted = 0;
    for (let restart = 0; restart < 10; restart++) {
      // Now and then the state file left behind is another account's (restored from elsewhere).
      const foreign = restart > 0 && random() < 0.25;
      if (foreign) {
        const file = path.join(dir, "risk-paper-a.json");
        const record = fs.existsSync(file)
          ? (JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>)
          : { version: 1, by: "admin", reason: "resumed", at: new Date(clock.now()).toISOString() };
        fs.writeFileSync(file, JSON.stringify({ ...record, account: "paper-b", state: "ACTIVE" }));
      }
      const { broker, paper } = await start(dir, clock, random, "paper-a");
      const why = `restart ${restart}`;
      if (foreign) {
        assert.equal(broker.risk.tradingState, "HALTED", `${why}: a foreign state file was believed`);
        assert.match(
          broker.risk.stateRecord.reason,
          /belongs to account paper-b, not paper-a \(state_file\)/,
        );
        const refused = await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }).then(
          () => "accepted",
          (error: unknown) => toBrokerError(error).code,
        );
        assert.equal(refused, "RISK", why);
        refusedForeign += 1;
        await broker.risk.setState("ACTIVE", "admin", "checked the file");
      }
      // The new process's view is the account's own, seeded through late reads.
      const truth = await worstBuy(paper);
      const held = broker.risk.exposure().find((row) => row.instrument === "NSE:INFY");
      assert.deepEqual([held?.net ?? 0, held?.buy ?? 0], [truth.net, truth.open], `${why}: seeded wrong`);
      // What the process before left, stopped under its answers or not.
      assert.ok(
        truth.net + truth.open <= LIMIT,
        `${why}: the account holds ${truth.net} + ${truth.open} open`,
      );

      // A burst of placements and enlarging modifies, all at once, some still in flight at the stop.
      const resting: OrderSnapshot[] = (await paper.getOrderbook()).filter(
        (o) => !isTerminal(o.status) && o.side === "BUY",
      );
      const requests: Promise<unknown>[] = [];
      for (let i = 0; i < 12; i++) {
        const quantity = 1 + Math.floor(random() * 8);
        const target = resting[Math.floor(random() * (resting.length + 2))];
        if (target !== undefined && random() < 0.5) {
          requests.push(broker.modifyOrder(target.order_id, { quantity: target.quantity + quantity }));
        } else if (random() < 0.5) {
          requests.push(broker.placeOrder({ symbol: "INFY", side: "BUY", quantity }));
        } else {
          requests.push(
            broker.placeOrder({ symbol: "INFY", side: "BUY", quantity, order_type: "LIMIT", price: 1400 }),
          );
        }
        if (random() < 0.3) clock.advance(Math.floor(random() * 400));
      }
      const stopEarly = random() < 0.5;
      if (stopEarly) {
        // The redeploy comes while answers are still on their way: this process stops under them.
        await sleep(Math.floor(random() * 15));
        await broker.close();
        accepted += (await Promise.allSettled(requests)).filter((s) => s.status === "fulfilled").length;
        opened.splice(opened.indexOf(paper), 1);
        clock.advance(1000 + Math.floor(random() * 5000));
        continue;
      } else {
        for (const s of await Promise.allSettled(requests)) {
          if (s.status === "fulfilled") continue;
          const code = toBrokerError(s.reason).code;
          assert.ok(
            code === "RISK" || code === "ORDER_TERMINAL",
            `${why}: ${code} ${toBrokerError(s.reason).message}`,
          );
        }
      }
      const after = await worstBuy(paper);
      assert.ok(
        after.net + after.open <= LIMIT,
        `${why}: the account holds ${after.net} + ${after.open} open, over ${LIMIT}`,
      );
      // Now and then reduce, so the next process has room to be attacked in.
      accepted += (await Promise.allSettled(requests)).filter((s) => s.status === "fulfilled").length;
      if (random() < 0.5) {
        for (const order of await paper.getOrderbook()) {
          if (!isTerminal(order.status)) await broker.cancelOrder(order.order_id).catch(() => undefined);
        }
        const { net } = await worstBuy(paper);
        if (net > 0) await broker.placeOrder({ symbol: "INFY", side: "SELL", quantity: net });
      }
      await broker.close();
      opened.splice(opened.indexOf(paper), 1);
      clock.advance(1000 + Math.floor(random() * 5000));
    }
    const last = await start(dir, clock, random, "paper-a");
    const truth = await worstBuy(last.paper);
    assert.ok(truth.net + truth.open <= LIMIT, `the account ended at ${truth.net} + ${truth.open}`);
    assert.ok(accepted > 10, `only ${accepted} requests went through: the test proves little`);
    assert.ok(refusedForeign > 0, "no foreign state file was tried");
  });
});
