// What the editor tests run against: a Node-RED of their own (demo/settings.js, a throwaway user
// dir, a free port), an optional protocol gateway for the WebSocket example, and Debian's Chromium
// driven by playwright-core with a fresh profile. Everything started here is stopped by stop().
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { freePort } from "../support/free-port";
export { freePort };

export const ROOT = path.resolve(__dirname, "..", "..", "..");
export const PACKAGE = "node-red-contrib-trading-broker";
export const CHROMIUM = process.env.TRADING_E2E_CHROMIUM ?? "/usr/bin/chromium";

/** One node type of the pack, as its source files declare it. */
export interface PackNode {
  type: string;
  category: string;
  /** File name in icons/; config nodes have none. */
  icon: string | undefined;
  paletteLabel: string;
  /** The first paragraph of its help, as text. */
  helpIntro: string;
}

function textOf(html: string): string {
  return html
    .replace(/<[^>]+>/g, "")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}

/** Every node type package.json declares, read from its editor html and en-US catalogue and help. */
export function packNodes(): PackNode[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    "node-red": { nodes: Record<string, string> };
  };
  return Object.keys(pkg["node-red"].nodes).map((dir) => {
    const base = path.join(ROOT, "nodes", dir);
    const html = fs.readFileSync(path.join(base, `${dir}.html`), "utf8");
    const type = /(?:registerType|registerNode)\(\s*"([^"]+)"/.exec(html)?.[1];
    // registerNode (resources/editor.js) files a node under "trading" unless its spec says otherwise.
    const category =
      /category:\s*"([^"]+)"/.exec(html)?.[1] ?? (/registerNode\(/.test(html) ? "trading" : undefined);
    if (type === undefined || category === undefined) throw new Error(`${dir}.html: no registerType`);
    const catalogue = JSON.parse(
      fs.readFileSync(path.join(base, "locales", "en-US", `${dir}.json`), "utf8"),
    ) as Record<string, { paletteLabel?: string }>;
    const help = fs.readFileSync(path.join(base, "locales", "en-US", `${dir}.html`), "utf8");
    const intro = /<p>([\s\S]*?)<\/p>/.exec(help)?.[1];
    if (intro === undefined) throw new Error(`${dir}: its help has no first paragraph`);
    return {
      type,
      category,
      // The node's icon file, not a dialog row's Font Awesome name (`icon: "tag"`).
      icon: /\bicon:\s*"([^"]+\.(?:svg|png))"/.exec(html)?.[1],
      paletteLabel: catalogue[type]?.paletteLabel ?? type,
      helpIntro: textOf(intro),
    };
  });
}

export interface FlowJson {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  kind?: string;
  broker?: string;
  wires?: string[][];
}

export interface Example {
  name: string;
  nodes: FlowJson[];
  tab: FlowJson;
}

export function examples(): Example[] {
  const dir = path.join(ROOT, "examples");
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const nodes = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as FlowJson[];
      const tab = nodes.find((node) => node.type === "tab");
      if (tab === undefined) throw new Error(`${file} has no tab`);
      return { name: file.replace(/\.json$/, ""), nodes, tab };
    });
}

