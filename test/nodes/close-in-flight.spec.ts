// A redeploy (or a runtime stop) while place-order has orders in flight: every order the broker
// accepted must be reported somewhere, in the node's output before the close or, after it, in the
// runtime's log with its order_id; an order refused or left unknown by the close is reported as
// an error. Nothing the journal holds may go unreported.
import assert from "node:assert/strict";
import fs from "node:fs";
import { paperJournalFile } from "../../lib/brokers/create-broker";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode } from "./support";
import { TAB, collect, delay, getNode, helper, nextMessage, paperBroker, paperConfig } from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const NODES = [brokerNode, placeOrderNode];
const ACCOUNT = "inflight";

function flow(round: number): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "in flight" },
    paperConfig("b1", { account: ACCOUNT }),
    { id: "p1", type: "trading-place-order", z: TAB, name: `order ${round}`, broker: "b1", wires: [["out"]] },
    { id: "c1", type: "catch", z: TAB, scope: ["p1"], uncaught: false, wires: [["caught"]] },
    { id: "out", type: "helper", z: TAB },
    { id: "caught", type: "helper", z: TAB },
  ];
}

/**
 * Records what node p1 writes to the runtime's log (warn and error), as it writes it: the test
 * helper's own log spy does not outlive an unload, which is when a stopping runtime's outcomes come.
 */
function recordLog(lines: string[]): void {
  const node = getNode("p1");
  for (const level of ["warn", "error"] as const) {
    const original = node[level].bind(node) as (message: unknown) => void;
    node[level] = ((message: unknown) => {
      lines.push(message instanceof Error ? message.message : String(message));
      original(message);
    }) as never;
  }
}

/** The client_order_ids log lines name. */
function idsIn(lines: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const line of lines) for (const match of line.matchAll(/\bC\d+x\d+\b/g)) ids.add(match[0]);
  return ids;
}

describe("place-order closed with orders in flight", function () {
  this.timeout(60_000);
  const runtime = nodeRedPerTest();

  it("reports every order the journal holds: in its output, or in the log with its id, over 10 redeploys and restarts", async function () {
    const reported = new Set<string>();
    const failed = new Set<string>();
    const sent: string[] = [];
    const lines: string[] = [];
    await helper.load(NODES, flow(0));
    for (let round = 0; round < 10; round++) {
      await paperBroker();
      recordLog(lines);
      const out = collect("out");
      const caught = collect("caught");
      // One order answered as usual, then a burst, and the flow goes while those are being journaled.
      const first = nextMessage("out");
      sent.push(`C${round}x99`);
      getNode("p1").receive({
        payload: { symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `C${round}x99` },
      });
      await first;
      for (let i = 0; i < 40; i++) {
        const id = `C${round}x${i}`;
        sent.push(id);
        getNode("p1").receive({
          payload: { symbol: "INFY", side: i % 2 === 0 ? "BUY" : "SELL", quantity: 1, client_order_id: id },
        });
      }
      // The close comes at a different point of the burst each round: some answers are out by then.
      if (round % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      else await delay(round);
      if (round % 2 === 0) {
        await helper.setFlows(flow(round + 1), "full");
      } else {
        await helper.unload();
        await helper.load(NODES, flow(round + 1));
      }
      out.stop();
      caught.stop();
      for (const m of out.messages) reported.add((m.payload as OrderSnapshot).client_order_id);
      for (const m of caught.messages) {
        const payload = m.payload as { client_order_id?: string };
        if (payload.client_order_id !== undefined) failed.add(payload.client_order_id);
      }
    }
    const inLog = idsIn(lines);
    await helper.unload();

    const reopened = new PaperBroker(
      { account: ACCOUNT, volatility: 0 },
      { journalFile: paperJournalFile(runtime.userDir, ACCOUNT) },
    );
    assert.ok(fs.existsSync(paperJournalFile(runtime.userDir, ACCOUNT)));
    await reopened.connect();
    try {
      const book = await reopened.getOrderbook();
      console.log(
        `      ${book.length} orders in the journal; ${reported.size} in outputs, ${inLog.size} named in the log, ${failed.size} caught`,
      );
      const unreported = book
        .map((o) => o.client_order_id)
        .filter((id) => !reported.has(id) && !inLog.has(id));
      assert.deepEqual(unreported, [], `orders in the journal reported nowhere (of ${book.length})`);
      // Every order sent has one outcome somewhere: output, Catch, or the log.
      const silent = sent.filter((id) => !reported.has(id) && !failed.has(id) && !inLog.has(id));
      assert.deepEqual(silent, [], "orders with no outcome at all");
      // And only one: an outcome sent out before the close is not logged again.
      assert.deepEqual(
        [...reported].filter((id) => inLog.has(id)),
        [],
        "reported in an output and in the log",
      );
      // Vacuity: answers before the close went out as usual; the burst's came after it.
      assert.ok(reported.size >= 10 && inLog.size > 0, `${reported.size} in outputs, ${inLog.size} logged`);
    } finally {
      await reopened.close();
    }
  });
});
