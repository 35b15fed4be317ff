// Attack (atk10): a Kite flow in a real Node-RED stopped and started ten times (same user dir),
// with orders filling on Kite while Node-RED is down, and a Kite that answers 500 after it placed
// the order. What the flow sees: every fill on the order-events node exactly once over all the
// restarts, every order message exactly one outcome, no token in the log.
import assert from "node:assert/strict";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { fakeKitePerTest } from "./fake-kite-runtime";
import { NODES, assertNeverLogged, hasText, remoteFlow, until } from "./remote-support";
import type { Received } from "./support";
import { collect, delay, getNode, helper, statusMatching } from "./support";

const API_KEY = "atk-kite-key";
const TOKEN = "atk-kite-token-never-logged-5e1d";

describe("a Kite flow across ten Node-RED restarts (atk10)", function () {
  this.timeout(60_000);
  const kite = fakeKitePerTest(API_KEY, TOKEN);
  const config = () =>
    kite.config({ reconnect_initial_ms: "20", reconnect_factor: "2", reconnect_max_ms: "100" });

  async function start(): Promise<{
    events: ReturnType<typeof collect>;
    out: ReturnType<typeof collect>;
    caught: ReturnType<typeof collect>;
  }> {
    await helper.load(NODES, remoteFlow("kite", config()), { b1: { apiKey: API_KEY, accessToken: TOKEN } });
    const events = collect("events");
    const out = collect("out");
    const caught = collect("caught");
    await statusMatching("e1", hasText("trading-broker.status.connected"), 10_000);
    return { events, out, caught };
  }

  it("fills made while Node-RED is down reach order-events once, over 10 restarts", async function () {
    kite.fake.setPrice("INFY", 100);
    const seen: OrderEvent[] = [];
    const placed: string[] = [];
    for (let round = 1; round <= 10; round++) {
      const { events, out, caught } = await start();
      for (let i = 0; i < 2; i++) {
        getNode("p1").receive({
          _msgid: `r${round}n${i}`,
          payload: { symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 99 - round * 0.5 },
        });
      }
      await until(
        () => out.messages.length + caught.messages.length === 2,
        () => `round ${round}: ${out.messages.length} placed, ${caught.messages.length} refused`,
        10_000,
      );
      assert.equal(caught.messages.length, 0, JSON.stringify(caught.messages.map((m) => m.error)));
      placed.push(...out.messages.map((m) => (m.payload as OrderSnapshot).order_id));
      // What the previous round filled while Node-RED was down is reported in this one.
      await delay(300);
      events.stop();
      out.stop();
      caught.stop();
      seen.push(...events.messages.map((m: Received) => m.payload as OrderEvent));
      await helper.unload();
      kite.fake.setPrice("INFY", 99 - round * 0.5 - 0.1);
      kite.fake.setPrice("INFY", 100);
    }
    const { events } = await start();
    await until(
      () => events.messages.filter((m) => (m.payload as OrderEvent).type === "ORDER_FILLED").length >= 2,
      () => `the last round's fills after the last start: ${events.messages.length} events`,
      10_000,
    );
    await delay(500);
    events.stop();
    seen.push(...events.messages.map((m: Received) => m.payload as OrderEvent));

    const fills = seen.filter((e) => e.type === "ORDER_FILLED").map((e) => e.order.order_id);
    assert.deepEqual([...fills].sort(), [...placed].sort(), "each order's fill once over all restarts");
    const placedEvents = seen.filter((e) => e.type === "ORDER_PLACED").map((e) => e.order.order_id);
    assert.equal(new Set(placedEvents).size, placedEvents.length, "no ORDER_PLACED twice");
    assertNeverLogged(TOKEN);
  });

  it("a Kite that answers 500 after placing: each order message gets one outcome, and no order is placed twice", async function () {
    kite.fake.setPrice("INFY", 100);
    const { out, caught } = await start();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      if (i % 2 === 0) kite.fake.failAfter("POST /orders/regular", 500);
      const id = `m${i}`;
      ids.push(id);
      getNode("p1").receive({ _msgid: id, payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      await delay(20);
    }
    await until(
      () => out.messages.length + caught.messages.length >= ids.length,
      () => `${out.messages.length} out, ${caught.messages.length} caught of ${ids.length}`,
      20_000,
    );
    await delay(500);
    out.stop();
    caught.stop();
    const all = [...out.messages, ...caught.messages];
    for (const id of ids) assert.equal(all.filter((m) => m._msgid === id).length, 1, `${id}: one outcome`);
    const orders = await kite.fake.orderCount();
    assert.equal(orders, ids.length, "Kite holds one order per message, none twice");
    assert.equal(
      out.messages.length,
      ids.length,
      `each placed order is reported as placed: ${JSON.stringify(caught.messages.map((m) => m.error))}`,
    );
  });
});
