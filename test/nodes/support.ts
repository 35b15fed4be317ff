// Shared fixtures for the node specs: a fresh Node-RED user dir per test (the paper broker keeps
// its journal there), a paper broker config whose prices only move when a test moves them, and
// promise helpers for "the next message on this node".
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Node, NodeMessage, NodeStatus } from "node-red";
import helper = require("node-red-node-test-helper");
import type { FlowNode } from "node-red-node-test-helper";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { BrokerConfigNode } from "../../nodes/shared/broker-link";
import type { ResolvedField } from "../../nodes/shared/typed-input";
import { isBrokerConfigNode } from "../../nodes/shared/broker-link";
import { paperConfig } from "./paper-config";
import { initHelper } from "./setup";

export { helper, paperConfig };
export type { FlowNode };

export const TAB = "f1";

let userDir: string | undefined;

/** Points the helper at Node-RED and gives it a user dir of its own; call in beforeEach. */
export function freshRuntime(): string {
  initHelper(helper);
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), "trading-broker-nodes-"));
  helper.settings({ userDir });
  return userDir;
}

/** Unloads the flow, then removes the user dir; call in afterEach. */
export async function teardownRuntime(): Promise<void> {
  await helper.unload();
  if (userDir !== undefined) fs.rmSync(userDir, { recursive: true, force: true });
  userDir = undefined;
}

/**
 * The flow a node spec starts from: a tab, a paper broker config "b1", the node under test (on that
 * tab, using that broker, wired to helper "out"), and a Catch wired to helper "caught". `node` may
 * override any of those (a second output, another broker); `extra` nodes join the same tab.
 * `config: null` leaves the broker config out (a node that runs without one).
 */
export function userFlow(
  node: { type: string; [property: string]: unknown },
  options: { config?: FlowNode | null; extra?: FlowNode[] } = {},
): FlowNode[] {
  const config = options.config === undefined ? paperConfig() : options.config;
  return [
    { id: TAB, type: "tab", label: node.type },
    ...(config === null ? [] : [config]),
    { id: "n1", z: TAB, name: "", broker: config?.id ?? "", wires: [["out"]], ...node },
    { id: "out", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
    ...(options.extra ?? []).map((extra) => ({ z: TAB, ...extra })),
  ];
}

/** Loads `flow` and waits until its paper broker is connected; the broker, for setting prices. */
export async function loadUserFlow(
  nodes: Parameters<typeof helper.load>[0],
  flow: FlowNode[],
  credentials?: Parameters<typeof helper.load>[2],
): Promise<PaperBroker> {
  await helper.load(nodes, flow, credentials);
  const config = flow.find((node) => node.type === "trading-broker");
  assert.ok(config !== undefined, "the flow has a trading-broker config node");
  return paperBroker(config.id);
}

export function configNode(id = "b1"): BrokerConfigNode {
  const node = helper.getNode(id);
  assert.ok(isBrokerConfigNode(node), `${id} is a trading-broker config node`);
  return node;
}

/** The connected paper broker behind config node `id`. */
export async function paperBroker(id = "b1"): Promise<PaperBroker> {
  const broker = await configNode(id).connection.ready();
  assert.ok(broker instanceof PaperBroker);
  return broker;
}

export function getNode(id: string): Node {
  const node = helper.getNode(id);
  assert.ok(node, `node ${id} exists`);
  return node;
}

/** The request fields a place, modify or cancel node resolved from its editor properties. */
export function editorFields(id: string): readonly ResolvedField[] {
  const node = getNode(id) as Node & { editorFields?: readonly ResolvedField[] };
  assert.ok(node.editorFields !== undefined, `${id} resolves editor fields`);
  return node.editorFields;
}

/**
 * What every broker user does when its flow names no broker (load it so): a red ring, the missing
 * config logged once, and, given a `payload`, each message failing with CONFIG without another log.
 */
export async function assertMissingBroker(id: string, type: string, payload?: unknown): Promise<void> {
  assert.deepEqual(lastStatus(id), { fill: "red", shape: "ring", text: `${type}.status.no-broker` });
  await delay(10);
  assert.deepEqual(logged(id, ERROR), [`${type}.errors.missing-config`], "logged once, at start");
  if (payload === undefined) return;
  for (let i = 0; i < 2; i++) {
    const caught = nextMessage("caught");
    getNode(id).receive({ payload });
    const error = (await caught).error as { code?: string; message?: string };
    assert.equal(error.code, "CONFIG");
    assert.match(error.message ?? "", new RegExp(`${type}\\.errors\\.missing-config`));
  }
  assert.equal(logged(id, ERROR).length, 1, "the missing config is logged once, not per message");
}

/** Unloads the flow and checks the paper broker "b1" kept none of `events`' listeners and closed. */
export async function assertReleasedOnClose(events: string[]): Promise<void> {
  const broker = await paperBroker();
  await helper.unload();
  for (const event of events) assert.equal(broker.listenerCount(event), 0, `no ${event} listener left`);
  assert.equal(broker.state, "disconnected");
}

/** What a message out of a node looks like to a spec: any properties at all. */
export type Received = NodeMessage & Record<string, unknown>;

/** The next message `nodeId` (a helper or a catch node's helper) receives. */
export function nextMessage(nodeId: string, timeoutMs = 2000): Promise<Received> {
  const node = getNode(nodeId);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.removeListener("input", onInput);
      reject(new Error(`no message on ${nodeId} within ${timeoutMs} ms`));
    }, timeoutMs);
    function onInput(msg: Received): void {
      clearTimeout(timer);
      node.removeListener("input", onInput);
      resolve(msg);
    }
    node.on("input", onInput);
  });
}

