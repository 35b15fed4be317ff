// A daily-loss limit nobody could check is no limit: when the account's P&L cannot be read at
// connect (the broker answers an error, or its request times out), no order goes out until a read
// succeeds, and the read is tried again with backoff. A read that fails later in the day leaves the
// last good reading good for 30 checks' time (3 s at pnl_check_ms 100): one failed read does not
// stop a trader, reads failing for longer do, until one answers.
import assert from "node:assert/strict";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { ManualClock } from "../../lib/paper/clock";
import { BrokerError } from "../../lib/protocol/errors";
import type { Guarded } from "../../lib/risk/guard";
import { guardBroker } from "../../lib/risk/guard";
import { rejectsWithCode } from "../contract/broker-contract";
import { MONDAY_10_IST, STILL_PAPER } from "../support/risk-rig";
import { waitFor } from "../support/wait";

const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;
const CHECK_MS = 100;

interface Rig {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  /** What the account read answers: undefined reads, an error fails. */
  failWith: { error: Error | undefined };
  reads: { started: number; failed: number };
  pnlSignals: (string | undefined)[];
  logged: string[];
}

const opened: PaperBroker[] = [];

async function rig(failWith: Error | undefined): Promise<Rig> {
  const clock = new ManualClock(MONDAY_10_IST);
  const paper = new PaperBroker(STILL_PAPER, { clock });
  opened.push(paper);
  const fail = { error: failWith };
  const reads = { started: 0, failed: 0 };
  const account = paper.getAccount.bind(paper);
  paper.getAccount = async () => {
    reads.started += 1;
    const error = fail.error;
    if (error !== undefined) {
      reads.failed += 1;
      throw error;
    }
    return account();
  };
  const logged: string[] = [];
  const broker = guardBroker(paper, {
    settings: { max_daily_loss: 1000, pnl_check_ms: CHECK_MS },
    clock,
    log: {
      info: (m) => logged.push(`info ${m}`),
      warn: (m) => logged.push(`warn ${m}`),
      error: (m) => logged.push(`error ${m}`),
    },
  });
  const pnlSignals: (string | undefined)[] = [];
  broker.risk.on("pnl", (why) => pnlSignals.push(why));
  await broker.connect();
  await broker.subscribeQuotes(["INFY"]);
  paper.setPrice("INFY", 1500);
  return { broker, paper, failWith: fail, reads, pnlSignals, logged };
}

const FAILURES: [string, () => Error][] = [
  ["the broker answers an error", () => new BrokerError("INTERNAL", "account service unavailable")],
  ["the read times out", () => new BrokerError("TIMEOUT", "getAccount: no answer in 10000 ms")],
  ["the connection drops during the read", () => new BrokerError("NETWORK", "socket hang up")],
  ["the read throws a plain error", () => new Error("ECONNRESET")],
];

