#!/usr/bin/env node
// `npm run validate`: the Node-RED palette scorecard (node-red-dev validate) for this package,
// failing when any check fails. node-red-dev exits 0 whatever it finds, so this reads its JSON.
//
// node-red-dev pulls in ~440 packages, so it is not a devDependency (that would slow every
// `npm ci`): it is installed once into a cache folder outside the repository, like the Node-RED 5
// pass does (TRADING_VALIDATE_PREFIX overrides ~/.cache/trading-broker-node-red-dev).
// scripts/node-red-dev-offline.js answers its catalogue.nodered.org requests (unreachable here).
// It reads the node definitions from the compiled dist/nodes/*/*.html: build first.
//
//   npm run validate                  this package
//   node scripts/validate.js DIR      another package folder (to see a failing scorecard)
"use strict";

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const NODE_RED_DEV_VERSION = "0.1.6";
/** Every check node-red-dev 0.1.6 scores (P02 is disabled in it). */
const CHECKS = {
  P01: "license",
  P03: "repository or bugs URL",
  P04: "package name",
  P05: "node-red keyword",
  P06: "Node-RED version range admits the current releases",
  P07: "engines.node admits Node-RED's minimum Node.js",
  P08: "no similarly named package (catalogue offline: unchecked)",
  N01: "no node type registered by another package (catalogue offline: unchecked)",
  N02: "an example for every node",
  D01: "at most 6 dependencies",
  D02: "no known-bad package in the dependency tree",
  D03: "dependencies at their latest versions",
};

const root = path.resolve(process.argv[2] ?? path.join(__dirname, ".."));
const prefix =
  process.env.TRADING_VALIDATE_PREFIX || path.join(os.homedir(), ".cache", "trading-broker-node-red-dev");
const toolDir = path.join(prefix, "node_modules", "node-red-dev");

class ValidateFailure extends Error {}

function fail(message) {
  throw new ValidateFailure(message);
}

function installedVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(toolDir, "package.json"), "utf8")).version;
  } catch {
    return undefined;
  }
}

function ensureTool() {
  if (installedVersion() === NODE_RED_DEV_VERSION) return;
  console.log(`validate: installing node-red-dev@${NODE_RED_DEV_VERSION} into ${prefix}`);
  fs.mkdirSync(prefix, { recursive: true });
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const result = spawnSync(
    npm,
    [
      "install",
      "--prefix",
      prefix,
      "--no-audit",
      "--no-fund",
      "--no-save",
      `node-red-dev@${NODE_RED_DEV_VERSION}`,
    ],
    { stdio: "inherit", timeout: 300_000 },
  );
  if (result.status !== 0 || installedVersion() !== NODE_RED_DEV_VERSION) {
    fail(`could not install node-red-dev@${NODE_RED_DEV_VERSION} (npm exited ${result.status})`);
  }
}

function checkBuilt() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  const missing = Object.values(pkg["node-red"].nodes)
    .map((file) => file.replace(/\.js$/, ".html"))
    .filter((html) => !fs.existsSync(path.join(root, html)));
  if (missing.length > 0) {
    fail(`${missing.join(", ")} missing: build first (npx tsc -p . && node scripts/copy-assets.js)`);
  }
}

function runValidate(card) {
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [
      "--require",
      path.join(__dirname, "node-red-dev-offline.js"),
      path.join(toolDir, "bin", "run"),
      "validate",
      "-p",
      root,
      "-o",
      card,
    ],
    // node-red-dev opens a readline on stdin; with a terminal there it would wait for input.
    { stdio: ["ignore", "inherit", "inherit"], timeout: 180_000 },
  );
  if (result.error) fail(`node-red-dev did not run: ${result.error.message}`);
  console.log(`validate: node-red-dev took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function judge(card) {
  let scorecard;
  try {
    scorecard = JSON.parse(fs.readFileSync(card, "utf8"));
  } catch (error) {
    fail(`node-red-dev wrote no readable scorecard (${error.message}); see its output above`);
  }
  const failed = [];
  console.log("");
  for (const [id, what] of Object.entries(CHECKS)) {
    const check = scorecard[id];
    const ok = check !== undefined && check.test === true;
    if (!ok) failed.push(id);
    const detail = check === undefined ? " (not reported)" : "";
    console.log(`  ${ok ? "pass" : "FAIL"}  ${id}  ${what}${detail}`);
  }
  console.log("");
  console.log(JSON.stringify(scorecard));
  if (failed.length > 0) fail(`${failed.length} check(s) failed: ${failed.join(", ")}`);
  console.log(`validate: all ${Object.keys(CHECKS).length} checks pass`);
}

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "trading-broker-validate-"));
try {
  checkBuilt();
  ensureTool();
  const card = path.join(workDir, "card.json");
  runValidate(card);
  judge(card);
} catch (error) {
  if (!(error instanceof ValidateFailure)) throw error;
  console.error(`validate: ${error.message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(workDir, { recursive: true, force: true });
}
