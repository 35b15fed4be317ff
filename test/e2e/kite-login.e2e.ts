// The daily Kite login from the editor, end to end (issue 10): headless Chromium on a real
// Node-RED, the pack's broker config pointed at the fake Kite on 127.0.0.1. The button opens the
// fake's login page, which redirects the window to this Node-RED's callback; the running broker
// switches to the new token and its users turn green, with no deploy in between.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { FakeKite } from "../fakes/fake-kite";
import type { Service } from "./harness";
import { ROOT, launchChromium, startNodeRed, tempDir } from "./harness";

interface EditorNode {
  status?: { fill?: string; text?: string };
}
interface EditorRed {
  nodes: { node(id: string): EditorNode | undefined };
  editor: { editConfig(name: string, type: string, id: string): void };
}

describe("Kite login from the editor in headless Chromium", function () {
  this.timeout(60_000);

  let fake: FakeKite;
  let nodeRed: Service | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let url = "";
  const dirs: string[] = [];
  const pageErrors: string[] = [];

  before(async function () {
    // Starting Node-RED and Chromium is what a loaded machine slows down most.
    this.timeout(150_000);
    assert.ok(
      fs.existsSync(path.join(ROOT, "dist/nodes/broker-config/kite-login.js")),
      "build first (npm run build)",
    );
    fake = await FakeKite.start({ apiKey: "e2ekey", apiSecret: "e2esecret", accessToken: "e2e-good-token" });
    fake.setPrice("INFY", 1500);
    const userDir = tempDir("trading-broker-e2e-kite-userdir-");
    const profileDir = tempDir("trading-broker-e2e-kite-chromium-");
    dirs.push(userDir, profileDir);
    const started = await startNodeRed(userDir, 90_000);
    nodeRed = started.service;
    url = started.url;
    fake.redirectUrl = `${url}trading-broker/kite/callback`;
    // Yesterday's token: Kite refuses it, as it does every morning.
    const flows = [
      { id: "t1", type: "tab", label: "kite" },
      {
        id: "b1",
        type: "trading-broker",
        name: "kite e2e",
        kind: "kite",
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        login_url: `${fake.restUrl}/connect/login`,
        reconnect_initial_ms: "50",
        reconnect_max_ms: "500",
        credentials: { apiKey: "e2ekey", apiSecret: "e2esecret", accessToken: "yesterdays-token" },
      },
      {
        id: "e1",
        type: "trading-order-events",
        z: "t1",
        name: "events",
        broker: "b1",
        x: 200,
        y: 100,
        wires: [[]],
      },
    ];
    const deployed = await fetch(`${url}flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify(flows),
    });
    assert.ok(deployed.ok, `deploy: ${deployed.status} ${await deployed.text()}`);
    ({ context, page } = await launchChromium(profileDir));
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(url);
    await page.locator("#red-ui-palette-container-trading").waitFor();
  });

  /**
   * What the popup shows, what the fake Kite was asked and when, and the Node-RED log: enough to
   * tell a login stuck in Node-RED from one the fake never answered, should this fail again.
   */
  async function explain(popup: Page | undefined): Promise<string> {
    const text =
      popup === undefined
        ? "(no popup opened)"
        : await popup
            .locator("body")
            .innerText({ timeout: 2000 })
            .catch((error: unknown) => `(no body: ${String(error)})`);
    const editor = await page
      .locator(".red-ui-notification")
      .allInnerTexts()
      .catch((error: unknown) => [`(no editor: ${String(error)})`]);
    const start = fake.requests[0]?.at ?? 0;
    const asked = fake.requests
      .map((r) => `  +${Math.round(r.at - start)} ms ${r.method} ${r.path}`)
      .slice(-60)
      .join("\n");
    return [
      `popup URL: ${popup?.url().replace(/request_token=[^&]*/, "request_token=…") ?? "-"}`,
      `popup text: ${text}`,
      `editor notifications: ${editor.join(" | ")}`,
      `page errors: ${pageErrors.join(" | ")}`,
      `fake Kite: ${fake.requests.length} requests, ${fake.sessions} sessions, ${fake.rateLimited} answered 429; the last 60:`,
      asked,
      `Node-RED log (last 4000 characters):`,
      nodeRed!.output.slice(-4000),
    ].join("\n");
  }

  after(async function () {
    await context?.close();
    await nodeRed?.stop();
    await fake?.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("button → the fake Kite's login page → callback → broker connected, no deploy", async function () {
    // Each step names itself, so a failure says where it stopped, with the diagnostics below.
    let step = "waiting for the expired session's status";
    let popup: Page | undefined;
    try {
      // The session is dead: the node says so.
      await page.waitForFunction(
        () =>
          (window as unknown as { RED: EditorRed }).RED.nodes.node("e1")?.status?.text ===
          "Kite session expired: log in again",
      );
      const deploysBefore = nodeRed!.output.split("Starting flows").length;
      step = "opening the broker's dialog";
      await page.evaluate(() =>
        (window as unknown as { RED: EditorRed }).RED.editor.editConfig("", "trading-broker", "b1"),
      );
      const button = page.locator("#trading-broker-kite-login");
      await button.waitFor();
      const redirect = await page.locator("#trading-broker-kite-redirect").textContent();
      assert.equal(redirect, `${url}trading-broker/kite/callback`);

      step = "clicking Log in to Kite and waiting for its window";
      const popupOpened = context!.waitForEvent("page");
      await button.click();
      popup = await popupOpened;
      step = "waiting for the window to come back to the callback";
      await popup.waitForURL(/\/trading-broker\/kite\/callback\?/);
      step = 'waiting for the callback page to say "Logged in to Kite"';
      await popup.locator("h1", { hasText: "Logged in to Kite" }).waitFor();
      assert.match((await popup.locator("#detail").textContent()) ?? "", /Test Trader \(AB1234\)/);
      assert.equal(fake.sessions, 1);

      // Green without a deploy: the running broker took the token.
      step = "waiting for the broker's user to turn green";
      await page.waitForFunction(
        () => (window as unknown as { RED: EditorRed }).RED.nodes.node("e1")?.status?.fill === "green",
      );
      assert.equal(nodeRed!.output.split("Starting flows").length, deploysBefore, "no deploy happened");
      step = "waiting for the dialog to show who is logged in";
      await page
        .locator("#trading-broker-kite-session", { hasText: "Test Trader (AB1234), logged in" })
        .waitFor();
      // And the fake saw the ticker come back with the new token.
      assert.ok(fake.tickerConnects >= 1);
      assert.ok(!nodeRed!.output.includes(fake.accessToken), "the token is never logged");
      assert.ok(!nodeRed!.output.includes("e2esecret"), "the secret is never logged");
      await page.locator("#node-config-dialog-cancel").click();
      assert.deepEqual(pageErrors, []);
    } catch (error) {
      throw new Error(`failed while ${step}: ${String(error)}\n${await explain(popup)}`, { cause: error });
    }
  });
});
