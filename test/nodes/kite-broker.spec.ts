// The kite kind of trading-broker end to end: the config node's fields and credentials become
// KiteSettings, and the user nodes trade against the fake Kite (REST + ticker) on 127.0.0.1.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import type { OrderEvent, OrderSnapshot } from "../../lib/protocol";
import { FakeKite } from "../fakes/fake-kite";
import {
  NODES,
  assertNeverLogged,
  assertRefusedAsInvalid,
  brokerOf,
  hasText,
  listenerCounts,
  place,
  redeployUsers,
  remoteFlow,
  runtimeProbe,
  sockets,
  timers,
  until,
} from "./remote-support";
import type { FlowNode } from "./support";
import {
  ERROR,
  TAB,
  WARN,
  collect,
  configNode,
  delay,
  getNode,
  helper,
  lastStatus,
  logged,
  nextMessage,
  statusMatching,
} from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const API_KEY = "kite-node-key";
const TOKEN = "kite-access-token-never-logged-7f3b";
const CREDENTIALS = { b1: { apiKey: API_KEY, accessToken: TOKEN } };
const SESSION_EXPIRED = "Kite session expired: log in again";

function kiteConfig(fake: FakeKite, overrides: Record<string, unknown> = {}): FlowNode {
  return {
    id: "b1",
    type: "trading-broker",
    name: "kite",
    kind: "kite",
    root: fake.restUrl,
    ticker_url: fake.tickerUrl,
    market_protection: "",
    ticker_mode: "",
    timeout_ms: "",
    read_timeout_ms: "",
    order_ttl_ms: "",
    resolve_window_ms: "",
    gtt_poll_ms: "",
    startup_budget_ms: "",
    reconnect_initial_ms: "20",
    reconnect_factor: "2",
    reconnect_max_ms: "100",
    orders_per_second: "",
    orders_per_minute: "",
    requests_per_second: "",
    quotes_per_second: "",
    rate_max_wait_ms: "",
    ...overrides,
  };
}

function flow(config: FlowNode, users?: FlowNode[]): FlowNode[] {
  return remoteFlow("kite", config, users);
}

function kiteBroker(): Promise<KiteBroker> {
  return brokerOf(KiteBroker);
}

