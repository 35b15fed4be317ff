// The build's last step: when BUILD_DONE_FILE is set (only .ci/run sets it), touch that file so the
// CI steps that read dist/ can start beside lint + mocha while `npm test` goes on. dist/ itself is
// left alone: the tarball's file list is checked, and a marker there would be packed.
"use strict";
const fs = require("node:fs");

if (process.env.BUILD_DONE_FILE) fs.writeFileSync(process.env.BUILD_DONE_FILE, `${Date.now()}\n`);
