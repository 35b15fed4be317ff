// Issue 10: a Kite login from the editor survives a Node-RED restart the same trading day, with no
// deploy in between, and is not used the next day. A real Node-RED process (the demo settings) on
// a throwaway user dir, the pack's broker config pointed at the fake Kite on 127.0.0.1.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { KiteSessionStore } from "../../lib/kite/session-store";
import type { Service } from "../e2e/harness";
import { ROOT, startNodeRed, tempDir } from "../e2e/harness";
import { FakeKite } from "../fakes/fake-kite";

interface SessionAnswer {
  running: boolean;
  state?: string;
  expired?: boolean;
  user_id?: string;
  user_name?: string;
  age_ms?: number;
}

const DEMO_SECRET = process.env.TRADING_BROKER_CREDENTIAL_SECRET || "trading-broker-demo-only-secret";

describe("Kite login across a Node-RED restart", function () {
  this.timeout(120_000);

  let fake: FakeKite;
  let userDir = "";
  let nodeRed: Service | undefined;
  let url = "";

  async function start(): Promise<void> {
    const started = await startNodeRed(userDir);
    nodeRed = started.service;
    url = started.url;
    fake.redirectUrl = `${url}trading-broker/kite/callback`;
  }

  async function stop(): Promise<void> {
    await nodeRed?.stop();
    nodeRed = undefined;
  }

  async function session(id = "b1"): Promise<SessionAnswer> {
    const answer = await fetch(`${url}trading-broker/kite/${id}/session`);
    return (await answer.json()) as SessionAnswer;
  }

  async function until(
    predicate: (s: SessionAnswer) => boolean,
    what: string,
    id = "b1",
  ): Promise<SessionAnswer> {
    const deadline = Date.now() + 20_000;
    let last: SessionAnswer | undefined;
    while (Date.now() < deadline) {
      last = await session(id).catch(() => undefined);
      if (last !== undefined && predicate(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}; last answer ${JSON.stringify(last)}`);
  }

  before(async function () {
    assert.ok(fs.existsSync(path.join(ROOT, "dist/nodes/broker-config/kite-login.js")), "build first");
    fake = await FakeKite.start({ apiKey: "rskey", apiSecret: "rssecret", accessToken: "unused-token" });
    userDir = tempDir("trading-broker-kite-restart-");
    await start();
    // Yesterday's token in the credentials: Kite refuses it, as every morning.
    const flows = [
      { id: "t1", type: "tab", label: "kite" },
      {
        id: "b1",
        type: "trading-broker",
        name: "kite restart",
        kind: "kite",
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        login_url: `${fake.restUrl}/connect/login`,
        reconnect_initial_ms: "50",
        reconnect_max_ms: "500",
        credentials: { apiKey: "rskey", apiSecret: "rssecret", accessToken: "yesterdays-token" },
      },
      { id: "e1", type: "trading-order-events", z: "t1", broker: "b1", x: 200, y: 100, wires: [[]] },
      // A second config on the same Kite account: one login serves both, across the restart too.
      {
        id: "b2",
        type: "trading-broker",
        name: "kite restart, same account",
        kind: "kite",
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        reconnect_initial_ms: "50",
        reconnect_max_ms: "500",
        credentials: { apiKey: "rskey", apiSecret: "rssecret", accessToken: "yesterdays-token" },
      },
      { id: "e2", type: "trading-order-events", z: "t1", broker: "b2", x: 200, y: 200, wires: [[]] },
    ];
    const deployed = await fetch(`${url}flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify(flows),
    });
    assert.ok(deployed.ok, `deploy: ${deployed.status} ${await deployed.text()}`);
  });

  after(async function () {
    await stop();
    await fake?.close();
    if (userDir !== "") fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("login through the fake → stop → a new runtime on the same user dir is connected with no login", async function () {
    await until((s) => s.expired === true, "the refused morning token");
    const asked = await fetch(`${url}trading-broker/kite/b1/login`, { method: "POST" });
    const { url: loginUrl } = (await asked.json()) as { url: string };
    const loginPage = await fetch(loginUrl, { redirect: "manual" });
    const callback = loginPage.headers.get("location") ?? "";
    assert.match(callback, /\/trading-broker\/kite\/callback\?/);
    const landed = await fetch(callback);
    assert.match(await landed.text(), /Logged in to Kite/);
    await until((s) => s.state === "connected" && s.expired === false, "connected after the login");
    assert.equal(fake.sessions, 1);
    const dir = path.join(userDir, "trading-broker");
    assert.ok(fs.existsSync(path.join(dir, "kite-session-b1.json")), "the login is kept");
    assert.ok(!fs.existsSync(path.join(dir, "kite-session.key")), "sealed with the runtime's secret");
    assert.equal(fs.statSync(path.join(dir, "kite-session-b1.json")).mode & 0o777, 0o600);

    for (let restart = 0; restart < 2; restart++) {
      await stop();
      await start();
      const back = await until((s) => s.state === "connected", `connected after restart ${restart + 1}`);
      await until((s) => s.state === "connected", "the same account's other config connected", "b2");
      assert.equal(back.expired, false);
      assert.equal(back.user_id, "AB1234");
      // The kept login's own time, not a fresh profile read: the dialog shows how old the session is.
      assert.equal(back.user_name, "Test Trader");
      assert.equal(typeof back.age_ms, "number");
      assert.equal(fake.sessions, 1, "no new login");
      assert.match(nodeRed!.output, /using the Kite login of trading day \d{4}-\d{2}-\d{2}/);
    }
    const flowsDir = fs.readdirSync(userDir).map((f) => path.join(userDir, f));
    for (const file of [
      ...flowsDir.filter((f) => f.endsWith(".json")),
      path.join(dir, "kite-session-b1.json"),
    ]) {
      assert.ok(!fs.readFileSync(file, "utf8").includes(fake.accessToken), `${file} holds no plain token`);
    }
    assert.ok(!nodeRed!.output.includes(fake.accessToken), "the token is never logged");
  });

  it("the next trading day (past 06:00 IST) the kept login is discarded and the status asks for a login", async function () {
    await stop();
    const dir = path.join(userDir, "trading-broker");
    // Sealed yesterday morning, with the token Kite still accepts: only its day stops it.
    new KiteSessionStore({ dir, secret: DEMO_SECRET, now: () => Date.now() - 86_400_000 }).save(
      "b1",
      "rskey",
      fake.accessToken,
      { user_id: "AB1234" },
      "yesterdays-token",
    );
    await start();
    await until((s) => s.expired === true, "the session expired status");
    assert.ok(!fs.existsSync(path.join(dir, "kite-session-b1.json")), "yesterday's login is deleted");
    assert.match(nodeRed!.output, /belonged to an earlier trading day/);
    assert.equal(fake.sessions, 1);
  });
});
