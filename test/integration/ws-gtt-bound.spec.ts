// The WebSocket broker remembers the last state it reported of each GTT (to report each change
// once, and to tell news from old after a reconnect). Ended GTTs must leave that memory past the
// retention bound, as ended orders do; active ones stay.
import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import type { GttEvent } from "../../lib/protocol";
import { fastSettings, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

const RETENTION = 10;

function gttRequest(trigger: number): Parameters<WebSocketBroker["placeGtt"]>[0] {
  return {
    type: "single",
    symbol: "INFY",
    trigger_values: [trigger],
    last_price: 100,
    orders: [{ side: "SELL", quantity: 1, price: trigger - 1, product: "MIS" }],
  };
}

describe("WebSocket broker: GTTs it remembers are bounded", function () {
  this.timeout(20_000);
  const cleanup = useCleanup();

  it(`keeps every active GTT and at most ${RETENTION} ended ones, after 60 placed and deleted`, async function () {
    const host = await PaperHost.start();
    cleanup(() => host.close());
    const broker = new WebSocketBroker(fastSettings(host.url, { retention: RETENTION }));
    cleanup(() => broker.close());
    const events: GttEvent[] = [];
    broker.on("gtt", (event) => events.push(event));
    await broker.connect();
    const active: string[] = [];
    for (let i = 0; i < 5; i++) active.push((await broker.placeGtt(gttRequest(200 + i))).gtt_id);
    for (let i = 0; i < 60; i++) {
      const gtt = await broker.placeGtt(gttRequest(300 + i));
      await broker.deleteGtt(gtt.gtt_id);
    }
    await waitFor(() => broker.lastSeq >= host.paper.lastSeq, "every GTT event processed", 5000);
    assert.equal(events.filter((event) => event.type === "GTT_DELETED").length, 60, "each delete reported");
    const kept = broker.story()!.gtts;
    assert.ok(kept.length <= active.length + RETENTION, `${kept.length} GTTs remembered`);
    for (const id of active)
      assert.ok(
        kept.some((gtt) => gtt.gtt_id === id),
        `active ${id} kept`,
      );
    // The newest ended ones are the ones kept.
    const ended = kept.filter((gtt) => gtt.status !== "active").map((gtt) => gtt.gtt_id);
    const deleted = events.filter((event) => event.type === "GTT_DELETED").map((event) => event.gtt.gtt_id);
    assert.deepEqual(ended, deleted.slice(-ended.length));
  });
});
