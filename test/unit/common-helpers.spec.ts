import { getEventListeners, setMaxListeners } from "node:events";
import assert from "node:assert/strict";
import { messageOf } from "../../lib/common/error-message";
import { newClientOrderId } from "../../lib/common/ids";
import { isRecord } from "../../lib/common/is-record";
import { RetentionQueue } from "../../lib/common/retention-queue";
import { sleep } from "../../lib/common/sleep";
import { ClientOrderId } from "../../lib/protocol/fields";

describe("lib/common helpers", function () {
  it("isRecord: plain and class objects yes; null, arrays and primitives no", function () {
    assert.equal(isRecord({}), true);
    assert.equal(isRecord(new Date()), true);
    assert.equal(isRecord(Object.create(null)), true);
    for (const value of [null, undefined, [], [1], "x", 1, true, () => 1]) {
      assert.equal(isRecord(value), false, String(value));
    }
  });

  it("messageOf: an Error's message, anything else as text, never throws", function () {
    assert.equal(messageOf(new RangeError("out of range")), "out of range");
    assert.equal(messageOf("plain"), "plain");
    assert.equal(messageOf(undefined), "undefined");
    assert.equal(messageOf({ toString: () => "custom" }), "custom");
  });

  it("newClientOrderId: 100,000 ids, all distinct, each 20 letters or digits (Kite's tag limit)", function () {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const id = newClientOrderId();
      assert.match(id, /^[0-9a-z]{20}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 100_000);
    assert.equal(ClientOrderId.safeParse(newClientOrderId()).success, true);
  });

  it("RetentionQueue: trims the oldest beyond the limit in order, across many compactions", function () {
    const queue = new RetentionQueue<"order" | "gtt">();
    const evicted: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      queue.push(`id${i}`, i % 3 === 0 ? "gtt" : "order");
      queue.trim(100, (id, kind) => {
        assert.equal(kind, Number(id.slice(2)) % 3 === 0 ? "gtt" : "order");
        evicted.push(id);
      });
    }
    assert.equal(queue.size, 100);
    assert.equal(evicted.length, 49_900);
    evicted.forEach((id, i) => assert.equal(id, `id${i}`));
    const left: string[] = [];
    queue.forEach((id) => left.push(id));
    assert.deepEqual(
      left,
      Array.from({ length: 100 }, (_, i) => `id${49_900 + i}`),
    );
    queue.clear();
    assert.equal(queue.size, 0);
  });

  it("sleep: resolves after the delay, at once when aborted, and leaves no listener behind", async function () {
    const controller = new AbortController();
    setMaxListeners(300, controller.signal);
    await Promise.all(Array.from({ length: 200 }, () => sleep(1, controller.signal)));
    assert.equal(getEventListeners(controller.signal, "abort").length, 0, "timed-out sleeps unhook");
    const waits = Array.from({ length: 200 }, () => sleep(60_000, controller.signal));
    controller.abort();
    await Promise.all(waits);
    assert.equal(getEventListeners(controller.signal, "abort").length, 0, "aborted sleeps unhook");
    await sleep(60_000, controller.signal);
  });
});
