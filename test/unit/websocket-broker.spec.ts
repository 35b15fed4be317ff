import assert from "node:assert/strict";
import type { OrderSnapshot } from "../../lib/protocol";
import { rejectsWithCode } from "../contract/broker-contract";
import type { Settled, StallableMethod } from "../support/broker-chaos";
import {
  classify,
  fastSettings,
  ObservedBroker,
  stallable,
  useCleanup,
  within,
} from "../support/broker-chaos";
import { GatewayClient, TEST_KEY } from "../support/gateway-client";
import { PaperHost } from "../support/paper-host";
import { activeResources, describeResources, waitFor } from "../support/wait";
import { withoutEvents, WsTamperProxy } from "../support/ws-tamper-proxy";

type Overrides = Parameters<typeof fastSettings>[1];

/** Everything a test opened, closed after it, newest first. */
function harness() {
  const cleanup = useCleanup();
  return {
    async host(...args: Parameters<typeof PaperHost.start>): Promise<PaperHost> {
      const host = await PaperHost.start(...args);
      cleanup(() => host.close());
      return host;
    },
    async stalledHost(methods: StallableMethod[]) {
      let control: ReturnType<typeof stallable> | undefined;
      const host = await PaperHost.start({}, (paper) => {
        control = stallable(paper, methods);
        return control.broker;
      });
      // Released before the host closes, so nothing the gateway awaits is left hanging.
      cleanup(async () => {
        control!.release();
        await host.close();
      });
      return { host, control: control! };
    },
    async proxy(upstreamUrl: string): Promise<WsTamperProxy> {
      const proxy = await WsTamperProxy.start(upstreamUrl);
      cleanup(() => proxy.close());
      return proxy;
    },
    broker(url: string, overrides: Overrides = {}): ObservedBroker {
      const observed = new ObservedBroker(fastSettings(url, overrides));
      cleanup(() => observed.broker.close());
      return observed;
    },
  };
}

function market(clientOrderId: string, side: "BUY" | "SELL" = "BUY") {
  return { symbol: "INFY", side, quantity: 1, client_order_id: clientOrderId } as const;
}

