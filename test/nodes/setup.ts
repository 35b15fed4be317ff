// Shared setup for the Node-RED node tests: which Node-RED runtime the helper loads.
// By default the dev dependency (node-red 4.1.x); `npm run test:nr5` sets NODE_RED_MODULE to a
// Node-RED 5 install outside the repo and runs these specs again on Node 22.
import fs from "node:fs";
import path from "node:path";

/** The part of node-red-node-test-helper this file uses (the helper ships no types). */
export interface InitialisableHelper {
  init(runtimePath?: string, userSettings?: Record<string, unknown>): unknown;
}

/** Absolute path of Node-RED's main module (`lib/red.js`), resolved through its package.json. */
export function nodeRedPath(): string {
  const override = process.env.NODE_RED_MODULE;
  // A directory path resolves through its package.json "main", like a bare package name.
  return require.resolve(override !== undefined && override !== "" ? path.resolve(override) : "node-red");
}

function nodeRedVersion(mainPath: string): string {
  let dir = path.dirname(mainPath);
  for (;;) {
    const pkgFile = path.join(dir, "package.json");
    if (fs.existsSync(pkgFile)) {
      const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "node-red") return pkg.version ?? "unknown";
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

let announced = false;

/** Point the helper at the selected Node-RED runtime; prints the versions once per process. */
export function initHelper(helper: InitialisableHelper): void {
  const runtimePath = nodeRedPath();
  if (!announced) {
    announced = true;
    console.log(
      `    node tests: node-red ${nodeRedVersion(runtimePath)} on node ${process.version} (${runtimePath})`,
    );
  }
  helper.init(runtimePath);
}
