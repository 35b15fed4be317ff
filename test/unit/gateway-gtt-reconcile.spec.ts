// A WebSocketBroker that reconciles after a gap (its gateway restarted, the replay buffer gone)
// announced every GTT the gateway listed that it had not heard of: GTTs that were there before it
// connected came as GTT_PLACED (a flow acting on GTT_PLACED acted on them again), long-deleted ones
// as GTT_DELETED. A reconcile announces only what changed while the client was away, once.
import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { Gateway } from "../../lib/gateway";
import type { GttEvent, GttRequestInput, GttSnapshot } from "../../lib/protocol";
import { fastSettings } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { startPaperGateway, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort } from "../support/free-port";

function single(trigger: number, quantity = 1): GttRequestInput {
  return {
    type: "single",
    symbol: "INFY",
    trigger_values: [trigger],
    orders: [{ side: "BUY", quantity, price: trigger }],
  };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("WebSocketBroker reconcile: GTTs it was told of, or that predate it, are not announced again", function () {
  this.timeout(60_000);
  let paper: PaperGateway | undefined;
  let gateway: Gateway | undefined;
  let broker: WebSocketBroker | undefined;

  afterEach(async () => {
    await broker?.close();
    broker = undefined;
    if (gateway !== paper?.gateway) await gateway?.close();
    gateway = undefined;
    await paper?.close();
    paper = undefined;
  });

  it("over 6 gateway restarts: each change made while away is announced once, with its own type; nothing else", async function () {
    const port = await freePort();
    paper = await startPaperGateway({ port, replayBuffer: 2 });
    const account = paper.broker;
    // Before the client: three active GTTs and one already deleted. None of it is news to it.
    const old: GttSnapshot[] = [];
    for (let i = 0; i < 3; i++) old.push(await account.placeGtt(single(50 + i)));
    const gone = await account.placeGtt(single(40));
    await account.deleteGtt(gone.gtt_id);
    await pause(5); // the client's story starts at its AUTH's server time, a moment later

    broker = new WebSocketBroker(fastSettings(paper.url));
    const events: GttEvent[] = [];
    broker.on("gtt", (event) => events.push(event));
    await broker.connect();
    // Told while connected: placed live, so the client knows them.
    const known = [await account.placeGtt(single(60)), await account.placeGtt(single(61))];
    await waitFor(() => events.length === 2, "the live GTT_PLACED events");
    assert.deepEqual(
      events.map((event) => [event.type, event.gtt.gtt_id]),
      known.map((gtt) => ["GTT_PLACED", gtt.gtt_id]),
    );

    gateway = paper.gateway;
    const placedWhileAway: GttSnapshot[] = [];
    /** Each round: what is changed while the gateway is down, and what the client must hear. */
    const rounds: (() => Promise<[string, string][]>)[] = [
      async () => {
        const fresh = await account.placeGtt(single(70));
        placedWhileAway.push(fresh);
        await account.deleteGtt(known[0]!.gtt_id);
        await account.modifyGtt(known[1]!.gtt_id, single(62, 3));
        return [
          ["GTT_PLACED", fresh.gtt_id],
          ["GTT_DELETED", known[0]!.gtt_id],
          ["GTT_MODIFIED", known[1]!.gtt_id],
        ];
      },
      // Nothing changed: no gap, no reconcile, no events.
      () => Promise.resolve([]),
      async () => {
        // Changes to GTTs older than the client are news; the old ones left alone are not.
        await account.deleteGtt(old[0]!.gtt_id);
        await account.modifyGtt(old[1]!.gtt_id, single(55, 2));
        return [
          ["GTT_DELETED", old[0]!.gtt_id],
          ["GTT_MODIFIED", old[1]!.gtt_id],
        ];
      },
      async () => {
        // An order event alone makes the gap: the reconcile then reads every GTT and announces none.
        await account.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "GAP1" });
        return [];
      },
      async () => {
        const fresh = await account.placeGtt(single(71));
        await account.deleteGtt(placedWhileAway[0]!.gtt_id);
        placedWhileAway.push(fresh);
        return [
          ["GTT_PLACED", fresh.gtt_id],
          ["GTT_DELETED", placedWhileAway[0]!.gtt_id],
        ];
      },
      async () => {
        await account.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "GAP2" });
        return [];
      },
    ];
    for (const [round, change] of rounds.entries()) {
      const before = events.length;
      await gateway.close();
      const expected = await change();
      await pause(5);
      gateway = await Gateway.start({
        broker: account,
        port,
        replayBuffer: 2,
        credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      });
      await waitFor(
        () => broker?.state === "connected" && events.length >= before + expected.length,
        `round ${round}: the reconnect and its ${expected.length} GTT events`,
        20_000,
      );
      // A reconcile reports what it reports in one pass: anything more would be here by now.
      await broker.getAccount();
      await pause(50);
      const heard = events.slice(before).map((event): [string, string] => [event.type, event.gtt.gtt_id]);
      const order = (a: [string, string], b: [string, string]): number =>
        a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] < b[0] ? -1 : 1;
      assert.deepEqual(heard.sort(order), expected.sort(order), `round ${round}`);
    }
    // Never announced at all: the old GTT nobody touched, and the one deleted before the client came.
    const ids = new Set(events.map((event) => event.gtt.gtt_id));
    assert.equal(ids.has(old[2]!.gtt_id), false, "an untouched GTT older than the client");
    assert.equal(ids.has(gone.gtt_id), false, "a GTT deleted before the client connected");
  });
});
