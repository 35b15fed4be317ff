import assert from "node:assert/strict";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import { KiteRestClient, MAX_KITE_ANSWER_BYTES } from "../../lib/kite/rest-client";
import type { BrokerError } from "../../lib/protocol/errors";
import { FakeKite } from "../fakes/fake-kite";

/** No answer may be unbounded: what Kite (or a proxy before it) sends is read up to a limit. */
describe("KiteRestClient: answers are read up to a bound", function () {
  this.timeout(30_000);
  let fake: FakeKite;
  const stop = new AbortController();
  const clients: KiteRestClient[] = [];
  beforeEach(async function () {
    fake = await FakeKite.start();
  });
  afterEach(async function () {
    for (const client of clients.splice(0)) client.destroy();
    await fake.close();
  });

  function client(maxAnswerBytes?: number): KiteRestClient {
    const settings = KiteSettings.parse({
      api_key: fake.apiKey,
      access_token: fake.accessToken,
      root: fake.restUrl,
      ticker_url: fake.tickerUrl,
    });
    const made = new KiteRestClient(settings, stop.signal, () => undefined, maxAnswerBytes);
    clients.push(made);
    return made;
  }

  /** A JSON answer of about `bytes` bytes that Kite would accept as a positions answer. */
  function bigPositions(bytes: number): unknown {
    return { status: "success", data: { net: [], day: [], padding: "x".repeat(bytes) } };
  }

  const positions = (rest: KiteRestClient): Promise<string> =>
    rest
      .call("request", "positions request", (k) => k.getPositions())
      .then(
        () => "read",
        (e: BrokerError) => `${e.code}: ${e.message}`,
      );

  it("an answer over the bound fails as a network error, 5 times, and the next read still works", async function () {
    const rest = client(1024 * 1024);
    for (let round = 0; round < 5; round++) {
      fake.failNext("GET /portfolio/positions", 200, bigPositions(2 * 1024 * 1024), "application/json");
      const outcome = await positions(rest);
      assert.match(
        outcome,
        /^NETWORK: .*larger than 1048576 bytes; not read/,
        `round ${round}: ${outcome.slice(0, 200)}`,
      );
      assert.ok(outcome.length < 2000, "the error does not carry the answer");
      assert.equal(await positions(rest), "read", `round ${round}: the read after it`);
    }
  });

  it("the default bound is finite and passes an answer of several MB (Kite's instrument lists are)", async function () {
    assert.ok(Number.isFinite(MAX_KITE_ANSWER_BYTES) && MAX_KITE_ANSWER_BYTES >= 16 * 1024 * 1024);
    const rest = client();
    fake.failNext("GET /portfolio/positions", 200, bigPositions(8 * 1024 * 1024), "application/json");
    assert.equal(await positions(rest), "read");
  });
});
