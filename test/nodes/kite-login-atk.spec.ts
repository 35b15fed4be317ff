// Attack (atk10) on the first Kite login as a new user meets it: a wrong API secret then the right
// one, logging in twice (one after the other, and two callbacks at once), and deleting the config
// node the users still name. Oracle: one outcome per order message, statuses that say what to do,
// no secret or token in the log, the status text or a message.
import assert from "node:assert/strict";
import { fakeKitePerTest } from "./fake-kite-runtime";
import { NODES, assertNeverLogged, hasText, place, remoteFlow, until } from "./remote-support";
import type { FlowNode } from "./support";
import { collect, delay, getNode, helper, lastStatus, statusHistory, statusMatching } from "./support";

const API_KEY = "atk-login-key";
const TOKEN = "atk-login-token-unused-9a0c";
const RIGHT = "kitesecret";
const WRONG = "wrong-secret-never-logged-3b7e";
const LOGIN = "trading-broker.status.kite-login";
const CONNECTED = "trading-broker.status.connected";

type AdminAnswer = { status: number; text: string; body: Record<string, unknown> };

async function admin(method: "get" | "post", path: string): Promise<AdminAnswer> {
  const request = helper.request() as unknown as Record<
    "get" | "post",
    (p: string) => PromiseLike<AdminAnswer>
  >;
  return request[method](path);
}

/** The dialog's button: a login URL with a fresh state; then Kite's redirect, as the callback path. */
async function startLogin(): Promise<string> {
  const start = await admin("post", "/trading-broker/kite/b1/login");
  assert.equal(start.status, 200, start.text);
  const kite = await fetch((start.body as { url: string }).url, { redirect: "manual" });
  assert.equal(kite.status, 302);
  const back = new URL(kite.headers.get("location")!);
  return `${back.pathname}${back.search}`;
}

describe("first Kite login, as a new user gets it wrong (atk10)", function () {
  this.timeout(30_000);
  const kite = fakeKitePerTest(API_KEY, TOKEN);

  function flow(): FlowNode[] {
    return remoteFlow(
      "kite",
      kite.config({
        login_url: `${kite.fake.restUrl}/connect/login`,
        reconnect_initial_ms: "20",
        reconnect_factor: "2",
        reconnect_max_ms: "100",
      }),
    );
  }

  beforeEach(function () {
    kite.fake.redirectUrl = "http://127.0.0.1:1/trading-broker/kite/callback";
    kite.fake.setPrice("INFY", 100);
  });

  function assertNoSecretShown(...secrets: string[]): void {
    assertNeverLogged(...secrets);
    for (const id of ["p1", "e1", "u1"]) {
      const shown = JSON.stringify(statusHistory(id));
      for (const secret of secrets) assert.ok(!shown.includes(secret), `${id}'s status shows no secret`);
    }
  }

  it("a wrong API secret: the login is refused and says so, orders still refused; the right one after a deploy works", async function () {
    await helper.load(NODES, flow(), { b1: { apiKey: API_KEY, apiSecret: WRONG } });
    await statusMatching("p1", hasText(LOGIN), 5000);
    const refused = await admin("get", await startLogin());
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.text, /Kite login failed/);
    assert.ok(!refused.text.includes(WRONG), "the page shows no secret");
    // Still waiting for a login: the users say so, and an order gets one refusal.
    const caught = collect("caught");
    getNode("p1").receive({ _msgid: "a", payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
    await until(
      () => caught.messages.length === 1,
      () => "one refusal",
    );
    caught.stop();
    assert.equal((caught.messages[0]!.error as { code: string }).code, "AUTH");
    assert.ok(hasText(LOGIN)(lastStatus("e1")!), JSON.stringify(lastStatus("e1")));

    // The user opens the config, corrects the secret and deploys (the editor sends the credentials).
    const corrected = flow().map((node) =>
      node.id === "b1" ? { ...node, credentials: { apiKey: API_KEY, apiSecret: RIGHT } } : node,
    );
    await helper.setFlows(corrected, "nodes", { b1: { apiKey: API_KEY, apiSecret: RIGHT } });
    await statusMatching("e1", hasText(LOGIN), 5000);
    const answer = await admin("get", await startLogin());
    assert.equal(answer.status, 200, answer.text);
    for (const id of ["e1", "u1"]) await statusMatching(id, hasText(CONNECTED), 5000);
    assert.ok(["OPEN", "FILLED"].includes((await place()).status));
    assertNoSecretShown(WRONG, RIGHT, kite.fake.accessToken);
  });

  it("logging in twice, one after the other and two callbacks at once: connected on the last token, orders go", async function () {
    await helper.load(NODES, flow(), { b1: { apiKey: API_KEY, apiSecret: RIGHT } });
    await statusMatching("p1", hasText(LOGIN), 5000);
    const first = await admin("get", await startLogin());
    assert.equal(first.status, 200, first.text);
    await statusMatching("e1", hasText(CONNECTED), 5000);
    await place();
    const second = await admin("get", await startLogin());
    assert.equal(second.status, 200, second.text);
    await place();
    // Two dialogs open, both come back at once.
    const [a, b] = await Promise.all([startLogin(), startLogin()]);
    const answers = await Promise.all([admin("get", a), admin("get", b)]);
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    assert.equal(kite.fake.sessions, 4);
    await delay(200);
    await statusMatching("e1", hasText(CONNECTED), 5000);
    const out = collect("out");
    const caught = collect("caught");
    for (let i = 0; i < 5; i++) {
      getNode("p1").receive({ _msgid: `m${i}`, payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
    }
    await until(
      () => out.messages.length + caught.messages.length === 5,
      () => `${out.messages.length} placed, ${caught.messages.length} refused`,
      10_000,
    );
    out.stop();
    caught.stop();
    assert.equal(out.messages.length, 5, JSON.stringify(caught.messages.map((m) => m.error)));
    assertNoSecretShown(RIGHT, kite.fake.accessToken);
  });

  it("deleting the config node the users still name: they say so, orders fail CONFIG once each, the login route is gone", async function () {
    await helper.load(NODES, flow(), { b1: { apiKey: API_KEY, apiSecret: RIGHT } });
    await statusMatching("p1", hasText(LOGIN), 5000);
    const withoutConfig = flow().filter((node) => node.id !== "b1");
    await helper.setFlows(withoutConfig, "full", {});
    for (const id of ["p1", "e1", "u1"]) {
      await statusMatching(id, (s) => s.fill === "red" && /no-broker/.test(String(s.text)), 5000);
    }
    const caught = collect("caught");
    for (let i = 0; i < 3; i++) {
      getNode("p1").receive({ _msgid: `d${i}`, payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
    }
    await until(
      () => caught.messages.length === 3,
      () => `${caught.messages.length} refusals`,
    );
    await delay(100);
    caught.stop();
    assert.equal(caught.messages.length, 3);
    for (const msg of caught.messages) assert.equal((msg.error as { code: string }).code, "CONFIG");
    const login = await admin("post", "/trading-broker/kite/b1/login");
    assert.equal(login.status, 404, login.text);
    assert.equal(kite.fake.tickerConnections, 0, "nothing left connected to Kite");
  });
});
