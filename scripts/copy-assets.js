#!/usr/bin/env node
// Copies what tsc does not emit next to each compiled node, where Node-RED's registry looks for it
// (@node-red/registry/lib/localfilesystem.js): nodes/<dir>/<dir>.html, nodes/<dir>/locales/**, and
// the root icons/ folder as dist/nodes/<dir>/icons/. Directories without <dir>.html (nodes/shared)
// are skipped. Run by `npm run build` after `tsc -p .`.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const srcNodes = path.join(root, "nodes");
const distNodes = path.join(root, "dist", "nodes");
const icons = path.join(root, "icons");

function copyTree(from, to) {
  fs.cpSync(from, to, { recursive: true, force: true, errorOnExist: false });
}

let copied = 0;
const dirs = fs.existsSync(srcNodes)
  ? fs
      .readdirSync(srcNodes, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
  : [];

for (const dir of dirs) {
  const html = path.join(srcNodes, dir, `${dir}.html`);
  if (!fs.existsSync(html)) continue;

  const out = path.join(distNodes, dir);
  fs.mkdirSync(out, { recursive: true });
  // Remove stale copies so a deleted locale or icon does not linger in dist/.
  fs.rmSync(path.join(out, "icons"), { recursive: true, force: true });
  fs.rmSync(path.join(out, "locales"), { recursive: true, force: true });

  fs.copyFileSync(html, path.join(out, `${dir}.html`));
  const locales = path.join(srcNodes, dir, "locales");
  if (fs.existsSync(locales)) copyTree(locales, path.join(out, "locales"));
  if (fs.existsSync(icons)) copyTree(icons, path.join(out, "icons"));
  copied++;
}

console.log(`copy-assets: ${copied} node dir(s) -> ${path.relative(root, distNodes) || "."}`);
