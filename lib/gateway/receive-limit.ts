import type { WebSocket } from "ws";

/**
 * Sets the largest frame `ws` will receive on one connection. ws takes `maxPayload` once per
 * server, but a socket that has not authenticated should not get the authenticated limit: ws
 * refuses an over-long frame from its header (close 1009), before buffering a byte of its
 * payload, whereas any check of ours runs only once the whole frame is in memory. ws has no
 * public setter, so this writes its receiver's field; on a ws without it (a future version) it
 * returns false and the gateway's own check after receipt still applies.
 */
export function setReceiveLimit(ws: WebSocket, bytes: number): boolean {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver === undefined || typeof receiver._maxPayload !== "number") return false;
  receiver._maxPayload = bytes;
  return true;
}
