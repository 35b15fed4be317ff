import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import { PaperBroker } from "../lib/brokers/paper-broker";
import { fmt, row } from "./stats";

/**
 * The memory target (DESIGN.md §8): RSS growth over 1,000,000 journaled orders once the account
 * is past its retention bound. Measured in a fresh child process per run, because the RSS of a
 * process that ran other benchmarks carries their garbage and their allocator's kept pages.
 */

/** Past two compactions at retention 10,000 (one every 50,000 records): the baseline has had that peak. */
export const WARM_UP = 120_000;
/** Checkpoints per run: enough to tell a climb from a step. */
const CHECKPOINTS = 10;
const MB = 1024 * 1024;

/** One reading, all in bytes. */
export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** Resident pages of V8's heap (getHeapStatistics().total_physical_size). */
  heapResident: number;
  /** RSS backed by files (the node binary and libraries) and anonymous (heap, allocator, stacks). */
  fileBacked: number;
  anonymous: number;
  /** Per V8 space: [committed, used]. */
  spaces: Record<string, [number, number]>;
}

export interface MemoryRun {
  count: number;
  before: MemorySample;
  after: MemorySample;
  /** After each tenth of `count`, for the plateau check. */
  checkpoints: MemorySample[];
  /** RSS read at once after gc(), as this bench did before: what V8 has freed but not yet unmapped counts. */
  unsettledBefore: number;
  unsettledAfter: number;
  fileBytes: number;
  peakRss: number;
}

/** Resident anonymous and file-backed bytes; zero where /proc is not there. */
function residentKinds(): { fileBacked: number; anonymous: number } {
  try {
    const text = fs.readFileSync("/proc/self/smaps_rollup", "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
    return { fileBacked: kb("Rss") - kb("Anonymous"), anonymous: kb("Anonymous") };
  } catch {
    return { fileBacked: 0, anonymous: 0 };
  }
}

function sample(): MemorySample {
  const usage = process.memoryUsage();
  const spaces: Record<string, [number, number]> = {};
  for (const space of v8.getHeapSpaceStatistics()) {
    spaces[space.space_name] = [space.space_size, space.space_used_size];
  }
  return {
    rss: usage.rss,
    heapTotal: usage.heapTotal,
    heapUsed: usage.heapUsed,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    heapResident: v8.getHeapStatistics().total_physical_size,
    ...residentKinds(),
    spaces,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A full GC, then RSS once it has stopped falling. V8 gives the pages a GC freed back to the OS on
 * a background thread after gc() returns: read at once, RSS still counts them, by anything from
 * nothing to ~60 MB here depending on whether that thread has run yet. That race, not the broker,
 * is what made one build's "growth" 9.5 MB in one run and 57 MB in the next.
 */
async function settledSample(): Promise<{ settled: MemorySample; unsettledRss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  await sleep(200);
  gc?.();
  const unsettledRss = process.memoryUsage().rss;
  let last = unsettledRss;
  let steady = 0;
  for (let i = 0; i < 50 && steady < 2; i++) {
    await sleep(100);
    const rss = process.memoryUsage().rss;
    steady = Math.abs(rss - last) < 256 * 1024 ? steady + 1 : 0;
    last = rss;
  }
  return { settled: sample(), unsettledRss };
}

/**
 * `count` MARKET orders on a journaled paper broker (retention 10,000) after WARM_UP of them, with
 * a settled reading after the warm-up, after each tenth and at the end.
 */
export async function memoryGrowth(count: number, journalFile: string): Promise<MemoryRun> {
  const broker = new PaperBroker(
    { volatility: 0, spread_bps: 0, slippage_bps: 0, starting_cash: 1e12, retention: 10_000 },
    { journalFile },
  );
  await broker.connect();
  broker.setPrice("INFY", 100);
  const place = async (from: number, to: number) => {
    // Answers wait for the fsync, so orders go in windows of 1,000, as a busy flow or gateway sends them.
    for (let i = from; i < to; i += 1000) {
      const batch: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(to, i + 1000); k += 1) {
        batch.push(broker.placeOrder({ symbol: "INFY", side: k % 2 === 0 ? "BUY" : "SELL", quantity: 1 }));
      }
      await Promise.all(batch);
    }
  };
  await place(0, WARM_UP);
  const start = await settledSample();
  const checkpoints: MemorySample[] = [];
  let unsettledAfter = start.unsettledRss;
  for (let step = 1; step <= CHECKPOINTS; step++) {
    await place(Math.round(((step - 1) * count) / CHECKPOINTS), Math.round((step * count) / CHECKPOINTS));
    const reading = await settledSample();
    checkpoints.push(reading.settled);
    unsettledAfter = reading.unsettledRss;
  }
  await broker.close();
  return {
    count,
    before: start.settled,
    after: checkpoints[checkpoints.length - 1] as MemorySample,
    checkpoints,
    unsettledBefore: start.unsettledRss,
    unsettledAfter,
    fileBytes: fs.statSync(journalFile).size,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
}

/** One measurement in a fresh `node --expose-gc` (plus `nodeArgs`); the child prints its MemoryRun as JSON. */
function runInChild(count: number, nodeArgs: string[]): Promise<MemoryRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", ...nodeArgs, __filename, "--child", String(count)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => (out += chunk));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`memory child exited with ${code}`));
      try {
        resolve(JSON.parse(out) as MemoryRun);
      } catch (error) {
        reject(new Error(`memory child printed no result: ${(error as Error).message}`));
      }
    });
  });
}

