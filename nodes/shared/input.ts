import type { Node, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import { failureText, toError } from "./errors";
import { failureStatus } from "./status";

export type Send = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type InputHandler = (msg: NodeMessageInFlow, send: Send) => void | Promise<void>;

/**
 * How long a closing node waits for the requests it has in flight. Node-RED waits 15 s for a
 * node's close; this stays under it so the node still finishes its own close in time.
 */
export const CLOSE_WAIT_MS = 10_000;

/**
 * Every input message gets exactly one outcome: the handler sends and resolves, then done();
 * or it throws, and the node turns red and calls done(err) so a Catch node sees the error.
 * Nothing escapes as an exception, so the node keeps working after any failure.
 *
 * A redeploy or a stop closes the node while requests may be in flight (an order the broker
 * accepted, its answer on the way). By then the wires lead nowhere, so an outcome sent after the
 * close would be reported nowhere: the close waits for them (up to CLOSE_WAIT_MS), and each
 * outcome that arrives after the close began is also written to the log, naming the order.
 */
export function handleInput(
  node: Node,
  handler: InputHandler,
  /** How a failure's red status is shown (an order node defers to the trading state). */
  show: (status: NodeStatus) => void = (status) => node.status(status),
): void {
  const pending = new Set<Promise<void>>();
  let closing = false;
  // Node-RED delivers a sent message on its next setImmediate, and a stop in between drops it: the
  // next node's close removes its input listeners first. So what was sent in the turn the close
  // comes in is logged too (the queued clear runs after Node-RED's delivery of those messages).
  const sentThisTurn: Parameters<Send>[0][] = [];
  const tracked =
    (send: Send): Send =>
    (out) => {
      send(out);
      if (closing) return;
      if (sentThisTurn.length === 0) setImmediate(() => (sentThisTurn.length = 0));
      sentThisTurn.push(out);
    };
  node.on("input", (msg, send, done) => {
    // Named before the handler runs: on success it replaces msg.payload with its answer.
    const asked = requestName(msg.payload);
    let outcome: Promise<void>;
    try {
      outcome = Promise.resolve(handler(msg, tracked(send)));
    } catch (thrown) {
      outcome = Promise.reject(toError(thrown));
    }
    const settled = outcome.then(
      () => {
        if (closing) node.warn(`after the flow stopped, ${asked}: ${answerName(msg.payload)}`);
        done();
      },
      (thrown: unknown) => {
        const error = toError(thrown);
        show(failureStatus(failureText(error)));
        if (closing) {
          const code = (error as { code?: unknown }).code;
          node.warn(
            `after the flow stopped, ${asked} failed: ${typeof code === "string" ? `${code}: ` : ""}${failureText(error)}`,
          );
        }
        done(error);
      },
    );
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
  });
  node.on("close", (_removed: boolean, done: () => void) => {
    closing = true;
    for (const out of sentThisTurn.splice(0)) {
      node.warn(`sent just as the flow stopped, so it may not reach the next node: ${sentName(out)}`);
    }
    if (pending.size === 0) {
      done();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
    void Promise.race([Promise.allSettled(pending), waited]).then(() => {
      clearTimeout(timer);
      if (pending.size > 0) {
        node.warn(
          `closed with ${pending.size} request(s) still in flight after ${CLOSE_WAIT_MS} ms; each outcome is logged when it comes`,
        );
      }
      done();
    });
  });
}

/** The request an input message makes, for the log: its order or GTT ids when it names them. */
function requestName(payload: unknown): string {
  if (!isPlainObject(payload)) return "a request";
  const parts: string[] = [];
  for (const key of ["client_order_id", "order_id", "gtt_id"] as const) {
    const value = payload[key];
    if (typeof value === "string" || typeof value === "number") parts.push(`${key} ${value}`);
  }
  return parts.length === 0 ? "a request" : `the request for ${parts.join(", ")}`;
}

/** What a send carried, for the log: the first message's answer. */
function sentName(out: Parameters<Send>[0]): string {
  const first = Array.isArray(out) ? out.flat().find((m) => m !== null && m !== undefined) : out;
  return first === undefined || first === null ? "nothing" : answerName(first.payload);
}

/** An answer, for the log: an order's ids and status, a GTT's id and status, or its kind. */
function answerName(payload: unknown): string {
  if (Array.isArray(payload)) return `${payload.length} item(s)`;
  if (!isPlainObject(payload)) return typeof payload;
  if (typeof payload.order_id === "string") {
    const client = typeof payload.client_order_id === "string" ? ` (${payload.client_order_id})` : "";
    return `order ${payload.order_id}${client} ${String(payload.status)}`;
  }
  if (typeof payload.gtt_id === "string" || typeof payload.gtt_id === "number") {
    return `GTT ${payload.gtt_id} ${String(payload.status)}`;
  }
  return "done";
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * msg.payload as the fields of a request. Anything but a plain object (an inject's timestamp, a
 * string) carries no fields, so an order configured entirely in the editor can be triggered by
 * any message. Copied, so filling in editor values never changes the sender's object.
 */
export function payloadFields(payload: unknown): Record<string, unknown> {
  return isPlainObject(payload) ? { ...payload } : {};
}

/** Editor values fill only the fields the payload leaves out: the payload always wins. */
export function fillMissing(
  fields: Record<string, unknown>,
  defaults: Record<string, unknown>,
): Record<string, unknown> {
  for (const [key, value] of Object.entries(defaults)) {
    if (value !== undefined && fields[key] === undefined) fields[key] = value;
  }
  return fields;
}
