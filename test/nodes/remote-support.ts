// What the kite and websocket node specs share: the nodes and flow they deploy, placing through
// p1, waiting on a condition, the runtime's log searched for secrets, the refusal of invalid
// settings, and the redeploy fixtures (the users' flow, the sockets, timers and listeners a leaked
// broker would leave behind).
import assert from "node:assert/strict";
import type { NodeAPI, NodeStatus } from "node-red";
import type { OrderSnapshot } from "../../lib/protocol";
import brokerNode = require("../../nodes/broker-config/broker-config");
import orderEventsNode = require("../../nodes/order-events/order-events");
import orderbookNode = require("../../nodes/orderbook/orderbook");
import placeOrderNode = require("../../nodes/place-order/place-order");
import quotesNode = require("../../nodes/quotes/quotes");
import type { FlowNode } from "./support";
import {
  TAB,
  activeResources,
  configNode,
  delay,
  getNode,
  helper,
  nextMessage,
  statusMatching,
} from "./support";

export const BROKER_EVENTS = ["order", "gtt", "quote", "state", "error"] as const;

/** The config node and the users that trade through it. */
export const NODES = [brokerNode, placeOrderNode, orderEventsNode, orderbookNode, quotesNode];

const USERS: FlowNode[] = [
  { id: "p1", type: "trading-place-order", z: TAB, name: "order", broker: "b1", wires: [["out"]] },
  { id: "e1", type: "trading-order-events", z: TAB, name: "events", broker: "b1", wires: [["events"]] },
  { id: "u1", type: "trading-orderbook", z: TAB, name: "book", broker: "b1", wires: [["book"]] },
];

const OUTPUTS: FlowNode[] = [
  { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
  { id: "out", type: "helper", z: TAB },
  { id: "events", type: "helper", z: TAB },
  { id: "book", type: "helper", z: TAB },
  { id: "caught", type: "helper", z: TAB },
];

/** A tab with the config node `config`, its users (place-order, order-events, orderbook) and their outputs. */
export function remoteFlow(label: string, config: FlowNode, users: FlowNode[] = USERS): FlowNode[] {
  return [{ id: TAB, type: "tab", label }, config, ...users, ...OUTPUTS];
}

/** The broker config node `id` made, once it is ready, checked to be of the kind expected. */
export async function brokerOf<T>(kind: abstract new (...args: never[]) => T, id = "b1"): Promise<T> {
  const broker = await configNode(id).connection.ready();
  assert.ok(broker instanceof kind, `${id} made a ${kind.name}`);
  return broker;
}

/**
 * Invalid settings as the users meet them: every user shows it, and an order sent to p1 fails
 * with an error matching `rule` (returned, for more checks).
 */
export async function assertRefusedAsInvalid(
  rule: RegExp,
  status = "invalid-settings",
): Promise<{ message: string; source: { id: string } }> {
  for (const id of ["p1", "e1", "u1"]) {
    await statusMatching(id, hasText(`trading-broker.status.${status}`));
  }
  const caught = nextMessage("caught");
  getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
  const error = (await caught).error as { message: string; source: { id: string } };
  assert.match(error.message, rule);
  return error;
}

/**
 * A node module that registers nothing and keeps the node API the runtime hands every module:
 * what a node reads through RED.nodes.getCredentials is what the runtime stores (and saves on the
 * next deploy). Load it with the nodes under test.
 */
export function runtimeProbe(): { module: (RED: NodeAPI) => void; credentials(id: string): unknown } {
  let red: NodeAPI | undefined;
  return {
    module: (RED) => {
      red = RED;
    },
    credentials: (id) => {
      assert.ok(red !== undefined, "the probe was loaded with the nodes");
      return red.nodes.getCredentials(id);
    },
  };
}

export function hasText(text: string): (status: NodeStatus) => boolean {
  // Status texts are cut at 48 characters; under the helper the text is the catalogue key, so a long key arrives cut.
  return (status) =>
    status.text === text ||
    (typeof status.text === "string" &&
      status.text.endsWith("…") &&
      text.startsWith(status.text.slice(0, -1)));
}

/** Places through place-order node p1 (a BUY of 1 INFY unless `fields` say otherwise). */
export async function place(fields: Record<string, unknown> = {}): Promise<OrderSnapshot> {
  const out = nextMessage("out", 5000);
  getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1, ...fields } });
  return (await out).payload as OrderSnapshot;
}

/** Everything the runtime logged, Error stacks included. */
export function everyLogLine(): string {
  return helper
    .log()
    .args.map(([event]) => {
      const msg = event.msg;
      if (msg instanceof Error) return `${msg.message}\n${msg.stack ?? ""}`;
      return typeof msg === "string" ? msg : JSON.stringify(msg);
    })
    .join("\n");
}

export function assertNeverLogged(...secrets: string[]): void {
  const lines = everyLogLine();
  assert.ok(lines.length > 0, "the runtime logged something to search");
  for (const secret of secrets) assert.ok(!lines.includes(secret), `"${secret}" is not in the log`);
}

/** Waits until `predicate` holds, polling every 10 ms; fails with `what` after `timeoutMs`. */
export async function until(predicate: () => boolean, what: () => string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await delay(10);
  }
}

/** Sockets of both ends (a fake venue lives in this process too). */
export function sockets(): number {
  const counts = activeResources();
  return (counts.TCPSocketWrap ?? 0) + (counts.TCPWRAP ?? 0) + (counts.TLSWRAP ?? 0);
}

export function timers(): number {
  return activeResources().Timeout ?? 0;
}

export function listenerCounts(emitter: NodeJS.EventEmitter): Record<string, number> {
  return Object.fromEntries(BROKER_EVENTS.map((event) => [event, emitter.listenerCount(event)]));
}

/** The users a redeploy test deploys again and again: place-order, order-events, and quotes for INFY, TCS. */
export function redeployUsers(round: number): FlowNode[] {
  return [
    { id: "p1", type: "trading-place-order", z: TAB, name: `order ${round}`, broker: "b1", wires: [["out"]] },
    {
      id: "e1",
      type: "trading-order-events",
      z: TAB,
      name: `events ${round}`,
      broker: "b1",
      wires: [["events"]],
    },
    {
      id: "q1",
      type: "trading-quotes",
      z: TAB,
      name: "quotes",
      broker: "b1",
      symbols: "INFY, TCS",
      wires: [["ticks"]],
    },
    { id: "ticks", type: "helper", z: TAB },
  ];
}