describe("trading-broker, kite kind", function () {
  this.timeout(20_000);
  let fake: FakeKite;
  const runtime = nodeRedPerTest({
    start: async () => {
      fake = await FakeKite.start({ apiKey: API_KEY, accessToken: TOKEN, heartbeatMs: 200 });
      fake.setPrice("INFY", 100);
    },
    stop: () => fake.close(),
  });

  describe("settings", function () {
    it("maps the editor fields to KiteSettings; api key and access token come from credentials", async function () {
      const config = kiteConfig(fake, {
        market_protection: "3",
        ticker_mode: "full",
        timeout_ms: "4000",
        read_timeout_ms: "3000",
        order_ttl_ms: "2500",
        resolve_window_ms: "9000",
        gtt_poll_ms: "1000",
        startup_budget_ms: "12000",
        reconnect_initial_ms: "50",
        reconnect_factor: "1.5",
        reconnect_max_ms: "2000",
        orders_per_second: "5",
        orders_per_minute: "200",
        requests_per_second: "8",
        quotes_per_second: "1",
        rate_max_wait_ms: "500",
        // Paper fields left on a config switched to kite are ignored.
        starting_cash: "-1",
      });
      await helper.load(NODES, flow(config), CREDENTIALS);
      const broker = await kiteBroker();
      assert.deepEqual(broker.settings, {
        api_key: API_KEY,
        access_token: TOKEN,
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        timeout_ms: 4000,
        market_protection: 3,
        ticker_mode: "full",
        reconnect: { initial_ms: 50, factor: 1.5, max_ms: 2000 },
        read_timeout_ms: 3000,
        order_ttl_ms: 2500,
        resolve_window_ms: 9000,
        rate_limit: {
          orders_per_second: 5,
          orders_per_minute: 200,
          requests_per_second: 8,
          quotes_per_second: 1,
          historical_per_second: 3,
          margin_ms: 100,
          max_wait_ms: 500,
        },
        gtt_poll_ms: 1000,
        startup_budget_ms: 12_000,
        instruments: {},
        cache_dir: path.join(runtime.userDir, "kite-cache"),
        // Its own reported ledger among configs on this api key: the config node's id.
        instance_id: "b1",
        login_url: "https://kite.zerodha.com/connect/login",
        retention: 10_000,
      });
      const node = configNode();
      assert.ok(!("accessToken" in node) && !("access_token" in node), "the token is no property");
    });

    it("blank root, ticker URL and market protection are Kite's endpoints and automatic (-1)", async function () {
      const config = kiteConfig(fake, { root: "", ticker_url: "", reconnect_initial_ms: "" });
      await helper.load(NODES, [{ id: TAB, type: "tab", label: "kite" }, config], CREDENTIALS);
      // No users: nothing connects to the real Kite; the broker is made but not connected.
      const connection = configNode().connection;
      assert.equal(connection.broker, undefined);
      assert.deepEqual(logged("b1", ERROR), [], "blank fields are valid");
      const settings = KiteSettings.parse({
        api_key: API_KEY,
        access_token: TOKEN,
      });
      assert.equal(settings.root, "https://api.kite.trade");
      assert.equal(settings.ticker_url, "wss://ws.kite.trade");
      assert.equal(settings.market_protection, -1);
    });

    const invalid: [string, Record<string, unknown>, Record<string, string>, RegExp][] = [
      ["no access token", {}, { apiKey: API_KEY }, /kite\.access_token: is required/],
      ["no credentials", {}, {}, /kite\.api_key: is required.*kite\.access_token: is required/],
      ["an http ticker URL", { ticker_url: "http://x" }, CREDENTIALS.b1, /kite\.ticker_url: must be a ws/],
      [
        "market protection 0",
        { market_protection: "0" },
        CREDENTIALS.b1,
        /kite\.market_protection: .*Kite rejects 0/,
      ],
      [
        "a start-up read budget under a second",
        { startup_budget_ms: "500" },
        CREDENTIALS.b1,
        /kite\.startup_budget_ms: must be at least 1000/,
      ],
      [
        "a start-up read budget over five minutes",
        { startup_budget_ms: "300001" },
        CREDENTIALS.b1,
        /kite\.startup_budget_ms: must be at most 300000/,
      ],
    ];
    for (const [what, fields, credentials, rule] of invalid) {
      it(`with ${what}: the config names field and rule, users show invalid settings, inputs fail`, async function () {
        await helper.load(NODES, flow(kiteConfig(fake, fields)), { b1: credentials });
        assert.match(logged("b1", ERROR).join("\n"), rule);
        const missing = credentials.apiKey === undefined || credentials.accessToken === undefined;
        await assertRefusedAsInvalid(rule, missing ? "enter-kite-credentials" : undefined);
        assert.equal(fake.requests.length, 0, "nothing called Kite");
        assertNeverLogged(TOKEN);
      });
    }
  });

  describe("orders, events and the session", function () {
    it("places an order and sends the snapshot on, keeping msg", async function () {
      await helper.load(NODES, flow(kiteConfig(fake)), CREDENTIALS);
      for (const id of ["p1", "e1", "u1"]) {
        await statusMatching(id, hasText("trading-broker.status.connected"), 5000);
      }
      const out = nextMessage("out", 5000);
      getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 2 }, topic: "t" });
      const msg = await out;
      const order = msg.payload as OrderSnapshot;
      assert.equal(msg.topic, "t");
      assert.equal(order.symbol, "INFY");
      assert.equal(order.quantity, 2);
      assert.ok(["OPEN", "FILLED"].includes(order.status), order.status);
      assert.deepEqual(JSON.parse(JSON.stringify(order)), order, "the payload is plain JSON");
      assert.equal(await fake.orderCount(), 1);
      const placed = fake.requests.find((r) => r.method === "POST" && r.path === "/orders/regular");
      assert.equal(placed?.body.market_protection, "-1", "MARKET orders carry automatic protection");
      assertNeverLogged(TOKEN);
    });

    it("order-events receives the fill from the ticker's postbacks", async function () {
      await helper.load(NODES, flow(kiteConfig(fake)), CREDENTIALS);
      await statusMatching("e1", hasText("trading-broker.status.connected"), 5000);
      const events = collect("events");
      const open = await place({ order_type: "LIMIT", price: 99 });
      assert.equal(open.status, "OPEN");
      fake.setPrice("INFY", 98.5);
      await until(
        () => events.messages.some((m) => (m.payload as OrderEvent).type === "ORDER_FILLED"),
        () => `ORDER_FILLED among ${JSON.stringify(events.messages.map((m) => m.payload))}`,
      );
      events.stop();
      const filled = events.messages
        .map((m) => m.payload as OrderEvent)
        .find((e) => e.type === "ORDER_FILLED");
      assert.equal(filled?.order.order_id, open.order_id);
    });

    it("session expiry: every user shows it in red, inputs fail AUTH at once, nothing redials", async function () {
      await helper.load(NODES, flow(kiteConfig(fake)), CREDENTIALS);
      await place();
      fake.expireSession();
      // The ticker drops and is refused with 403: the broker learns the session is over.
      for (const id of ["p1", "e1", "u1"]) {
        const status = await statusMatching(id, hasText(SESSION_EXPIRED), 5000);
        assert.equal(status.fill, "red");
      }
      await delay(200);
      const refusals = fake.tickerRefusals;
      const requests = fake.requests.length;
      const caught = collect("caught");
      for (let i = 0; i < 5; i++) {
        getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      }
      getNode("u1").receive({});
      await until(
        () => caught.messages.length === 6,
        () => `6 errors caught, got ${caught.messages.length}`,
      );
      caught.stop();
      for (const msg of caught.messages) {
        const error = msg.error as { code?: string; message: string };
        assert.equal(error.code, "AUTH");
        assert.match(error.message, /session expired/);
      }
      await delay(500);
      assert.equal(fake.tickerRefusals, refusals, "the ticker is not redialled");
      assert.equal(fake.requests.length, requests, "no call reaches Kite with the dead token");
      assert.equal(lastStatus("e1")?.text, SESSION_EXPIRED, "it stays shown");
      // place-order showed the failed input's error: the very same documented text (issue 10, defect 5).
      assert.equal(lastStatus("p1")?.text, SESSION_EXPIRED);
      assert.equal(lastStatus("u1")?.text, SESSION_EXPIRED);
      const expired = logged("b1", ERROR).filter((line) => /session expired/.test(line));
      assert.ok(expired.length >= 1 && expired.length <= 2, expired.join(" | "));
      assertNeverLogged(TOKEN);
      const statuses = ["p1", "e1", "u1"].map((id) => JSON.stringify(lastStatus(id))).join("");
      assert.ok(!statuses.includes(TOKEN));
    });

    it("a token Kite refuses at start shows the same, with no retry storm", async function () {
      await helper.load(NODES, flow(kiteConfig(fake)), {
        b1: { apiKey: API_KEY, accessToken: "stale-token-1d9e" },
      });
      for (const id of ["p1", "e1", "u1"]) await statusMatching(id, hasText(SESSION_EXPIRED), 5000);
      const requests = fake.requests.length;
      const caught = collect("caught");
      for (let i = 0; i < 5; i++) {
        getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      }
      await until(
        () => caught.messages.length === 5,
        () => `${caught.messages.length} errors`,
      );
      caught.stop();
      for (const msg of caught.messages) assert.equal((msg.error as { code?: string }).code, "AUTH");
      assert.equal(fake.requests.length, requests, "refused once, not once per message");
      assertNeverLogged("stale-token-1d9e");
    });

    it("the ticker closed and refused again and again never exits the process", async function () {
      const exits: unknown[] = [];
      const original = Object.getOwnPropertyDescriptor(process, "exit");
      assert.ok(original);
      Object.defineProperty(process, "exit", {
        ...original,
        value: (code?: number): never => {
          exits.push(code);
          throw new Error(`process.exit(${String(code)}) called`);
        },
      });
      try {
        await helper.load(NODES, flow(kiteConfig(fake)), CREDENTIALS);
        await statusMatching("e1", hasText("trading-broker.status.connected"), 5000);
        for (let round = 0; round < 5; round++) {
          fake.refuseTicker(3);
          fake.closeTicker();
          await statusMatching("e1", hasText("trading-broker.status.reconnecting"), 3000);
          await statusMatching("e1", hasText("trading-broker.status.connected"), 5000);
        }
        fake.refuseTicker();
        fake.closeTicker();
        await delay(500);
        fake.acceptTicker();
        await statusMatching("e1", hasText("trading-broker.status.connected"), 5000);
        assert.ok(["OPEN", "FILLED"].includes((await place()).status));
        await helper.unload();
      } finally {
        Object.defineProperty(process, "exit", original);
      }
      assert.deepEqual(exits, [], "process.exit was never called");
    });
  });

  describe("logging in from the editor (issue 10)", function () {
    // A fresh object per load: the runtime keeps the one it is given as its credential store.
    const loginCredentials = () => ({ b1: { apiKey: API_KEY, apiSecret: "kitesecret", accessToken: TOKEN } });
    const connected = "trading-broker.status.connected";

    /** What the browser does: the login URL the dialog opens, Kite's redirect, the callback here. */
    async function loginRoundTrip(): Promise<{ status: number; text: string }> {
      const start = await admin("post", "/trading-broker/kite/b1/login", 200);
      const { url, callback } = start.body as { url: string; callback: string };
      assert.equal(callback, "/trading-broker/kite/callback");
      assert.ok(url.startsWith(`${fake.restUrl}/connect/login?`), url);
      assert.equal(new URL(url).searchParams.get("api_key"), API_KEY);
      const kite = await fetch(url, { redirect: "manual" });
      assert.equal(kite.status, 302);
      const back = new URL(kite.headers.get("location")!);
      assert.equal(back.pathname, callback);
      const answer = await admin("get", `${back.pathname}${back.search}`);
      return { status: answer.status, text: answer.text };
    }

    type AdminAnswer = { status: number; text: string; body: Record<string, unknown> };
    /** The editor's admin API as the browser calls it; `expected` checks the status. */
    async function admin(method: "get" | "post", path: string, expected?: number): Promise<AdminAnswer> {
      const request = helper.request() as unknown as Record<
        "get" | "post",
        (p: string) => PromiseLike<AdminAnswer>
      >;
      const answer = await request[method](path);
      if (expected !== undefined) assert.equal(answer.status, expected, `${method} ${path}: ${answer.text}`);
      return answer;
    }

    beforeEach(function () {
      fake.redirectUrl = "http://127.0.0.1:1/trading-broker/kite/callback";
    });

    it("after expiry: button → Kite's login → callback → broker connected again, no redeploy", async function () {
      const probe = runtimeProbe();
      await helper.load(
        [...NODES, probe.module],
        flow(kiteConfig(fake, { login_url: `${fake.restUrl}/connect/login` })),
        loginCredentials(),
      );
      const before = await place();
      const brokerBefore = await kiteBroker();
      const sessions = collect("events");
      fake.expireSession();
      for (const id of ["p1", "e1", "u1"]) await statusMatching(id, hasText(SESSION_EXPIRED), 5000);
      await until(
        () => sessions.messages.some((m) => (m.payload as { type?: string }).type === "SESSION_EXPIRED"),
        () => "SESSION_EXPIRED on order-events",
      );

      const answer = await loginRoundTrip();
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /Logged in to Kite/);
      assert.match(answer.text, /Test Trader \(AB1234\)/);
      assert.equal(fake.sessions, 1);
      for (const id of ["e1", "u1"]) await statusMatching(id, hasText(connected), 5000);
      assert.equal(await kiteBroker(), brokerBefore, "the same broker: no redeploy");
      const after = await place();
      assert.notEqual(after.order_id, before.order_id);
      await until(
        () => sessions.messages.some((m) => (m.payload as { type?: string }).type === "SESSION_STARTED"),
        () => "SESSION_STARTED on order-events",
      );
      sessions.stop();
      // Kept as the credential, so the next deploy saves it; never logged.
      const stored = probe.credentials("b1") as { accessToken?: string };
      assert.equal(stored.accessToken, fake.accessToken);
      assertNeverLogged(fake.accessToken, "kitesecret");
      const session = await admin("get", "/trading-broker/kite/b1/session", 200);
      assert.equal(session.body.user_id, "AB1234");
      assert.equal(session.body.user_name, "Test Trader");
      assert.equal(session.body.expired, false);
      assert.ok(
        (session.body.age_ms as number) >= 0 && (session.body.age_ms as number) < 60_000,
        JSON.stringify(session.body),
      );
      assert.ok(!JSON.stringify(session.body).includes(fake.accessToken));
    });

    it("first login with API key and secret only: log in to Kite, orders refused once, then connected", async function () {
      const probe = runtimeProbe();
      await helper.load(
        [...NODES, probe.module],
        flow(kiteConfig(fake, { login_url: `${fake.restUrl}/connect/login` })),
        { b1: { apiKey: API_KEY, apiSecret: "kitesecret" } },
      );
      for (const id of ["p1", "e1", "u1"]) {
        const status = await statusMatching(id, hasText("trading-broker.status.kite-login"), 5000);
        assert.equal(status.fill, "red");
      }
      const caught = collect("caught");
      const out = collect("out");
      for (let i = 0; i < 5; i++) {
        getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 }, _msgid: `m${i}` });
      }
      await until(
        () => caught.messages.length === 5,
        () => `5 refusals caught, got ${caught.messages.length}`,
      );
      await delay(200);
      caught.stop();
      out.stop();
      assert.equal(out.messages.length, 0, "nothing placed");
      assert.equal(caught.messages.length, 5, "exactly one outcome per order");
      assert.deepEqual(caught.messages.map((m) => m._msgid).sort(), ["m0", "m1", "m2", "m3", "m4"]);
      for (const msg of caught.messages) {
        const error = msg.error as { code?: string; message: string };
        assert.equal(error.code, "AUTH");
        assert.match(error.message, /not logged in to Kite yet: press "Log in to Kite"/);
      }
      const told = logged("b1", WARN).filter((line) => /Log in to Kite/.test(line));
      assert.equal(told.length, 1, `what to do is logged once: ${told.join(" | ")}`);
      // A state the user acts on, not a fault: never at error level.
      assert.deepEqual(
        logged("b1", ERROR).filter((line) => /Log in to Kite/.test(line)),
        [],
      );
      assert.deepEqual(fake.requests, [], "nothing reached Kite before the login");
      assert.equal(fake.tickerConnections, 0, "no ticker before the login");
      const waiting = await admin("get", "/trading-broker/kite/b1/session", 200);
      assert.equal(waiting.body.login_needed, true, JSON.stringify(waiting.body));
      assert.equal(waiting.body.user_id, undefined);

      const answer = await loginRoundTrip();
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /Logged in to Kite/);
      for (const id of ["e1", "u1"]) await statusMatching(id, hasText(connected), 5000);
      assert.ok(["OPEN", "FILLED"].includes((await place()).status));
      // Saved as today: the credential (written at the next deploy) and the sealed session file.
      const stored = probe.credentials("b1") as { accessToken?: string };
      assert.equal(stored.accessToken, fake.accessToken);
      assert.ok(fs.existsSync(path.join(runtime.userDir, "trading-broker", "kite-session-b1.json")));
      const after = await admin("get", "/trading-broker/kite/b1/session", 200);
      assert.equal(after.body.login_needed, false);
      assert.equal(after.body.user_id, "AB1234");

      // A restart before any deploy (the credential still has no token): the kept login is used.
      await helper.unload();
      await helper.load(NODES, flow(kiteConfig(fake, { login_url: `${fake.restUrl}/connect/login` })), {
        b1: { apiKey: API_KEY, apiSecret: "kitesecret" },
      });
      for (const id of ["e1", "u1"]) await statusMatching(id, hasText(connected), 5000);
      assert.ok(["OPEN", "FILLED"].includes((await place()).status));
      assert.equal(fake.sessions, 1, "no second login");
      assertNeverLogged(fake.accessToken, "kitesecret");
    });

    it("forged, reused and mismatched callbacks are refused and change nothing", async function () {
      await helper.load(
        NODES,
        flow(kiteConfig(fake, { login_url: `${fake.restUrl}/connect/login` })),
        loginCredentials(),
      );
      await place();
      const forged = await admin(
        "get",
        `/trading-broker/kite/callback?status=success&request_token=abc&state=${"0".repeat(48)}`,
      );
      assert.equal(forged.status, 403);
      const noState = await admin("get", "/trading-broker/kite/callback?status=success&request_token=abc");
      assert.equal(noState.status, 403);
      const hostile = await admin(
        "get",
        `/trading-broker/kite/callback?status=success&request_token=${"x".repeat(5000)}&state=<script>`,
      );
      assert.equal(hostile.status, 403);
      assert.ok(!hostile.text.includes("<script>alert"));

      // A real login's callback works once; replayed, it is refused (one-time state).
      const start = await admin("post", "/trading-broker/kite/b1/login", 200);
      const kite = await fetch((start.body as unknown as { url: string }).url, { redirect: "manual" });
      const back = new URL(kite.headers.get("location")!);
      const first = await admin("get", `${back.pathname}${back.search}`);
      assert.equal(first.status, 200, first.text);
      const replay = await admin("get", `${back.pathname}${back.search}`);
      assert.equal(replay.status, 403);
      assert.equal(fake.sessions, 1);

      // A valid state with a request_token Kite does not know: Kite refuses, the session stays.
      const again = await admin("post", "/trading-broker/kite/b1/login", 200);
      const state = new URLSearchParams(
        new URL((again.body as unknown as { url: string }).url).searchParams.get("redirect_params")!,
      ).get("state");
      const bad = await admin(
        "get",
        `/trading-broker/kite/callback?status=success&request_token=deadbeef&state=${state}`,
      );
      assert.equal(bad.status, 403);
      assert.match(bad.text, /Kite refused the session exchange/);
      await place();
      await admin("post", "/trading-broker/kite/nope/login", 404);
    });
  });

  describe("redeploying 50 times while connected", function () {
    this.timeout(60_000);
    const DEPLOYS = 50;

    function redeployFlow(round: number): FlowNode[] {
      const users = redeployUsers(round);
      return flow(kiteConfig(fake, { name: `kite ${round}` }), users);
    }

    async function settle(round: number, socketsBaseline: number | undefined): Promise<KiteBroker> {
      const broker = await kiteBroker();
      await until(
        () =>
          broker.state === "connected" &&
          fake.tickerConnections === 1 &&
          (socketsBaseline === undefined || sockets() <= socketsBaseline),
        () =>
          `round ${round}: ${broker.state}, ${fake.tickerConnections} ticker connections, ${sockets()} sockets`,
        5000,
      );
      return broker;
    }

    it("full deploys: a new broker each time, the old one closed; sockets, timers, listeners flat", async function () {
      await helper.load(NODES, redeployFlow(0), CREDENTIALS);
      await place();
      let broker = await settle(0, undefined);
      const expected = listenerCounts(broker);
      assert.deepEqual(expected, { order: 1, gtt: 1, quote: 1, state: 1, error: 1 });
      const socketBaseline = sockets();
      const timerBaseline = timers();
      const brokers = new Set([broker]);
      const seenTimers: number[] = [];
      const seenSockets: number[] = [];

      for (let round = 1; round <= DEPLOYS; round++) {
        await helper.setFlows(redeployFlow(round), "full", CREDENTIALS);
        broker = await settle(round, socketBaseline);
        brokers.add(broker);
        assert.deepEqual(listenerCounts(broker), expected, `round ${round}`);
        seenTimers.push(timers());
        seenSockets.push(sockets());
      }
      assert.equal((await place()).quantity, 1, "the last broker still trades");

      assert.equal(brokers.size, DEPLOYS + 1, "every full deploy made a new broker");
      for (const old of brokers) {
        if (old === broker) continue;
        assert.equal(old.state, "disconnected");
        assert.deepEqual(listenerCounts(old), { order: 0, gtt: 0, quote: 0, state: 0, error: 0 });
      }
      assert.ok(
        Math.max(...seenTimers) <= timerBaseline + 2,
        `timers ${timerBaseline} at first, then ${seenTimers.join(",")}`,
      );
      assert.ok(
        Math.max(...seenSockets) <= socketBaseline,
        `sockets ${socketBaseline} at first, then ${seenSockets.join(",")}`,
      );
      await helper.unload();
      await until(
        () => fake.tickerConnections === 0,
        () => `${fake.tickerConnections} ticker connections`,
      );
      assertNeverLogged(TOKEN);
    });
  });
});
