import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { seededRandom } from "../../lib/paper/random";
import type { OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import { isTerminal } from "../../lib/protocol/orders";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { waitFor } from "../support/wait";

/** Monday 2026-01-05 23:59:00 IST; midnight IST is 18:30 UTC. */
const MONDAY_2359_IST = Date.UTC(2026, 0, 5, 18, 29, 0);
const MIDNIGHT_IST = Date.UTC(2026, 0, 5, 18, 30, 0);
const SEED = Number(process.env.RISK_DAY_SEED ?? 20261205);
const MAX_LOSS = 1000;

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  clock: ManualClock;
  /** Account reads begun and answered (the guard's daily-loss checks). */
  reads: { started: number; answered: number };
  /** Placements whose answer waits for this gate (answered late, after midnight). */
  gate: { held: Promise<void> | undefined };
}

const opened: PaperBroker[] = [];

async function rig(stateFile: string, random: () => number): Promise<Rig> {
  const clock = new ManualClock(MONDAY_2359_IST);
  const paper = new PaperBroker({ seed: 1, volatility: 0, spread_bps: 0, slippage_bps: 0 }, { clock });
  opened.push(paper);
  const reads = { started: 0, answered: 0 };
  const gate: { held: Promise<void> | undefined } = { held: undefined };
  const account = paper.getAccount.bind(paper);
  paper.getAccount = async () => {
    reads.started += 1;
    const answer = await account();
    // A broker that answers late: the clock may pass midnight meanwhile.
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 15)));
    reads.answered += 1;
    return answer;
  };
  const place = paper.placeOrder.bind(paper);
  paper.placeOrder = async (request: OrderRequestInput) => {
    const order = await place(request);
    if (gate.held !== undefined) await gate.held;
    return order;
  };
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: MAX_LOSS, pnl_check_ms: 100 },
    clock,
    stateFile,
  });
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, clock, reads, gate };
}

async function pnlOf(paper: PaperBroker): Promise<number> {
  const account = await paper.getAccount();
  return account.realized_pnl + account.unrealized_pnl;
}

/**
 * Every daily-loss check begun so far has ended (halt included): checks run one at a time, so a
 * read begun after two more quotes means the one before it is done.
 */
async function settled(rig: Rig, price: number): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const started = rig.reads.started;
    rig.paper.setPrice("INFY", price);
    await waitFor(() => rig.reads.started > started, "a daily-loss check after the quote", 3000);
  }
  await waitFor(() => rig.reads.answered === rig.reads.started, "its read", 3000);
}

describe(`RiskGuard: the trading day turns at midnight IST with orders in flight (seed ${SEED}; RISK_DAY_SEED to replay)`, function () {
  this.timeout(30_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("14 seeded nights: Monday's loss halts Monday, the first move after midnight counts on Tuesday, and Tuesday starts at midnight's P&L", async function () {
    const random = seededRandom(SEED);
    let mondayHalts = 0;
    let tuesdayHalts = 0;
    let quiet = 0;
    for (let night = 0; night < 14; night++) {
      const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "risk-day-")), "risk-paper-a.json");
      const r = await rig(stateFile, random);
      const { broker, paper, clock } = r;
      await broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 10 });
      await waitFor(() => broker.risk.stateRecord.day === "2026-01-05", "Monday's start");
      const mondayStart = broker.risk.stateRecord.day_start_pnl!;

      // Monday: a drop of 0–130 a share on 10 (the limit is 1,000).
      clock.advance(Math.floor(random() * 30_000));
      const a = Math.floor(random() * 131);
      let price = 1500 - a;
      await settled(r, price);
      const mondayLoss = mondayStart - (await pnlOf(paper));
      const why = `night ${night}: Monday lost ${mondayLoss}`;
      if (mondayLoss >= MAX_LOSS) {
        assert.equal(broker.risk.tradingState, "HALTED", why);
        assert.match(broker.risk.stateRecord.reason, /since the start of 2026-01-05\)/, why);
        mondayHalts += 1;
        await Promise.all(opened.splice(0).map((b) => b.close()));
        continue;
      }
      assert.equal(broker.risk.tradingState, "ACTIVE", why);

      // Just before midnight: orders whose answers come after it, one filled now, one resting.
      clock.advance(MIDNIGHT_IST - clock.now() - 1 - Math.floor(random() * 500));
      let release!: () => void;
      r.gate.held = new Promise<void>((resolve) => (release = resolve));
      const inFlight: Promise<OrderSnapshot>[] = [
        broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 5 }),
        broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 5,
          order_type: "LIMIT",
          price: price - 1 - Math.floor(random() * 60),
        }),
      ];
      await settled(r, price);
      const atMidnight = await pnlOf(paper);

      // Past midnight by 1 ms to 3 s, with the answers released in either order around the step.
      const releaseFirst = random() < 0.5;
      if (releaseFirst) release();
      clock.advance(MIDNIGHT_IST - clock.now() + 1 + Math.floor(random() * 3000));
      if (!releaseFirst) release();
      r.gate.held = undefined;
      await Promise.all(inFlight);

      // Tuesday: the first move of the day, a drop of 0–150 a share (it may fill the resting order).
      const b = Math.floor(random() * 151);
      price -= b;
      await settled(r, price);
      const tuesdayLoss = atMidnight - (await pnlOf(paper));
      const tuesday = `${why}, Tuesday ${tuesdayLoss} (a drop of ${b} on ${(await paper.getPositions())[0]?.quantity} shares)`;
      assert.equal(broker.risk.stateRecord.day, "2026-01-06", tuesday);
      assert.equal(
        broker.risk.stateRecord.day_start_pnl,
        atMidnight,
        `${tuesday}: Tuesday did not start at midnight's P&L`,
      );
      if (tuesdayLoss >= MAX_LOSS) {
        assert.equal(broker.risk.tradingState, "HALTED", `${tuesday}: not halted`);
        assert.match(broker.risk.stateRecord.reason, /since the start of 2026-01-06\)/, tuesday);
        tuesdayHalts += 1;
      } else {
        assert.equal(broker.risk.tradingState, "ACTIVE", `${tuesday}: halted for a loss under the limit`);
        quiet += 1;
      }
      const saved = await loadState(stateFile);
      assert.ok(saved.kind === "ok" && saved.record.day === "2026-01-06", tuesday);
      assert.equal(saved.kind === "ok" && saved.record.day_start_pnl, atMidnight, tuesday);

      // What the guard holds is the account's own, on the right side of midnight.
      const net = (await paper.getPositions()).reduce((sum, p) => sum + p.quantity, 0);
      let open = 0;
      for (const order of await paper.getOrderbook()) {
        if (!isTerminal(order.status)) open += order.quantity - order.filled_quantity;
      }
      const held = broker.risk.exposure().find((row) => row.instrument === "NSE:INFY");
      assert.deepEqual([held?.net ?? 0, held?.buy ?? 0], [net, open], tuesday);
      await Promise.all(opened.splice(0).map((b) => b.close()));
    }
    // The seeds reach every ending, or the test proves less than it says.
    assert.ok(
      mondayHalts > 0 && tuesdayHalts > 0 && quiet > 0,
      `${mondayHalts} / ${tuesdayHalts} / ${quiet}`,
    );
  });
});
