// The websocket kind of trading-broker and its story file in the Node-RED user dir: a corrupt file
// is reported and the flow trades on; deleting the config node deletes its file.
import assert from "node:assert/strict";
import fs from "node:fs";
import { websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import { TEST_KEY, TEST_SECRET } from "../support/gateway-client";
import { PaperHost } from "../support/paper-host";
import { NODES, place, remoteFlow, until } from "./remote-support";
import type { FlowNode } from "./support";
import { TAB, WARN, freshRuntime, helper, logged, teardownRuntime } from "./support";

const CREDENTIALS = { b1: { apiKey: TEST_KEY, apiSecret: TEST_SECRET } };

function config(url: string): FlowNode {
  return { id: "b1", type: "trading-broker", name: "gateway", kind: "websocket", url };
}

function savedSeq(file: string): number {
  try {
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { last_seq: number }).last_seq;
  } catch {
    return -1;
  }
}

describe("trading-broker (websocket): the story file", function () {
  this.timeout(20_000);
  let userDir: string;
  let host: PaperHost | undefined;

  beforeEach(async function () {
    userDir = freshRuntime();
    host = await PaperHost.start();
  });

  afterEach(async function () {
    await teardownRuntime();
    await host?.close();
    host = undefined;
  });

  it("a corrupt story file is reported naming the file, and the flow trades on", async function () {
    const file = websocketStoryFile(userDir, "b1", host!.url);
    fs.mkdirSync(`${userDir}/trading-broker`, { recursive: true });
    fs.writeFileSync(file, "{ not json");
    await helper.load(NODES, remoteFlow("corrupt story", config(host!.url)), CREDENTIALS);
    const order = await place();
    assert.equal(order.status, "FILLED");
    const warnings = logged("b1", WARN).filter((line) => line.includes(file));
    assert.equal(warnings.length, 1, logged("b1", WARN).join("\n"));
    assert.match(warnings[0]!, /is not JSON .*it is not used/);
    // Replaced by a story of its own.
    await until(
      () => savedSeq(file) >= host!.paper.lastSeq,
      () => `the story at ${file}: ${savedSeq(file)}`,
    );
  });

  it("a new URL: the story of the old one is removed once the new one is written", async function () {
    const fileA = websocketStoryFile(userDir, "b1", host!.url);
    await helper.load(NODES, remoteFlow("story A", config(host!.url)), CREDENTIALS);
    await place();
    await until(
      () => savedSeq(fileA) >= 0,
      () => `the story at ${fileA}`,
    );
    const other = await PaperHost.start();
    try {
      const fileB = websocketStoryFile(userDir, "b1", other.url);
      await helper.setFlows(remoteFlow("story B", config(other.url)), "full", CREDENTIALS);
      await place();
      await until(
        () => savedSeq(fileB) >= 0 && !fs.existsSync(fileA),
        () => `A ${fs.existsSync(fileA)}, B ${savedSeq(fileB)}`,
      );
      assert.deepEqual(
        fs.readdirSync(`${userDir}/trading-broker`).filter((name) => name.startsWith("ws-story-")),
        [fileB.split("/").pop()],
      );
    } finally {
      await helper.unload();
      await other.close();
    }
  });

  it("deleting the config node deletes its story file; a redeploy keeps it", async function () {
    const file = websocketStoryFile(userDir, "b1", host!.url);
    const flow = remoteFlow("story", config(host!.url));
    await helper.load(NODES, flow, CREDENTIALS);
    await place();
    await until(
      () => savedSeq(file) >= host!.paper.lastSeq,
      () => `the story at ${file}: ${savedSeq(file)}`,
    );
    await helper.setFlows(flow, "full", CREDENTIALS);
    await place();
    assert.ok(fs.existsSync(file), "a full redeploy keeps the story");
    await helper.setFlows([{ id: TAB, type: "tab", label: "story" }], "full");
    await until(
      () => !fs.existsSync(file),
      () => `${file} is still there`,
    );
    assert.deepEqual(
      fs.readdirSync(`${userDir}/trading-broker`).filter((name) => name.startsWith("ws-story-")),
      [],
    );
  });
});
