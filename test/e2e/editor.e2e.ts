// The pack in a real Node-RED editor, driven like a person would through headless Chromium:
// palette, Import > Examples, deploy, statuses, the debug sidebar, edit dialogs, validation,
// write-only credentials and the help sidebar. `npm run test:e2e` (after a build) runs it; the
// cases share one Node-RED and one browser and run in order (later cases use imported flows).
// TRADING_E2E_SCREENSHOTS=docs/images refreshes the README's screenshots.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { BrowserContext, Locator, Page } from "playwright-core";
import type { Example, FlowJson, PackNode, Service } from "./harness";
import {
  PACKAGE,
  ROOT,
  examples,
  importExample,
  openEditor,
  packNodes,
  screenshotDir,
  startGateway,
  startNodeRed,
  tempDir,
  traysSettled as settled,
} from "./harness";

/** The parts of the editor's RED object the assertions read (actions go through the UI). */
interface EditorNode {
  id: string;
  type: string;
  valid?: boolean;
  name?: string;
}
interface EditorApi {
  nodes: {
    node(id: string): EditorNode | null;
    eachNode(visit: (node: EditorNode) => void): void;
    eachConfig(visit: (node: EditorNode) => void): void;
    getType(type: string): unknown;
    dirty(): boolean;
  };
}
declare const RED: EditorApi;

const GATEWAY_KEY = "e2e-gateway-KEY-4b1d";
const GATEWAY_SECRET = "e2e-gateway-SECRET-77c0";
const WRITE_ONLY_KEY = "e2e-write-only-KEY-a93f";
const WRITE_ONLY_SECRET = "e2e-write-only-SECRET-5e2d";
const SECRETS = [GATEWAY_KEY, GATEWAY_SECRET, WRITE_ONLY_KEY, WRITE_ONLY_SECRET];

