// Preloaded (`node --require`) into node-red-dev by scripts/validate.js. node-red-dev 0.1.6 fetches
// catalogue.nodered.org for P08 (similar package names) and N01 (node types registered by another
// package); that host is unreachable here, and validate would die with ENOTFOUND. This answers
// those requests with an empty catalogue, so P08 and N01 pass unchecked. Every other request
// (registry.npmjs.org for P06, P07, D02, D03) goes out unchanged.
"use strict";

const Module = require("node:module");

const CATALOGUE_HOST = "catalogue.nodered.org";

function isCatalogue(url) {
  try {
    return new URL(String(url)).hostname === CATALOGUE_HOST;
  } catch {
    return false;
  }
}

function offline(axios) {
  if (axios.__tradingBrokerOffline) return axios;
  const get = axios.get.bind(axios);
  axios.get = (url, ...rest) =>
    isCatalogue(url)
      ? Promise.resolve({ status: 200, statusText: "OK (offline stub)", headers: {}, data: { modules: [] } })
      : get(url, ...rest);
  axios.__tradingBrokerOffline = true;
  return axios;
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exported = load.call(this, request, parent, isMain);
  return request === "axios" && exported && typeof exported.get === "function" ? offline(exported) : exported;
};
