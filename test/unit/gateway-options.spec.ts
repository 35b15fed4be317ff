import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import { Gateway } from "../../lib/gateway/gateway";
import type { GatewayOptions } from "../../lib/gateway/options";
import { parseGatewayOptions } from "../../lib/gateway/options";
import { WIRE_LIMITS } from "../../lib/protocol/wire";
import { TEST_KEY, TEST_SECRET } from "../support/gateway-client";

describe("Gateway options", function () {
  const broker = new PaperBroker({ seed: 1, volatility: 0, interval_ms: 60_000 });
  const credentials = new Map([[TEST_KEY, { secret: TEST_SECRET }]]);
  const base = (): GatewayOptions => ({ broker, credentials });

  after(async function () {
    await broker.close();
  });

  /** Each bad value, the option the error must name, and the words of its rule. */
  const bad: [string, Partial<Record<string, unknown>>, string, RegExp][] = [
    ["port", { port: 65536 }, "port", /from 0 to 65535, got 65536/],
    ["port", { port: -1 }, "port", /from 0 to 65535, got -1/],
    ["maxFrameBytes", { maxFrameBytes: WIRE_LIMITS.maxFrameBytes + 1 }, "maxFrameBytes", /from 0 to/],
    ["maxBatch", { maxBatch: WIRE_LIMITS.maxBatch + 1 }, "maxBatch", /from 0 to 100, got 101/],
    ["authWindowMs", { authWindowMs: 60_000 }, "authWindowMs", /got 60000/],
    ["authTimeoutMs", { authTimeoutMs: Number.NaN }, "authTimeoutMs", /got NaN/],
    ["maxConnections", { maxConnections: 0 }, "maxConnections", /an integer from 1, got 0/],
    ["maxConnections", { maxConnections: 2.5 }, "maxConnections", /an integer from 1, got 2.5/],
    ["maxConnections", { maxConnections: "4096" }, "maxConnections", /an integer from 1, got 4096/],
    ["maxStrikes", { maxStrikes: Number.POSITIVE_INFINITY }, "maxStrikes", /got Infinity/],
    ["closeTimeoutMs", { closeTimeoutMs: "1000" }, "closeTimeoutMs", /a number from 0, got 1000/],
    ["rate.perSecond", { rate: { perSecond: 0 } }, "rate.perSecond", /greater than 0, got 0/],
    ["keyRate.perSecond", { keyRate: { perSecond: -5 } }, "keyRate.perSecond", /greater than 0, got -5/],
    ["rate.burst", { rate: { burst: -1 } }, "rate.burst", /from 0, got -1/],
    ["heartbeat", { heartbeat: { intervalMs: -1 } }, "heartbeat.intervalMs", /got -1/],
    ["path", { path: "v1" }, "path", /must start with "\/", got v1/],
    ["credentials", { credentials: "secret" }, "credentials", /Map of api keys/],
    ["durable", { durable: true }, "durable", /must be a function/],
  ];

  for (const [what, change, name, rule] of bad) {
    it(`refuses ${what} ${String(JSON.stringify(change))} with a RangeError naming ${name} and its rule`, function () {
      assert.throws(
        () => parseGatewayOptions({ ...base(), ...change }),
        (error: unknown) => {
          assert.ok(error instanceof RangeError, `a RangeError, got ${String(error)}`);
          assert.match(error.message, new RegExp(`^gateway option ${name.replace(".", "\\.")} `));
          assert.match(error.message, rule);
          return true;
        },
      );
    });
  }

  it("refuses a bad option at start, before it opens the idempotency file or listens", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-options-"));
    const file = path.join(dir, "ids.jsonl");
    try {
      for (let i = 0; i < 20; i++) {
        await assert.rejects(
          Gateway.start({ ...base(), idempotencyFile: file, maxBatch: 1000 + i }),
          /gateway option maxBatch must be a number from 0 to 100/,
        );
      }
      assert.equal(fs.existsSync(file), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fills in the documented defaults", function () {
    const settings = parseGatewayOptions(base());
    assert.equal(settings.host, "127.0.0.1");
    assert.equal(settings.port, 0);
    assert.equal(settings.path, "/v1");
    assert.equal(settings.authTimeoutMs, 5000);
    assert.equal(settings.authWindowMs, WIRE_LIMITS.authWindowMs);
    assert.equal(settings.maxFrameBytes, WIRE_LIMITS.maxFrameBytes);
    assert.equal(settings.maxPayloadBytes, WIRE_LIMITS.maxFrameBytes * 16);
    assert.equal(settings.maxBatch, WIRE_LIMITS.maxBatch);
    assert.deepEqual(settings.rate, { perSecond: 500, burst: 1000 });
    assert.deepEqual(settings.keyRate, { perSecond: 500, burst: 1000 });
    assert.deepEqual(settings.heartbeat, { intervalMs: 10_000, maxMissedPongs: 2 });
    assert.equal(settings.maxConnectionsPerIp, 256);
    assert.equal(settings.maxConnections, 4096);
    assert.equal(settings.maxConnectionsPerKey, 64);
    assert.equal(settings.maxStrikes, 10);
    assert.equal(settings.pingIdleMs, 10_000);
    assert.equal(settings.replayBuffer, 10_000);
    assert.equal(settings.maxBufferedBytes, 8 * 1024 * 1024);
    assert.equal(settings.maxAnswerFrameBytes, 1024 * 1024);
    assert.equal(settings.closeTimeoutMs, 1000);
    assert.equal(settings.account, broker.settings.account);
    assert.equal(settings.broker, broker);
    assert.equal(settings.credentials, credentials);
    assert.equal(settings.now, Date.now);
  });

  it("derives the defaults that follow other options, and floors the ones a zero would break", function () {
    const settings = parseGatewayOptions({
      ...base(),
      maxFrameBytes: 1000,
      rate: { perSecond: 7, burst: 2.9 },
      maxBatch: 0,
      maxAnswerFrameBytes: 0,
      account: "acme",
    });
    assert.equal(settings.maxPayloadBytes, 16_000);
    assert.deepEqual(settings.rate, { perSecond: 7, burst: 2 });
    assert.deepEqual(settings.keyRate, { perSecond: 7, burst: 2 });
    assert.equal(settings.maxBatch, 1);
    assert.equal(settings.maxAnswerFrameBytes, 1);
    assert.equal(settings.account, "acme");
    const keyed = parseGatewayOptions({ ...base(), rate: { burst: 0 }, keyRate: { perSecond: 3, burst: 0 } });
    assert.deepEqual(keyed.rate, { perSecond: 500, burst: 1 });
    assert.deepEqual(keyed.keyRate, { perSecond: 3, burst: 1 });
  });
});
