// What the kite and websocket node specs share: placing through p1, waiting on a condition, the
// runtime's log searched for secrets, and the redeploy fixtures (the users' flow, the sockets,
// timers and listeners a leaked broker would leave behind).
import assert from "node:assert/strict";
import type { NodeStatus } from "node-red";
import type { OrderSnapshot } from "../../lib/protocol";
import type { FlowNode } from "./support";
import { TAB, activeResources, delay, getNode, helper, nextMessage } from "./support";

export const BROKER_EVENTS = ["order", "gtt", "quote", "state", "error"] as const;

export function hasText(text: string): (status: NodeStatus) => boolean {
  return (status) => status.text === text;
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
