import assert from "node:assert/strict";
import { KITE_LOGIN_NEEDED } from "../../lib/kite/errors";
import { BrokerError } from "../../lib/protocol/errors";
import type { KiteHarness } from "../fakes/kite-harness";
import { startKite } from "../fakes/kite-harness";

/**
 * A new user has only the API key and API secret: the broker starts without an access token, so
 * it must send nothing to Kite (Kite would only refuse) and refuse every call, naming the login,
 * until the login's token arrives; then it connects by itself.
 */
describe("KiteBroker: started without an access token (first login)", function () {
  this.timeout(20_000);
  let h: KiteHarness | undefined;
  afterEach(async function () {
    await h?.close();
    h = undefined;
  });

  async function refusedForLogin(what: string, call: () => Promise<unknown>): Promise<void> {
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof BrokerError, `${what}: ${String(error)}`);
      assert.equal(error.code, "AUTH", what);
      assert.equal(error.message, KITE_LOGIN_NEEDED, what);
      return true;
    });
  }

  /** What the browser gets from Kite's login page: the one-time request_token in the redirect. */
  async function requestToken(harness: KiteHarness): Promise<string> {
    const url = `${harness.fake.restUrl}/connect/login?v=3&api_key=${harness.fake.apiKey}`;
    const answer = await fetch(url, { redirect: "manual" });
    assert.equal(answer.status, 302);
    const token = new URL(answer.headers.get("location")!).searchParams.get("request_token");
    assert.ok(token);
    return token;
  }

  it("refuses every call AUTH naming the login and sends nothing to Kite, however often asked", async function () {
    h = await startKite({ access_token: undefined }, {}, false);
    const broker = h.broker;
    assert.equal(broker.loginNeeded, true);
    for (let round = 0; round < 20; round++) {
      await refusedForLogin("connect", () => broker.connect());
      await refusedForLogin("placeOrder", () =>
        broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
      );
      await refusedForLogin("getOrderbook", () => broker.getOrderbook());
      await refusedForLogin("getPositions", () => broker.getPositions());
      await refusedForLogin("getAccount", () => broker.getAccount());
      await refusedForLogin("getGtts", () => broker.getGtts());
      await refusedForLogin("subscribeQuotes", () => broker.subscribeQuotes(["NSE:INFY"]));
      await refusedForLogin("findInstruments", () => broker.findInstruments({ text: "INFY" }));
    }
    assert.equal(broker.state, "disconnected");
    assert.deepEqual(h.fake.requests, [], "nothing reached Kite");
    assert.equal(h.fake.tickerConnections, 0);
    assert.deepEqual(h.errors, [], "no error events: the refusals are the calls' own outcomes");
  });

  it("a refused login changes nothing; a good one connects the broker and orders go through", async function () {
    h = await startKite({ access_token: undefined }, {}, false);
    h.fake.setPrice("INFY", 100);
    await refusedForLogin("connect", () => h!.broker.connect());

    await assert.rejects(
      h.broker.login(await requestToken(h), "wrong-secret"),
      (error: BrokerError) => error.code === "AUTH",
    );
    assert.equal(h.broker.loginNeeded, true);
    await refusedForLogin("placeOrder after a refused login", () =>
      h!.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 }),
    );
    assert.equal(h.fake.tickerConnections, 0);

    const { accessToken } = await h.broker.login(await requestToken(h), h.fake.apiSecret);
    assert.equal(accessToken, h.fake.accessToken);
    assert.equal(h.broker.loginNeeded, false);
    await h.log.until(() => h!.broker.state === "connected", "connected after the login", 5000);
    const order = await h.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.ok(["OPEN", "FILLED"].includes(order.status), order.status);
  });
});
