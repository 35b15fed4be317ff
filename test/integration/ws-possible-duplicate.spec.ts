// A Node-RED process killed while it hands events to the flow (SIGKILL inside the order listener,
// before the story written after the events can be) makes the next one report some events again.
// Those repeats must carry possible_duplicate: true, and only those: over many crashes (during live
// events and during the replay after a crash), every event of the account reaches a flow at least
// once, at most once unmarked. Each process is a real child on a real gateway on 127.0.0.1.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

const CHILD = path.join(__dirname, "..", "support", "ws-emit-crash-child.js");

interface Line {
  pid: number;
  seq: number;
  type: string;
  order_id: string;
  filled: number;
  dup: boolean;
}

describe("WebSocket broker: a crash while reporting repeats events only marked possible_duplicate", function () {
  this.timeout(60_000);
  let host: PaperHost | undefined;
  let dir = "";
  const children = new Set<ChildProcess>();

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-possible-duplicate-"));
    host = await PaperHost.start();
  });

  afterEach(async function () {
    for (const child of children) child.kill("SIGKILL");
    children.clear();
    await host?.close();
    host = undefined;
    if (process.env.KEEP_DIR === undefined) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(dir);
  });

  /** A child broker; resolves once it is connected (its story taken up, its first session open). */
  async function start(
    url: string,
    story: string,
    log: string,
    killAfter: number,
  ): Promise<{ child: ChildProcess; exited: Promise<string>; gone: () => boolean }> {
    const child = spawn(process.execPath, [CHILD], {
      env: {
        ...process.env,
        CRASH_URL: url,
        CRASH_STORY: story,
        CRASH_LOG: log,
        CRASH_KILL_AFTER: String(killAfter),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<string>((resolve) =>
      child.on("exit", (code, signal) => {
        children.delete(child);
        resolve(signal ?? `code ${code}: ${stderr}`);
      }),
    );
    let gone = false;
    void exited.then(() => (gone = true));
    await waitFor(() => stdout.includes("connected") || gone, "the child connected", 15_000);
    // It may die at an event it reports while connecting (the replay after a crash): that is a kill
    // it asked for; any other end is not.
    if (gone) assert.equal(await exited, "SIGKILL", "the child ended before it connected");
    return { child, exited, gone: () => gone };
  }

  function lines(log: string): Line[] {
    if (!fs.existsSync(log)) return [];
    return fs
      .readFileSync(log, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Line);
  }

  it("10 SIGKILLs at the 1st to 3rd event a process reports: each event at least once, at most once unmarked", async function () {
    const made = host!;
    const story = websocketStoryFile(dir, "b1", made.url);
    const log = path.join(dir, "events.log");
    const firstSeq = made.paper.lastSeq + 1;
    let orders = 0;
    const place = (): Promise<unknown> =>
      made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `o${++orders}` });
    for (let round = 0; round < 10; round++) {
      const killAfter = 1 + (round % 3);
      const { exited, gone } = await start(made.url, story, log, killAfter);
      // A batch: three orders at once, each placed and filled (market), while the child listens.
      // A child that was given enough replayed events dies before these even arrive.
      if (!gone()) await Promise.all([place(), place(), place()]);
      assert.equal(await exited, "SIGKILL", `round ${round}: the child killed itself at event ${killAfter}`);
      // Made while no process runs: new to the next one, so unmarked.
      await place();
    }
    const last = await start(made.url, story, log, 0);
    await waitFor(
      () => lines(log).some((line) => line.seq === made.paper.lastSeq),
      "the last child reported up to the account's seq",
      15_000,
    );
    last.child.kill("SIGTERM");
    await last.exited;

    const all = lines(log);
    const bySeq = new Map<number, Line[]>();
    for (const line of all) bySeq.set(line.seq, [...(bySeq.get(line.seq) ?? []), line]);
    let again = 0;
    let marked = 0;
    for (let seq = firstSeq; seq <= made.paper.lastSeq; seq++) {
      const reports = bySeq.get(seq) ?? [];
      assert.ok(reports.length >= 1, `seq ${seq} was never reported`);
      const unmarked = reports.filter((line) => !line.dup);
      assert.ok(
        unmarked.length <= 1,
        `seq ${seq} reported ${unmarked.length} times unmarked: ${JSON.stringify(reports)}`,
      );
      assert.equal(
        new Set(reports.map((line) => line.pid)).size,
        reports.length,
        `seq ${seq}: twice by one process`,
      );
      assert.equal(new Set(reports.map((l) => `${l.type} ${l.order_id} ${l.filled}`)).size, 1, `seq ${seq}`);
      again += reports.length - 1;
      marked += reports.length - unmarked.length;
    }
    // Events made while no process ran are new: never marked.
    const down = all.filter((line) => line.seq > made.paper.lastSeq);
    assert.deepEqual(down, []);
    // The window was hit: each crash left at least the event it died at to be reported again.
    assert.ok(again >= 10, `only ${again} reports were repeats`);
    assert.ok(marked >= again, `${marked} marked`);
  });
});
