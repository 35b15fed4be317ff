// The WebSocket broker's intent mark (websocket-intent-file.ts): what is read back is the highest
// mark written or "unknown", never a different number; it never goes down; what is asked for in one
// turn shares one write; and a mark that cannot be read makes the next broker mark every event it
// replays possible_duplicate, while events new to it stay unmarked.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import {
  IntentMark,
  intentRecord,
  loadIntent,
  websocketIntentFile,
} from "../../lib/brokers/websocket-intent-file";
import { websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import type { OrderEvent } from "../../lib/protocol";
import { fastSettings, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("WebSocket intent mark", function () {
  this.timeout(20_000);
  const cleanup = useCleanup();
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-intent-"));
    const made = dir;
    cleanup(() => fs.promises.rm(made, { recursive: true, force: true }));
  });

  it("reads back the highest mark, never below the floor; a turn's asks share a write", async function () {
    const file = path.join(dir, "sub", "a.json.intent");
    assert.deepEqual(loadIntent(file), { kind: "missing" });
    let durableCalls = 0;
    const mark = new IntentMark(file, 50, quiet, () => (durableCalls += 1));
    cleanup(() => mark.close());
    await mark.reach(3);
    assert.deepEqual(loadIntent(file), { kind: "ok", seq: 50 });
    for (let seq = 51; seq <= 1050; seq++) mark.want(seq);
    await mark.reach(1050);
    assert.deepEqual(loadIntent(file), { kind: "ok", seq: 1050 });
    // The first write, then at most two for the thousand asks (one may have started at the first).
    assert.ok(mark.writes <= 3, `${mark.writes} writes`);
    assert.equal(durableCalls, mark.writes);
    mark.want(7);
    await mark.reach(7);
    assert.deepEqual(loadIntent(file), { kind: "ok", seq: 1050 }, "never goes down");
    assert.equal(fs.statSync(file).size, 64);
  });

  it("a torn or altered record (every byte, every length) reads as unknown, never as another mark", function () {
    const file = path.join(dir, "b.intent");
    const good = intentRecord(123456);
    for (let at = 0; at < good.length; at++) {
      for (const byte of [0x30 + ((good[at]! - 0x2f) % 10), 0x61, 0x20, 0x00]) {
        if (byte === good[at]) continue;
        const bad = Buffer.from(good);
        bad[at] = byte;
        fs.writeFileSync(file, bad);
        const read = loadIntent(file);
        assert.ok(read.kind === "unknown", `byte ${at} = ${byte}: ${JSON.stringify(read)}`);
      }
    }
    for (let length = 0; length < good.length; length++) {
      fs.writeFileSync(file, good.subarray(0, length));
      assert.equal(loadIntent(file).kind, "unknown", `${length} bytes`);
    }
    // A huge file is refused by its size, not read.
    fs.writeFileSync(file, "");
    fs.truncateSync(file, 64 * 1024 * 1024);
    assert.match(JSON.stringify(loadIntent(file)), /not an intent mark \(67108864 bytes\)/);
    fs.writeFileSync(file, good);
    assert.deepEqual(loadIntent(file), { kind: "ok", seq: 123456 });
  });

  async function observe(
    url: string,
    storyFile: string,
  ): Promise<{ orders: OrderEvent[]; warnings: string[]; broker: WebSocketBroker }> {
    const warnings: string[] = [];
    const orders: OrderEvent[] = [];
    const broker = new WebSocketBroker(fastSettings(url), {
      storyFile,
      log: { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    });
    broker.on("order", (event) => orders.push(event));
    broker.on("error", () => undefined);
    cleanup(() => broker.close());
    await broker.connect();
    return { orders, warnings, broker };
  }

  it("after a clean stop nothing is marked; with a torn mark every replayed event is, and later ones are not (3 rounds)", async function () {
    const made = await PaperHost.start();
    cleanup(() => made.close());
    const story = websocketStoryFile(dir, "b1", made.url);
    for (let round = 0; round < 3; round++) {
      const first = await observe(made.url, story);
      await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      await waitFor(() => first.orders.length === 2, `round ${round}: the first broker's events`, 5000);
      await first.broker.close();
      // Made while no broker runs: new to the next one.
      await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      const torn = round !== 1;
      if (torn)
        fs.writeFileSync(websocketIntentFile(story), intentRecord(made.paper.lastSeq).subarray(0, 40));
      const next = await observe(made.url, story);
      await waitFor(() => next.orders.length === 2, `round ${round}: the replayed events`, 5000);
      await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      await waitFor(() => next.orders.length === 4, `round ${round}: the live events`, 5000);
      assert.deepEqual(
        next.orders.map((event) => event.possible_duplicate === true),
        [torn, torn, false, false],
        `round ${round}`,
      );
      if (torn) {
        assert.equal(next.warnings.length, 1, next.warnings.join("; "));
        assert.ok(next.warnings[0]!.includes(websocketIntentFile(story)), next.warnings[0]);
      } else assert.deepEqual(next.warnings, []);
      await next.broker.close();
      assert.equal(loadIntent(websocketIntentFile(story)).kind, "ok", `round ${round}: rewritten`);
    }
  });
});
