// The dialog rows resources/editor.js writes from each node's table (`form`, and the broker
// config's ROWS), checked as a person meets them in a fresh editor: every node dragged from the
// palette, every setting shown with a translated label and its default, a bad value marked
// invalid and a good one not, and what was typed saved on the node and in the exported flow.
// A field added to a table without a good value below fails here until it gets one.
import assert from "node:assert/strict";
import fs from "node:fs";
import type { BrowserContext, Locator, Page } from "playwright-core";
import type { Service } from "./harness";
import {
  examples,
  importExample,
  openEditor,
  packNodes,
  startNodeRed,
  tempDir,
  traysSettled,
} from "./harness";

interface Definition {
  defaults: Record<string, { value: unknown; validate?: unknown }>;
}
interface FlowNode {
  id: string;
  type: string;
  [property: string]: unknown;
}
declare const RED: {
  nodes: {
    getType(type: string): Definition;
    node(id: string): FlowNode | null;
    createCompleteNodeSet(options?: { credentials?: boolean }): FlowNode[];
  };
  view: { selection(): { nodes?: FlowNode[] } };
};

/** Values every validator of a text field takes; numeric fields with a numeric placeholder get twice it. */
const GOOD: Record<string, string> = {
  name: "e2e rows",
  account: "e2e",
  market_rules: '{"tick_size": 0.05}',
  seed: "42",
  csv_file: "/tmp/e2e-quotes.csv",
  url: "wss://127.0.0.1:9/v1",
  ca_file: "/tmp/e2e-ca.pem",
  market_protection: "5",
  root: "http://127.0.0.1:9",
  ticker_url: "ws://127.0.0.1:9",
  login_url: "http://127.0.0.1:9/connect/login",
  risk_max_order_quantity: "3",
  risk_max_order_value: "3000",
  risk_max_position_quantity: "30",
  risk_max_position_value: "30000",
  risk_max_open_orders: "4",
  risk_max_orders_per_second: "2",
  risk_max_orders_per_minute: "60",
  risk_price_band_pct: "5",
  risk_allowed_symbols: "INFY, NSE:TCS",
  risk_window_start: "09:30",
  risk_window_end: "15:00",
  risk_max_daily_loss: "5000",
  cooldown: "5",
  symbols: "INFY, BSE:TCS",
  text: "INFY",
};

/** Values the field's validator refuses, where "x!" is not one of them. */
const BAD: Record<string, string> = {
  text: "XX:INFY",
  csv_file: "",
};

/** Other fields a bad value is bad against: a CA file is refused only beside a ws:// URL. */
const BAD_BESIDE: Record<string, Record<string, string>> = {
  ca_file: { url: "ws://127.0.0.1:9/v1" },
};

/** Chosen before the rows they show are checked: the broker config's kinds and quote sources. */
const CONFIG_STATES: Record<string, string>[] = [
  { kind: "paper", quote_source: "random-walk" },
  { kind: "paper", quote_source: "csv" },
  { kind: "websocket" },
  { kind: "kite" },
];

/** A default as the form shows it: Node-RED writes a number or text into the field as is. */
function shown(value: unknown): string {
  return typeof value === "string" || typeof value === "number" ? String(value) : "";
}

function goodValue(prop: string, placeholder: string | null): string | undefined {
  if (GOOD[prop] !== undefined) return GOOD[prop];
  const number = Number(placeholder);
  if (placeholder === null || placeholder.trim() === "" || !Number.isFinite(number)) return undefined;
  return String(number * 2 || 1);
}

