#!/usr/bin/env node
// Copies what tsc does not emit next to each compiled node, where Node-RED's registry looks for it
// (@node-red/registry/lib/localfilesystem.js): nodes/<dir>/<dir>.html and nodes/<dir>/locales/**.
// Directories without <dir>.html (nodes/shared) are skipped. Run by the build after tsc.
//
// Icons are copied once, into the folder of the first node package.json lists (broker-config): the
// registry scans icons/ beside every node file but serves a module's icons from all those folders
// as one set (registry.js getNodeIconPath; the editor asks for icons/<module>/<file>), so one copy
// serves every node of the pack. Nine copies only made the package heavier.
//
// Help text several nodes share is written once, in nodes/shared/help/<name>.html, and stands in a
// node's locales/<lang>/<dir>.html as a line `<!-- include: <name> -->`; the copy in dist/ carries
// the fragment in its place, because Node-RED serves each help file as it is. The section skeleton
// (Inputs, Outputs, Properties, Details headings and their <dl>s) stays in each page on purpose: it
// is Node-RED's help format, and a page must read whole in its source.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const srcNodes = path.join(root, "nodes");
const distNodes = path.join(root, "dist", "nodes");
const icons = path.join(root, "icons");
const helpFragments = path.join(srcNodes, "shared", "help");
const INCLUDE = /^[ \t]*<!-- include: ([a-z0-9-]+) -->[ \t]*\r?\n/gm;

/** Replaces each include line of the help files below `dir` with its fragment. */
function expandIncludes(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".html")) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    const text = fs.readFileSync(file, "utf8");
    const expanded = text.replace(INCLUDE, (_line, name) => {
      const fragment = path.join(helpFragments, `${name}.html`);
      if (!fs.existsSync(fragment)) {
        throw new Error(
          `copy-assets: ${path.relative(root, file)} includes ${name}, but ${path.relative(root, fragment)} does not exist`,
        );
      }
      return fs.readFileSync(fragment, "utf8");
    });
    if (expanded !== text) fs.writeFileSync(file, expanded);
  }
}

function copyTree(from, to) {
  fs.cpSync(from, to, { recursive: true, force: true, errorOnExist: false });
}

/** The node folder that carries the pack's icons: the first entry of package.json's node map. */
function iconHome() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  const first = Object.values(pkg["node-red"].nodes)[0];
  return path.join(root, path.dirname(first));
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
  if (fs.existsSync(locales)) {
    copyTree(locales, path.join(out, "locales"));
    expandIncludes(path.join(out, "locales"));
  }
  copied++;
}

const iconDir = path.join(iconHome(), "icons");
if (fs.existsSync(icons)) copyTree(icons, iconDir);

console.log(
  `copy-assets: ${copied} node dir(s) -> ${path.relative(root, distNodes) || "."}; icons -> ${path.relative(root, iconDir)}`,
);
