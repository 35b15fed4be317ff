// Node-RED settings for the local demo (`npm start`). Loads this repository as a Node-RED module
// (nodesDir), keeps all runtime state in the git-ignored .node-red/ folder, listens on loopback only
// and turns off everything that would reach the network (telemetry, palette installs, catalogues).
"use strict";

const path = require("node:path");

const repoRoot = path.resolve(__dirname, "..");
const port = Number.parseInt(process.env.PORT ?? "", 10);

module.exports = {
  userDir: path.join(repoRoot, ".node-red"),
  flowFile: "flows.json",
  // Demo only: set TRADING_BROKER_CREDENTIAL_SECRET for anything that holds real broker keys.
  credentialSecret: process.env.TRADING_BROKER_CREDENTIAL_SECRET || "trading-broker-demo-only-secret",
  nodesDir: [repoRoot],

  uiHost: "127.0.0.1",
  uiPort: Number.isInteger(port) && port > 0 ? port : 1880,

  telemetry: { enabled: false, updateNotification: false },
  externalModules: {
    autoInstall: false,
    palette: { allowInstall: false, allowUpdate: false, allowUpload: false },
    modules: { allowInstall: false },
  },
  functionExternalModules: false,

  editorTheme: {
    tours: false,
    palette: { catalogues: [] },
    projects: { enabled: false },
    multiplayer: { enabled: false },
  },

  logging: {
    console: { level: "info", metrics: false, audit: false },
  },
};
