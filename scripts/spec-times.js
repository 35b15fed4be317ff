"use strict";
// Mocha reporter: the spec reporter's output, then the wall time of each spec file, slowest first
// (written as JSON to SPEC_TIMES_OUT when set). Time per file is what the CI budget is spent on;
// mocha itself reports only per-test durations, which leave out hooks and child-process startup.
//
//   npx mocha --no-parallel --reporter ./scripts/spec-times.js
//
// Serial runs only: in parallel mode mocha replays each file's events at once when the file ends,
// so the times measured here would all be about zero.
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");
const Mocha = require("mocha");

const { EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS } =
  Mocha.Runner.constants;

class SpecTimes extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const files = new Map();
    const startedAt = new Map();
    const entry = (file) => {
      if (!files.has(file)) files.set(file, { ms: 0, passing: 0, failing: 0 });
      return files.get(file);
    };
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      // A file's top-level suites; a file may declare several (one per protocol, say).
      if (suite.parent?.root && suite.file) startedAt.set(suite, performance.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      if (!startedAt.has(suite)) return;
      entry(suite.file).ms += performance.now() - startedAt.get(suite);
      startedAt.delete(suite);
    });
    runner.on(EVENT_TEST_PASS, (test) => (entry(test.file).passing += 1));
    runner.on(EVENT_TEST_FAIL, (test) => (entry(test.file).failing += 1));
    runner.once(EVENT_RUN_END, () => {
      const rows = [...files].sort((a, b) => b[1].ms - a[1].ms);
      const total = rows.reduce((sum, [, t]) => sum + t.ms, 0);
      if (process.env.SPEC_TIMES_OUT) {
        const json = rows.map(([file, t]) => ({ file: path(file), ...t, ms: Math.round(t.ms) }));
        fs.writeFileSync(process.env.SPEC_TIMES_OUT, `${JSON.stringify(json, null, 1)}\n`);
      }
      console.log(`\n  wall time per spec file (sum ${(total / 1000).toFixed(1)} s), passing/failing:`);
      for (const [file, t] of rows) {
        console.log(`  ${(t.ms / 1000).toFixed(1).padStart(7)} s  ${t.passing}/${t.failing}  ${path(file)}`);
      }
    });
  }
}

function path(file) {
  return file === undefined ? "(no file)" : file.replace(`${process.cwd()}/`, "");
}

module.exports = SpecTimes;
