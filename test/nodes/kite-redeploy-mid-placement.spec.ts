// Issue kite11, item 2, as a flow sees it: a Kite flow redeployed (stopped) while a placement's
// answer is on its way. The order message ends once (CLOSED, caught); after the next start the
// placement is looked for in Kite's book by its tag: listed, it reaches order-events once; never
// made, the broker config logs NETWORK once, and not again at the start after.
import assert from "node:assert/strict";
import type { OrderEvent } from "../../lib/protocol";
import { fakeKitePerTest } from "./fake-kite-runtime";
import { NODES, everyLogLine, hasText, remoteFlow, until } from "./remote-support";
import { collect, delay, getNode, helper, statusMatching } from "./support";

const API_KEY = "cut-kite-key";
const TOKEN = "cut-kite-token-never-logged-77ab";

describe("a Kite flow redeployed mid-placement (issue kite11, item 2)", function () {
  this.timeout(60_000);
  const kite = fakeKitePerTest(API_KEY, TOKEN);
  const config = () => kite.config({ resolve_window_ms: "600" });

  async function start(): Promise<{
    events: ReturnType<typeof collect>;
    caught: ReturnType<typeof collect>;
  }> {
    await helper.load(NODES, remoteFlow("kite", config()), { b1: { apiKey: API_KEY, accessToken: TOKEN } });
    const events = collect("events");
    const caught = collect("caught");
    await statusMatching("e1", hasText("trading-broker.status.connected"), 10_000);
    return { events, caught };
  }

  const posts = (): number =>
    kite.fake.requests.filter((r) => r.method === "POST" && r.path === "/orders/regular").length;
  const logged = (text: string): number => everyLogLine().split(text).length - 1;

  async function cutOff(clientId: string): Promise<void> {
    const { caught } = await start();
    const before = posts();
    getNode("p1").receive({
      _msgid: clientId,
      payload: {
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 99,
        client_order_id: clientId,
      },
    });
    await until(
      () => posts() > before,
      () => "the placement reached Kite",
      10_000,
    );
    await helper.unload();
    assert.ok(caught.messages.length <= 1, "one outcome at most for the cut-off message");
  }

  it("Kite placed it and lists it only after the restart: ORDER_PLACED once on order-events", async function () {
    kite.fake.setPrice("INFY", 100);
    kite.fake.delayNext("POST /orders/regular", 5000);
    kite.fake.listNextPlacementLate(1000);
    await cutOff("cutnode1");
    const { events } = await start();
    await delay(300);
    assert.equal(events.messages.length, 0);
    kite.fake.listLateOrdersNow();
    await until(
      () => events.messages.length > 0,
      () => "the order on order-events after the restart",
      10_000,
    );
    await delay(1500);
    const seen = events.messages.map((m) => m.payload as OrderEvent);
    assert.deepEqual(
      seen.map((e) => [e.type, e.order.client_order_id]),
      [["ORDER_PLACED", "cutnode1"]],
    );
    assert.equal(posts(), 1);
  });

  it("Kite never made it: NETWORK logged once after the restart, not at the start after", async function () {
    kite.fake.setPrice("INFY", 100);
    kite.fake.hangNext("POST /orders/regular");
    await cutOff("cutnode2");
    await start();
    await until(
      () => logged("order cutnode2: its placement was sent") > 0,
      () => "NETWORK logged for cutnode2",
      10_000,
    );
    await delay(1500);
    assert.equal(logged("order cutnode2: its placement was sent"), 1);
    await helper.unload();
    // The runtime's log starts afresh with the next load.
    await start();
    await delay(1500);
    assert.ok(logged("trading-broker") + logged("kite") > 0, "the new runtime's log is read");
    assert.equal(logged("order cutnode2: its placement was sent"), 0, "logged again at the next start");
    assert.equal(posts(), 1);
    assert.equal(await kite.fake.orderCount(), 0);
  });
});
