// The WebSocket broker's story file against a real gateway (in-process, over a real ws server on
// 127.0.0.1): the write comes after the report (a crash before it re-reports a fill, never skips
// one), and a file that is corrupt, or belongs to another gateway or api key, is reported and not
// used, never crashes the broker, and is replaced by the next write.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { loadStory, websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import type { OrderEvent } from "../../lib/protocol";
import { fastSettings, useCleanup } from "../support/broker-chaos";
import { TEST_KEY } from "../support/gateway-client";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";

interface Observed {
  broker: WebSocketBroker;
  orders: OrderEvent[];
  warnings: string[];
}

describe("WebSocket story file: written after the report; corrupt or foreign files not used", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ws-story-file-"));
    const made = dir;
    cleanup(() => fs.promises.rm(made, { recursive: true, force: true }));
  });

  async function host(): Promise<PaperHost> {
    const made = await PaperHost.start();
    cleanup(() => made.close());
    return made;
  }

  function open(url: string, storyFile: string): Observed {
    const observed: Observed = {
      broker: undefined as unknown as WebSocketBroker,
      orders: [],
      warnings: [],
    };
    observed.broker = new WebSocketBroker(fastSettings(url), {
      storyFile,
      log: {
        info: () => undefined,
        warn: (m) => observed.warnings.push(m),
        error: (m) => observed.warnings.push(m),
      },
    });
    observed.broker.on("order", (event) => observed.orders.push(event));
    observed.broker.on("error", () => undefined);
    cleanup(() => observed.broker.close());
    return observed;
  }

  function savedSeq(file: string): number {
    try {
      return (JSON.parse(fs.readFileSync(file, "utf8")) as { last_seq: number }).last_seq;
    } catch {
      return -1;
    }
  }

  it("a crash before the write after a fill (10 rounds): the next broker reports that fill, once", async function () {
    const made = await host();
    const file = websocketStoryFile(dir, "b1", made.url);
    let price = 100;
    for (let round = 0; round < 10; round++) {
      const first = open(made.url, file);
      await first.broker.connect();
      price -= 1;
      const order = await first.broker.placeOrder({
        symbol: "INFY",
        side: "BUY",
        quantity: 1,
        order_type: "LIMIT",
        price,
        client_order_id: `crash${round}`,
      });
      // The placement is on disk before the fill comes.
      await waitFor(() => savedSeq(file) >= made.paper.lastSeq, `round ${round}: the placement saved`, 5000);
      // What a SIGKILL the instant the fill reached the listeners leaves on disk.
      let onDisk: string | undefined;
      first.broker.on("order", (event) => {
        if (event.order.order_id === order.order_id && event.type === "ORDER_FILLED") {
          onDisk ??= fs.readFileSync(file, "utf8");
        }
      });
      made.paper.setPrice("INFY", price - 0.5);
      await waitFor(() => onDisk !== undefined, `round ${round}: the fill reported`, 5000);
      await first.broker.close();
      fs.writeFileSync(file, onDisk!);

      const next = open(made.url, file);
      await next.broker.connect();
      await waitFor(
        () => next.orders.some((event) => event.order.order_id === order.order_id),
        `round ${round}: the fill reported by the next broker`,
        5000,
      );
      await next.broker.getOrderbook();
      assert.deepEqual(
        next.orders.map((event) => `${event.type} ${event.order.order_id}`),
        [`ORDER_FILLED ${order.order_id}`],
        `round ${round}`,
      );
      assert.deepEqual(next.warnings, [], `round ${round}`);
      await next.broker.close();
      made.paper.setPrice("INFY", 100);
    }
  });

  it("a first start writes where it starts from before it reports anything (5 fresh starts)", async function () {
    for (let round = 0; round < 5; round++) {
      const made = await host();
      await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      const file = websocketStoryFile(dir, `b${round}`, made.url);
      const first = open(made.url, file);
      await first.broker.connect();
      // A crash now, before any later write, must leave the seq to resume from: without it the next
      // process starts from its own present, and what filled in between is never reported.
      assert.equal(savedSeq(file), made.paper.lastSeq, `round ${round}: the story when connect() resolved`);
      await first.broker.close();
    }
  });

  it("a story written at seq 0 (an account without events yet) is resumed from: what came since is reported (3 rounds)", async function () {
    for (let round = 0; round < 3; round++) {
      const made = await host();
      assert.equal(made.paper.lastSeq, 0, "a new account");
      const file = websocketStoryFile(dir, `z${round}`, made.url);
      const first = open(made.url, file);
      await first.broker.connect();
      assert.equal(savedSeq(file), 0, `round ${round}: the baseline`);
      // A crash now: nothing more is written (close() would write the same story).
      await first.broker.close();
      const placed = await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      const next = open(made.url, file);
      await next.broker.connect();
      const seqs = Array.from({ length: made.paper.lastSeq }, (_, i) => i + 1);
      await waitFor(
        () => next.broker.lastSeq === seqs.length,
        `round ${round}: the order placed while down`,
        5000,
      );
      assert.deepEqual(
        next.orders.map((event) => `${event.seq} ${event.order.order_id}`),
        seqs.map((seq) => `${seq} ${placed.order_id}`),
        `round ${round}`,
      );
      await next.broker.close();
    }
  });

  const CORRUPT: [string, string | Buffer][] = [
    ["torn JSON", '{"version":1,"url_digest":"ab'],
    ["empty", ""],
    ["not a story", JSON.stringify({ version: 1, last_seq: -1 })],
    ["a later version", JSON.stringify({ version: 2 })],
    ["binary", Buffer.from([0, 159, 146, 150, 255, 0, 1])],
  ];
  it("a corrupt story file (5 kinds) is reported naming the file, not used, and replaced at the next write", async function () {
    const made = await host();
    const file = websocketStoryFile(dir, "b1", made.url);
    const seed = open(made.url, file);
    await seed.broker.connect();
    await seed.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: "seed1" });
    await seed.broker.close();
    for (const [kind, contents] of CORRUPT) {
      // Fills while no broker runs: with the story they would be reported; without, they are not news.
      await made.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
      fs.writeFileSync(file, contents);
      const next = open(made.url, file);
      assert.equal(next.warnings.length, 1, `${kind}: ${next.warnings.join("; ")}`);
      assert.ok(next.warnings[0]!.includes(file), `${kind}: ${next.warnings[0]}`);
      assert.match(next.warnings[0]!, /not (JSON|a WebSocket story)/, kind);
      await next.broker.connect();
      // Started from the gateway's present, as without a file.
      assert.equal(next.broker.lastSeq, made.paper.lastSeq, kind);
      await next.broker.getOrderbook();
      assert.deepEqual(next.orders, [], kind);
      await next.broker.close();
      const loaded = loadStory(file, made.url, TEST_KEY);
      assert.equal(loaded.kind, "ok", `${kind}: ${JSON.stringify(loaded)}`);
    }
  });

  it("a story from another gateway URL or api key is reported and not used", async function () {
    const a = await host();
    const b = await host();
    const fileA = websocketStoryFile(dir, "b1", a.url);
    const fileB = websocketStoryFile(dir, "b1", b.url);
    assert.notEqual(fileA, fileB);
    const onA = open(a.url, fileA);
    await onA.broker.connect();
    for (let i = 0; i < 4; i++) {
      await onA.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1, client_order_id: `a${i}` });
    }
    await onA.broker.close();
    assert.ok(savedSeq(fileA) >= 8, `A's story: seq ${savedSeq(fileA)}`);
    // B's account has a history of its own, older than any broker of this config there.
    await b.paper.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });

    const otherKey = loadStory(fileA, a.url, "another-key");
    assert.equal(otherKey.kind, "ignored");
    assert.match(otherKey.kind === "ignored" ? otherKey.why : "", /story of another api key/);
    // Neither the URL nor the key is in the file.
    const text = fs.readFileSync(fileA, "utf8");
    assert.ok(!text.includes(a.url) && !text.includes(TEST_KEY), text.slice(0, 200));
    fs.copyFileSync(fileA, fileB);
    const onB = open(b.url, fileB);
    assert.equal(onB.warnings.length, 1, onB.warnings.join("; "));
    assert.match(onB.warnings[0]!, /story of another gateway URL/);
    await onB.broker.connect();
    // Applied, A's seq (ahead of B's) would have stayed and made B's book look like news.
    assert.equal(onB.broker.lastSeq, b.paper.lastSeq);
    await onB.broker.getOrderbook();
    assert.deepEqual(onB.orders, []);
    await onB.broker.close();
    assert.equal(loadStory(fileB, b.url, TEST_KEY).kind, "ok", "B's own story replaced it");

    // The config's story of its earlier URL is gone once B's own is written.
    assert.equal(fs.existsSync(fileA), false);
  });
});
