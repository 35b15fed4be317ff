// The idempotency index's lines nobody waits for (completions, abandons) are written once the
// turn's answers are out, together; an intent writes them first, so the file keeps their order.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { IdempotencyIndex } from "../../lib/gateway/idempotency-index";
import { openFdOf } from "../support/fd-faults";

const ACCOUNT = "acct";

describe("IdempotencyIndex: completions written together after the turn, in order with intents", function () {
  let dir: string;
  let file: string;
  let index: IdempotencyIndex | undefined;
  const realWrite = fs.writeSync;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "index-batching-"));
    file = path.join(dir, "index.jsonl");
  });

  afterEach(async function () {
    (fs as { writeSync: unknown }).writeSync = realWrite;
    await index?.close().catch(() => undefined);
    index = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Counts the writes on the index's fd from now on. */
  function countWrites(): { count: number } {
    const fd = openFdOf(file);
    const counter = { count: 0 };
    (fs as { writeSync: unknown }).writeSync = (f: number, ...rest: unknown[]) => {
      if (f === fd) counter.count++;
      return (realWrite as (...a: unknown[]) => number)(f, ...rest);
    };
    return counter;
  }

  const lines = () =>
    fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as string[]);

  it("200 completions in one turn: nothing written in the turn, then one write, every line in order", async function () {
    index = await IdempotencyIndex.open({ file });
    const writes = countWrites();
    for (let i = 0; i < 200; i++) index.record(ACCOUNT, `c${i}`, `P${i}`, "h");
    assert.equal(writes.count, 0, "the answers this turn go out first");
    assert.equal(index.unflushed, true, "owed: a retry waits for them");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.count, 1);
    assert.deepEqual(
      lines().map((l) => l[1]),
      Array.from({ length: 200 }, (_, i) => `P${i}`),
    );
    await index.flush();
    assert.equal(index.unflushed, false);
  });

  it("an abandon then a new intent for the same id, in one turn: the file says so in that order, and a restart sees the intent open", async function () {
    for (let round = 0; round < 10; round++) {
      index = await IdempotencyIndex.open({ file });
      const id = `r${round}`;
      await index.intend(ACCOUNT, id, "h", "");
      index.abandon(ACCOUNT, id);
      await index.intend(ACCOUNT, id, "h", "");
      await index.close();
      index = await IdempotencyIndex.open({ file });
      assert.deepEqual(
        index.intents(ACCOUNT).map((i) => i.clientOrderId),
        [id],
        `round ${round}: the second intent is still open after the restart`,
      );
      // Settled, so the next round starts from one open intent only.
      index.record(ACCOUNT, id, `P${round}`, "h");
      await index.close();
      index = undefined;
    }
  });

  it("close() writes and syncs the completions of its own turn", async function () {
    index = await IdempotencyIndex.open({ file });
    await index.intend(ACCOUNT, "a", "h", "");
    index.record(ACCOUNT, "a", "P1", "h");
    await index.close();
    index = await IdempotencyIndex.open({ file });
    assert.equal(index.get(ACCOUNT, "a")?.orderId, "P1");
    assert.deepEqual(index.intents(ACCOUNT), []);
  });
});
