// A P&L read that never answers must not hang connect(): with max_daily_loss, connect() waits for
// the first read's decision, so a broker whose getAccount hangs (a REST call or a gateway that
// accepts and never replies) would hang the config node's start and every node with it. The read
// gives up after 10 × pnl_check_ms (1 s here) as TIMEOUT: orders are refused as "P&L not read yet"
// meanwhile, retries wait on the hung read (never a second one in flight), and once it answers (or
// fails and a fresh read answers) trading proceeds.
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
/** Far beyond the 1 s deadline at CHECK_MS, well inside the spec's time: not a timing assertion. */
const CONNECT_BOUND_MS = 6000;

interface Hung {
  broker: Guarded<PaperBroker>;
  paper: PaperBroker;
  reads: { started: number; inFlight: number; maxInFlight: number };
  /** Ends the hung read: with the account (undefined) or with `error`. */
  release(error?: Error): void;
}

const opened: PaperBroker[] = [];

/** A guarded paper broker whose account reads hang until released, then answer. */
function hungRig(): Hung {
  const clock = new ManualClock(MONDAY_10_IST);
  const paper = new PaperBroker(STILL_PAPER, { clock });
  opened.push(paper);
  const reads = { started: 0, inFlight: 0, maxInFlight: 0 };
  const account = paper.getAccount.bind(paper);
  let hang = true;
  let gate: { resolve(): void; reject(error: Error): void } | undefined;
  paper.getAccount = async () => {
    reads.started += 1;
    reads.inFlight += 1;
    reads.maxInFlight = Math.max(reads.maxInFlight, reads.inFlight);
    try {
      if (hang) await new Promise<void>((resolve, reject) => (gate = { resolve, reject }));
      return await account();
    } finally {
      reads.inFlight -= 1;
    }
  };
  const broker = guardBroker(paper, { settings: { max_daily_loss: 1000, pnl_check_ms: CHECK_MS }, clock });
  return {
    broker,
    paper,
    reads,
    release(error) {
      hang = false;
      if (error === undefined) gate?.resolve();
      else gate?.reject(error);
    },
  };
}

async function connectsInTime(broker: Guarded<PaperBroker>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<"hung">(
    (resolve) => (timer = setTimeout(() => resolve("hung"), CONNECT_BOUND_MS)),
  );
  try {
    const outcome = await Promise.race([broker.connect().then(() => "connected" as const), hung]);
    assert.equal(outcome, "connected", `connect() did not return within ${CONNECT_BOUND_MS} ms`);
  } finally {
    clearTimeout(timer);
  }
}

describe("RiskGuard: a P&L read that never answers (max_daily_loss)", function () {
  this.timeout(20_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });

  it("connect() returns, orders are refused while the read hangs, and trade once it answers late", async function () {
    const r = hungRig();
    await connectsInTime(r.broker);
    await r.broker.subscribeQuotes(["INFY"]);
    r.paper.setPrice("INFY", 1500);
    assert.match(r.broker.risk.pnlUnread ?? "", /^P&L not read yet: getAccount: no answer in 1,000 ms$/);
    for (let attempt = 0; attempt < 5; attempt++) {
      await rejectsWithCode(
        r.broker.placeOrder({ ...ONE, quantity: 1 + attempt }),
        "RISK",
        /P&L not read yet/,
      );
    }
    assert.deepEqual(await r.paper.getOrderbook(), [], "nothing reached the broker");
    // Time for two more deadlines (1 s each, after 100 and 200 ms of backoff), with quotes
    // streaming: each retry gives up on the same hung read again and never asks a second one.
    const streaming = setInterval(() => r.paper.setPrice("INFY", 1500 + Math.random()), 5);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    clearInterval(streaming);
    assert.equal(r.reads.started, 1, "the hung read was not asked again");
    assert.equal(r.reads.maxInFlight, 1);
    assert.notEqual(r.broker.risk.pnlUnread, undefined);
    r.release();
    await waitFor(() => r.broker.risk.pnlUnread === undefined, "the late answer read again", 5000);
    assert.equal((await r.broker.placeOrder(ONE)).status, "FILLED");
    assert.equal(r.reads.maxInFlight, 1);
  });

  it("a hung read that fails late is followed by a fresh read; close() does not wait on it", async function () {
    const r = hungRig();
    await connectsInTime(r.broker);
    await r.broker.subscribeQuotes(["INFY"]);
    r.paper.setPrice("INFY", 1500);
    await rejectsWithCode(r.broker.placeOrder(ONE), "RISK", /P&L not read yet: getAccount: no answer/);
    r.release(new BrokerError("NETWORK", "socket hang up"));
    await waitFor(() => r.broker.risk.pnlUnread === undefined, "a fresh read that answers", 5000);
    assert.ok(r.reads.started >= 2, `reads: ${r.reads.started}`);
    assert.equal((await r.broker.placeOrder(ONE)).status, "FILLED");
    // A new guard on a broker whose read hangs again: close() returns while it hangs.
    const again = hungRig();
    await connectsInTime(again.broker);
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      again.broker.close().then(() => "closed"),
      new Promise((resolve) => (timer = setTimeout(() => resolve("hung"), CONNECT_BOUND_MS))),
    ]);
    clearTimeout(timer);
    assert.equal(closed, "closed");
  });
});
