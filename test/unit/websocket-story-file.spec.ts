import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  loadStory,
  MAX_STORY_ORDERS,
  saveStory,
  storyRecordOf,
  type StoryContents,
} from "../../lib/brokers/websocket-story-file";
import type { OrderSnapshot } from "../../lib/protocol";

function order(i: number, status: OrderSnapshot["status"]): OrderSnapshot {
  const at = new Date(Date.UTC(2026, 0, 5, 4, 0, 0, i)).toISOString();
  return {
    order_id: `O${i}`,
    client_order_id: `c${i}`,
    symbol: "INFY",
    exchange: "NSE",
    side: "BUY",
    quantity: 1,
    order_type: "LIMIT",
    price: 100,
    product: "CNC",
    validity: "DAY",
    status,
    filled_quantity: status === "FILLED" ? 1 : 0,
    average_price: status === "FILLED" ? 100 : 0,
    placed_at: at,
    timestamp: at,
  };
}

function story(orders: OrderSnapshot[]): StoryContents {
  return {
    url: "ws://127.0.0.1:1/v1",
    api_key: "k",
    account: "acct",
    last_seq: 7,
    synced_at: 1,
    orders,
    gtts: [],
  };
}

describe("WebSocket story file: bounded", function () {
  it(`keeps at most ${MAX_STORY_ORDERS} orders: every open one, then the newest ended ones, in their order`, function () {
    // 1,500 ended first, then 600 open, then 400 more ended: 2,500 in all.
    const orders = [
      ...Array.from({ length: 1500 }, (_, i) => order(i, "FILLED")),
      ...Array.from({ length: 600 }, (_, i) => order(1500 + i, "OPEN")),
      ...Array.from({ length: 400 }, (_, i) => order(2100 + i, "CANCELLED")),
    ];
    const kept = storyRecordOf(story(orders)).orders;
    assert.equal(kept.length, MAX_STORY_ORDERS);
    assert.equal(kept.filter((o) => o.status === "OPEN").length, 600, "every open order kept");
    // The 1,400 ended ones kept are the newest: the last 1,000 of the first batch and all 400 later.
    assert.equal(kept[0]!.order_id, "O500");
    assert.deepEqual(
      kept.map((o) => Number(o.order_id.slice(1))),
      [...kept.map((o) => Number(o.order_id.slice(1)))].sort((x, y) => x - y),
      "in their original order",
    );
    assert.equal(kept[kept.length - 1]!.order_id, "O2499");
  });

  it("with more open orders than that, the newest open ones", function () {
    const orders = Array.from({ length: MAX_STORY_ORDERS + 300 }, (_, i) => order(i, "OPEN"));
    const kept = storyRecordOf(story(orders)).orders;
    assert.equal(kept.length, MAX_STORY_ORDERS);
    assert.equal(kept[0]!.order_id, "O300");
  });

  it("a file holding more than the bound is not used (it was not written by this code)", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-story-unit-"));
    try {
      const file = path.join(dir, "s.json");
      await saveStory(file, story([order(1, "OPEN")]));
      assert.equal(loadStory(file, "ws://127.0.0.1:1/v1", "k").kind, "ok");
      const record = JSON.parse(fs.readFileSync(file, "utf8")) as { orders: OrderSnapshot[] };
      record.orders = Array.from({ length: MAX_STORY_ORDERS + 1 }, (_, i) => order(i, "OPEN"));
      fs.writeFileSync(file, JSON.stringify(record));
      const loaded = loadStory(file, "ws://127.0.0.1:1/v1", "k");
      assert.equal(loaded.kind, "ignored");
      assert.match(loaded.kind === "ignored" ? loaded.why : "", /not a WebSocket story \(orders:/);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      // A huge file (sparse: no disk used) is refused by its size, not read.
      fs.truncateSync(file, 2 ** 40);
      const huge = loadStory(file, "ws://127.0.0.1:1/v1", "k");
      assert.match(huge.kind === "ignored" ? huge.why : huge.kind, /larger than one can be/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