describe("editor dialogs written from their row tables", function () {
  this.timeout(120_000);
  this.slow(10_000);

  const flowTypes = packNodes().filter((node) => node.category !== "config");
  let userDir = "";
  let profileDir = "";
  let nodeRed: Service | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async function () {
    userDir = tempDir("trading-broker-e2e-rows-userdir-");
    profileDir = tempDir("trading-broker-e2e-rows-chromium-");
    const started = await startNodeRed(userDir);
    nodeRed = started.service;
    ({ context, page } = await openEditor(profileDir, started.url, pageErrors));
  });

  after(async function () {
    await context?.close();
    await nodeRed?.stop();
    for (const dir of [userDir, profileDir]) if (dir !== "") fs.rmSync(dir, { recursive: true, force: true });
  });

  // ---- helpers -----------------------------------------------------------------------------

  /** Drags a palette entry onto the canvas, as a person adds a node; the new node's id. */
  async function addNode(type: string, index: number): Promise<string> {
    const entry = page.locator(
      `#red-ui-palette-container-trading .red-ui-palette-node[data-palette-type="${type}"]`,
    );
    await entry.scrollIntoViewIfNeeded();
    await entry.dragTo(page.locator("#red-ui-workspace-chart"), {
      targetPosition: { x: 150 + 180 * (index % 4), y: 80 + 70 * Math.floor(index / 4) },
    });
    const id = await page.waitForFunction((wanted) => {
      const picked = RED.view.selection().nodes ?? [];
      return picked.length === 1 && picked[0]!.type === wanted ? picked[0]!.id : false;
    }, type);
    return (await id.jsonValue()) as string;
  }

  /** A label or help term without case, units in brackets, trailing colons or ellipses. */
  function words(text: string): string {
    return text
      .toLowerCase()
      .replace(/\([^)]*\)/g, "")
      .replace(/[:…]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  const helpCache = new Map<string, string[]>();
  /** The terms a node's help explains (its <dt>s, without type tags), as the editor holds the help. */
  async function helpTerms(type: string): Promise<string[]> {
    const cached = helpCache.get(type);
    if (cached !== undefined) return cached;
    const raw = await page.evaluate((wanted) => {
      const script = document.querySelector(`script[data-help-name="${wanted}"]`);
      const holder = document.createElement("div");
      holder.innerHTML = script?.innerHTML ?? "";
      holder.querySelectorAll(".property-type").forEach((tag) => tag.remove());
      return Array.from(holder.querySelectorAll("dt"), (dt) => dt.textContent ?? "");
    }, type);
    // "Add positions, Add GTTs, Add account" explains three rows.
    const terms = raw.flatMap((term) => [words(term), ...words(term).split(/, | or | and /)]);
    assert.ok(terms.length > 0, `${type} has help with property entries`);
    helpCache.set(type, terms);
    return terms;
  }

  /** Sets a text field as typing and leaving it does: Node-RED validates on change and keyup. */
  async function setText(input: Locator, text: string): Promise<void> {
    await input.fill(text);
    await input.dispatchEvent("change");
  }

  /** The text of the tooltip Node-RED hangs on an invalid field (shown at once, then closed). */
  async function tooltipOf(input: Locator): Promise<string> {
    return input.evaluate((element) => {
      const jq = (window as unknown as { $: (e: Element) => { data(key: string): unknown } }).$;
      const tip = jq(element).data("tooltip") as
        { open(instant: boolean): void; close(instant: boolean): void } | undefined;
      if (tip === undefined || tip === null) return "";
      tip.open(true);
      const shown = Array.from(document.querySelectorAll(".red-ui-popover")).at(-1)?.textContent ?? "";
      tip.close(true);
      return shown.replace(/\s+/g, " ").trim();
    });
  }

  async function hasError(input: Locator): Promise<boolean> {
    return /\binput-error\b/.test((await input.getAttribute("class")) ?? "");
  }

  /**
   * Checks the setting `prop` of the open dialog (ids `<prefix>-<prop>`) and changes it, returning
   * what the node should store, or undefined for a row this pass does not change.
   */
  async function checkRow(
    type: string,
    prefix: string,
    prop: string,
    fallback: unknown,
    validated: boolean,
  ): Promise<unknown> {
    const where = `${type}.${prop}`;
    const input = page.locator(`#${prefix}-${prop}`);
    const label = page.locator(`label[for="${prefix}-${prop}"]`).first();
    // textContent: a row the dialog hides for now (gtt's id while placing) has no innerText.
    const text = ((await label.textContent()) ?? "").replace(/\s+/g, " ").trim();
    assert.ok(text.length > 0 && !/trading-[a-z-]+\./.test(text), `${where}: translated label "${text}"`);
    const terms = await helpTerms(type);
    assert.ok(
      terms.some((term) => term.includes(words(text)) || words(text).startsWith(term)),
      `${where}: the help has an entry for "${text}" (it has: ${terms.join(" | ")})`,
    );
    const tag = await input.evaluate((element) => element.tagName.toLowerCase());
    const kind = tag === "select" ? "select" : ((await input.getAttribute("type")) ?? "text");
    if (kind === "hidden") {
      // A TypedInput row (request fields): the schema-limits checks have cases of their own.
      await page.locator(`#${prefix}-${prop} + .red-ui-typedInput-container`).waitFor({ state: "attached" });
      return undefined;
    }
    if (kind === "checkbox") {
      assert.equal(await input.isChecked(), fallback === true, `${where}: default`);
      await input.setChecked(fallback !== true);
      return fallback !== true;
    }
    if (kind === "select") {
      const multiple = await input.evaluate((element) => (element as HTMLSelectElement).multiple);
      const values = await input.evaluate((element) =>
        Array.from((element as HTMLSelectElement).options, (option) => option.value),
      );
      assert.ok(values.length > 0, `${where}: options`);
      if (multiple) {
        assert.deepEqual(
          await input.evaluate((e) => Array.from((e as HTMLSelectElement).selectedOptions).length),
          0,
        );
        await input.locator("option").last().click();
        return [values.at(-1)];
      }
      assert.equal(await input.inputValue(), shown(fallback), `${where}: default`);
      return undefined;
    }
    assert.equal(await input.inputValue(), shown(fallback), `${where}: default`);
    if (kind === "password") return undefined;
    const good = goodValue(prop, await input.getAttribute("placeholder"));
    assert.ok(good !== undefined, `${where}: give it a good value in GOOD`);
    if (validated) {
      const beside = BAD_BESIDE[prop] ?? {};
      for (const [other, value] of Object.entries(beside))
        await setText(page.locator(`#${prefix}-${other}`), value);
      await setText(input, BAD[prop] ?? "x!");
      assert.ok(await hasError(input), `${where}: "${BAD[prop] ?? "x!"}" is marked invalid`);
      const why = await tooltipOf(input);
      assert.ok(
        why.split(" ").length >= 3 && !/trading-[a-z-]+\./.test(why),
        `${where}: the field's tooltip gives the rule "${BAD[prop] ?? "x!"}" breaks: "${why}"`,
      );
      for (const other of Object.keys(beside))
        await setText(page.locator(`#${prefix}-${other}`), GOOD[other]!);
    }
    await setText(input, good);
    assert.ok(!(await hasError(input)), `${where}: "${good}" is valid`);
    return good;
  }

  /** What the node stores and what the exported flow holds, for each changed property. */
  async function assertSaved(id: string, expected: Record<string, unknown>): Promise<void> {
    const props = Object.keys(expected);
    const [stored, exported] = await page.evaluate(
      ({ nodeId, wanted }) => {
        const node = RED.nodes.node(nodeId)!;
        const copy = RED.nodes.createCompleteNodeSet({ credentials: false }).find((n) => n.id === nodeId)!;
        const pick = (from: FlowNode): Record<string, unknown> =>
          Object.fromEntries(wanted.map((prop) => [prop, JSON.parse(JSON.stringify(from[prop] ?? null))]));
        return [pick(node), pick(copy)];
      },
      { nodeId: id, wanted: props },
    );
    for (const prop of props) {
      assert.deepEqual(stored[prop], expected[prop], `${id}.${prop} stored`);
      assert.deepEqual(exported[prop], expected[prop], `${id}.${prop} in the flow JSON`);
    }
  }

  async function definitionOf(type: string): Promise<Record<string, { value: unknown; validated: boolean }>> {
    return page.evaluate((wanted) => {
      const defaults = RED.nodes.getType(wanted).defaults;
      return Object.fromEntries(
        Object.entries(defaults).map(([prop, entry]) => [
          prop,
          { value: entry.value, validated: typeof entry.validate === "function" },
        ]),
      );
    }, type);
  }

  // ---- cases -------------------------------------------------------------------------------

  it("every flow node: each row labelled, its default shown, bad values marked, values saved", async function () {
    for (const [index, node] of flowTypes.entries()) {
      const id = await addNode(node.type, index);
      await page.locator(`#red-ui-workspace-chart [id="${id}"] rect.red-ui-flow-node`).dblclick();
      await page.locator("#dialog-form").waitFor();
      await traysSettled(page);
      const defaults = await definitionOf(node.type);
      const expected: Record<string, unknown> = {};
      for (const [prop, entry] of Object.entries(defaults)) {
        // The config select (broker) and the TypedInput's own type and lock fields are not rows.
        if (prop === "broker" || /(Type|Fixed)$/.test(prop)) continue;
        const saved = await checkRow(node.type, "node-input", prop, entry.value, entry.validated);
        if (saved !== undefined) expected[prop] = saved;
      }
      await page.click("#node-dialog-ok");
      await page.locator("#dialog-form").waitFor({ state: "detached" });
      await traysSettled(page);
      await assertSaved(id, expected);
    }
  });

  it("the broker config: each row of each kind labelled, defaulted, validated and saved", async function () {
    const id = await addNode("trading-place-order", 15);
    await page.locator(`#red-ui-workspace-chart [id="${id}"] rect.red-ui-flow-node`).dblclick();
    await page.locator("#dialog-form").waitFor();
    await traysSettled(page);
    await page.click("#node-input-btn-broker-add");
    await page.locator("#node-config-input-kind").waitFor();
    await traysSettled(page);
    const defaults = await definitionOf("trading-broker");
    await page.locator("#node-config-input-risk_window").check();
    const expected: Record<string, unknown> = { risk_window: true };
    const checked = new Set<string>(["risk_window"]);
    for (const state of CONFIG_STATES) {
      for (const [prop, value] of Object.entries(state)) {
        await page.selectOption(`#node-config-input-${prop}`, value);
        expected[prop] = value;
      }
      for (const [prop, entry] of Object.entries(defaults)) {
        const input = page.locator(`#node-config-input-${prop}`);
        if (checked.has(prop) || !(await input.isVisible())) continue;
        await input.scrollIntoViewIfNeeded();
        checked.add(prop);
        const saved = await checkRow(
          "trading-broker",
          "node-config-input",
          prop,
          entry.value,
          entry.validated,
        );
        if (saved !== undefined) expected[prop] = saved;
      }
    }
    assert.deepEqual(
      Object.keys(defaults).filter((prop) => !checked.has(prop)),
      [],
      "every setting is a row some kind shows",
    );
    await page.click("#node-config-dialog-ok");
    await page.locator("#node-config-input-kind").waitFor({ state: "detached" });
    await traysSettled(page);
    const created = await page.inputValue("#node-input-broker");
    assert.ok(created !== "" && created !== "_ADD_", `the new config is picked: "${created}"`);
    await page.click("#node-dialog-ok");
    await page.locator("#dialog-form").waitFor({ state: "detached" });
    await assertSaved(created, expected);
  });

  it("imports an example through Import > Examples when the dialog's own timers run after the pick", async function () {
    // A loaded machine runs the page's timers late. Here each 100 ms timer (the import dialog's
    // check of its Clipboard tab, and each library picking its top folder) is held back until the
    // example is picked: both then disable Import, and the second takes the pick away.
    const example = examples().find((candidate) => candidate.name === "paper-momentum");
    assert.ok(example, "examples/paper-momentum.json exists");
    await page.evaluate((name) => {
      const held = window as unknown as { setTimeout: unknown; e2eReleaseTimers?: () => void };
      const original = window.setTimeout.bind(window);
      let released = false;
      held.e2eReleaseTimers = () => {
        released = true;
        held.setTimeout = original;
      };
      const picked = (): boolean =>
        Array.from(
          document.querySelectorAll(
            "#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label.selected",
          ),
        ).some((label) => (label.textContent ?? "").trim() === name);
      const late = (run: () => void): void => {
        if (released || picked()) run();
        else original(() => late(run), 10);
      };
      held.setTimeout = (run: () => void, ms?: number, ...rest: unknown[]): number => {
        if (ms !== 100) return original(run, ms, ...rest);
        late(run);
        return 0;
      };
    }, example.name);
    try {
      await importExample(page, example.name);
    } finally {
      await page.evaluate(() => (window as unknown as { e2eReleaseTimers(): void }).e2eReleaseTimers());
    }
    const missing = await page.evaluate(
      (ids) => ids.filter((id) => RED.nodes.node(id) === null),
      example.nodes.filter((node) => node.type !== "tab").map((node) => node.id),
    );
    assert.deepEqual(missing, [], "every node of the example imported");
  });

  it("raised no error in the page", function () {
    assert.deepEqual(pageErrors, []);
  });
});