function exact(text: string): RegExp {
  return new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`);
}

function squash(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

describe("editor in headless Chromium", function () {
  this.timeout(120_000);
  this.slow(5_000);

  const pack: PackNode[] = packNodes();
  const flowTypes = pack.filter((node) => node.category !== "config");
  const configTypes = pack.filter((node) => node.category === "config");
  const allExamples: Example[] = examples();
  const momentum = allExamples.find((example) => example.name === "paper-momentum");
  const shots = screenshotDir();

  let userDir = "";
  let profileDir = "";
  let gatewayDir = "";
  let nodeRed: Service | undefined;
  let gateway: { service: Service; url: string } | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];
  let printedLogs = false;

  before(async function () {
    for (const built of ["dist/nodes/place-order/place-order.html", "dist/lib/gateway/cli.js"]) {
      assert.ok(
        fs.existsSync(path.join(ROOT, built)),
        `${built} is missing: build first (npx tsc -p . && node scripts/copy-assets.js)`,
      );
    }
    assert.ok(momentum, "examples/paper-momentum.json exists");
    userDir = tempDir("trading-broker-e2e-userdir-");
    profileDir = tempDir("trading-broker-e2e-chromium-");
    gatewayDir = tempDir("trading-broker-e2e-gateway-");
    const started = await startNodeRed(userDir);
    nodeRed = started.service;
    ({ context, page } = await openEditor(profileDir, started.url, pageErrors));
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && !printedLogs) {
      printedLogs = true;
      console.log(`--- Node-RED output ---\n${nodeRed?.output.slice(-6000)}`);
      if (gateway !== undefined)
        console.log(`--- gateway output ---\n${gateway.service.output.slice(-3000)}`);
    }
  });

  /** A failed case may leave an edit dialog open: close it, so the next case starts clean. */
  beforeEach(async function () {
    if (page === undefined) return;
    for (const cancel of [
      "#node-config-dialog-cancel",
      "#node-dialog-cancel",
      "#red-ui-clipboard-dialog-cancel",
    ]) {
      const button = page.locator(cancel);
      if (await button.isVisible()) await button.click();
    }
  });

  after(async function () {
    await context?.close();
    await nodeRed?.stop();
    await gateway?.service.stop();
    for (const dir of [userDir, profileDir, gatewayDir]) {
      if (dir !== "") fs.rmSync(dir, { recursive: true, force: true });
    }
    console.log(`    screenshots: ${shots}`);
  });

  // ---- helpers -----------------------------------------------------------------------------

  function workspaceTab(example: Example): Locator {
    return page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: exact(example.tab.label ?? "") });
  }

  async function showTab(example: Example): Promise<void> {
    if ((await workspaceTab(example).getAttribute("class"))?.includes("active")) return;
    await workspaceTab(example).click();
    await page
      .locator("#red-ui-workspace-tabs .red-ui-tab.active", { hasText: exact(example.tab.label ?? "") })
      .waitFor();
  }

  function canvasNode(id: string): Locator {
    return page.locator(`#red-ui-workspace-chart [id="${id}"]`);
  }

  function traysSettled(): Promise<void> {
    return settled(page);
  }

  async function openNode(example: Example, id: string): Promise<void> {
    await showTab(example);
    await canvasNode(id).locator("rect.red-ui-flow-node").dblclick();
    await page.locator("#dialog-form").waitFor();
    await traysSettled();
  }

  async function closeNodeDialog(button: "ok" | "cancel"): Promise<void> {
    await traysSettled();
    await page.click(`#node-dialog-${button}`);
    await page.locator("#dialog-form").waitFor({ state: "detached" });
    await traysSettled();
  }

  async function openConfigFromSidebar(label: string): Promise<void> {
    await page.click("#red-ui-tab-config-link-button");
    // The entry shows the label and, beside it, how many nodes use it.
    await page
      .locator("#red-ui-sidebar-node-config .red-ui-palette-node-config")
      .filter({ has: page.locator(".red-ui-palette-label", { hasText: exact(label) }) })
      .dblclick();
    await page.locator("#node-config-input-kind").waitFor();
    await traysSettled();
  }

  async function closeConfigDialog(button: "ok" | "cancel"): Promise<void> {
    await traysSettled();
    await page.click(`#node-config-dialog-${button}`);
    await page.locator("#node-config-input-kind").waitFor({ state: "detached" });
    await traysSettled();
  }

  /** Clicks Deploy and waits until the editor has no undeployed change, or fails on its warning. */
  async function deploy(): Promise<void> {
    const button = page.locator("#red-ui-header-button-deploy");
    assert.doesNotMatch(
      (await button.getAttribute("class")) ?? "",
      /disabled/,
      "there is something to deploy",
    );
    await button.click();
    const outcome = await page.waitForFunction(() => {
      const warning = Array.from(document.querySelectorAll(".red-ui-notification")).find((element) =>
        /not properly configured|unknown node types/.test(element.textContent ?? ""),
      );
      if (warning !== undefined) return warning.textContent ?? "warning";
      const done = document.querySelector("#red-ui-header-button-deploy.disabled") !== null;
      return done && !RED.nodes.dirty() ? "deployed" : false;
    });
    assert.equal(await outcome.jsonValue(), "deployed");
  }

  /** Nodes of the editor that are unknown or invalid, as "type id" strings. */
  function problems(): Promise<string[]> {
    return page.evaluate(() => {
      const bad: string[] = [];
      const check = (node: EditorNode): void => {
        if (node.type === "unknown" || RED.nodes.getType(node.type) === undefined)
          bad.push(`unknown ${node.id}`);
        else if (node.valid === false) bad.push(`invalid ${node.type} ${node.id}`);
      };
      RED.nodes.eachNode(check);
      RED.nodes.eachConfig(check);
      return bad;
    });
  }

  /** Types like a person (key by key), so the editor sees the keyup it validates on. */
  async function typeInto(input: Locator, text: string): Promise<void> {
    await input.fill("");
    await input.pressSequentially(text);
  }

  function wiredFrom(example: Example, type: string): string {
    const source = example.nodes.find((node) => node.type === type);
    const target = source?.wires?.[0]?.[0];
    assert.ok(target, `${example.name}: a ${type} node wired to something`);
    return target;
  }

  /** A screenshot without toasts, the mouse's hover highlight, or palette categories but ours. */
  async function screenshot(
    file: string,
    clip?: { x: number; y: number; width: number; height: number },
  ): Promise<void> {
    const style = await page.addStyleTag({ content: "#red-ui-notifications { display: none !important; }" });
    await page.mouse.move(1, 890);
    await page.screenshot({ path: path.join(shots, file), ...(clip === undefined ? {} : { clip }) });
    await style.evaluate((element) => (element as Element).remove());
  }

  async function filterPalette(text: string): Promise<void> {
    await typeInto(page.locator("#red-ui-palette-search input"), text);
    await page
      .locator("#red-ui-palette-container-common")
      .waitFor({ state: text === "" ? "visible" : "hidden" });
  }

  // ---- cases -------------------------------------------------------------------------------

  it("shows every node of the pack in the trading palette category, with its icon and label", async function () {
    const category = page.locator("#red-ui-palette-container-trading");
    assert.equal(squash(await category.locator(".red-ui-palette-header").innerText()), "trading");
    const types = await category
      .locator(".red-ui-palette-node")
      .evaluateAll((entries) => entries.map((entry) => entry.getAttribute("data-palette-type")));
    assert.deepEqual([...types].sort(), flowTypes.map((node) => node.type).sort());
    for (const node of flowTypes) {
      const entry = category.locator(`.red-ui-palette-node[data-palette-type="${node.type}"]`);
      assert.equal(squash(await entry.locator(".red-ui-palette-label").innerText()), node.paletteLabel);
      const icon = await entry.locator(".red-ui-palette-icon-container").getAttribute("data-palette-icon");
      assert.equal(icon, `icons/${PACKAGE}/${node.icon}`, `${node.type} icon`);
      const served = await page.evaluate(async (url) => {
        const response = await fetch(url);
        return {
          status: response.status,
          type: response.headers.get("content-type") ?? "",
          body: await response.text(),
        };
      }, icon);
      assert.equal(served.status, 200, `${icon} is served`);
      assert.match(served.type, /svg/, `${icon} is an SVG`);
      assert.match(served.body, /<svg/);
    }

    await filterPalette("trading");
    const palette = (await page.locator("#red-ui-palette").boundingBox())!;
    const trading = (await category.boundingBox())!;
    await screenshot("palette.png", {
      x: palette.x,
      y: palette.y,
      width: palette.width,
      height: trading.y + trading.height + 8 - palette.y,
    });
    await filterPalette("");
  });

  /**
   * Imports `example` through Import > Examples, points a WebSocket example at the gateway, and
   * deploys it: what the import case checks for each example.
   */
  async function importAndDeploy(example: Example): Promise<void> {
    await importExample(page, example.name);
    await workspaceTab(example).waitFor();
    const imported = await page.evaluate(
      (ids) => ids.filter((id) => RED.nodes.node(id) === null),
      example.nodes.filter((node) => node.type !== "tab").map((node) => node.id),
    );
    assert.deepEqual(imported, [], `${example.name}: every node imported`);

    // A WebSocket example needs a gateway and its key and secret, as its comment tells the user.
    for (const remote of example.nodes.filter(
      (node) => node.type === "trading-broker" && node.kind === "websocket",
    )) {
      gateway ??= await startGateway(gatewayDir, GATEWAY_KEY, GATEWAY_SECRET);
      await openConfigFromSidebar(remote.name ?? "");
      await page.fill("#node-config-input-url", gateway.url);
      await page.fill("#node-config-input-apiKey", GATEWAY_KEY);
      await page.fill("#node-config-input-apiSecret", GATEWAY_SECRET);
      await closeConfigDialog("ok");
    }

    assert.deepEqual(await problems(), [], `${example.name}: no unknown or invalid node`);
    await deploy();
  }

  /**
   * The cases after the import case work on its flows. Should it have failed part-way, the examples
   * it did not get to are imported and deployed here, so each later case fails only on what it
   * checks itself, not on a tab that is missing (CI once: every case after a failed import timed out).
   */
  async function examplesReady(test: Mocha.Context): Promise<void> {
    for (const example of allExamples) {
      if ((await workspaceTab(example).count()) > 0) continue;
      test.timeout(test.timeout() + 60_000);
      await importAndDeploy(example);
    }
  }

  it("imports every example through Import > Examples and deploys it without unknown or invalid nodes", async function () {
    // Six imports and deploys, each a few seconds on a quiet machine and several times that on a loaded one.
    this.timeout(240_000);
    assert.ok(allExamples.length >= 3);
    for (const example of allExamples) await importAndDeploy(example);
    assert.doesNotMatch(nodeRed!.output, /Waiting for missing types|Unknown type/);
  });

  it("turns every broker user of the momentum example green and shows filled orders in the debug sidebar", async function () {
    await examplesReady(this);
    const example = momentum!;
    await showTab(example);
    for (const user of example.nodes.filter((node: FlowJson) => node.broker !== undefined)) {
      await canvasNode(user.id).locator(".red-ui-flow-node-status-dot-green").waitFor();
    }
    const quotes = example.nodes.find((node) => node.type === "trading-quotes")!;
    assert.equal(
      await canvasNode(quotes.id).locator(".red-ui-flow-node-status-label").textContent(),
      "connected",
    );

    await page.click("#red-ui-tab-debug-link-button");
    const ordersDebug = wiredFrom(example, "trading-place-order");
    const order = page.locator(`.red-ui-debug-msg-node-${ordersDebug}`).first();
    await order.waitFor({ timeout: 20_000 });
    await order.locator(".red-ui-debug-msg-object-handle").first().click();
    const filled = squash(
      await order.locator(".red-ui-debug-msg-row", { hasText: "filled_quantity" }).first().innerText(),
    );
    const quantity = Number(/filled_quantity:\s*(\d+)/.exec(filled)?.[1]);
    assert.ok(quantity > 0, `filled quantity in "${filled}"`);
    assert.match(squash(await order.innerText()), /status: "FILLED"/);

    const fillsDebug = wiredFrom(example, "trading-order-events");
    await page.locator(`.red-ui-debug-msg-node-${fillsDebug}`, { hasText: "ORDER_FILLED" }).first().waitFor();

    // Only this flow's messages in the picture.
    await page.click("#red-ui-sidebar-debug-filter");
    await page.locator("input[name=filter-type][value=filterCurrent]").click();
    await page.keyboard.press("Escape");
    await filterPalette("trading");
    await screenshot("example-flow.png");
    await filterPalette("");
  });

  it("opens every node's edit dialog on its form", async function () {
    await examplesReady(this);
    for (const node of flowTypes) {
      const example = allExamples.find((candidate) => candidate.nodes.some((n) => n.type === node.type))!;
      const instance = example.nodes.find((n) => n.type === node.type)!;
      await openNode(example, instance.id);
      const tray = page.locator(".red-ui-tray").last();
      assert.match(
        squash(await tray.locator(".red-ui-tray-titlebar").innerText()),
        new RegExp(node.paletteLabel),
      );
      const form = page.locator("#dialog-form");
      assert.ok((await form.locator(".form-row").count()) >= 2, `${node.type}: a form`);
      const untranslated = await form.evaluate((element) =>
        Array.from(element.querySelectorAll("[data-i18n]"))
          .map((child) => child.textContent ?? "")
          .filter((text) => /\btrading-[a-z-]+\.[a-z]/.test(text)),
      );
      assert.deepEqual(untranslated, [], `${node.type}: every label translated`);
      if (instance.broker !== undefined) {
        assert.equal(
          await page.inputValue("#node-input-broker"),
          instance.broker,
          `${node.type}: its broker`,
        );
      }
      await closeNodeDialog("cancel");
    }
    for (const node of configTypes) {
      await openConfigFromSidebar("paper broker");
      const form = page.locator("#node-config-dialog-edit-form");
      assert.ok((await form.locator(".form-row:visible").count()) >= 5, `${node.type}: a form`);
      assert.equal(await page.inputValue("#node-config-input-kind"), "paper");
      await closeConfigDialog("cancel");
    }
  });

  it("marks quantity 0 and a LIMIT order without price invalid before deploy", async function () {
    await examplesReady(this);
    const example = momentum!;
    const place = example.nodes.find((node) => node.type === "trading-place-order")!;
    await openNode(example, place.id);
    const quantity = "#node-input-quantity + .red-ui-typedInput-container";
    await typeInto(page.locator(`${quantity} input.red-ui-typedInput-input`), "0");
    await page.locator(`${quantity}.input-error`).waitFor();
    await typeInto(page.locator(`${quantity} input.red-ui-typedInput-input`), "2");
    await page.locator(`${quantity}:not(.input-error)`).waitFor();
    await typeInto(page.locator(`${quantity} input.red-ui-typedInput-input`), "0");
    await page.locator(`${quantity}.input-error`).waitFor();

    const price = "#node-input-price + .red-ui-typedInput-container";
    await page.locator(`${price}:not(.input-error)`).waitFor();
    await page.click(
      "#node-input-orderType + .red-ui-typedInput-container .red-ui-typedInput-option-trigger",
    );
    await page.locator(".red-ui-typedInput-options a", { hasText: exact("LIMIT") }).click();
    await page.locator(`${price}.input-error`).waitFor();
    await closeNodeDialog("ok");

    await canvasNode(place.id).locator(".red-ui-flow-node-error:not(.hide)").waitFor();
    await page.click("#red-ui-header-button-deploy");
    const warning = page.locator(".red-ui-notification", { hasText: "not properly configured" });
    await warning.waitFor();
    assert.match(squash(await warning.innerText()), /trading-place-order/);
    await warning.locator("button", { hasText: exact("Cancel") }).click();
    await warning.waitFor({ state: "detached" });

    // Undo the edit: the node is valid again and nothing is left to deploy.
    await page.locator("#red-ui-workspace-chart").click({ position: { x: 700, y: 600 } });
    await page.keyboard.press("Control+z");
    await canvasNode(place.id).locator(".red-ui-flow-node-error.hide").waitFor({ state: "attached" });
    await page.locator("#red-ui-header-button-deploy.disabled").waitFor();
  });

  it("fixes a place-order field with its lock, and marks a fractional modify-order quantity invalid", async function () {
    await examplesReady(this);
    const example = momentum!;
    const place = example.nodes.find((node) => node.type === "trading-place-order")!;
    await openNode(example, place.id);
    const lock = page.locator("#node-input-quantityFixed");
    const label = page.locator("label.trading-broker-lock", { has: lock });
    assert.equal(await lock.isChecked(), false, "msg.payload may override by default");
    assert.match((await label.getAttribute("title")) ?? "", /may override/);
    await lock.check();
    assert.match((await label.getAttribute("title")) ?? "", /^fixed/);
    await closeNodeDialog("ok");
    const fixed = await page.evaluate(
      (id) => (RED.nodes.node(id) as unknown as Record<string, unknown>).quantityFixed,
      place.id,
    );
    assert.equal(fixed, true, "the node stores the lock");
    await openNode(example, place.id);
    assert.equal(await page.locator("#node-input-quantityFixed").isChecked(), true, "the dialog shows it");
    await closeNodeDialog("cancel");
    // Undo the edit: nothing is left to deploy.
    await page.locator("#red-ui-workspace-chart").click({ position: { x: 700, y: 600 } });
    await page.keyboard.press("Control+z");
    await page.locator("#red-ui-header-button-deploy.disabled").waitFor();

    const manage = allExamples.find((candidate) => candidate.name === "paper-manage-orders")!;
    const modify = manage.nodes.find((node) => node.type === "trading-modify-order")!;
    await openNode(manage, modify.id);
    const quantity = "#node-input-quantity + .red-ui-typedInput-container";
    await typeInto(page.locator(`${quantity} input.red-ui-typedInput-input`), "1.5");
    await page.locator(`${quantity}.input-error`).waitFor();
    await typeInto(page.locator(`${quantity} input.red-ui-typedInput-input`), "2");
    await page.locator(`${quantity}:not(.input-error)`).waitFor();
    await closeNodeDialog("cancel");
  });

  it("picks order-events filters with plain clicks, labels momentum in % and the config as trading broker", async function () {
    await examplesReady(this);
    const example = momentum!;
    const events = example.nodes.find((node) => node.type === "trading-order-events")!;
    await openNode(example, events.id);
    const picked = (): Promise<string[]> =>
      page.$eval("#node-input-eventTypes", (select) =>
        Array.from((select as HTMLSelectElement).selectedOptions, (option) => option.value),
      );
    assert.deepEqual(await picked(), ["ORDER_PARTIALLY_FILLED", "ORDER_FILLED"]);
    const option = (value: string): Locator =>
      page.locator(`#node-input-eventTypes option[value="${value}"]`);
    await option("ORDER_CANCELLED").click();
    await option("ORDER_REJECTED").click();
    assert.deepEqual(await picked(), [
      "ORDER_PARTIALLY_FILLED",
      "ORDER_FILLED",
      "ORDER_CANCELLED",
      "ORDER_REJECTED",
    ]);
    await option("ORDER_FILLED").click();
    assert.deepEqual(await picked(), ["ORDER_PARTIALLY_FILLED", "ORDER_CANCELLED", "ORDER_REJECTED"]);
    await closeNodeDialog("cancel");

    const label = await page.evaluate(() => {
      const definition = RED.nodes.getType("trading-momentum") as { label: (this: object) => string };
      return [
        definition.label.call({ lookback: 5, threshold: 0.002 }),
        definition.label.call({ lookback: 20, threshold: "0.015" }),
      ];
    });
    assert.deepEqual(label, ["momentum 5 / 0.2 %", "momentum 20 / 1.5 %"], "as the examples name them");

    await openConfigFromSidebar("paper broker");
    const title = squash(
      await page.locator(".red-ui-tray").last().locator(".red-ui-tray-titlebar").innerText(),
    );
    assert.match(title, /trading broker/);
    assert.doesNotMatch(title, /trading-broker/);
    await closeConfigDialog("cancel");
  });

  it("never shows a stored secret in the broker dialog, and exports no secret", async function () {
    await examplesReady(this);
    const example = momentum!;
    const place = example.nodes.find((node) => node.type === "trading-place-order")!;
    await openNode(example, place.id);
    await page.click("#node-input-btn-broker-add");
    await page.locator("#node-config-input-kind").waitFor();
    await traysSettled();
    await page.fill("#node-config-input-name", "e2e write-only");
    await page.selectOption("#node-config-input-kind", "websocket");
    await page.fill("#node-config-input-url", "ws://127.0.0.1:9/v1");
    await page.fill("#node-config-input-apiKey", WRITE_ONLY_KEY);
    await page.fill("#node-config-input-apiSecret", WRITE_ONLY_SECRET);
    await closeConfigDialog("ok");
    await closeNodeDialog("cancel"); // the place order node keeps its paper broker
    await deploy();

    const configId = await page.evaluate(() => {
      let id = "";
      RED.nodes.eachConfig((node) => {
        if (node.name === "e2e write-only") id = node.id;
      });
      return id;
    });
    assert.notEqual(configId, "");

    for (const [label, key, secret] of [
      ["e2e write-only", WRITE_ONLY_KEY, WRITE_ONLY_SECRET],
      ...(gateway === undefined ? [] : [["websocket gateway", GATEWAY_KEY, GATEWAY_SECRET]]),
    ] as [string, string, string][]) {
      await openConfigFromSidebar(label);
      const shown = [
        await page.inputValue("#node-config-input-apiKey"),
        await page.inputValue("#node-config-input-apiSecret"),
      ];
      assert.deepEqual(
        shown,
        ["__PWRD__", "__PWRD__"],
        `${label}: the dialog only says the credentials are set`,
      );
      const html = await page.content();
      for (const value of [key, secret])
        assert.ok(!html.includes(value), `${label}: the page holds no secret`);
      await closeConfigDialog("cancel");
    }

    await page.click("#red-ui-header-button-sidemenu");
    await page.click("#menu-item-export");
    await page.click("#red-ui-clipboard-dialog-export-rng-full");
    await page.click("#red-ui-tab-red-ui-clipboard-dialog-export-tab-clipboard-json a");
    const exported = await page.inputValue("#red-ui-clipboard-dialog-export-text");
    await page.click("#red-ui-clipboard-dialog-cancel");
    const flows = JSON.parse(exported) as (FlowJson & Record<string, unknown>)[];
    const config = flows.find((node) => node.id === configId);
    assert.ok(config, "the export holds the config node");
    assert.equal(config.kind, "websocket");
    for (const field of ["apiKey", "apiSecret", "credentials"])
      assert.ok(!(field in config), `no ${field} in the export`);

    const fromApi = await page.evaluate(async (id) => {
      const flowsText = await (await fetch("flows")).text();
      const credentials = await (await fetch(`credentials/trading-broker/${id}`)).text();
      return { flowsText, credentials };
    }, configId);
    assert.deepEqual(JSON.parse(fromApi.credentials), {
      has_apiKey: true,
      has_apiSecret: true,
      has_accessToken: false,
    });
    const onDisk = ["flows.json", "flows_cred.json"].map((file) =>
      fs.readFileSync(path.join(userDir, file), "utf8"),
    );
    for (const secret of SECRETS.filter(
      (value) => gateway !== undefined || !value.startsWith("e2e-gateway"),
    )) {
      for (const [where, text] of [
        ["the exported JSON", exported],
        ["GET /flows", fromApi.flowsText],
        ["GET /credentials", fromApi.credentials],
        ["flows.json", onDisk[0]!],
        ["flows_cred.json (encrypted)", onDisk[1]!],
      ] as [string, string][]) {
        assert.ok(!text.includes(secret), `${where} holds no secret`);
      }
    }
  });

  it("shows each node's help in the help sidebar", async function () {
    await page.click("#red-ui-tab-help-link-button");
    const search = page.getByPlaceholder("Search help");
    for (const node of pack) {
      // The whole text, then one key: the search box filters once, 100 ms after that key's keyup
      // (typed key by key under load, it refiltered midway and redrew the list under the click).
      await search.fill(node.type.slice(0, -1));
      await search.press(node.type.slice(-1));
      // Clicked only once that filter has run: this node's entry shown, every other one of ours hidden.
      await page.waitForFunction(
        ({ mine, others }) => {
          const shown = new Set(
            Array.from(
              document.querySelectorAll<HTMLElement>(".red-ui-sidebar-help-toc .red-ui-treeList-label"),
            )
              .filter((label) => label.offsetParent !== null)
              .map((label) => (label.textContent ?? "").trim()),
          );
          return shown.has(mine) && others.every((label) => !shown.has(label));
        },
        { mine: node.paletteLabel, others: pack.filter((n) => n !== node).map((n) => n.paletteLabel) },
      );
      await page
        .locator(".red-ui-sidebar-help-toc .red-ui-treeList-label", { hasText: exact(node.paletteLabel) })
        .click();
      const help = page.locator(".red-ui-sidebar-help-stack .red-ui-help").first();
      await page.waitForFunction(
        ({ intro }) =>
          (document.querySelector(".red-ui-sidebar-help-stack .red-ui-help")?.textContent ?? "")
            .replace(/\s+/g, " ")
            .includes(intro),
        { intro: node.helpIntro },
      );
      assert.ok(squash(await help.innerText()).length > 200, `${node.type}: more than an intro`);
    }
    await typeInto(search, "");
  });

  it("raised no error in the page", function () {
    assert.deepEqual(pageErrors, []);
  });

  // The dashboard example, imported through Import > Examples and deployed by the second case, as
  // a person sees it at /dashboard: charts, order table, positions, the pause switch and buttons.
  it("serves the dashboard example at /dashboard: live charts and orders, pause, cancel all, flatten all", async function () {
    await examplesReady(this);
    const example = allExamples.find((candidate) => candidate.name === "paper-dashboard");
    assert.ok(example, "examples/paper-dashboard.json exists");
    const idOf = (name: string): string => {
      const node = example.nodes.find((candidate) => candidate.name === name);
      assert.ok(node, `paper-dashboard: a node named "${name}"`);
      return node.id;
    };
    assert.ok(
      await page.evaluate((id) => RED.nodes.node(id) !== null, idOf("orders table")),
      "the dashboard example is in the editor",
    );

    const board = await context!.newPage();
    const boardErrors: string[] = [];
    board.on("pageerror", (error) => boardErrors.push(error.message));
    board.on("console", (message) => {
      if (message.type() === "error") boardErrors.push(`console: ${message.text()}`);
    });
    try {
      await board.goto(new URL("dashboard", page.url()).href);
      const widget = (name: string): Locator => board.locator(`[id="nrdb-ui-widget-${idOf(name)}"]`);

      // Each chart has points: ECharts describes its data in the chart's aria-label.
      for (const chart of ["INFY price", "INFY momentum", "TCS price", "TCS momentum"]) {
        await widget(chart).locator("canvas").first().waitFor();
        await board.waitForFunction(
          (id) =>
            /The first \d+ items are: -?\d/.test(
              document
                .querySelector(`[id="nrdb-ui-widget-${id}"] .nrdb-ui-chart`)
                ?.getAttribute("aria-label") ?? "",
            ),
          idOf(chart),
        );
      }
      const pause = widget("pause strategy");
      assert.equal(squash(await pause.innerText()), "Pause strategy");
      assert.equal(await pause.locator("input[type=checkbox]").isChecked(), false, "the strategy runs");
      const buttons = [
        "Flatten INFY",
        "Flatten TCS",
        "Flatten all",
        "Bid 1 INFY 5 % below",
        "Cancel all open orders",
      ];
      for (const label of buttons)
        await widget(label)
          .locator("button", { hasText: exact(label) })
          .waitFor();

      /** A table's rows as objects keyed by its column titles ("No data" is no row). */
      const rows = (name: string): Promise<Record<string, string>[]> =>
        widget(name).evaluate((element) => {
          const titles = Array.from(element.querySelectorAll("thead th")).map(
            (th) => th.textContent?.trim() ?? "",
          );
          return Array.from(element.querySelectorAll("tbody tr"))
            .map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent?.trim() ?? ""))
            .filter((cells) => cells.length === titles.length)
            .map((cells) => Object.fromEntries(cells.map((cell, i) => [titles[i]!, cell])));
        });
      const waitForRows = async (
        name: string,
        what: string,
        test: (rows: Record<string, string>[]) => boolean,
        timeoutMs = 10_000,
      ): Promise<Record<string, string>[]> => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const current = await rows(name);
          if (test(current)) return current;
          assert.ok(
            Date.now() < deadline,
            `${name}: ${what} within ${timeoutMs} ms; last ${JSON.stringify(current)}`,
          );
          await board.waitForTimeout(100);
        }
      };
      const newestMomentum = (current: Record<string, string>[]): string =>
        current.find((row) => row.tag === "momentum")?.["order id"] ?? "";

      const first = await waitForRows("orders table", "a filled momentum order", (current) =>
        current.some((row) => row.tag === "momentum" && row.status === "FILLED"),
      );
      await waitForRows(
        "orders table",
        "a newer momentum order (the strategy is live)",
        (current) => newestMomentum(current) !== newestMomentum(first),
      );
      await waitForRows("positions table", "a position", (current) => current.length > 0);
      assert.match(squash(await widget("equity").innerText()), /^equity [\d,]+\.\d\d$/, "equity, formatted");

      await widget("Bid 1 INFY 5 % below").locator("button").click();
      const withBid = await waitForRows("orders table", "the manual bid, resting", (current) =>
        current.some((row) => row.tag === "manual" && row.status === "OPEN"),
      );
      const bid = withBid.find((row) => row.tag === "manual" && row.status === "OPEN")!;
      assert.match(bid.type ?? "", /^LIMIT [\d,]+\.\d\d$/);
      // The picture without the clicked button's focus and ripple.
      await board.mouse.move(1, 1);
      await board.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await board.locator(".v-ripple__animation").waitFor({ state: "detached" });
      await board.screenshot({ path: path.join(shots, "dashboard.png"), fullPage: true });

      await pause.locator(".v-switch .v-selection-control").click();
      await pause.locator("input[type=checkbox]:checked").waitFor({ state: "attached" });
      // An order the strategy sent just before the click may still land; then nothing for 3 s.
      await board.waitForTimeout(1500);
      const pausedAt = newestMomentum(await rows("orders table"));
      await board.waitForTimeout(3000);
      assert.equal(newestMomentum(await rows("orders table")), pausedAt, "no strategy order while paused");

      await widget("Cancel all open orders").locator("button").click();
      await waitForRows("orders table", `${bid["order id"]} cancelled`, (current) =>
        current.some((row) => row["order id"] === bid["order id"] && row.status === "CANCELLED"),
      );
      await widget("Flatten all").locator("button").click();
      await waitForRows("positions table", "every position flat", (current) =>
        current.every((row) => row.quantity === "0"),
      );
      const flattened = await rows("orders table");
      assert.equal(newestMomentum(flattened), pausedAt, "still no strategy order");
      assert.ok(flattened.every((row) => row.tag !== "flatten" || row.status === "FILLED"));
      assert.deepEqual(boardErrors, [], "no error in the dashboard page");
    } finally {
      await board.close();
    }
  });

  // ---- the risk guard (issue 8) ------------------------------------------------------------

  it("shows the broker config's Risk section: every limit labelled, the trading state, a bad limit flagged", async function () {
    await examplesReady(this);
    await openConfigFromSidebar("paper broker");
    const form = page.locator("#node-config-dialog-edit-form");
    const limits = [
      "max_order_quantity",
      "max_order_value",
      "max_position_quantity",
      "max_position_value",
      "max_open_orders",
      "max_orders_per_second",
      "max_orders_per_minute",
      "price_band_pct",
      "allowed_symbols",
      "max_daily_loss",
    ];
    for (const limit of limits) {
      const input = page.locator(`#node-config-input-risk_${limit}`);
      await input.scrollIntoViewIfNeeded();
      assert.ok(await input.isVisible(), `${limit}: shown`);
      const label = squash(await form.locator(`label[for="node-config-input-risk_${limit}"]`).innerText());
      assert.ok(label.length > 0 && !/trading-broker\./.test(label), `${limit}: translated label "${label}"`);
    }
    assert.ok(
      !(await page.locator("#node-config-input-risk_window_start").isVisible()),
      "hours hidden until ticked",
    );
    await page.locator("#node-config-input-risk_window").check();
    await page.locator("#node-config-input-risk_window_start").waitFor();
    await page.waitForFunction(() =>
      /^ACTIVE \(/.test(document.querySelector("#trading-broker-risk-state")?.textContent ?? ""),
    );
    const quantity = page.locator("#node-config-input-risk_max_order_quantity");
    await typeInto(quantity, "ten");
    await page.locator("#node-config-input-risk_max_order_quantity.input-error").waitFor();
    await typeInto(quantity, "");
    await page.locator("#node-config-input-risk_max_order_quantity:not(.input-error)").waitFor();
    await closeConfigDialog("cancel");
  });

  it("halts the dashboard example's account from its KILL SWITCH button, shows it, and resumes", async function () {
    await examplesReady(this);
    const example = allExamples.find((candidate) => candidate.name === "paper-dashboard");
    assert.ok(example, "examples/paper-dashboard.json exists");
    const idOf = (name: string): string => {
      const node = example.nodes.find((candidate) => candidate.name === name);
      assert.ok(node, `paper-dashboard: a node named "${name}"`);
      return node.id;
    };
    const board = await context!.newPage();
    try {
      await board.goto(new URL("dashboard", page.url()).href);
      const widget = (name: string): Locator => board.locator(`[id="nrdb-ui-widget-${idOf(name)}"]`);
      await widget("KILL SWITCH").locator("button").click();
      await board.waitForFunction(
        (id) =>
          /HALTED: kill switch pressed on the dashboard/.test(
            document.querySelector(`[id="nrdb-ui-widget-${id}"]`)?.textContent ?? "",
          ),
        idOf("trading state"),
      );
      await showTab(example);
      const placeOrder = canvasNode(idOf("place order"));
      await placeOrder.locator(".red-ui-flow-node-status-dot-red").waitFor();
      assert.match(
        (await placeOrder.locator(".red-ui-flow-node-status-label").textContent()) ?? "",
        /^halted: kill switch pressed/,
      );
      await widget("Resume trading").locator("button").click();
      await board.waitForFunction(
        (id) =>
          /ACTIVE: resumed from the dashboard/.test(
            document.querySelector(`[id="nrdb-ui-widget-${id}"]`)?.textContent ?? "",
          ),
        idOf("trading state"),
      );
      await placeOrder.locator(".red-ui-flow-node-status-dot-green").waitFor();
    } finally {
      await board.close();
    }
  });
});
