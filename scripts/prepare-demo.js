#!/usr/bin/env node
// Seeds the demo's Node-RED user dir (`npm start` runs this through prestart): when
// .node-red/flows.json does not exist yet, copies examples/paper-momentum.json there.
// `--force` (npm run demo:reset) overwrites the flows and deletes the paper broker's journal
// folder .node-red/trading-broker/, so the paper account starts over.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const userDir = path.join(root, ".node-red");
const flowsFile = path.join(userDir, "flows.json");
const journalDir = path.join(userDir, "trading-broker");
const example = path.join(root, "examples", "paper-momentum.json");
const force = process.argv.slice(2).includes("--force");

if (!force && fs.existsSync(flowsFile)) {
  console.log(`prepare-demo: keeping ${path.relative(root, flowsFile)} (npm run demo:reset starts over)`);
  process.exit(0);
}

if (!fs.existsSync(example)) {
  console.error(`prepare-demo: ${path.relative(root, example)} is missing; cannot seed the demo flows.`);
  process.exit(1);
}

try {
  JSON.parse(fs.readFileSync(example, "utf8"));
} catch (err) {
  console.error(`prepare-demo: ${path.relative(root, example)} is not valid JSON: ${err.message}`);
  process.exit(1);
}

fs.mkdirSync(userDir, { recursive: true });
if (force) {
  fs.rmSync(journalDir, { recursive: true, force: true });
  console.log(`prepare-demo: removed ${path.relative(root, journalDir)}/`);
}
fs.copyFileSync(example, flowsFile);
console.log(`prepare-demo: ${path.relative(root, example)} -> ${path.relative(root, flowsFile)}`);
