import assert from "node:assert/strict";
import { BrokerError } from "../../lib/protocol/errors";
import { SendQueue } from "../../lib/ws/send-queue";
import { waitFor } from "../support/wait";

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

/** Mocha arms its own test timer only once the test function has returned its promise. */
function afterMochaTimer(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe("SendQueue", function () {
  it("hands entries out oldest first", function () {
    const queue = new SendQueue<string>({ max: 10, ttlMs: 1000 });
    for (const item of ["a", "b", "c"]) queue.push(item, { onExpire: () => assert.fail("expired") });
    assert.equal(queue.length, 3);
    assert.equal(queue.peek(), "a");
    assert.deepEqual(
      [queue.shift(), queue.shift(), queue.shift(), queue.shift()],
      ["a", "b", "c", undefined],
    );
    assert.equal(queue.timerArmed, false, "an empty queue keeps no timer");
  });

  it("refuses an entry at once with QUEUE_FULL when max entries wait", function () {
    const queue = new SendQueue<number>({ max: 2, ttlMs: 1000 });
    queue.push(1, { onExpire: () => undefined });
    queue.push(2, { onExpire: () => undefined });
    assert.throws(
      () => queue.push(3, { label: "PLACE_ORDER x-3", onExpire: () => undefined }),
      (error: unknown) => {
        assert.ok(error instanceof BrokerError);
        assert.equal(error.code, "QUEUE_FULL");
        assert.match(error.message, /send queue full \(2 waiting\); PLACE_ORDER x-3 not sent/);
        return true;
      },
    );
    assert.equal(queue.length, 2);
    queue.clear();
  });

  it("expires an entry that outlives its ttl with EXPIRED ('never sent') and removes it", async function () {
    const queue = new SendQueue<string>({ max: 10, ttlMs: 1000 });
    const expired: BrokerError[] = [];
    queue.push("stale", { ttlMs: 15, label: "PLACE_ORDER s-1", onExpire: (error) => expired.push(error) });
    queue.push("fresh", { onExpire: () => assert.fail("fresh expired") });
    await waitFor(() => expired.length === 1, "the expiry");
    assert.equal(expired[0]!.code, "EXPIRED");
    assert.equal(expired[0]!.message, "PLACE_ORDER s-1 not sent within 15 ms; never sent");
    assert.deepEqual([queue.length, queue.peek()], [1, "fresh"]);
    queue.clear();
  });

  it("never hands out an entry whose deadline has passed, even before its timer fires", function () {
    let now = 0;
    const queue = new SendQueue<string>({ max: 10, ttlMs: 100, now: () => now });
    const expired: string[] = [];
    queue.push("a", { label: "a", onExpire: () => expired.push("a") });
    now = 50;
    queue.push("b", { label: "b", onExpire: () => expired.push("b") });
    now = 100;
    assert.equal(queue.shift(), "b");
    assert.deepEqual(expired, ["a"]);
    assert.equal(queue.timerArmed, false);
  });

  it("uses one timer for any number of entries, armed for the earliest deadline", async function () {
    await afterMochaTimer();
    const before = timeouts();
    const queue = new SendQueue<number>({ max: 1000, ttlMs: 10_000 });
    const expired: number[] = [];
    for (let i = 0; i < 500; i++) queue.push(i, { onExpire: () => expired.push(i) });
    queue.push(-1, { ttlMs: 20, onExpire: () => expired.push(-1) });
    assert.equal(timeouts() - before, 1);
    await waitFor(() => expired.length === 1, "the short-lived entry to expire");
    assert.deepEqual(expired, [-1], "only the entry with the early deadline");
    assert.equal(timeouts() - before, 1, "re-armed for the next deadline, still one timer");
    queue.clear();
    assert.equal(timeouts(), before);
    assert.equal(queue.timerArmed, false);
  });

  it("expires entries in deadline order when ttls differ, leaving FIFO order of the rest intact", async function () {
    const queue = new SendQueue<string>({ max: 10, ttlMs: 10_000 });
    const expired: string[] = [];
    queue.push("long", { onExpire: () => expired.push("long") });
    queue.push("short-2", { ttlMs: 30, onExpire: () => expired.push("short-2") });
    queue.push("short-1", { ttlMs: 10, onExpire: () => expired.push("short-1") });
    queue.push("tail", { onExpire: () => expired.push("tail") });
    await waitFor(() => expired.length === 2, "both short entries to expire");
    assert.deepEqual(expired, ["short-1", "short-2"]);
    assert.deepEqual(queue.clear(), ["long", "tail"]);
  });

  it("clear() drops the timer and returns the items without expiring them", function () {
    const queue = new SendQueue<string>({ max: 10, ttlMs: 1000 });
    queue.push("a", { onExpire: () => assert.fail("expired") });
    queue.push("b", { onExpire: () => assert.fail("expired") });
    assert.equal(queue.timerArmed, true);
    assert.deepEqual(queue.clear(), ["a", "b"]);
    assert.equal(queue.timerArmed, false);
    assert.equal(queue.length, 0);
  });

  it("lets onExpire push a new entry re-entrantly", async function () {
    const queue = new SendQueue<string>({ max: 2, ttlMs: 10 });
    const seen: string[] = [];
    queue.push("first", {
      onExpire: () => {
        seen.push("first");
        queue.push("second", { onExpire: () => seen.push("second") });
      },
    });
    await waitFor(() => seen.length === 2, "both expiries");
    assert.deepEqual(seen, ["first", "second"]);
    assert.equal(queue.timerArmed, false);
  });

  it("rejects bad options and ttls with RangeErrors naming them", function () {
    assert.throws(() => new SendQueue({ max: 0, ttlMs: 1 }), /max/);
    assert.throws(() => new SendQueue({ max: 1, ttlMs: 0 }), /ttlMs/);
    const queue = new SendQueue<number>({ max: 1, ttlMs: 1 });
    assert.throws(() => queue.push(1, { ttlMs: -5, onExpire: () => undefined }), /ttlMs/);
    assert.equal(queue.length, 0);
  });
});
