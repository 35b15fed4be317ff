// What a user gets from `npm install node-red-contrib-trading-broker`: the files `npm pack` lists,
// and that tarball loaded by a real Node-RED as an installed module (not this checkout), so a node,
// catalogue, help page, icon or editor resource missing from package.json's `files` shows up here.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { PACKAGE, ROOT, Service, freePort, packNodes, tempDir } from "../e2e/harness";

interface PackedFile {
  path: string;
  size: number;
}

const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  "node-red": { nodes: Record<string, string> };
};

/** npm itself, as the test runner was started (npm test sets npm_execpath), else the one on PATH. */
function npm(args: string[], cwd = ROOT): string {
  const execPath = process.env.npm_execpath;
  const [command, prefix] =
    execPath !== undefined && execPath.endsWith(".js")
      ? [process.execPath, [execPath]]
      : ["npm", [] as string[]];
  // --ignore-scripts: the suite has just built dist/; prepack's own build is checked in a fresh clone.
  const run = spawnSync(command, [...prefix, ...args, "--ignore-scripts"], { cwd, encoding: "utf8" });
  assert.equal(run.status, 0, `npm ${args.join(" ")} failed:\n${run.stderr}`);
  return run.stdout;
}

function packedFiles(): PackedFile[] {
  const report = JSON.parse(npm(["pack", "--dry-run", "--json"])) as Array<{ files: PackedFile[] }>;
  return report[0]!.files;
}

async function get(url: string, accept?: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, accept === undefined ? {} : { headers: { Accept: accept } });
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    body: await response.text(),
  };
}

