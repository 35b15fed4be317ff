// A momentum strategy trading on a journaled paper account behind the risk guard, while Node-RED
// redeploys the flow 10 times and restarts the runtime (helper unload → load on the same user dir)
// 10 times, mid-strategy. Afterwards the account reopened from its journal must hold positions
// equal to the sum of its fills, no signal may have placed two orders, the strategy's position
// limit must hold, and the guard's limits and a halt must survive every restart.
import assert from "node:assert/strict";
import fs from "node:fs";
import { paperJournalFile } from "../../lib/brokers/create-broker";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderSnapshot, Position } from "../../lib/protocol";
import { isGuarded } from "../../lib/risk/guard";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import momentumNode = require("../../nodes/momentum/momentum");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import type { FlowNode, Received } from "./support";
import {
  TAB,
  collect,
  configNode,
  delay,
  getNode,
  helper,
  nextMessage,
  paperBroker,
  paperConfig,
} from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const NODES = [brokerNode, quotesNode, momentumNode, placeOrderNode, killSwitchNode];
const ACCOUNT = "restarts5";
const MAX_POSITION = 1;
const MAX_ORDER_QUANTITY = 10;
const ROUND_MS = 250;

function flow(): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "restarts" },
    paperConfig("b1", {
      account: ACCOUNT,
      interval_ms: "20",
      volatility: "0.01",
      seed: "5",
      risk_max_order_quantity: String(MAX_ORDER_QUANTITY),
      // Wider than the strategy's own limit: a strategy that forgot its position would show.
      risk_max_position_quantity: "20",
    }),
    { id: "q1", type: "trading-quotes", z: TAB, broker: "b1", symbols: "INFY", wires: [["m1"]] },
    {
      id: "m1",
      type: "trading-momentum",
      z: TAB,
      broker: "b1",
      lookback: 3,
      threshold: 0.002,
      quantity: 1,
      maxPosition: MAX_POSITION,
      cooldown: "",
      product: "MIS",
      allowShort: true,
      wires: [["p1", "signals"]],
    },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["placed"]] },
    { id: "p2", type: "trading-place-order", z: TAB, broker: "b1", wires: [["manual"]] },
    { id: "k1", type: "trading-kill-switch", z: TAB, broker: "b1", wires: [["killed"]] },
    // One catch node (the test helper loads a core node's module once per node of its type).
    { id: "c1", type: "catch", z: TAB, scope: ["p1", "p2"], uncaught: false, wires: [["caught"]] },
    ...["signals", "placed", "caught", "manual", "killed"].map((id) => ({
      id,
      type: "helper",
      z: TAB,
    })),
  ];
}

/** The one outcome of a manual place-order input: its output, or the error a Catch node got. */
async function placeManually(payload: Record<string, unknown>): Promise<Received> {
  const placed = collect("manual");
  const caught = collect("caught");
  try {
    getNode("p2").receive({ payload });
    const deadline = Date.now() + 5000;
    for (;;) {
      const outcome =
        placed.messages[0] ??
        caught.messages.find((m) => (m.error as { source?: { id?: string } }).source?.id === "p2");
      if (outcome !== undefined) return outcome;
      if (Date.now() > deadline) throw new Error("place-order gave no outcome within 5000 ms");
      await delay(5);
    }
  } finally {
    placed.stop();
    caught.stop();
  }
}

function errorCode(outcome: Received): string | undefined {
  return (outcome.error as { code?: string } | undefined)?.code;
}

function netOf(positions: readonly Position[]): Map<string, number> {
  const net = new Map<string, number>();
  for (const p of positions) net.set(p.symbol, (net.get(p.symbol) ?? 0) + p.quantity);
  return net;
}

function netOfFills(book: readonly OrderSnapshot[]): Map<string, number> {
  const net = new Map<string, number>();
  for (const o of book) {
    if (o.filled_quantity === 0) continue;
    net.set(o.symbol, (net.get(o.symbol) ?? 0) + (o.side === "BUY" ? 1 : -1) * o.filled_quantity);
  }
  return net;
}