/** Collects every message `nodeId` receives until the returned function is called. */
export function collect(nodeId: string): { messages: Received[]; stop(): void } {
  const node = getNode(nodeId);
  const messages: Received[] = [];
  const onInput = (msg: Received): void => {
    messages.push(msg);
  };
  node.on("input", onInput);
  return { messages, stop: () => node.removeListener("input", onInput) };
}

/** Resolves false when no message arrives on `nodeId` within `ms`. */
export async function quietFor(nodeId: string, ms: number): Promise<boolean> {
  try {
    await nextMessage(nodeId, ms);
    return false;
  } catch {
    return true;
  }
}

/** Polls `find` every 10 ms until it gives a status; after `timeoutMs`, fails with `failure()`. */
async function pollStatus(
  find: () => NodeStatus | undefined,
  timeoutMs: number,
  failure: () => string,
): Promise<NodeStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(failure());
    await delay(10);
  }
}

/**
 * Waits until the last status `nodeId` set satisfies `predicate`. Polls the helper's spy rather
 * than its call:status events, which arrive a tick late and can describe an older call.
 */
export function statusMatching(
  nodeId: string,
  predicate: (status: NodeStatus) => boolean,
  timeoutMs = 2000,
): Promise<NodeStatus> {
  return pollStatus(
    () => {
      const last = lastStatus(nodeId);
      return last !== undefined && predicate(last) ? last : undefined;
    },
    timeoutMs,
    () => `no matching status on ${nodeId}; last was ${JSON.stringify(lastStatus(nodeId))}`,
  );
}

/** Waits until `nodeId` has at some point shown a status matching `predicate` (not only the last). */
export function statusSeen(
  nodeId: string,
  predicate: (status: NodeStatus) => boolean,
  timeoutMs = 2000,
): Promise<NodeStatus> {
  return pollStatus(
    () => statusHistory(nodeId).find(predicate),
    timeoutMs,
    () => `${nodeId} never showed a matching status; last was ${JSON.stringify(lastStatus(nodeId))}`,
  );
}

interface StatusSpy {
  lastCall?: { args: [NodeStatus] } | null;
}

/** Every status `nodeId` set, oldest first, from the helper's spy on Node.prototype.status. */
export function statusHistory(nodeId: string): NodeStatus[] {
  const node = getNode(nodeId) as Node & { status: StatusSpy };
  const calls = (
    node.status as unknown as { getCalls?: () => { thisValue: unknown; args: [NodeStatus] }[] }
  ).getCalls?.();
  return (calls ?? []).filter((call) => call.thisValue === node).map((call) => call.args[0]);
}

/** The last status `nodeId` set. */
export function lastStatus(nodeId: string): NodeStatus | undefined {
  return statusHistory(nodeId).at(-1);
}

/** Log lines the runtime wrote for node `id` at `level` (20 = error, 30 = warn). */
export function logged(id: string, level: number): string[] {
  return helper
    .log()
    .args.filter(([event]) => event.id === id && event.level === level)
    .map(([event]) => (event.msg instanceof Error ? event.msg.message : String(event.msg)));
}

export const ERROR = 20;
export const WARN = 30;

/** Active handles and requests by type, e.g. { Timeout: 2, FSReqCallback: 0 }. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