describe("RiskGuard: a P&L that cannot be read (max_daily_loss)", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  for (const [what, error] of FAILURES) {
    it(`first read fails at connect (${what}): orders refused until a read succeeds`, async function () {
      const r = await rig(error());
      assert.equal(r.broker.state, "connected");
      const cause = error().message;
      for (let attempt = 0; attempt < 5; attempt++) {
        const refused = await rejectsWithCode(
          r.broker.placeOrder({ ...ONE, quantity: 1 + attempt }),
          "RISK",
          /P&L not read yet/,
        );
        assert.match(refused.message, /\(max_daily_loss\)$/);
        assert.ok(refused.message.includes(cause), refused.message);
      }
      assert.match(r.broker.risk.pnlUnread ?? "", /^P&L not read yet: /);
      assert.deepEqual(await r.paper.getOrderbook(), [], "nothing reached the broker");
      // GTTs refused too (they place orders later).
      await rejectsWithCode(
        r.broker.placeGtt({
          type: "single",
          symbol: "INFY",
          trigger_values: [1400],
          orders: [{ side: "BUY", quantity: 1, price: 1400 }],
        }),
        "RISK",
        /P&L not read yet.*\(max_daily_loss\)/,
      );
      // It is read again without any market move, with backoff (100, 200, 400 ms ...).
      await waitFor(() => r.reads.failed >= 3, "three failed reads", 5000);
      assert.equal(r.broker.risk.pnlUnread !== undefined, true);
      r.failWith.error = undefined;
      await waitFor(() => r.broker.risk.pnlUnread === undefined, "a read that succeeds", 10_000);
      assert.equal(r.pnlSignals.at(-1), undefined);
      const placed = await r.broker.placeOrder(ONE);
      assert.equal(placed.status, "FILLED");
    });
  }

  it("an enlarging modify is refused while the P&L is unread; a reduction passes", async function () {
    const r = await rig(undefined);
    const order = await r.broker.placeOrder({ ...ONE, quantity: 4, order_type: "LIMIT", price: 1400 });
    assert.equal(order.status, "OPEN");
    // Reads fail from now; a restart of the guard would find the same: here, a new guard.
    r.failWith.error = new BrokerError("TIMEOUT", "no answer");
    const again = guardBroker(r.paper, { settings: { max_daily_loss: 1000, pnl_check_ms: CHECK_MS } });
    await again.connect();
    await rejectsWithCode(
      again.modifyOrder(order.order_id, { quantity: 5 }),
      "RISK",
      /P&L not read yet: no answer; only cancels and quantity reductions .*\(max_daily_loss\)/,
    );
    const reduced = await again.modifyOrder(order.order_id, { quantity: 2 });
    assert.equal(reduced.quantity, 2);
    await again.cancelOrder(order.order_id);
  });

  it("one failed read later in the day does not stop trading; reads failing past 3 s do, until one answers", async function () {
    const r = await rig(undefined);
    assert.equal(r.broker.risk.pnlUnread, undefined);
    await r.broker.placeOrder(ONE);
    for (let round = 0; round < 3; round++) {
      // One read fails, the next answers: no refusal at any point.
      r.failWith.error = new BrokerError("NETWORK", "blip");
      const failed = r.reads.failed;
      await waitFor(
        () => {
          r.paper.setPrice("INFY", 1500 + Math.random());
          return r.reads.failed > failed;
        },
        "a failed read",
        5000,
      );
      const kept = await r.broker.placeOrder(ONE);
      assert.equal(kept.status, "FILLED", `round ${round}: an order right after one failed read`);
      r.failWith.error = undefined;
      const started = r.reads.started;
      await waitFor(
        () => {
          r.paper.setPrice("INFY", 1500 + Math.random());
          return r.reads.started > started + 1;
        },
        "reads that answer again",
        5000,
      );
      assert.equal(r.broker.risk.pnlUnread, undefined);
    }
    // Now reads fail for good, with quotes streaming: the backoff paces the reads, not the market.
    r.failWith.error = new BrokerError("INTERNAL", "account service down");
    const readsBefore = r.reads.started;
    const signalsBefore = r.pnlSignals.length;
    const streaming = setInterval(() => r.paper.setPrice("INFY", 1500 + Math.random()), 5);
    try {
      await waitFor(() => r.broker.risk.pnlUnread !== undefined, "the refusal", 10_000);
    } finally {
      clearInterval(streaming);
    }
    // 3 s of 5 ms quotes at pnl_check_ms 100 would be 30 reads; with backoff at most 100, 200, 400,
    // 800, then every 1000 ms: about 7 (more only if this machine ran the timers early, it cannot).
    const during = r.reads.started - readsBefore;
    assert.ok(during <= 10, `reads while failing for 3 s: ${during}`);
    assert.match(r.broker.risk.pnlUnread!, /^P&L not read for over 3 s: account service down$/);
    await rejectsWithCode(
      r.broker.placeOrder(ONE),
      "RISK",
      /max daily loss 1,000: P&L not read for over 3 s: account service down; no new orders until the account's P&L can be read \(max_daily_loss\)/,
    );
    assert.ok(
      r.logged.some((line) => line.startsWith("error risk guard: P&L not read for over 3 s")),
      r.logged.join("\n"),
    );
    // No quotes now: the retry alone finds the account answering again.
    r.failWith.error = undefined;
    await waitFor(() => r.broker.risk.pnlUnread === undefined, "the retry that answers", 10_000);
    assert.equal((await r.broker.placeOrder(ONE)).status, "FILLED");
    assert.deepEqual(
      r.pnlSignals.slice(signalsBefore).filter((why) => why === undefined),
      [undefined],
      "one signal when the refusal ends",
    );
  });

  it("a reconnect reads the P&L at once rather than when the backoff ends", async function () {
    const r = await rig(new BrokerError("NETWORK", "link down"));
    // Enough failures that the next try is a full 1 s (10 checks) away.
    await waitFor(() => r.reads.failed >= 5, "five failed reads", 10_000);
    await new Promise((resolve) => setImmediate(resolve)); // that read's check has ended
    r.failWith.error = undefined;
    const before = r.reads.started;
    r.paper.emit("state", "connected");
    assert.equal(r.reads.started, before + 1, "a read begun by the reconnect itself");
    await waitFor(() => r.broker.risk.pnlUnread === undefined, "the read that answers", 5000);
    assert.equal((await r.broker.placeOrder(ONE)).status, "FILLED");
  });

  it("no daily-loss limit: a P&L that cannot be read refuses nothing", async function () {
    const clock = new ManualClock(MONDAY_10_IST);
    const paper = new PaperBroker(STILL_PAPER, { clock });
    opened.push(paper);
    paper.getAccount = () => Promise.reject(new BrokerError("INTERNAL", "down"));
    const broker = guardBroker(paper, { settings: { max_order_quantity: 10 }, clock });
    await broker.connect();
    await broker.subscribeQuotes(["INFY"]);
    paper.setPrice("INFY", 1500);
    assert.equal(broker.risk.pnlUnread, undefined);
    assert.equal((await broker.placeOrder(ONE)).status, "FILLED");
  });
});