const mb = (bytes: number) => fmt(bytes / MB, 1);

/** Growth and where it sits: V8's resident heap, Buffers and other external memory, file-backed pages, the rest. */
export function parts(run: Pick<MemoryRun, "before" | "after">): {
  rss: number;
  heap: number;
  heapUsed: number;
  external: number;
  fileBacked: number;
  other: number;
} {
  const d = (pick: (s: MemorySample) => number) => pick(run.after) - pick(run.before);
  const rss = d((s) => s.rss);
  const heap = d((s) => s.heapResident);
  const external = d((s) => s.external);
  const fileBacked = d((s) => s.fileBacked);
  // External memory is malloc'd, so the rest is the allocator's kept pages, thread stacks and V8's
  // own memory outside the heap (code, zones).
  return {
    rss,
    heap,
    heapUsed: d((s) => s.heapUsed),
    external,
    fileBacked,
    other: rss - heap - external - fileBacked,
  };
}

/** V8 moves live objects out of sparse old-space pages on every full GC, not only when its heuristics pick them. */
const COMPACTING = "--compact-on-every-full-gc";

function runRow(label: string, run: MemoryRun): string {
  const p = parts(run);
  const mid = run.checkpoints[CHECKPOINTS / 2 - 1] as MemorySample;
  const along = run.checkpoints.map((c) => c.rss - run.before.rss);
  return row([
    label,
    `${mb(run.before.rss)} → ${mb(run.after.rss)}`,
    mb(p.rss),
    `${mb(mid.rss - run.before.rss)} / ${mb(run.after.rss - mid.rss)}`,
    `${mb(Math.min(...along))} … ${mb(Math.max(...along))}`,
    `${mb(p.heap)} (${mb(p.heapUsed)})`,
    mb(p.external),
    mb(p.fileBacked),
    mb(p.other),
    mb(run.unsettledAfter - run.unsettledBefore),
    mb(run.peakRss),
  ]);
}

/**
 * The memory figure alone: `runs` fresh processes as Node-RED would run the broker, each printed
 * with its parts and its plateau check, then one where V8 compacts on every full GC, which takes
 * V8's free old-space pages out of the figure and leaves what the broker's data and the allocator add.
 */
export async function runMemoryBench(options: { quick: boolean; runs?: number }): Promise<string[]> {
  const count = options.quick ? 100_000 : 1_000_000;
  const runs = options.runs ?? (options.quick ? 1 : 3);
  const results: MemoryRun[] = [];
  for (let i = 0; i < runs; i++) results.push(await runInChild(count, []));
  const compacting = await runInChild(count, [COMPACTING]);
  const growth = results.map((r) => r.after.rss - r.before.rss).sort((a, b) => a - b);
  const secondHalves = results.map(
    (r) => r.after.rss - (r.checkpoints[CHECKPOINTS / 2 - 1] as MemorySample).rss,
  );
  return [
    "### Paper broker memory (a fresh process per run)",
    "",
    `${count.toLocaleString("en-US")} journaled MARKET orders (retention 10,000, windows of 1,000) after ` +
      `${WARM_UP.toLocaleString("en-US")} warm-up orders, with a reading after the warm-up and after each tenth. ` +
      "Every reading is taken after gc() once RSS has stopped falling (V8 unmaps what a GC freed on a " +
      "background thread after gc() returns). Growth = end − warm-up, split into V8's resident heap (of which " +
      "in use), external (Buffers), file-backed pages and the rest (allocator, thread stacks, V8 code and zones).",
    "",
    row([
      "run",
      "RSS warm-up → end MB",
      "growth MB",
      "1st half / 2nd half MB",
      "lowest … highest reading MB",
      "V8 heap (in use) MB",
      "external MB",
      "file-backed MB",
      "rest MB",
      "read at once after gc() MB",
      "peak RSS MB",
    ]),
    row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ...results.map((run, i) => runRow(String(i + 1), run)),
    runRow(COMPACTING, compacting),
    "",
    `RSS growth over ${count.toLocaleString("en-US")} orders (target < 10 MB): median ` +
      `${mb(growth[Math.floor(growth.length / 2)] as number)} MB, max ${mb(growth[growth.length - 1] as number)} MB ` +
      `of ${runs} run(s); 2nd half alone at most ${mb(Math.max(...secondHalves))} MB (a leak keeps climbing there, ` +
      `a high-water mark does not). With V8 compacting on every full GC: ${mb(compacting.after.rss - compacting.before.rss)} MB. ` +
      `Journal ${mb(results[0]?.fileBytes ?? 0)} MB after compaction.`,
  ];
}

if (require.main === module && process.argv[2] === "--child") {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-memory-"));
  memoryGrowth(Number(process.argv[3]), path.join(dir, "m.jsonl"))
    .then((run) => process.stdout.write(`${JSON.stringify(run)}\n`))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}
