// Preloaded (node --require) by scripts/test-node-red-5.sh. node-red-node-test-helper initialises
// itself with require.resolve("node-red") when it is first required, which would load the dev
// dependency (Node-RED 4) before test/nodes/setup.ts re-points it at Node-RED 5. Resolving the bare
// "node-red" request to NODE_RED_MODULE keeps Node-RED 4 out of the Node-RED 5 pass entirely.
"use strict";

const Module = require("node:module");
const path = require("node:path");

const dir = process.env.NODE_RED_MODULE;
if (dir) {
  const root = path.resolve(dir);
  const main = require.resolve(root);
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request === "node-red") return main;
    if (request.startsWith("node-red/"))
      return resolve.call(this, path.join(root, request.slice(9)), ...rest);
    return resolve.call(this, request, ...rest);
  };
}
