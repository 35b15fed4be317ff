import type { Node, NodeMessage, NodeMessageInFlow } from "node-red";
import { failureText, toError } from "./errors";
import { failureStatus } from "./status";

export type Send = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type InputHandler = (msg: NodeMessageInFlow, send: Send) => void | Promise<void>;

/**
 * Every input message gets exactly one outcome: the handler sends and resolves, then done();
 * or it throws, and the node turns red and calls done(err) so a Catch node sees the error.
 * Nothing escapes as an exception, so the node keeps working after any failure.
 */
export function handleInput(node: Node, handler: InputHandler): void {
  node.on("input", (msg, send, done) => {
    let outcome: Promise<void>;
    try {
      outcome = Promise.resolve(handler(msg, send));
    } catch (thrown) {
      outcome = Promise.reject(toError(thrown));
    }
    outcome.then(
      () => done(),
      (thrown: unknown) => {
        const error = toError(thrown);
        node.status(failureStatus(failureText(error)));
        done(error);
      },
    );
  });
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