describe("the npm package", function () {
  this.timeout(120_000);

  let files: string[];

  before(function () {
    files = packedFiles().map((file) => file.path);
  });

  it("ships every node's compiled code, editor html, catalogue and help", function () {
    for (const [dir, main] of Object.entries(PKG["node-red"].nodes)) {
      const base = path.posix.dirname(main);
      for (const file of [
        main,
        `${base}/${dir}.html`,
        `${base}/locales/en-US/${dir}.json`,
        `${base}/locales/en-US/${dir}.html`,
      ]) {
        assert.ok(files.includes(file), `${file} is in the package`);
      }
    }
  });

  it("ships no source map, test, bench or TypeScript source", function () {
    const stray = files.filter(
      (file) =>
        file.endsWith(".map") ||
        file.endsWith(".ts") ||
        file.startsWith("dist/test/") ||
        file.startsWith("dist/bench/") ||
        file.startsWith("dist/scripts/"),
    );
    assert.deepEqual(stray, []);
  });

  it("ships the editor's shared script and the rules generated from the schemas", function () {
    for (const file of ["resources/editor.js", "resources/schema-limits.js"]) {
      assert.ok(files.includes(file), `${file} is in the package`);
    }
  });

  it("ships each icon once", function () {
    const icons = files.filter((file) => file.endsWith(".svg"));
    const names = icons.map((file) => path.posix.basename(file));
    assert.equal(new Set(names).size, names.length, `duplicate icons: ${icons.join(", ")}`);
    for (const node of packNodes()) {
      if (node.icon !== undefined) assert.ok(names.includes(node.icon), `${node.icon} is in the package`);
    }
  });

  describe("installed from its tarball into a real Node-RED", function () {
    let work: string;
    let nodeRed: Service | undefined;
    let url: string;

    before(async function () {
      work = tempDir("trading-broker-package-");
      npm(["pack", "--pack-destination", work]);
      const tarball = fs.readdirSync(work).find((file) => file.endsWith(".tgz"));
      assert.ok(tarball !== undefined, "npm pack wrote a tarball");
      // Unpacked as npm would into <userDir>/node_modules/<name>; only its dependencies come from
      // this checkout (NODE_PATH), so every file Node-RED reads is one the package ships.
      const moduleDir = path.join(work, "user", "node_modules", PACKAGE);
      fs.mkdirSync(moduleDir, { recursive: true });
      const untar = spawnSync("tar", [
        "-xzf",
        path.join(work, tarball),
        "-C",
        moduleDir,
        "--strip-components=1",
      ]);
      assert.equal(untar.status, 0, String(untar.stderr));

      const port = await freePort();
      const settings = path.join(work, "settings.js");
      fs.writeFileSync(
        settings,
        `module.exports = ${JSON.stringify({
          userDir: path.join(work, "user"),
          flowFile: "flows.json",
          credentialSecret: "package-test-only",
          uiHost: "127.0.0.1",
          uiPort: port,
          telemetry: { enabled: false, updateNotification: false },
          externalModules: { autoInstall: false, palette: { allowInstall: false } },
          editorTheme: { tours: false, palette: { catalogues: [] } },
        })};\n`,
      );
      const started = await Service.start(
        "Node-RED",
        [require.resolve("node-red/red.js"), "--settings", settings],
        {
          env: { NODE_PATH: path.join(ROOT, "node_modules") },
          ready: /Started flows/,
          timeoutMs: 60_000,
        },
      );
      nodeRed = started.service;
      url = `http://127.0.0.1:${port}/`;
    });

    after(async function () {
      await nodeRed?.stop();
      if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
    });

    it("registers every node type of the pack, none failing to load", async function () {
      const reply = await get(`${url}nodes`, "application/json");
      assert.equal(reply.status, 200);
      const sets = (
        JSON.parse(reply.body) as Array<{ module: string; types: string[]; err?: string }>
      ).filter((set) => set.module === PACKAGE);
      assert.deepEqual(
        sets.filter((set) => set.err !== undefined).map((set) => set.err),
        [],
        nodeRed?.output,
      );
      const types = sets.flatMap((set) => set.types).sort();
      assert.deepEqual(
        types,
        packNodes()
          .map((node) => node.type)
          .sort(),
      );
    });

    it("serves every node's icon from the one shipped copy", async function () {
      for (const node of packNodes()) {
        if (node.icon === undefined) continue;
        const reply = await get(`${url}icons/${PACKAGE}/${node.icon}`);
        assert.equal(reply.status, 200, `${node.type}: icons/${PACKAGE}/${node.icon}`);
        assert.match(reply.type, /svg/);
      }
    });

    it("serves the editor's shared scripts that every node's html loads", async function () {
      const html = await get(`${url}nodes`, "text/html");
      const sources = new Set(Array.from(html.body.matchAll(/<script[^>]* src="([^"]+)"/g), (m) => m[1]!));
      assert.ok(sources.size > 0, "the node html loads scripts");
      for (const source of sources) {
        const reply = await get(`${url}${source}`);
        assert.equal(reply.status, 200, source);
        assert.match(reply.type, /javascript/, source);
      }
      assert.ok(sources.has(`resources/${PACKAGE}/editor.js`));
      assert.ok(sources.has(`resources/${PACKAGE}/schema-limits.js`));
    });

    it("serves each node's help and catalogue", async function () {
      const html = await get(`${url}nodes`, "text/html");
      const catalogue = await get(`${url}nodes/messages?lng=en-US`, "application/json");
      const messages = JSON.parse(catalogue.body) as Record<string, unknown>;
      const helps = html.body.split('data-help-name="').slice(1);
      for (const node of packNodes()) {
        assert.ok(html.body.includes(`data-help-name="${node.type}"`), `help of ${node.type}`);
        const help = helps.find((entry) => entry.startsWith(`${node.type}"`))!;
        const references = help.slice(0, help.indexOf("</script>")).split("<h3>References</h3>")[1];
        assert.ok(references !== undefined, `${node.type}: its help ends with References`);
        assert.match(references, /docs\/PROTOCOL\.md/, `${node.type}: References name PROTOCOL.md`);
        assert.ok(html.body.includes(`data-template-name="${node.type}"`), `form of ${node.type}`);
      }
      for (const dir of Object.keys(PKG["node-red"].nodes)) {
        assert.ok(`${PACKAGE}/${dir}` in messages, `catalogue of ${dir}`);
      }
    });
  });
});