describe("WebSocketBroker", function () {
  this.timeout(15_000);
  const h = harness();

  describe("authentication", function () {
    it("rejects connect() with AUTH on a wrong secret and stops reconnecting", async function () {
      const logs: string[] = [];
      // Each refused AUTH is logged once: the log counts the broker's connection attempts.
      const host = await h.host({
        credentials: new Map([[TEST_KEY, { secret: "the-right-secret" }]]),
        log: { info: () => undefined, warn: (m) => logs.push(m), error: (m) => logs.push(m) },
      });
      const { broker } = h.broker(host.url, { api_secret: "a-wrong-secret" });
      const err = await rejectsWithCode(broker.connect(), "AUTH");
      assert.match(err.message, /signature/);
      assert.equal(broker.state, "disconnected");
      const refusals = () => logs.filter((m) => m.includes("AUTH refused")).length;
      assert.equal(refusals(), 1);
      // Absence can only be shown over a window: no retry in 300 ms, at a 20 ms initial backoff.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(refusals(), 1, "the broker retried refused credentials");
      await waitFor(() => host.gateway!.connections === 0, "the refused connection to close");
      await rejectsWithCode(broker.placeOrder(market("authx1")), "AUTH");
    });
  });

  describe("lost answers", function () {
    it("settles a PLACE_ORDER whose answer was lost by client_order_id: one order, the original", async function () {
      const host = await h.host();
      const proxy = await h.proxy(host.url);
      let dropped = false;
      const placeIds = new Set<unknown>();
      proxy.tap = (direction, text, connection) => {
        const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
        const messages = Array.isArray(parsed) ? parsed : [parsed];
        if (direction === "up") {
          for (const m of messages) if (m.type === "PLACE_ORDER") placeIds.add(m.id);
          return undefined;
        }
        if (!dropped && messages.some((m) => m.type === "RESULT" && placeIds.has(m.id))) {
          dropped = true;
          connection.cut();
          return null;
        }
        return undefined;
      };
      const observed = h.broker(proxy.url);
      await observed.broker.connect();
      const placed = await within(observed.broker.placeOrder(market("lost1")), 5000, "the lost placement");
      assert.ok(dropped, "the answer was dropped");
      assert.equal(placed.client_order_id, "lost1");
      assert.equal(placed.status, "FILLED");
      const book = (await host.paper.getOrderbook()).filter((o) => o.client_order_id === "lost1");
      assert.equal(book.length, 1);
      assert.equal(book[0]!.order_id, placed.order_id);
      // It was looked up, not placed again.
      const places = proxy.messages("up", "PLACE_ORDER").filter((m) => hasClientId(m.order, "lost1"));
      assert.equal(places.length, 1, "PLACE_ORDER sent once");
      assert.ok(
        proxy.messages("up", "GET_ORDER").some((m) => m.client_order_id === "lost1"),
        "looked up by client_order_id",
      );
      await waitFor(() => observed.broker.lastSeq >= host.paper.lastSeq, "events to catch up");
      assert.deepEqual(observed.eventsFor(placed.order_id), ["ORDER_PLACED", "ORDER_FILLED"]);
      assert.equal(observed.broker.stats.reconnects, 1);
    });

    it("reports a fill whose answer arrived but whose events were lost, after a gap", async function () {
      const host = await h.host();
      const proxy = await h.proxy(host.url);
      let swallowEvents = true;
      // Pushed events and (v1.1 skip) the events inside answers alike.
      proxy.tap = (direction, text) =>
        direction === "down" && swallowEvents ? withoutEvents(text) : undefined;
      const observed = h.broker(proxy.url);
      await observed.broker.connect();
      const placed = await observed.broker.placeOrder(market("answered1"));
      assert.equal(placed.status, "FILLED");
      assert.deepEqual(observed.eventsFor(placed.order_id), [], "its events were swallowed");
      // Cut the link, and let the account move on past the replay buffer meanwhile.
      swallowEvents = false;
      const reconnected = observed.broker.stats.reconnects + 1;
      await host.stopGateway();
      const other = await host.paper.placeOrder(market("elsewhere1", "SELL"));
      await host.startGateway();
      await waitFor(
        () => observed.broker.stats.reconnects >= reconnected && observed.broker.state === "connected",
        "the reconnect",
        5000,
      );
      await waitFor(() => observed.broker.lastSeq >= host.paper.lastSeq, "events to catch up");
      assert.deepEqual(observed.eventsFor(placed.order_id), ["ORDER_FILLED*"]);
      assert.deepEqual(observed.eventsFor(other.order_id), ["ORDER_FILLED*"]);
    });
  });

  describe("circuit breaker", function () {
    it("counts one dropped connection as one failure, however many requests it carried", async function () {
      const { host, control } = await h.stalledHost(["getAccount"]);
      const proxy = await h.proxy(host.url);
      const observed = h.broker(proxy.url, { breaker: { failure_threshold: 3, cool_down_ms: 60_000 } });
      await observed.broker.connect();
      control.stall();
      const inFlight = Array.from({ length: 5 }, () => classify(observed.broker.getAccount()));
      await waitFor(() => control.held === 5, "five requests in flight");
      proxy.cutAll();
      for (const outcome of await Promise.all(inFlight)) {
        assert.equal(outcome.kind, "failed");
        if (outcome.kind === "failed") assert.equal(outcome.error.code, "NETWORK");
      }
      control.release();
      await waitFor(() => observed.broker.stats.reconnects === 1, "the reconnect", 5000);
      assert.ok(!observed.states.includes("circuit-open"), observed.states.join(","));
      const account = await observed.broker.getAccount();
      assert.ok(account.cash > 0);
      assert.equal(observed.broker.stats.circuit, "closed");
    });
  });

  describe("the gateway's side of settling lost placements", function () {
    it("answers a burst of lookups by client_order_id with one order-book scan, not one each", async function () {
      let scans = 0;
      const host = await h.host({}, (paper) => {
        const getOrderbook = paper.getOrderbook.bind(paper);
        paper.getOrderbook = () => {
          scans += 1;
          return getOrderbook();
        };
        return paper;
      });
      // Placed before this gateway started (as after a restart): only a scan of the book finds them.
      for (let i = 0; i < 200; i++)
        await host.paper.placeOrder(market(`scan${i}`, i % 2 === 0 ? "BUY" : "SELL"));
      const client = await GatewayClient.open(host.url);
      try {
        const ids = Array.from({ length: 100 }, (_, i) => `q${i}`);
        // The gateway read the book once at start (to seed its idempotency index); count from here.
        scans = 0;
        const replies = Promise.all(ids.map((id) => client.reply(id)));
        client.send(ids.map((id, i) => ({ type: "GET_ORDER", id, client_order_id: `scan${i * 2}` })));
        const answers = await replies;
        answers.forEach((answer, i) => {
          assert.equal(answer.type, "RESULT", JSON.stringify(answer));
          assert.equal((answer.result as OrderSnapshot).client_order_id, `scan${i * 2}`);
        });
        assert.equal(scans, 1, `${scans} order-book scans for one batch of 100 lookups`);
        const missing = await client.request({ type: "GET_ORDER", client_order_id: "neverplaced1" });
        assert.equal(missing.error?.code, "NOT_FOUND");
      } finally {
        await client.close();
      }
    });
  });

  describe("resume", function () {
    it("does not skip missed events when a live push overtakes the replay after a reconnect", async function () {
      const host = await h.host();
      const proxy = await h.proxy(host.url);
      const observed = h.broker(proxy.url);
      await observed.broker.connect();
      const resting = await observed.broker.placeOrder({
        ...market("overtaken1"),
        order_type: "LIMIT",
        price: 95,
      });
      await waitFor(() => observed.broker.lastSeq >= host.paper.lastSeq, "ORDER_PLACED");

      // The next RESUME is held back by the network until a live event has overtaken it.
      let heldResume: { send: () => void } | undefined;
      proxy.tap = (direction, text, connection) => {
        if (direction !== "up" || heldResume !== undefined || !text.includes('"type":"RESUME"'))
          return undefined;
        heldResume = { send: () => connection.upstream.send(text) };
        return null;
      };
      // The link drops; the resting order fills before the broker is back.
      proxy.cutAll();
      host.paper.setPrice("INFY", 94);
      await waitFor(() => heldResume !== undefined, "the broker to reconnect and ask to resume", 5000);
      // Another client trades: its events are pushed live to the re-authenticated connection.
      const other = await host.paper.placeOrder(market("overtaking1", "SELL"));
      const lastLive = host.paper.lastSeq;
      await waitFor(
        () =>
          [...proxy.messages("down", "EVENT"), ...proxy.messages("down", "EVENT_DELTA")].some(
            (m) => (m.event as { seq: number }).seq === lastLive,
          ),
        "the live push to reach the broker",
      );
      heldResume!.send();
      await waitFor(
        () => observed.broker.state === "connected" && observed.broker.lastSeq >= host.paper.lastSeq,
        "the broker to catch up",
        5000,
      );
      assert.deepEqual(
        observed.eventsFor(resting.order_id).map((e) => e.replace("*", "")),
        ["ORDER_PLACED", "ORDER_FILLED"],
        "the fill made while the broker was away",
      );
      assert.deepEqual(
        observed.eventsFor(other.order_id).map((e) => e.replace("*", "")),
        ["ORDER_PLACED", "ORDER_FILLED"],
      );
      const seqs = observed.orders.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        "events in seq order",
      );
    });
  });

  describe("while disconnected", function () {
    it("ends an order whose time to live passes while disconnected EXPIRED, and never sends it", async function () {
      const host = await h.host();
      const proxy = await h.proxy(host.url);
      const observed = h.broker(proxy.url, { queue: { ttl_ms: 300 } });
      await observed.broker.connect();
      await host.stopGateway();
      await waitFor(() => observed.broker.state !== "connected", "the broker to notice");
      const started = performance.now();
      const err = await rejectsWithCode(observed.broker.placeOrder(market("stale1")), "EXPIRED");
      assert.match(err.message, /not sent within 300 ms/);
      assert.ok(performance.now() - started < 1000);
      await host.startGateway();
      await waitFor(() => observed.broker.state === "connected", "the reconnect", 5000);
      // Anything queued would have gone out ahead of this one.
      const fresh = await observed.broker.placeOrder(market("fresh1"));
      assert.equal(fresh.status, "FILLED");
      assert.ok(
        !proxy.messages("up", "PLACE_ORDER").some((m) => hasClientId(m.order, "stale1")),
        "the expired order reached the wire",
      );
      const book = await host.paper.getOrderbook();
      assert.ok(!book.some((o) => o.client_order_id === "stale1"));
    });

    it("resubscribes quotes after a reconnect", async function () {
      const host = await h.host();
      const observed = h.broker(host.url);
      const quotes: number[] = [];
      observed.broker.on("quote", (quote) => quotes.push(quote.last_price));
      await observed.broker.connect();
      await observed.broker.subscribeQuotes(["INFY"]);
      host.paper.setPrice("INFY", 101);
      await waitFor(() => quotes.includes(101), "a quote before the restart");
      await host.stopGateway();
      await host.startGateway();
      await waitFor(
        () => observed.broker.stats.reconnects === 1 && observed.broker.state === "connected",
        "the reconnect",
        5000,
      );
      host.paper.setPrice("INFY", 102);
      await waitFor(() => quotes.includes(102), "a quote after the restart");
    });

    it("reports connecting → connected → reconnecting → connected across a gateway restart", async function () {
      const host = await h.host();
      const observed = h.broker(host.url);
      await observed.broker.connect();
      await host.stopGateway();
      await waitFor(() => observed.broker.state === "reconnecting", "reconnecting");
      await host.startGateway();
      await waitFor(() => observed.broker.state === "connected", "connected again", 5000);
      assert.deepEqual(observed.states, ["connecting", "connected", "reconnecting", "connected"]);
      assert.equal((await observed.broker.placeOrder(market("afterstate1"))).status, "FILLED");
    });
  });

  describe("close()", function () {
    it("ends queued and in-flight requests CLOSED and leaves no timer or socket", async function () {
      const { host, control } = await h.stalledHost(["placeOrder", "getAccount"]);
      const before = activeResources();
      control.stall();
      const observed = h.broker(host.url, {
        rate_limit: { per_second: 1, burst: 2 },
        queue: { ttl_ms: 10_000 },
      });
      await observed.broker.connect();
      const inFlight = [
        classify(observed.broker.placeOrder(market("closing1"))),
        classify(observed.broker.getAccount()),
      ];
      await waitFor(() => control.held === 2, "both requests to reach the stalled broker");
      const queued = [classify(observed.broker.getAccount()), classify(observed.broker.getPositions())];
      assert.equal(observed.broker.stats.queued, 2);
      await observed.broker.close();
      const outcomes = await within(Promise.all([...inFlight, ...queued]), 1000, "every request to end");
      for (const outcome of outcomes) {
        assert.equal(outcome.kind, "failed");
        if (outcome.kind === "failed") assert.equal(outcome.error.code, "CLOSED");
      }
      assert.equal(observed.broker.state, "disconnected");
      await waitFor(
        () =>
          host.gateway!.connections === 0 &&
          count("TCPSocketWrap") <= (before.get("TCPSocketWrap") ?? 0) &&
          count("Timeout") <= (before.get("Timeout") ?? 0),
        `resources back to ${describeResources(before)}, now ${describeResources(activeResources())}`,
      );
    });

    it("ends a placement that is being settled when close() resolves, with no timer left", async function () {
      const { host, control } = await h.stalledHost(["placeOrder"]);
      control.stall();
      const observed = h.broker(host.url, { request_timeout_ms: 100 });
      await observed.broker.connect();
      const box: { settled?: Settled<OrderSnapshot> } = {};
      void classify(observed.broker.placeOrder(market("settling1"))).then((s) => (box.settled = s));
      const current = (): Settled<OrderSnapshot> | undefined => box.settled;
      // The answer timed out, then the lookup by client_order_id too: it now waits to ask again.
      await waitFor(() => observed.broker.stats.timeouts >= 2, "the placement and its lookup to time out");
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(current(), undefined, "still settling");
      const closing = performance.now();
      await observed.broker.close();
      await new Promise((resolve) => setImmediate(resolve));
      const settled = current();
      assert.ok(settled !== undefined, "the placement was left pending after close() resolved");
      assert.equal(settled.kind, "failed");
      if (settled.kind === "failed") assert.equal(settled.error.code, "CLOSED");
      assert.ok(performance.now() - closing < 200);
    });
  });

  describe("malformed pushes", function () {
    it("reports a malformed push as an error event and keeps working", async function () {
      const host = await h.host();
      const proxy = await h.proxy(host.url);
      const observed = h.broker(proxy.url);
      await observed.broker.connect();
      proxy.inject('{"type":"EVENT","event":{"seq":"seven"}}');
      proxy.inject("this is not JSON");
      proxy.inject('{"no_type":true}');
      await waitFor(() => observed.errors.length >= 3, "three error events");
      for (const error of observed.errors) assert.equal(error.code, "BAD_FRAME", error.message);
      assert.match(observed.errors[0]!.message, /not protocol v1/);
      assert.equal(observed.broker.state, "connected");
      const placed = await observed.broker.placeOrder(market("aftermalformed1"));
      assert.equal(placed.status, "FILLED");
      await waitFor(() => observed.eventsFor(placed.order_id).length === 2, "its events");
      assert.equal(observed.broker.stats.reconnects, 0);
    });
  });
});

function hasClientId(order: unknown, clientOrderId: string): boolean {
  return (order as { client_order_id?: unknown } | undefined)?.client_order_id === clientOrderId;
}

function count(kind: string): number {
  return activeResources().get(kind) ?? 0;
}
