// Two defects the atkgw9 attacks found (DESIGN §10: "every answer that lists things pages; every
// per-connection table has a cap"):
// 1. GET_GTTS did not page. 30,000 active GTTs, placed within every limit, made one ~9.4 MB answer:
//    past the 8 MiB unsent limit, so the client that asked was terminated as a slow consumer, every
//    time, and could never read its GTTs (a WebSocketBroker's getGtts neither).
// 2. Quote subscriptions were capped per connection (3,000) but not per api key: one key's 64
//    connections could hold 192,000. With the paper broker ticking once a second, at ~17 connections
//    × 3,000 symbols the gateway stopped answering AUTH within 2 s and RSS grew by ~280 MB.
import assert from "node:assert/strict";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { Gateway } from "../../lib/gateway";
import { MAX_LISTED_ROWS } from "../../lib/gateway/frame-budget";
import type { GttEvent, GttRequestInput, GttSnapshot } from "../../lib/protocol";
import { WIRE_LIMITS } from "../../lib/protocol/wire";
import { fastSettings } from "../support/broker-chaos";
import { WsTamperProxy } from "../support/ws-tamper-proxy";
import type { PaperGateway } from "../support/gateway-client";
import { GatewayClient, startPaperGateway, TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { freePort } from "../support/free-port";

const OTHER_KEY = "other-key";
const OTHER_SECRET = "other-secret-0123456789";

/** Places `count` active GTTs straight on the paper broker (the wire is not what is under test here). */
async function placeGtts(paper: PaperGateway, count: number, from = 0): Promise<GttSnapshot[]> {
  const placed: GttSnapshot[] = [];
  for (let i = from; i < from + count; i++) {
    placed.push(
      await paper.broker.placeGtt({
        type: "single",
        symbol: "INFY",
        trigger_values: [50],
        orders: [{ side: "BUY", quantity: 1 + (i % 7), price: 50 }],
      }),
    );
  }
  return placed;
}

/** Reads every GTT with raw GET_GTTS pages of `limit`, checking order and that no id repeats. */
async function readPaged(client: GatewayClient, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await client.call({ type: "GET_GTTS", limit, ...(after === undefined ? {} : { after }) });
    pages++;
    assert.ok(page.length <= limit, `a page of ${page.length} for limit ${limit}`);
    for (const gtt of page) {
      assert.ok(after === undefined || gtt.gtt_id > after, `${gtt.gtt_id} not after ${after}`);
      after = gtt.gtt_id;
      ids.push(gtt.gtt_id);
    }
    if (page.length < limit) return { ids, pages };
  }
}

/** A string just before `id` in plain string order, with no GTT id between them (ids are short). */
function justBefore(id: string): string {
  const last = id.charCodeAt(id.length - 1);
  return `${id.slice(0, -1)}${String.fromCharCode(last - 1)}\u{10ffff}`;
}

