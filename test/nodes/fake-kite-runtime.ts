// A fake Kite (127.0.0.1) beside a fresh Node-RED runtime for each test of a describe, and a Kite
// broker config "b1" on its endpoints: what the node specs that run a node on Kite start from.
import assert from "node:assert/strict";
import type { FlowNode } from "node-red-node-test-helper";
import { FakeKite } from "../fakes/fake-kite";
import { nodeRedPerTest } from "../support/node-red-runtime";

export interface FakeKiteRuntime {
  /** This test's fake Kite. */
  readonly fake: FakeKite;
  /** A Kite broker config "b1" on the fake's REST and ticker URLs; `overrides` adds settings. */
  config(overrides?: Record<string, unknown>): FlowNode;
  /** The config's credentials, for helper.load. */
  readonly credentials: Record<string, { apiKey: string; accessToken: string }>;
}

/** Call inside a describe: registers the beforeEach and afterEach that start and stop both. */
export function fakeKitePerTest(apiKey: string, accessToken: string): FakeKiteRuntime {
  let current: FakeKite | undefined;
  nodeRedPerTest({
    start: async () => {
      current = await FakeKite.start({ apiKey, accessToken, heartbeatMs: 200 });
    },
    stop: async () => {
      await current?.close();
      current = undefined;
    },
  });
  return {
    get fake(): FakeKite {
      assert.ok(current !== undefined, "the fake Kite runs only inside a test");
      return current;
    },
    config(overrides = {}) {
      const fake = this.fake;
      return {
        id: "b1",
        type: "trading-broker",
        name: "kite",
        kind: "kite",
        root: fake.restUrl,
        ticker_url: fake.tickerUrl,
        ...overrides,
      };
    },
    credentials: { b1: { apiKey, accessToken } },
  };
}
