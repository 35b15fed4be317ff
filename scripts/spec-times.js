"use strict";
// Mocha reporter: the spec reporter's output, then the wall time of each spec file, slowest first
// (written as JSON to SPEC_TIMES_OUT when set). Time per file is what the CI budget is spent on;
// mocha itself reports only per-test durations, which leave out hooks and child-process startup.
// Beside the wall time: the CPU time of mocha's own process and of the child processes it reaped
// while the file ran (Linux /proc/self/stat), so a slow file shows whether it computes or waits.
//
//   npx mocha --no-parallel --reporter ./scripts/spec-times.js
//
// Serial runs only: in parallel mode mocha replays each file's events at once when the file ends,
// so the times measured here would all be about zero.
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");
const Mocha = require("mocha");

const TICKS_PER_S = 100; // USER_HZ: /proc reports times in clock ticks of 1/100 s on Linux

/** CPU ms of this process (user + system) and of its reaped children; children 0 off Linux. */
function cpuNow() {
  const own = process.cpuUsage();
  return { own: (own.user + own.system) / 1000, children: childrenCpuMs() };
}

function childrenCpuMs() {
  try {
    // Fields after the parenthesised command name: cutime and cstime are the 14th and 15th.
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_S;
  } catch {
    return 0;
  }
}

const { EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS } =
  Mocha.Runner.constants;

class SpecTimes extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const files = new Map();
    const startedAt = new Map();
    const entry = (file) => {
      if (!files.has(file)) files.set(file, { ms: 0, cpuMs: 0, childCpuMs: 0, passing: 0, failing: 0 });
      return files.get(file);
    };
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      // A file's top-level suites; a file may declare several (one per protocol, say).
      if (suite.parent?.root && suite.file) startedAt.set(suite, { at: performance.now(), cpu: cpuNow() });
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      if (!startedAt.has(suite)) return;
      const start = startedAt.get(suite);
      const cpu = cpuNow();
      const t = entry(suite.file);
      t.ms += performance.now() - start.at;
      t.cpuMs += cpu.own - start.cpu.own;
      t.childCpuMs += cpu.children - start.cpu.children;
      startedAt.delete(suite);
      // Written after every file, so a run that hangs or is killed still leaves what it measured.
      writeJson();
    });
    runner.on(EVENT_TEST_PASS, (test) => (entry(test.file).passing += 1));
    runner.on(EVENT_TEST_FAIL, (test) => (entry(test.file).failing += 1));
    const sorted = () => [...files].sort((a, b) => b[1].ms - a[1].ms);
    const writeJson = () => {
      if (!process.env.SPEC_TIMES_OUT) return;
      const json = sorted().map(([file, t]) => ({
        file: path(file),
        ...t,
        ms: Math.round(t.ms),
        cpuMs: Math.round(t.cpuMs),
        childCpuMs: Math.round(t.childCpuMs),
      }));
      fs.writeFileSync(process.env.SPEC_TIMES_OUT, `${JSON.stringify(json, null, 1)}\n`);
    };
    runner.once(EVENT_RUN_END, () => {
      const rows = sorted();
      const total = rows.reduce((sum, [, t]) => sum + t.ms, 0);
      writeJson();
      const cpu = rows.reduce((sum, [, t]) => sum + t.cpuMs + t.childCpuMs, 0);
      console.log(
        `\n  time per spec file (sum: wall ${s(total)} s, cpu ${s(cpu)} s; load ${loadavg()})` +
          "\n     wall s   cpu s  child cpu s  passing/failing",
      );
      for (const [file, t] of rows) {
        console.log(
          `  ${s(t.ms).padStart(9)} ${s(t.cpuMs).padStart(7)} ${s(t.childCpuMs).padStart(12)}  ` +
            `${t.passing}/${t.failing}  ${path(file)}`,
        );
      }
    });
  }
}

function s(ms) {
  return (ms / 1000).toFixed(1);
}

function loadavg() {
  return require("node:os")
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

function path(file) {
  return file === undefined ? "(no file)" : file.replace(`${process.cwd()}/`, "");
}

module.exports = SpecTimes;
