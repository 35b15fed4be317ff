import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { IDLE_SOCKET_MS, agentFor } from "../../lib/kite/rest-agent";
import { KiteRestClient } from "../../lib/kite/rest-client";
import type { BrokerError } from "../../lib/protocol/errors";
import { FakeKite } from "../fakes/fake-kite";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/**
 * The Kite REST agent keeps connections alive; a server closes an idle one when its keep-alive
 * timeout runs out, and a request written on it before this process has read the close is reset
 * (ECONNRESET). A read is sent once more on a fresh socket; an order or GTT change never is (its
 * outcome is settled by the order desk, not by sending it again).
 */
describe("Kite REST: kept-alive connections the server just closed", function () {
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  const reads = (harness: KiteHarness): Promise<unknown>[] => [
    harness.broker.getPositions(),
    harness.broker.getPositions(),
  ];
  const count = (fake: FakeKite, method: string, path: string): number =>
    fake.requests.filter((r) => r.method === method && r.path === path).length;

  it("reads sent right after Kite closed every idle connection all succeed, each reaching Kite once", async function () {
    // Kite's own rate limits pace these rounds (each retry waits its turn): seconds, not a hang.
    this.timeout(20_000);
    h = await startKite();
    const harness = h;
    for (let round = 0; round < 10; round++) {
      // Several reads at once leave several idle connections in the pool; Kite closes them all,
      // and the next reads are written before this process has read any of the closes.
      const calm = harness.fake.requests.length;
      await Promise.all(reads(harness));
      const perBatch = harness.fake.requests.length - calm;
      harness.fake.closeIdleConnections();
      const before = harness.fake.requests.length;
      const results = await Promise.all(
        reads(harness).map((p) =>
          p.then(
            () => "ok",
            (e: BrokerError) => `${e.code}: ${e.message}`,
          ),
        ),
      );
      assert.deepEqual(results, ["ok", "ok"], `round ${round}`);
      // Each reached Kite once: the resets never reached it, the second tries did.
      assert.equal(harness.fake.requests.length - before, perBatch, `round ${round}`);
    }
    // The second tries waited their turn in Kite's limits like any request.
    assert.equal(harness.fake.rateLimited, 0);
    assert.deepEqual(harness.errors, []);
  });

  describe("the REST client itself", function () {
    let fake: FakeKite;
    let client: KiteRestClient;
    let stop: AbortController;
    beforeEach(async function () {
      fake = await FakeKite.start();
      fake.setPrice("INFY", 1500);
      stop = new AbortController();
      const settings = KiteSettings.parse({
        api_key: fake.apiKey,
        access_token: fake.accessToken,
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
      });
      client = new KiteRestClient(settings, stop.signal, () => undefined);
    });
    afterEach(async function () {
      stop.abort();
      client.destroy();
      await fake.close();
    });

    /** Leaves an idle kept-alive connection, has Kite close it, and sends `write` at once. */
    async function race(write: () => Promise<unknown>): Promise<string> {
      await client.fetchBook();
      fake.closeIdleConnections();
      return write().then(
        () => "ok",
        (e: BrokerError) => e.code,
      );
    }

    it("a read retried after a reset goes on a fresh socket, not on another one Kite closed too", async function () {
      this.timeout(20_000);
      for (let round = 0; round < 10; round++) {
        // Four idle connections, all closed by Kite; one read: its retry must not pick another.
        await Promise.all([client.fetchBook(), client.fetchBook(), client.fetchBook(), client.fetchBook()]);
        fake.closeIdleConnections();
        const result = await client.fetchGtts().then(
          () => "ok",
          (e: BrokerError) => `${e.code}: ${e.message}`,
        );
        assert.equal(result, "ok", `round ${round}`);
      }
    });

    it("an order placement written on the closed connection is never sent again by the client", async function () {
      this.timeout(20_000);
      let reset = 0;
      for (let round = 0; round < 10; round++) {
        const before = count(fake, "POST", "/orders/regular");
        const outcome = await race(() =>
          client.call("order", "order placement", (k) =>
            k.placeOrder("regular", {
              exchange: "NSE",
              tradingsymbol: "INFY",
              transaction_type: "BUY",
              quantity: 1,
              product: "CNC",
              order_type: "MARKET",
              tag: `race${round}`,
            }),
          ),
        );
        // Reset: Kite never read it, and the client did not send it again (the order desk
        // settles that). Sent: it went once, on a fresh connection.
        assert.equal(
          count(fake, "POST", "/orders/regular"),
          before + (outcome === "ok" ? 1 : 0),
          `round ${round}`,
        );
        if (outcome !== "ok") {
          assert.equal(outcome, "NETWORK", `round ${round}`);
          reset += 1;
        }
      }
      // The race this is about did happen (else the test proved nothing).
      assert.ok(reset > 0, "no placement was ever written on a closed connection");
    });

    it("GTT placements on the closed connection (same lane as reads) are never sent again either", async function () {
      this.timeout(20_000);
      let reset = 0;
      const gtt = {
        trigger_type: "single",
        tradingsymbol: "INFY",
        exchange: "NSE",
        trigger_values: [1400],
        last_price: 1500,
        orders: [
          {
            exchange: "NSE",
            tradingsymbol: "INFY",
            transaction_type: "BUY",
            quantity: 1,
            order_type: "LIMIT",
            product: "CNC",
            price: 1400,
          },
        ],
      };
      for (let round = 0; round < 10; round++) {
        const before = count(fake, "POST", "/gtt/triggers");
        const outcome = await race(() => client.call("request", "GTT placement", (k) => k.placeGTT(gtt)));
        assert.equal(
          count(fake, "POST", "/gtt/triggers"),
          before + (outcome === "ok" ? 1 : 0),
          `round ${round}`,
        );
        if (outcome !== "ok") {
          assert.equal(outcome, "NETWORK", `round ${round}`);
          reset += 1;
        }
      }
      assert.ok(reset > 0, "no GTT placement was ever written on a closed connection");
    });

    it("a read answered slower than the idle time still succeeds (the idle time is not a request timeout)", async function () {
      this.timeout(20_000);
      const slow = IDLE_SOCKET_MS + 700;
      // On the kept-alive socket of the read just before, which the agent had set to the idle time.
      await client.fetchBook();
      fake.delayNext("GET /orders", slow);
      const started = Date.now();
      assert.ok(Array.isArray(await client.fetchBook()));
      // It really was answered after the idle time (else this proved nothing).
      assert.ok(Date.now() - started >= slow - 50);
      assert.equal(count(fake, "GET", "/orders"), 2);
    });
  });

  it("an order placed in the same race is sent once and ends in exactly one outcome", async function () {
    this.timeout(20_000);
    h = await startKite();
    const harness = h;
    harness.fake.setPrice("INFY", 1500);
    const posts = (): number => count(harness.fake, "POST", "/orders/regular");
    for (let round = 0; round < 10; round++) {
      await harness.broker.getPositions();
      const before = posts();
      harness.fake.closeIdleConnections();
      const order = await harness.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price: 1400,
        client_order_id: `race${round}`,
      });
      assert.equal(order.client_order_id, `race${round}`);
      assert.equal(posts(), before + 1, `round ${round}: reached Kite ${posts() - before} times`);
      assert.equal(await harness.fake.orderCount(), round + 1);
      await harness.log.until(() => harness.log.typesFor(order.order_id).length > 0, "ORDER_PLACED");
      assert.deepEqual(harness.log.typesFor(order.order_id), ["ORDER_PLACED"]);
    }
    assert.deepEqual(harness.errors, []);
  });

  it("an idle kept-alive socket is closed by us, long before a server's own keep-alive timeout", async function () {
    this.timeout(20_000);
    // A server that keeps idle connections a minute (many proxies do): only we can close it first.
    const server = http.createServer((_req, res) => res.end("{}"));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = agentFor(root, true);
    try {
      const closed = new Promise<number>((resolve) => {
        server.once("connection", (socket) => socket.once("close", () => resolve(Date.now())));
      });
      await new Promise<void>((resolve, reject) => {
        http
          .get(root, { agent }, (res) => {
            res.resume();
            res.on("end", resolve);
          })
          .on("error", reject);
      });
      const answered = Date.now();
      const at = await closed;
      // Closed by the idle time, not before (the socket was kept for reuse).
      assert.ok(at - answered >= IDLE_SOCKET_MS - 100, `closed after ${at - answered} ms`);
    } finally {
      agent.destroy();
      server.close();
    }
  });
});
