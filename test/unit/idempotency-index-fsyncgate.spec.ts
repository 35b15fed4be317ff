// The idempotency index after a failed fdatasync ("fsyncgate"): Linux may drop the dirty pages a
// failed writeback covered and mark them clean, so a later fdatasync that succeeds writes nothing
// for them. A line is durable only if an fdatasync that started after it was written succeeded and
// none failed since. The disk is modelled (test/support/disk-model.ts) byte by byte, the way Linux treats it; after each
// burst, what the disk holds must contain every line the index acknowledged, once, with no torn or
// zero-filled line, and an index reopened from it must know every acknowledged id.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { IdempotencyIndex } from "../../lib/gateway/idempotency-index";
import { seededRandom } from "../../lib/paper/random";
import { DiskModel } from "../support/disk-model";
import { FdFaults, type WriteFault } from "../support/fd-faults";

const ACCOUNT = "acct";

describe("IdempotencyIndex: no line counted durable after a failed fdatasync unless written again", function () {
  this.timeout(20_000);
  let dir: string;
  let file: string;
  let faults: FdFaults | undefined;
  let model: DiskModel | undefined;
  let index: IdempotencyIndex | undefined;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "fsyncgate-"));
    file = path.join(dir, "index.jsonl");
  });

  afterEach(async function () {
    model?.uninstall();
    faults?.uninstall();
    model = undefined;
    faults = undefined;
    await index?.close().catch(() => undefined);
    index = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A burst of intents, records, abandons and flushes with one failing fdatasync (and, with
   * `writes`, failing and torn writes), interleaved with the syncs' completions. Returns what the
   * index acknowledged: intents whose promise resolved, records a later flush resolved after.
   */
  async function burst(
    seed: number,
    writes: boolean,
    syncFault = true,
  ): Promise<{
    intents: Set<string>;
    records: Map<string, string>;
    failedSyncs: number;
    failedWrites: number;
  }> {
    const random = seededRandom(seed);
    // Something durable before the faults, so the cut-back has a size to return to.
    index = await IdempotencyIndex.open({ file });
    await index.intend(ACCOUNT, "pre", "h", "");
    index.record(ACCOUNT, "pre", "P0", "h");
    await index.flush();
    const failAt = Math.floor(random() * 4);
    const plan = new Map<number, WriteFault>();
    // Within the ~60 writes a burst makes (completions are written together, once per turn).
    if (writes)
      for (let k = 0; k < 6; k++) plan.set(Math.floor(random() * 50), random() < 0.5 ? "fail" : "partial");
    let healthy = false;
    faults = new FdFaults(file, {
      sync: (n) => syncFault && n === failAt,
      write: (n) => (healthy ? "none" : (plan.get(n) ?? "none")),
    });
    faults.install();
    model = new DiskModel(file);
    model.install();
    const ix = index;
    const intents = new Set<string>(["pre"]);
    const records = new Map<string, string>([["pre", "P0"]]);
    const pending: Promise<unknown>[] = [];
    const recorded: [string, string][] = [];
    for (let op = 0; op < 120; op++) {
      const r = random();
      const id = `s${seed}o${op}`;
      if (r < 0.35) {
        try {
          pending.push(
            ix.intend(ACCOUNT, id, "h", "").then(
              () => intents.add(id),
              () => undefined,
            ),
          );
        } catch {
          // Not even written: nothing acknowledged.
        }
      } else if (r < 0.65) {
        ix.record(ACCOUNT, id, `P${op}`, "h");
        recorded.push([id, `P${op}`]);
      } else if (r < 0.72) {
        ix.abandon(ACCOUNT, id);
      } else if (r < 0.85) {
        const covered = [...recorded];
        pending.push(
          ix.flush().then(
            () => covered.forEach(([k, v]) => records.set(k, v)),
            () => undefined,
          ),
        );
      } else {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
      }
    }
    // Under load the burst's writes share fewer fdatasyncs, so the planned one may not have come
    // yet: intents awaited one by one each need a sync of their own until it has.
    for (let extra = 0; syncFault && faults.failedSyncs === 0 && extra < 10; extra++) {
      const id = `s${seed}x${extra}`;
      await ix.intend(ACCOUNT, id, "h", "").then(
        () => intents.add(id),
        () => undefined,
      );
    }
    // A last flush or two, the writes healthy again: whatever they resolve is acknowledged too.
    healthy = true;
    for (let tries = 0; tries < 3; tries++) {
      const covered = [...recorded];
      const done = await ix.flush().then(
        () => true,
        () => false,
      );
      if (done) covered.forEach(([k, v]) => records.set(k, v));
      if (done) break;
    }
    await Promise.all(pending);
    return { intents, records, failedSyncs: faults.failedSyncs, failedWrites: faults.failedWrites };
  }

  async function checkDisk(
    seed: number,
    acked: { intents: Set<string>; records: Map<string, string> },
  ): Promise<void> {
    const where = `seed ${seed}`;
    // "pre" is in both: the burst itself must have had something acknowledged to check.
    assert.ok(acked.intents.size > 1 && acked.records.size > 1, `${where}: acknowledgements to check`);
    const image = model!.disk;
    assert.equal(image.indexOf(0), -1, `${where}: the disk holds zero bytes where a dropped line was`);
    const text = image.toString("utf8");
    assert.ok(text === "" || text.endsWith("\n"), `${where}: the disk ends in a whole line`);
    const lines = text.split("\n").slice(0, -1);
    for (const line of lines)
      assert.doesNotThrow(() => JSON.parse(line), `${where}: torn line ${JSON.stringify(line)}`);
    assert.equal(new Set(lines).size, lines.length, `${where}: no line twice`);
    for (const id of acked.intents) {
      const line = JSON.stringify(["i", `${ACCOUNT}\u0000${id}`, "h"]).slice(0, -1);
      assert.equal(
        lines.filter((l) => l.startsWith(line)).length,
        1,
        `${where}: acknowledged intent ${id} on disk once`,
      );
    }
    for (const [id, orderId] of acked.records) {
      const line = JSON.stringify([`${ACCOUNT}\u0000${id}`, orderId, "h"]).slice(0, -1);
      assert.equal(
        lines.filter((l) => l.startsWith(line)).length,
        1,
        `${where}: acknowledged record ${id} on disk once`,
      );
    }
    // After the power cut: the disk image is what the next start reads.
    const again = path.join(dir, "after-power-cut.jsonl");
    fs.writeFileSync(again, image);
    const reopened = await IdempotencyIndex.open({ file: again });
    try {
      const open = new Set(reopened.intents(ACCOUNT).map((i) => i.clientOrderId));
      for (const id of acked.intents)
        assert.ok(
          open.has(id) || reopened.get(ACCOUNT, id) !== undefined,
          `${where}: intent ${id} known after the cut`,
        );
      for (const [id, orderId] of acked.records)
        assert.equal(
          reopened.get(ACCOUNT, id)?.orderId,
          orderId,
          `${where}: record ${id} known after the cut`,
        );
    } finally {
      await reopened.close();
    }
  }

  for (let seed = 1; seed <= 25; seed++) {
    it(`seed ${seed}: one fdatasync fails in a burst; every acknowledged line is on the disk once`, async function () {
      const acked = await burst(seed, false);
      assert.equal(acked.failedSyncs, 1, `seed ${seed}: the fault was met`);
      await checkDisk(seed, acked);
    });
  }

  for (let seed = 101; seed <= 115; seed++) {
    it(`seed ${seed}: a failed fdatasync with failing and torn writes; no torn line, every acknowledged line once`, async function () {
      const acked = await burst(seed, true);
      assert.equal(acked.failedSyncs, 1, `seed ${seed}: the fsync fault was met`);
      assert.ok(acked.failedWrites > 0, `seed ${seed}: a write fault was met`);
      await checkDisk(seed, acked);
    });
  }

  for (let seed = 201; seed <= 210; seed++) {
    it(`seed ${seed}: failing and torn writes on a healthy fdatasync; the torn part never reaches the disk`, async function () {
      const acked = await burst(seed, true, false);
      assert.ok(acked.failedWrites > 0, `seed ${seed}: a write fault was met`);
      await checkDisk(seed, acked);
    });
  }

  it("when the lines cannot be written again, nothing is counted durable and no intent is taken until they are", async function () {
    index = await IdempotencyIndex.open({ file });
    let syncFails = true;
    let writeFails = false;
    faults = new FdFaults(file, {
      // The failed sync's callback is where the lines are first written again: that write fails too.
      sync: () => {
        const fail = syncFails;
        if (fail) writeFails = true;
        return fail;
      },
      write: () => (writeFails ? "partial" : "none"),
    });
    faults.install();
    model = new DiskModel(file);
    model.install();
    index.record(ACCOUNT, "A", "P1", "h");
    index.record(ACCOUNT, "B", "P2", "h");
    await assert.rejects(index.flush(), /fdatasync failed/);
    syncFails = false;
    for (let attempt = 0; attempt < 5; attempt++) {
      await assert.rejects(index.flush(), /write failed/, `attempt ${attempt}`);
      assert.throws(() => index!.intend(ACCOUNT, `C${attempt}`, "h", ""), /write failed/);
      assert.equal(index.unflushed, true);
      assert.equal(model.disk.length, 0, `attempt ${attempt}: nothing durable yet`);
    }
    writeFails = false;
    await index.flush();
    assert.equal(index.unflushed, false);
    const lines = model.disk.toString("utf8").split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as string[]).slice(0, 2)),
      [
        [`${ACCOUNT}\u0000A`, "P1"],
        [`${ACCOUNT}\u0000B`, "P2"],
      ],
    );
    assert.equal(model.disk.toString("utf8"), fs.readFileSync(file, "utf8"));
  });

  it("a record written before a failed fdatasync is written again before a later sync counts it", async function () {
    index = await IdempotencyIndex.open({ file });
    let failing = true;
    faults = new FdFaults(file, { sync: () => failing });
    faults.install();
    model = new DiskModel(file);
    model.install();
    index.record(ACCOUNT, "A", "P1", "h");
    await assert.rejects(index.flush(), /fdatasync failed/);
    assert.equal(index.unflushed, true, "the failed line is still owed");
    failing = false;
    await index.flush();
    assert.equal(index.unflushed, false);
    const onDisk = model.disk.toString("utf8");
    assert.equal(onDisk, fs.readFileSync(file, "utf8"), "the disk holds what the index wrote");
    assert.equal(onDisk.split("\n").filter((l) => l.includes('"P1"')).length, 1, onDisk);
  });
});
