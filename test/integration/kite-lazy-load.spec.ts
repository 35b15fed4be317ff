// kiteconnect (and its runtime tree) is loaded only when a Kite broker is configured, and a runtime
// without it installed fails only its Kite configs, with what to install. Each case runs
// test/support/kite-load-probe.ts in a process of its own: this one has loaded kiteconnect already.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { KITECONNECT_SPEC } from "../../lib/brokers/create-broker";

interface Loaded {
  kiteconnect: number;
  kiteBroker: boolean;
}

interface ProbeReport {
  paper: { output?: { status?: string }; error?: unknown };
  afterPaper: Loaded;
  kiteOrder: { output?: unknown; error?: { code?: string; message?: string } };
  afterKite: Loaded;
}

function probe(...args: string[]): ProbeReport {
  const run = spawnSync(
    process.execPath,
    [path.join(__dirname, "..", "support", "kite-load-probe.js"), ...args],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  assert.equal(run.status, 0, `probe failed:\n${run.stdout}\n${run.stderr}`);
  const line = run.stdout.split("\n").find((entry) => entry.startsWith("PROBE "));
  assert.ok(line !== undefined, `probe printed no report:\n${run.stdout}`);
  return JSON.parse(line.slice("PROBE ".length)) as ProbeReport;
}

describe("kiteconnect is loaded lazily", function () {
  this.timeout(90_000);

  it("a paper-only runtime places orders without loading kiteconnect; a Kite config loads it", function () {
    const report = probe();
    assert.equal(report.paper.output?.status, "FILLED", JSON.stringify(report.paper));
    assert.deepEqual(report.afterPaper, { kiteconnect: 0, kiteBroker: false });
    // The positive control: the probe's measure does see kiteconnect once a Kite broker exists.
    assert.equal(report.afterKite.kiteBroker, true);
    assert.ok(report.afterKite.kiteconnect > 0, JSON.stringify(report.afterKite));
    // Its order has a reported outcome (nothing listens on the loopback port it points at).
    assert.equal(report.kiteOrder.error?.code, "NETWORK", JSON.stringify(report.kiteOrder));
  });

  it("without kiteconnect installed, paper works and a Kite order fails CONFIG saying what to install", function () {
    const report = probe("--without-kiteconnect");
    assert.equal(report.paper.output?.status, "FILLED", JSON.stringify(report.paper));
    assert.equal(report.kiteOrder.output, undefined);
    assert.equal(report.kiteOrder.error?.code, "CONFIG", JSON.stringify(report.kiteOrder));
    assert.ok(report.kiteOrder.error?.message?.includes(`npm install ${KITECONNECT_SPEC}`));
    assert.deepEqual(report.afterKite, { kiteconnect: 0, kiteBroker: false });
  });
});
