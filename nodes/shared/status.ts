import type { NodeStatus } from "node-red";
import type { ConnectionState } from "../../lib/protocol";

/** RED._ as nodes receive it: looks a key up in the calling node set's message catalogue. */
export type Translate = (key: string, substitutions?: Record<string, string | number>) => string;

const STATE_LOOK: Readonly<Record<ConnectionState, Pick<NodeStatus, "fill" | "shape">>> = {
  connected: { fill: "green", shape: "dot" },
  connecting: { fill: "yellow", shape: "ring" },
  reconnecting: { fill: "yellow", shape: "ring" },
  disconnected: { fill: "red", shape: "ring" },
  "circuit-open": { fill: "red", shape: "dot" },
};

/** The one mapping from a broker's connection state to what every user node shows. */
export function statusForState(state: ConnectionState, t: Translate): NodeStatus {
  return { ...STATE_LOOK[state], text: t(`trading-broker.status.${state}`) };
}

/** Status texts stay short: the full message goes to done(err) and the debug sidebar. */
const MAX_STATUS_TEXT = 48;

export function shorten(text: string, max = MAX_STATUS_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function failureStatus(text: string): NodeStatus {
  return { fill: "red", shape: "dot", text: shorten(text) };
}

export function successStatus(text: string): NodeStatus {
  return { fill: "green", shape: "dot", text: shorten(text) };
}

export function problemStatus(text: string): NodeStatus {
  return { fill: "red", shape: "ring", text: shorten(text) };
}
