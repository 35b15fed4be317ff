// tsc never deletes outputs whose sources are gone, and mocha would still run a stale compiled
// spec from dist/, so every build starts from an empty dist/.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

fs.rmSync(path.join(__dirname, "..", "dist"), { recursive: true, force: true });