/** A child process whose output is kept, started when a line of it matches `ready`. */
export class Service {
  readonly name: string;
  readonly #child: ChildProcess;
  #output = "";
  #exited: Promise<void>;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      this.#output += chunk.toString("utf8");
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  static async start(
    name: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs: number },
  ): Promise<{ service: Service; match: RegExpExecArray }> {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const service = new Service(name, child);
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      const match = options.ready.exec(service.#output);
      if (match !== null) return { service, match };
      if (child.exitCode !== null || Date.now() > deadline) {
        await service.stop();
        throw new Error(
          `${name} did not start within ${options.timeoutMs} ms (exit ${child.exitCode}):\n${service.output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  get output(): string {
    return this.#output;
  }

  /** SIGINT (Node-RED closes its flows), then SIGKILL after `graceMs`. */
  async stop(graceMs = 8000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill("SIGINT");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }
}

/**
 * Node-RED with the demo settings, a throwaway user dir and a free port. On a loaded machine
 * "Loading palette nodes" alone has taken over 30 s, so a spec may allow more with `timeoutMs`.
 */
export async function startNodeRed(
  userDir: string,
  timeoutMs = 30_000,
): Promise<{ service: Service; url: string }> {
  return onFreePort(async (port) => {
    const { service } = await Service.start(
      "Node-RED",
      [
        require.resolve("node-red/red.js"),
        "--settings",
        path.join(ROOT, "demo", "settings.js"),
        "--userDir",
        userDir,
        "--port",
        String(port),
      ],
      { ready: /Started flows/, timeoutMs },
    );
    return { service, url: `http://127.0.0.1:${port}/` };
  });
}

/**
 * Starts a server on a free port, and on another one when something took the port between the
 * pick and the listen (Node-RED exits with "port in use"): the editor tests run beside mocha.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (error) {
      const taken = /port in use|EADDRINUSE/.test(String(error));
      if (!taken || attempt >= 3) throw error;
      console.log(`port ${port} was taken before the server listened; trying another (${attempt})`);
    }
  }
}

/** The pack's protocol gateway over a paper account of its own, on a free port. */
export async function startGateway(
  dir: string,
  apiKey: string,
  apiSecret: string,
): Promise<{ service: Service; url: string }> {
  const { service, match } = await Service.start(
    "gateway",
    [
      path.join(ROOT, "dist", "lib", "gateway", "cli.js"),
      "--port",
      "0",
      "--journal",
      path.join(dir, "gateway.jsonl"),
      "--seed",
      "7",
    ],
    {
      env: { TRADING_GATEWAY_API_KEY: apiKey, TRADING_GATEWAY_API_SECRET: apiSecret },
      ready: /gateway listening on (ws:\/\/\S+)/,
      timeoutMs: 15_000,
    },
  );
  return { service, url: match[1]! };
}

/** Headless Chromium (Debian's, never a downloaded one) with a fresh profile in `profileDir`. */
export async function launchChromium(profileDir: string): Promise<{ context: BrowserContext; page: Page }> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set TRADING_E2E_CHROMIUM)`);
  }
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Where screenshots go: TRADING_E2E_SCREENSHOTS (docs/images refreshes the README's), else a temp dir. */
export function screenshotDir(): string {
  const configured = process.env.TRADING_E2E_SCREENSHOTS;
  const dir =
    configured !== undefined && configured !== ""
      ? path.resolve(ROOT, configured)
      : path.join(os.tmpdir(), "trading-broker-e2e-screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Waits until the edit trays stop sliding: the top one sits at the right edge with no CSS
 * transition running. A click during the slide lands where the button was a moment before.
 */
export async function traysSettled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const trays = Array.from(document.querySelectorAll("#red-ui-editor-stack > .red-ui-tray"));
    const top = trays.at(-1);
    if (top === undefined) return true;
    return getComputedStyle(top).right === "0px" && top.getAnimations().length === 0;
  });
}

/**
 * The editor at `url` in a fresh Chromium page whose page errors and console errors are pushed to
 * `errors`, once the pack's palette category is there. Toasts ("Imported 9 nodes", "Successfully
 * deployed") sit over tabs and tray buttons for up to 6 s; a person would wait or click beside
 * them, so clicks go through all but their buttons.
 */
export async function openEditor(
  profileDir: string,
  url: string,
  errors: string[],
): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await launchChromium(profileDir);
  // Every wait is for a condition, so a generous limit costs nothing when it holds; a loaded
  // machine has kept one (the Import button) from holding for 15 s.
  page.setDefaultTimeout(30_000);
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  await page.locator("#red-ui-palette-container-trading").waitFor();
  await page.addStyleTag({
    content:
      "#red-ui-notifications, #red-ui-notifications * { pointer-events: none !important; }" +
      " #red-ui-notifications button { pointer-events: auto !important; }",
  });
  return { context, page };
}

/** A regular expression matching `text` alone, spaces around it aside. */
export function exactText(text: string): RegExp {
  return new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`);
}

/**
 * Imports the pack's example `name` through Import > Examples, as a person does, and waits until
 * the dialog has closed. The dialog starts timers of its own as it opens (100 ms each): the
 * Clipboard tab's check of its empty text, and each library selecting its top folder; each one
 * disables Import, and the second clears the pick. On a loaded machine the page runs them late,
 * after the example was picked (CI once: Import stayed disabled for 15 s). So the pick is made
 * again until Import takes it, within `timeoutMs`.
 */
export async function importExample(page: Page, name: string, timeoutMs = 60_000): Promise<void> {
  await page.click("#red-ui-header-button-sidemenu");
  await page.click("#menu-item-import");
  await page.click("#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a");
  const tab = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
  const entry = tab.locator(".red-ui-treeList-label", { hasText: exactText(name) });
  // A folder's label sits in the element that is marked expanded while its entries show.
  const folder = tab.locator(".red-ui-treeList-label", { hasText: exactText(PACKAGE) });
  const open = tab.locator(".expanded > .red-ui-treeList-label", { hasText: exactText(PACKAGE) });
  const importButton = page.locator("#red-ui-clipboard-dialog-ok");
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1000, deadline - Date.now());
  for (let pick = 1; ; pick += 1) {
    await folder.waitFor({ timeout: left() });
    // A click on an open folder that is picked closes it: open it only when it is closed.
    if (!(await entry.isVisible()) && (await open.count()) === 0) await folder.click({ timeout: left() });
    await entry.click({ timeout: left() });
    try {
      await importButton.click({ timeout: Math.min(3000, left()) });
      break;
    } catch (error) {
      if (Date.now() >= deadline) {
        throw new Error(
          `Import > Examples > ${name}: Import stayed disabled for ${timeoutMs} ms (${pick} picks): ${String(error)}`,
          { cause: error },
        );
      }
    }
  }
  await page.locator("#red-ui-clipboard-dialog").waitFor({ state: "hidden", timeout: left() });
}
