// What the node specs that trade through the pack's own gateway start from: a fresh Node-RED
// runtime per test, a PaperHost the test starts when it wants one (stopped after the flow is
// unloaded), and a WebSocket broker config "b1" that retries fast, with the host's credentials.
import assert from "node:assert/strict";
import type { FlowNode } from "node-red-node-test-helper";
import type { GatewayOptions } from "../../lib/gateway/gateway";
import { TEST_KEY, TEST_SECRET } from "./gateway-client";
import { nodeRedPerTest } from "./node-red-runtime";
import { PaperHost } from "./paper-host";

/**
 * A WebSocket broker config "b1" named "gateway" on `url`, reconnecting after 20 ms, doubling to
 * 100 ms (a test waits for reconnects); `overrides` add or replace settings.
 */
export function gatewayConfig(url: string, overrides: Record<string, unknown> = {}): FlowNode {
  return {
    id: "b1",
    type: "trading-broker",
    name: "gateway",
    kind: "websocket",
    url,
    reconnect_initial_ms: "20",
    reconnect_factor: "2",
    reconnect_max_ms: "100",
    ...overrides,
  };
}

/** The credentials of config "b1" that a PaperHost's gateway accepts, for helper.load. */
export function gatewayCredentials(): Record<string, { apiKey: string; apiSecret: string }> {
  return { b1: { apiKey: TEST_KEY, apiSecret: TEST_SECRET } };
}

export interface GatewayHostPerTest {
  /** Starts this test's PaperHost (once). */
  start(options?: Partial<GatewayOptions>): Promise<PaperHost>;
  /** This test's PaperHost, once started. */
  readonly host: PaperHost;
}

/**
 * Call inside a describe: a fresh runtime for each test, and its PaperHost closed after it; `stop`
 * runs before the host closes (what the test put in front of it, a proxy).
 */
export function gatewayHostPerTest(options: { stop?(): Promise<void> | void } = {}): GatewayHostPerTest {
  let current: PaperHost | undefined;
  nodeRedPerTest({
    stop: async () => {
      await options.stop?.();
      await current?.close();
      current = undefined;
    },
  });
  return {
    async start(gatewayOptions) {
      assert.ok(current === undefined, "one PaperHost per test");
      current = await PaperHost.start(gatewayOptions);
      return current;
    },
    get host(): PaperHost {
      assert.ok(current !== undefined, "start() the PaperHost first");
      return current;
    },
  };
}
