// A fresh Node-RED runtime for each test of a describe: the test helper pointed at Node-RED with a
// user dir of its own (the paper broker keeps its journal and risk state there), and the flow
// unloaded and the dir removed after the test. Whatever a spec runs beside the runtime (a fake
// venue, a gateway) starts after the runtime is fresh and stops after the flow is unloaded, so no
// node of the flow is left talking to something that has gone.
import assert from "node:assert/strict";
import { freshRuntime, teardownRuntime } from "../nodes/support";

export interface RuntimeCompanion {
  /** Runs in beforeEach, once the runtime is fresh. */
  start?(): Promise<void> | void;
  /** Runs in afterEach, once the flow is unloaded and the user dir removed. */
  stop?(): Promise<void> | void;
}

export interface NodeRedPerTest {
  /** This test's user dir. */
  readonly userDir: string;
}

/** Call inside a describe: registers the beforeEach and afterEach that start and stop the runtime. */
export function nodeRedPerTest(companion: RuntimeCompanion = {}): NodeRedPerTest {
  let userDir: string | undefined;
  beforeEach(async function () {
    userDir = freshRuntime();
    await companion.start?.();
  });
  afterEach(async function () {
    await teardownRuntime();
    userDir = undefined;
    await companion.stop?.();
  });
  return {
    get userDir(): string {
      assert.ok(userDir !== undefined, "the runtime's user dir exists only inside a test");
      return userDir;
    },
  };
}
