// Issue 12, "Done when": SIGKILL a trading child process at random moments, reopen, and check that
// no id or seq was reused, every event a listener heard is in the account, and every order the
// child was told was taken is there.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { seededRandom } from "../../lib/paper/random";
import { isTerminal } from "../../lib/protocol/orders";
import type { OrderStatus } from "../../lib/protocol";
import { TRADER_SETTINGS } from "./paper-trader";

const TRIALS = 50;
const TRADER = path.join(__dirname, "paper-trader.js");

interface Seen {
  events: { seq: number; orderId: string; clientId: string; status: OrderStatus }[];
  acked: { orderId: string; clientId: string }[];
  gttSeqs: number[];
}

/** Runs the trader until it has traded for `ms`, then SIGKILLs it; returns what it printed. */
function tradeAndKill(file: string, seed: number, tag: string, ms: number): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TRADER, file, String(seed), tag], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      text += chunk;
      if (timer === undefined && text.includes("READY\n"))
        timer = setTimeout(() => child.kill("SIGKILL"), ms);
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") {
        reject(new Error(`trader ended by itself (${code}): ${text.slice(-500)} ${stderr}`));
        return;
      }
      const seen: Seen = { events: [], acked: [], gttSeqs: [] };
      // A line cut by the kill has no newline; it was never fully heard.
      for (const line of text.split("\n").slice(0, -1)) {
        const [kind, a = "", b = "", c = "", , e = ""] = line.split(" ");
        if (kind === "E")
          seen.events.push({ seq: Number(a), orderId: b, clientId: c, status: e as OrderStatus });
        else if (kind === "A") seen.acked.push({ orderId: a, clientId: b });
        else if (kind === "G") seen.gttSeqs.push(Number(a));
      }
      resolve(seen);
    });
  });
}

describe("paper broker crash test: SIGKILL at random moments", function () {
  this.timeout(240_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-crash-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`${TRIALS} kills: no id or seq reused, nothing heard or acknowledged missing`, async function () {
    // Two accounts killed in turn side by side: the same checks, half the wall time.
    const lanes = await Promise.all(
      [0, 1].map((lane) => killRepeatedly(path.join(dir, `paper-crash-${lane}.jsonl`), lane, TRIALS / 2)),
    );
    const acked = lanes.reduce((sum, lane) => sum + lane.acked, 0);
    const events = lanes.reduce((sum, lane) => sum + lane.events, 0);
    assert.ok(acked > TRIALS * 5, `${acked} orders acknowledged over ${TRIALS} kills`);
    assert.ok(events > TRIALS * 10, `${events} events heard over ${TRIALS} kills`);
  });
});

async function killRepeatedly(
  file: string,
  lane: number,
  trials: number,
): Promise<{ acked: number; events: number }> {
  const random = seededRandom(12 + lane);
  const clientOf = new Map<string, string>(); // order_id → client_order_id, across every trial
  const seqOwner = new Map<number, string>(); // seq → what it announced
  let events = 0;
  let acked = 0;
  let lastSeq = 0;
  for (let trial = 0; trial < trials; trial++) {
    const seen = await tradeAndKill(
      file,
      lane * 1000 + trial + 1,
      `l${lane}t${trial}`,
      20 + Math.floor(random() * 200),
    );
    events += seen.events.length;
    acked += seen.acked.length;
    const reused: string[] = [];
    const claim = (orderId: string, clientId: string) => {
      const owner = clientOf.get(orderId);
      if (owner !== undefined && owner !== clientId) reused.push(`${orderId}: ${owner} and ${clientId}`);
      clientOf.set(orderId, clientId);
    };
    for (const e of seen.events) {
      claim(e.orderId, e.clientId);
      const what = `${e.orderId} ${e.status}`;
      const owner = seqOwner.get(e.seq);
      if (owner !== undefined && owner !== what) reused.push(`seq ${e.seq}: ${owner} and ${what}`);
      seqOwner.set(e.seq, what);
      assert.ok(e.seq > lastSeq, `trial ${trial}: seq ${e.seq} after ${lastSeq} from an earlier run`);
    }
    for (const a of seen.acked) claim(a.orderId, a.clientId);
    assert.deepEqual(reused, [], `trial ${trial}: ids reused`);

    const reopened = new PaperBroker({ ...TRADER_SETTINGS, interval_ms: 86_400_000 }, { journalFile: file });
    await reopened.connect();
    try {
      assert.equal(
        reopened.restoreReport?.quarantine,
        undefined,
        `trial ${trial}: a SIGKILL never corrupts a record`,
      );
      const book = new Map((await reopened.getOrderbook()).map((o) => [o.order_id, o]));
      for (const a of seen.acked)
        assert.ok(book.has(a.orderId), `trial ${trial}: acknowledged ${a.orderId} missing`);
      for (const e of seen.events) {
        const order = book.get(e.orderId);
        assert.ok(order !== undefined, `trial ${trial}: ${e.orderId} (seq ${e.seq}) was heard, then lost`);
        assert.equal(order.client_order_id, e.clientId);
        if (isTerminal(e.status))
          assert.equal(order.status, e.status, `trial ${trial}: ${e.orderId} ended as heard`);
      }
      const heard = Math.max(0, ...seen.events.map((e) => e.seq), ...seen.gttSeqs);
      assert.ok(reopened.lastSeq >= heard, `trial ${trial}: seq ${reopened.lastSeq} behind heard ${heard}`);
      lastSeq = reopened.lastSeq;
    } finally {
      await reopened.close();
    }
  }
  return { acked, events };
}
