// A client_order_id the paper account made for an order placed without one names that order's id
// (lib/paper/account.ts clientIdFor), so it is found without an index entry. Retrying with it must
// still answer the same order, in this process, after a reopen, and from a second broker object.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";

const SETTINGS = { volatility: 0, spread_bps: 0, slippage_bps: 0, retention: 20 };

describe("PaperBroker: client_order_ids it made", function () {
  let dir: string;
  const opened: PaperBroker[] = [];
  async function open(journalFile?: string): Promise<PaperBroker> {
    const broker = new PaperBroker(SETTINGS, journalFile === undefined ? {} : { journalFile });
    opened.push(broker);
    await broker.connect();
    broker.setPrice("INFY", 100);
    return broker;
  }
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-client-ids-"));
  });
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("are unique, 20 letters or digits, and a retry with one answers its order while retained", async function () {
    const broker = await open();
    const placed = [];
    for (let i = 0; i < 60; i += 1) {
      placed.push(await broker.placeOrder({ symbol: "INFY", side: i % 2 ? "SELL" : "BUY", quantity: 1 }));
    }
    const ids = new Set(placed.map((o) => o.client_order_id));
    assert.equal(ids.size, 60);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9]{20}$/);
    const orders = (await broker.getOrderbook()).length;
    // The last 20 are retained: a retry answers the same order and places nothing.
    for (const order of placed.slice(-20)) {
      const again = await broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: order.client_order_id,
      });
      assert.equal(again.order_id, order.order_id);
    }
    assert.equal((await broker.getOrderbook()).length, orders);
    // A given id that looks like a made one but names no order of ours is a new order, found again after.
    const lookalike = `${placed[0]!.client_order_id.slice(0, 10)}P999999999`;
    const fresh = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      client_order_id: lookalike,
    });
    assert.notEqual(fresh.order_id, "P999999999");
    const retried = await broker.placeOrder({
      symbol: "INFY",
      side: "BUY",
      quantity: 1,
      client_order_id: lookalike,
    });
    assert.equal(retried.order_id, fresh.order_id);
  });

  it("still answer their orders after a reopen, from the same and from a new broker object", async function () {
    const file = path.join(dir, "a.jsonl");
    const first = await open(file);
    const placed = await Promise.all(
      Array.from({ length: 10 }, () => first.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 })),
    );
    await first.close();
    await first.connect();
    for (const order of placed) {
      const again = await first.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: order.client_order_id,
      });
      assert.equal(again.order_id, order.order_id, "same object, reopened");
    }
    await first.close();
    const second = await open(file);
    for (const order of placed) {
      const again = await second.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        client_order_id: order.client_order_id,
      });
      assert.equal(again.order_id, order.order_id, "new object");
    }
    assert.equal((await second.getOrderbook()).length, 10);
  });
});