describe("momentum on a journaled, guarded paper account: 10 redeploys and 10 runtime restarts", function () {
  this.timeout(120_000);
  const runtime = nodeRedPerTest();

  it("keeps positions equal to the journal's fills, one order per signal, the position limit, and the guard's limits and halt", async function () {
    const signals = new Map<string, number>();
    const placed: string[] = [];
    const refusedBig: string[] = [];
    const restarts: string[] = [];
    const history: string[] = [];

    const record = (): (() => void) => {
      const s = collect("signals");
      const p = collect("placed");
      return () => {
        s.stop();
        p.stop();
        for (const m of s.messages) {
          const id = (m.payload as { client_order_id: string }).client_order_id;
          signals.set(id, (signals.get(id) ?? 0) + 1);
        }
        for (const m of p.messages) placed.push((m.payload as OrderSnapshot).client_order_id);
      };
    };

    await helper.load(NODES, flow());
    for (let cycle = 0; cycle < 20; cycle++) {
      await paperBroker();
      const stop = record();
      await delay(ROUND_MS);
      // The guard's limits hold after every deploy and restart.
      const big = await placeManually({ symbol: "INFY", side: "BUY", quantity: MAX_ORDER_QUANTITY + 1 });
      if (errorCode(big) !== "RISK")
        refusedBig.push(`cycle ${cycle}: ${JSON.stringify(big.payload ?? big.error)}`);
      stop();
      const net = netOf(await (await paperBroker()).getPositions()).get("INFY") ?? 0;
      history.push(`${cycle}:${net}`);
      assert.ok(Math.abs(net) <= MAX_POSITION, `cycle ${cycle}: INFY ${net}; history ${history.join(" ")}`);
      // Mid-strategy, with whatever is in flight: a full redeploy, or the runtime stopped and started.
      if (cycle % 2 === 0) {
        await helper.setFlows(flow(), "full");
        restarts.push("redeploy");
      } else {
        await helper.unload();
        await helper.load(NODES, flow());
        restarts.push("restart");
      }
    }
    assert.deepEqual(refusedBig, [], "an order over max_order_quantity passed");

    // Halted: every restart keeps it, and neither the strategy nor a manual order reaches the account.
    await paperBroker();
    const out = nextMessage("killed");
    getNode("k1").receive({ payload: { command: "halt", reason: "restart test" } });
    await out;
    const bookAtHalt = (await (await paperBroker()).getOrderbook()).length;
    for (let cycle = 0; cycle < 6; cycle++) {
      if (cycle % 2 === 0) await helper.setFlows(flow(), "full");
      else {
        await helper.unload();
        await helper.load(NODES, flow());
      }
      const broker = await paperBroker();
      const guarded = configNode().broker;
      assert.ok(isGuarded(guarded));
      assert.equal(
        guarded.risk.tradingState,
        "HALTED",
        `halted after ${cycle % 2 === 0 ? "a redeploy" : "a restart"}`,
      );
      await delay(ROUND_MS);
      const refused = await placeManually({ symbol: "INFY", side: "BUY", quantity: 1 });
      assert.equal(errorCode(refused), "RISK", JSON.stringify(refused.error));
      assert.match(String((refused.error as { message: string }).message), /HALTED \(restart test\)/);
      assert.equal((await broker.getOrderbook()).length, bookAtHalt, "an order reached the halted account");
    }

    // The account as the journal has it: positions are the sum of its fills and what the runtime showed.
    const live = await paperBroker();
    const livePositions = netOf(await live.getPositions());
    const liveBook = await live.getOrderbook();
    await helper.unload();
    const journalFile = paperJournalFile(runtime.userDir, ACCOUNT);
    assert.ok(fs.existsSync(journalFile), `the account's journal ${journalFile}`);
    const reopened = new PaperBroker({ account: ACCOUNT, volatility: 0 }, { journalFile });
    await reopened.connect();
    try {
      const book = await reopened.getOrderbook();
      const positions = netOf(await reopened.getPositions());
      assert.deepEqual(positions, netOfFills(book), "positions are not the journal's fills");
      assert.deepEqual(positions, livePositions);
      assert.equal(book.length, liveBook.length);

      // One order per signal: no client_order_id twice, and no momentum order without a signal id
      // seen more than once.
      const momentum = book.filter((o) => o.tag === "momentum");
      const ids = momentum.map((o) => o.client_order_id);
      assert.equal(new Set(ids).size, ids.length, "a client_order_id placed twice");
      assert.deepEqual(
        [...signals].filter(([, n]) => n > 1),
        [],
        "a signal emitted twice",
      );
      const inBook = new Set(ids);
      const missing = placed.filter((id) => !inBook.has(id));
      assert.deepEqual(missing, [], "orders reported placed but not in the journal");
      console.log(
        `      ${signals.size} signals seen, ${momentum.length} momentum orders in the journal, ` +
          `${placed.length} reported placed; net INFY ${positions.get("INFY") ?? 0}; ${restarts.join(",")}`,
      );
      // Vacuity: the strategy traded across the restarts.
      assert.ok(momentum.length >= 10, `${momentum.length} momentum orders`);
      assert.ok(
        momentum.filter((o) => o.status === "FILLED").length >= 10,
        "momentum orders filled across the restarts",
      );
    } finally {
      await reopened.close();
    }
  });
});