function sortedIds(gtts: readonly GttSnapshot[]): string[] {
  return gtts.map((gtt) => gtt.gtt_id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** How many times a connection authenticated on the gateway (a reconnect is a second one). */
function authentications(paper: PaperGateway): number {
  return paper.logs.filter((line) => / authenticated for /.test(line.message)).length;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("Gateway: GTT lists page, quote subscriptions are bounded per api key", function () {
  this.timeout(60_000);
  let paper: PaperGateway | undefined;
  const clients: GatewayClient[] = [];
  const brokers: WebSocketBroker[] = [];
  const gateways: Gateway[] = [];
  const proxies: WsTamperProxy[] = [];

  afterEach(async () => {
    for (const broker of brokers.splice(0)) await broker.close();
    for (const proxy of proxies.splice(0)) await proxy.close();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const gateway of gateways.splice(0)) await gateway.close();
    await paper?.close();
    paper = undefined;
  });

  async function open(url: string, fields: Parameters<typeof GatewayClient.open>[1] = {}) {
    const client = await GatewayClient.open(url, fields);
    clients.push(client);
    return client;
  }

  describe("GET_GTTS pages", function () {
    it("30,000 active GTTs: a WebSocketBroker reads them whole, page by page, and is never cut off", async function () {
      paper = await startPaperGateway();
      const placed = await placeGtts(paper, 30_000);
      const broker = new WebSocketBroker(fastSettings(paper.url, { request_timeout_ms: 20_000 }));
      brokers.push(broker);
      await broker.connect();
      for (let round = 0; round < 3; round++) {
        const gtts = await broker.getGtts();
        assert.equal(gtts.length, 30_000);
        assert.deepEqual(
          gtts.map((gtt) => gtt.gtt_id),
          sortedIds(placed),
          "each GTT once, in gtt_id order",
        );
      }
      assert.equal(broker.state, "connected");
      assert.equal(paper.gateway.connections, 1);
      assert.equal(authentications(paper), 1, "the broker never had to reconnect");
      assert.deepEqual(
        paper.logs.filter((line) => line.level !== "info"),
        [],
        "no slow consumer, no fault",
      );
    });

    it("without limit: answered up to 1000 GTTs, refused past them naming limit; the connection stays", async function () {
      paper = await startPaperGateway();
      const client = await open(paper.url);
      assert.deepEqual(await client.call({ type: "GET_GTTS" }), []);
      const placed = await placeGtts(paper, WIRE_LIMITS.maxPage);
      // The page boundary exactly at maxPage: a whole page, then an empty one.
      const whole = await client.call({ type: "GET_GTTS" });
      assert.deepEqual(sortedIds(whole), sortedIds(placed));
      assert.deepEqual(
        whole.map((gtt) => gtt.gtt_id),
        sortedIds(placed),
        "answered in gtt_id order",
      );
      const exact = await readPaged(client, WIRE_LIMITS.maxPage);
      assert.equal(exact.ids.length, WIRE_LIMITS.maxPage);
      assert.equal(exact.pages, 2, "a full page of 1000, then an empty last page");
      const last = exact.ids[exact.ids.length - 1];
      assert.deepEqual(await client.call({ type: "GET_GTTS", limit: WIRE_LIMITS.maxPage, after: last }), []);

      placed.push(...(await placeGtts(paper, 1, WIRE_LIMITS.maxPage)));
      for (let i = 0; i < 20; i++) {
        const refused = await client.request({ type: "GET_GTTS" });
        assert.equal(refused.type, "ERROR", JSON.stringify(refused).slice(0, 200));
        assert.equal(refused.error?.code, "VALIDATION");
        assert.equal(
          refused.error?.message,
          "invalid GET_GTTS: limit: is required when more than 1000 GTTs would be answered (1001 would); page with limit and after",
        );
      }
      // After the first GTT only 1000 remain: answered without limit again.
      const first = sortedIds(placed)[0];
      assert.equal((await client.call({ type: "GET_GTTS", after: first })).length, WIRE_LIMITS.maxPage);
      const paged = await readPaged(client, WIRE_LIMITS.maxPage);
      assert.deepEqual(paged.ids, sortedIds(placed));
      assert.equal(paged.pages, 2);
      assert.equal(paper.gateway.connections, 1);
    });

    it("pages of every size read the same list; after an id that is not there starts after where it would be", async function () {
      paper = await startPaperGateway();
      const placed = await placeGtts(paper, 2500);
      const client = await open(paper.url);
      const expected = sortedIds(placed);
      for (const limit of [1, 7, 999, 1000, 2500 % 1000]) {
        if (limit === 1) {
          // 2,500 one-GTT pages would be slow for nothing: check the first 50 one by one.
          let after: string | undefined;
          for (let i = 0; i < 50; i++) {
            const page = await client.call({
              type: "GET_GTTS",
              limit: 1,
              ...(after === undefined ? {} : { after }),
            });
            assert.equal(page[0]?.gtt_id, expected[i]);
            after = page[0]?.gtt_id;
          }
          continue;
        }
        const { ids } = await readPaged(client, limit);
        assert.deepEqual(ids, expected, `pages of ${limit}`);
      }
      // An id between two real ones (deleted, or never there): the page starts at the next one.
      const between = `${expected[41]}~`;
      const page = await client.call({ type: "GET_GTTS", limit: 3, after: between });
      assert.deepEqual(
        page.map((gtt) => gtt.gtt_id),
        expected.filter((id) => id > between).slice(0, 3),
      );
      assert.deepEqual(await client.call({ type: "GET_GTTS", limit: 10, after: "\u{10ffff}" }), []);
    });

    it("a page read right after a change sees it: the scan pages share is dropped on every GTT change", async function () {
      paper = await startPaperGateway();
      await placeGtts(paper, 1500);
      const client = await open(paper.url);
      const gtt = {
        type: "single",
        symbol: "INFY",
        trigger_values: [60],
        orders: [{ side: "BUY", quantity: 1, price: 60 }],
      };
      for (let round = 0; round < 40; round++) {
        // A page first, so a scan is held when the change comes.
        assert.equal((await client.call({ type: "GET_GTTS", limit: 5 })).length, 5);
        const placed = await client.call({ type: "PLACE_GTT", gtt });
        const find = async (id: string) => {
          const page = await client.call({ type: "GET_GTTS", limit: 1, after: justBefore(id) });
          return page[0]?.gtt_id === id ? page[0] : undefined;
        };
        assert.equal((await find(placed.gtt_id))?.status, "active", `round ${round}: placed on the wire`);
        await client.call({ type: "DELETE_GTT", gtt_id: placed.gtt_id });
        assert.equal((await find(placed.gtt_id))?.status, "deleted", `round ${round}: deleted on the wire`);
        // Changed behind the gateway's back, on the broker: its event drops the scan.
        const direct: GttSnapshot = await paper.broker.placeGtt(gtt as GttRequestInput);
        assert.equal((await find(direct.gtt_id))?.status, "active", `round ${round}: placed on the broker`);
      }
      const { ids } = await readPaged(client, 1000);
      assert.equal(ids.length, 1500 + 80);
      assert.equal(new Set(ids).size, ids.length);
    });

    it("refuses a bad page with VALIDATION naming the field and the rule", async function () {
      paper = await startPaperGateway();
      const client = await open(paper.url);
      for (const [fields, rule] of [
        [{ limit: 0 }, "limit: must be at least 1"],
        [{ limit: 1001 }, "limit: must be at most 1000"],
        [{ limit: 1.5 }, "limit: must be an integer"],
        [{ limit: "10" }, "limit: must be a number"],
        [{ limit: 10, after: "" }, "after: "],
        [{ limit: 10, after: "x".repeat(10_000) }, "after: "],
        [{ limit: 10, page: 2 }, "page: unknown field"],
      ] as const) {
        const reply = await client.request({ type: "GET_GTTS", ...fields });
        assert.equal(reply.type, "ERROR", JSON.stringify(fields));
        assert.equal(reply.error?.code, "VALIDATION");
        assert.ok(
          reply.error?.message.startsWith(`invalid GET_GTTS: ${rule}`),
          `${JSON.stringify(fields).slice(0, 60)}: ${reply.error?.message}`,
        );
      }
      assert.equal(paper.gateway.connections, 1);
    });

    it("GTT pages listed and unsent count against the connection's listed rows, with order book pages", async function () {
      paper = await startPaperGateway();
      await placeGtts(paper, 30_000);
      const client = await open(paper.url);
      // 30 whole pages in one frame (~9 MB of answers if all were built at once).
      const pages = Array.from({ length: 30 }, (_, i) => ({ type: "GET_GTTS", id: `p${i}`, limit: 1000 }));
      client.send(pages);
      let answered = 0;
      for (const { id } of pages) {
        const reply = await client.reply(id, 30_000);
        if (reply.type === "RESULT") {
          answered++;
          assert.equal((reply.result as unknown[]).length, 1000);
        } else {
          assert.equal(reply.error?.code, "RATE_LIMITED", JSON.stringify(reply).slice(0, 300));
          assert.match(
            reply.error?.message ?? "",
            /^GET_GTTS: \d+ order book and GTT rows listed on this connection are not yet sent \(the most is 20000\); this page of 1000 was not answered/,
          );
          assert.equal(reply.error?.retry_after_ms, 100);
        }
      }
      assert.equal(answered, MAX_LISTED_ROWS / WIRE_LIMITS.maxPage);
      // Order book pages share the same budget (counted as listed: the book must hold a page).
      for (let i = 0; i < 1000; i++) {
        await paper.broker.placeOrder({
          symbol: "INFY",
          side: "BUY",
          quantity: 1,
          order_type: "LIMIT",
          price: 50,
          client_order_id: `M${i}`,
        });
      }
      const mixed = [
        ...Array.from({ length: 15 }, (_, i) => ({ type: "GET_GTTS", id: `g${i}`, limit: 1000 })),
        ...Array.from({ length: 10 }, (_, i) => ({ type: "GET_ORDERBOOK", id: `o${i}`, limit: 1000 })),
      ];
      client.send(mixed);
      const outcomes = await Promise.all(mixed.map(({ id }) => client.reply(id, 30_000)));
      // Which five are refused depends on which list's scan is in first; how many does not.
      assert.equal(outcomes.filter((reply) => reply.type === "RESULT").length, 20);
      assert.deepEqual(
        outcomes.filter((reply) => reply.type !== "RESULT").map((reply) => reply.error?.code),
        Array(5).fill("RATE_LIMITED"),
      );
      assert.ok(
        outcomes.every((reply) => reply.type !== "RESULT" || (reply.result as unknown[]).length === 1000),
      );
      assert.equal(paper.gateway.connections, 1);
    });

    it("a WebSocketBroker over a gateway that predates GET_GTTS paging asks once without limit, as before", async function () {
      paper = await startPaperGateway();
      const placed = await placeGtts(paper, 700);
      const proxy = await WsTamperProxy.start(paper.url);
      proxies.push(proxy);
      let refusal = "invalid GET_GTTS: limit: unknown field (not part of the order shape)";
      // What a gateway without paging answers to `limit`, word for word.
      proxy.tap = (direction, text, connection) => {
        if (direction !== "up") return undefined;
        const message = JSON.parse(text) as Record<string, unknown>;
        if (Array.isArray(message) || message.type !== "GET_GTTS" || !("limit" in message)) return undefined;
        connection.client.send(
          JSON.stringify({ type: "ERROR", id: message.id, error: { code: "VALIDATION", message: refusal } }),
        );
        return null;
      };
      const broker = new WebSocketBroker(fastSettings(proxy.url, { request_timeout_ms: 5000 }));
      brokers.push(broker);
      await broker.connect();
      for (let round = 0; round < 5; round++) {
        const gtts = await broker.getGtts();
        assert.deepEqual(sortedIds(gtts), sortedIds(placed));
      }
      const asked = proxy.messages("up", "GET_GTTS");
      assert.equal(asked.length, 10, "each read: one page refused, then the whole list");
      assert.deepEqual(
        asked.map((m) => "limit" in m),
        Array.from({ length: 10 }, (_, i) => i % 2 === 0),
      );
      // Any other refusal is the caller's, not a cue to drop paging.
      refusal = "invalid GET_GTTS: limit: must be at most 500";
      await assert.rejects(broker.getGtts(), (error: Error) => error.message.includes("must be at most 500"));
      assert.equal(proxy.messages("up", "GET_GTTS").length, 11);
    });

    it("a reconcile after a gap reads 30,000 GTTs page by page and reports only what changed while away, once", async function () {
      const port = await freePort();
      paper = await startPaperGateway({ port, replayBuffer: 2 });
      await placeGtts(paper, 30_000);
      // The broker's story starts at its AUTH's server time, a moment after the last of them.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const broker = new WebSocketBroker(fastSettings(paper.url, { request_timeout_ms: 20_000 }));
      brokers.push(broker);
      await broker.connect();
      const events: GttEvent[] = [];
      broker.on("gtt", (event) => events.push(event));
      await broker.getGtts();
      // The gateway goes away; while it is gone GTTs are placed and deleted, more events than its
      // successor could replay; the broker's RESUME gets a gap and reconciles from the lists.
      await paper.gateway.close();
      const during = await placeGtts(paper, 5, 30_000);
      const deleted = await paper.broker.deleteGtt(during[0]!.gtt_id);
      const successor = await Gateway.start({
        broker: paper.broker,
        port,
        replayBuffer: 2,
        credentials: new Map([[TEST_KEY, { secret: TEST_SECRET }]]),
      });
      gateways.push(successor);
      await waitFor(
        () => broker.state === "connected" && events.length >= 5,
        "the reconcile's GTT events",
        30_000,
      );
      // The 30,000 were there before the broker connected: no news. What changed in the gap is
      // reported once each, the one placed and deleted in it as deleted.
      await broker.getAccount();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const reported = new Map(events.map((event) => [event.gtt.gtt_id, event.type]));
      assert.equal(events.length, 5, JSON.stringify(events.slice(0, 8).map((event) => event.type)));
      assert.equal(reported.size, 5, "each GTT once");
      assert.equal(reported.get(deleted.gtt_id), "GTT_DELETED");
      for (const gtt of during.slice(1)) assert.equal(reported.get(gtt.gtt_id), "GTT_PLACED", gtt.gtt_id);
      assert.equal(successor.connections, 1);
      assert.equal(broker.state, "connected");
    });
  });

  describe("quote subscriptions per api key", function () {
    it("one key's 40 connections at 3,000 symbols each hold at most 9,000; another key is still served", async function () {
      paper = await startPaperGateway(
        {
          rate: { perSecond: 1e6, burst: 1e6 },
          credentials: new Map([
            [TEST_KEY, { secret: TEST_SECRET }],
            [OTHER_KEY, { secret: OTHER_SECRET }],
          ]),
        },
        { settings: { interval_ms: 1000 } },
      );
      const probe = await open(paper.url);
      let granted = 0;
      let refused = 0;
      for (let c = 0; c < 40; c++) {
        const client = await open(paper.url);
        const reply = await client.request({
          type: "SUBSCRIBE",
          symbols: Array.from({ length: 3000 }, (_, i) => `S${c}x${i}`),
        });
        if (reply.type === "RESULT") granted += 3000;
        else {
          refused++;
          assert.equal(reply.error?.code, "VALIDATION");
          assert.equal(
            reply.error?.message,
            "symbols: this connection's api key (over all its connections) may hold at most 9000 subscriptions (it holds 9000, this adds 3000); unsubscribe some first",
          );
        }
        const ping = await probe.request({ type: "PING" });
        assert.equal(ping.type, "RESULT", `after ${c + 1} connections`);
      }
      assert.equal(granted, 9000);
      assert.equal(refused, 37);
      const other = await open(paper.url, { apiKey: OTHER_KEY, secret: OTHER_SECRET });
      const symbols = Array.from({ length: 3000 }, (_, i) => `O${i}`);
      const served = await other.call({ type: "SUBSCRIBE", symbols });
      assert.equal(served.symbols.length, 3000);
      paper.broker.setPrice("O7", 123);
      const quote = await other.next((m) => m.type === "QUOTE" && m.quote?.symbol === "O7", 5000);
      assert.equal(quote.quote?.last_price, 123);
    });

    it("counts subscriptions, not distinct symbols, and frees a connection's share when it closes", async function () {
      paper = await startPaperGateway({ rate: { perSecond: 1e6, burst: 1e6 }, maxSymbolsPerKey: 10 });
      for (let round = 0; round < 25; round++) {
        const a = await open(paper.url);
        const b = await open(paper.url);
        // The same six symbols on two connections are twelve pushes per tick: twelve subscriptions.
        const six = ["A", "B", "C", "D", "E", "F"].map((s) => `${s}${round}`);
        assert.deepEqual((await a.call({ type: "SUBSCRIBE", symbols: six })).symbols.length, 6);
        const over = await b.request({ type: "SUBSCRIBE", symbols: six });
        assert.equal(over.error?.code, "VALIDATION", JSON.stringify(over));
        assert.match(over.error?.message ?? "", /at most 10 subscriptions \(it holds 6, this adds 6\)/);
        assert.equal((await b.call({ type: "SUBSCRIBE", symbols: six.slice(0, 4) })).symbols.length, 4);
        // Repeats within a request and symbols already held add nothing.
        await b.call({ type: "SUBSCRIBE", symbols: [six[0]!, `NSE:${six[0]!}`, six[1]!] });
        await a.call({ type: "UNSUBSCRIBE", symbols: six.slice(0, 2) });
        assert.equal((await b.call({ type: "SUBSCRIBE", symbols: six.slice(4) })).symbols.length, 6);
        const full = await a.request({ type: "SUBSCRIBE", symbols: ["Z"] });
        assert.match(full.error?.message ?? "", /it holds 10, this adds 1/);
        // A closed connection's subscriptions no longer count against its key.
        await b.close();
        await waitFor(() => paper!.gateway.connections === 1, "the close");
        assert.equal((await a.call({ type: "SUBSCRIBE", symbols: ["Z", "Y"] })).symbols.length, 6);
        await a.close();
        await waitFor(() => paper!.gateway.connections === 0, "the close");
      }
      // After 25 rounds nothing is left over: a fresh connection may take the whole cap.
      const last = await open(paper.url);
      const ten = Array.from({ length: 10 }, (_, i) => `L${i}`);
      assert.equal((await last.call({ type: "SUBSCRIBE", symbols: ten })).symbols.length, 10);
    });

    it("the option is checked: maxSymbolsPerKey must be a number from 0", async function () {
      paper = await startPaperGateway();
      await assert.rejects(
        Gateway.start({
          broker: paper.broker,
          credentials: new Map(),
          maxSymbolsPerKey: -1,
        }),
        /gateway option maxSymbolsPerKey must be a number from 0, got -1/,
      );
    });
  });
});
