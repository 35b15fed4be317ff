import type { WebSocketBroker } from "../../lib/brokers/websocket-broker";

/** The WebSocket broker each config node made last, by node id: it outlives a redeploy. */
const lastWebSocketBroker = new Map<string, WebSocketBroker>();

/**
 * A redeploy (or the last user leaving) closes a config's broker and the next user makes a new
 * one, which would start from "now": fills made while neither was connected would never reach the
 * flow. The new one takes up the old one's story instead and resumes from its last seq. The story
 * the broker read from its file (websocket-story-file.ts, for a process that starts again) is the
 * fallback: the old broker in memory wrote that file last, so it is never behind it.
 */
export function carryStory(configId: string, broker: WebSocketBroker): void {
  const story = lastWebSocketBroker.get(configId)?.story();
  if (story !== undefined) broker.carryOn(story);
  lastWebSocketBroker.set(configId, broker);
}

/** The config node was removed: nothing will take up its story. */
export function forgetStory(configId: string): void {
  lastWebSocketBroker.delete(configId);
}
