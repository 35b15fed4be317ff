// trading-instruments through the Node-RED runtime: the built-in NSE list behind the paper broker,
// and Kite's instrument list behind the Kite broker (the fake Kite on 127.0.0.1).
import assert from "node:assert/strict";
import type { InstrumentListing } from "../../lib/market/instrument-lookup";
import { InstrumentListing as ListingSchema } from "../../lib/market/instrument-lookup";
import brokerNode = require("../../nodes/broker-config/broker-config");
import instrumentsNode = require("../../nodes/instruments/instruments");
import { fakeKitePerTest } from "./fake-kite-runtime";
import type { FlowNode } from "./support";
import {
  TAB,
  collect,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  nextMessage,
  paperConfig,
  teardownRuntime,
  userFlow,
} from "./support";

const NODES = [brokerNode, instrumentsNode];
const API_KEY = "instruments-key";
const TOKEN = "instruments-token-never-logged-51c2";

function flow(config: FlowNode, node: Record<string, unknown> = {}): FlowNode[] {
  return userFlow({ id: "i1", type: "trading-instruments", ...node }, { config });
}

/** INFY's equity listing as both brokers give it; they differ in name and instrument token. */
const INFY_EQUITY = {
  exchange: "NSE",
  symbol: "INFY",
  segment: "EQ",
  lot_size: 1,
  tick_size: 0.05,
  expiry: null,
  strike: null,
  option_type: null,
  tradable: true,
};

async function ask(payload: unknown, extra: Record<string, unknown> = {}): Promise<InstrumentListing[]> {
  const out = nextMessage("out", 5000);
  getNode("i1").receive({ payload, ...extra });
  const listings = (await out).payload as InstrumentListing[];
  assert.ok(Array.isArray(listings));
  // Every answer has the documented shape, whatever the broker.
  for (const listing of listings) ListingSchema.parse(listing);
  return listings;
}

async function refused(payload: unknown): Promise<{ message: string; code: string }> {
  const caught = nextMessage("caught", 5000);
  getNode("i1").receive({ payload });
  return (await caught).error as { message: string; code: string };
}

describe("trading-instruments", function () {
  this.timeout(20_000);

  describe("on the paper broker (built-in NSE list)", function () {
    beforeEach(freshRuntime);
    afterEach(teardownRuntime);

    it("answers an exact symbol with its lot, tick, segment and no expiry", async function () {
      await helper.load(NODES, flow(paperConfig()));
      const [infy, ...rest] = await ask({ symbol: "INFY" });
      assert.equal(rest.length, 0);
      assert.deepEqual(infy, { ...INFY_EQUITY, name: "INFY", instrument_token: null });
      assert.deepEqual(lastStatus("i1"), {
        fill: "green",
        shape: "dot",
        text: "trading-instruments.status.found",
      });
    });

    it("takes the exchange from the symbol's prefix: futures and options carry lot and expiry", async function () {
      await helper.load(NODES, flow(paperConfig()));
      const [future] = await ask({ symbol: "NFO:NIFTY26DECFUT" });
      assert.equal(future!.segment, "FUT");
      assert.equal(future!.lot_size, 65);
      assert.equal(future!.expiry, "2026-12-29");
      assert.equal(future!.name, "NIFTY");
      const [call] = await ask({ symbol: "NIFTY26DEC26000CE", exchange: "NFO" });
      assert.equal(call!.segment, "OPT");
      assert.equal(call!.strike, 26000);
      assert.equal(call!.option_type, "CE");
      const [index] = await ask({ symbol: "NIFTY 50" });
      assert.equal(index!.segment, "INDEX");
      assert.equal(index!.tradable, false);
    });

    it("searches symbols and names, exact symbols first, at most limit", async function () {
      await helper.load(NODES, flow(paperConfig()));
      const all = await ask({ search: "nifty", exchange: "NFO" });
      assert.deepEqual(all.map((i) => i.symbol).sort(), [
        "BANKNIFTY26DECFUT",
        "NIFTY26DEC26000CE",
        "NIFTY26DEC26000PE",
        "NIFTY26DECFUT",
      ]);
      const two = await ask({ search: "NIFTY", exchange: "NFO", limit: 2 });
      assert.equal(two.length, 2);
      const exactFirst = await ask({ search: "TCS" });
      assert.equal(exactFirst[0]!.symbol, "TCS");
      assert.deepEqual(await ask({ search: "NO SUCH THING" }), []);
      assert.deepEqual(lastStatus("i1"), {
        fill: "green",
        shape: "dot",
        text: "trading-instruments.status.found",
      });
    });

    it("uses the editor's lookup for a non-object payload; a payload symbol or search replaces it", async function () {
      await helper.load(
        NODES,
        flow(paperConfig(), { lookup: "search", text: "NIFTY", exchange: "NFO", limit: "3" }),
      );
      assert.equal((await ask(Date.now())).length, 3);
      assert.equal((await ask({})).length, 3);
      // The payload's symbol wins over the editor's search text; the editor's exchange fills in.
      const [future] = await ask({ symbol: "BANKNIFTY26DECFUT" });
      assert.equal(future!.lot_size, 30);
      assert.equal((await ask({ search: "BANK", limit: 10 })).length, 1);
      // The rest of the message travels on.
      const out = nextMessage("out");
      getNode("i1").receive({ payload: "go", topic: "lots", correlation: 7 });
      const msg = await out;
      assert.equal(msg.topic, "lots");
      assert.equal(msg.correlation, 7);
    });

    it("editor symbol lookup and a bad editor limit", async function () {
      await helper.load(NODES, flow(paperConfig(), { lookup: "symbol", text: "SBIN", limit: "" }));
      const [sbin] = await ask("tick");
      assert.equal(sbin!.symbol, "SBIN");
      await teardownRuntime();
      freshRuntime();
      await helper.load(NODES, flow(paperConfig(), { lookup: "search", text: "N", limit: "many" }));
      const error = await refused("tick");
      assert.equal(error.code, "VALIDATION");
      assert.match(error.message, /limit: must be a number/);
    });

    it("refuses bad lookups with the field and the rule, and keeps working after each", async function () {
      await helper.load(NODES, flow(paperConfig()));
      const cases: [unknown, RegExp][] = [
        [{ symbol: "INFY", search: "INFY" }, /search: must hold either symbol .* not both/],
        [{}, /must hold either symbol .*not neither/],
        ["just text", /must hold either symbol/],
        [{ symbol: "" }, /symbol: must not be empty/],
        [{ symbol: "   " }, /symbol: must not be empty/],
        [{ symbol: 42 }, /symbol: /],
        [{ search: "N", limit: 0 }, /limit: must be at least 1/],
        [{ search: "N", limit: 501 }, /limit: must be at most 500/],
        [{ search: "N", limit: 2.5 }, /limit: must be a whole number/],
        [{ search: "N", limit: "5" }, /limit: must be a number/],
        [{ search: "N", exchange: "LSE" }, /exchange: /],
        [{ symbol: "XX:INFY" }, /symbol: "XX:INFY" names an unknown exchange/],
        [{ symbol: "NSE:" }, /symbol: "NSE:" has no symbol after the exchange/],
        [{ symbol: "INFY", side: "BUY" }, /side/],
        [{ search: "x".repeat(100_000) }, /search: /],
      ];
      for (const [payload, expected] of cases) {
        const error = await refused(payload);
        assert.equal(error.code, "VALIDATION", JSON.stringify(payload).slice(0, 80));
        assert.match(error.message, expected);
        assert.equal(lastStatus("i1")?.fill, "red");
        assert.equal((await ask({ symbol: "TCS" }))[0]!.symbol, "TCS");
      }
    });

    it("answers NOT_FOUND for an unknown exact symbol, and never a partial match", async function () {
      await helper.load(NODES, flow(paperConfig()));
      for (const symbol of ["NOPE", "INF", "NIFTY", "NSE:NIFTY26DECFUT", "infy"]) {
        const error = await refused({ symbol });
        assert.equal(error.code, "NOT_FOUND");
        assert.match(error.message, /symbol: NSE:.* is not in the built-in NSE list$/);
      }
    });

    it("gives each of many interleaved lookups exactly one outcome; answers are fresh copies", async function () {
      await helper.load(NODES, flow(paperConfig()));
      const { messages: answers } = collect("out");
      const { messages: errors } = collect("caught");
      const total = 300;
      for (let i = 0; i < total; i++) {
        const payload = i % 3 === 0 ? { symbol: "INFY" } : i % 3 === 1 ? { search: "NIFTY" } : { symbol: "" };
        getNode("i1").receive({ payload });
      }
      const deadline = Date.now() + 10_000;
      while (answers.length + errors.length < total && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(answers.length, 200);
      assert.equal(errors.length, 100);
      // A flow that changes an answer does not change the next one.
      (answers[0]!.payload as InstrumentListing[])[0]!.lot_size = 999;
      const [infy] = await ask({ symbol: "INFY" });
      assert.equal(infy!.lot_size, 1);
    });

    it("without a broker config says so and fails every message", async function () {
      await helper.load(NODES, [
        { id: TAB, type: "tab", label: "instruments" },
        { id: "i1", type: "trading-instruments", z: TAB, broker: "", wires: [["out"]] },
        { id: "out", type: "helper", z: TAB },
        { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
        { id: "caught", type: "helper", z: TAB },
      ]);
      const error = await refused({ symbol: "INFY" });
      assert.equal(error.code, "CONFIG");
      assert.match(error.message, /trading-instruments.errors.missing-config/);
    });
  });

  describe("on the Kite broker (fake Kite's instrument list)", function () {
    const kite = fakeKitePerTest(API_KEY, TOKEN);

    async function loadKite(node: Record<string, unknown> = {}): Promise<void> {
      const config = kite.config({
        reconnect_initial_ms: "20",
        reconnect_factor: "2",
        reconnect_max_ms: "100",
      });
      await helper.load(NODES, flow(config, node), kite.credentials);
    }

    it("answers an exact symbol from Kite's list, with Kite's token and name", async function () {
      await loadKite();
      const [infy, ...rest] = await ask({ symbol: "INFY" });
      assert.equal(rest.length, 0);
      assert.deepEqual(infy, { ...INFY_EQUITY, name: "INFY, Ltd", instrument_token: 408065 });
      const [future] = await ask({ symbol: "NFO:NIFTY26DECFUT" });
      assert.equal(future!.segment, "FUT");
      assert.equal(future!.lot_size, 75);
      assert.equal(future!.tick_size, 0.1);
      assert.equal(future!.expiry, "2026-12-29");
      assert.equal(typeof future!.instrument_token, "number");
      assert.deepEqual(lastStatus("i1"), {
        fill: "green",
        shape: "dot",
        text: "trading-instruments.status.found",
      });
    });

    it("searches Kite's list: indices are INDEX and not tradable; an exact symbol is never a partial match", async function () {
      await loadKite();
      const found = await ask({ search: "NIFTY" });
      assert.deepEqual(found.map((i) => i.symbol).sort(), ["NIFTY 50", "NIFTY BANK"]);
      for (const index of found) {
        assert.equal(index.segment, "INDEX");
        assert.equal(index.tradable, false);
      }
      assert.equal((await ask({ search: "NIFTY", limit: 1 })).length, 1);
      const error = await refused({ symbol: "NIFTY" });
      assert.equal(error.code, "NOT_FOUND");
      assert.match(error.message, /symbol: NSE:NIFTY is not in Kite's instrument list for today$/);
      // Kite knows instruments the built-in list does not, and the reverse.
      assert.equal((await ask({ symbol: "INDIA VIX" }))[0]!.instrument_token, 264969);
      assert.equal((await refused({ symbol: "SBIN" })).code, "NOT_FOUND");
    });

    it("uses the editor's lookup and refuses bad input before asking Kite", async function () {
      await loadKite({ lookup: "search", text: "RELIANCE", exchange: "NSE", limit: "5" });
      const [reliance] = await ask("tick");
      assert.equal(reliance!.instrument_token, 738561);
      const before = kite.fake.requests.length;
      const error = await refused({ search: "R", limit: 1000 });
      assert.equal(error.code, "VALIDATION");
      assert.match(error.message, /limit: must be at most 500/);
      assert.equal(kite.fake.requests.length, before, "no request for a refused lookup");
    });

    it("downloads an exchange's list once for many concurrent lookups", async function () {
      await loadKite();
      const { messages: answers } = collect("out");
      for (let i = 0; i < 50; i++) getNode("i1").receive({ payload: { symbol: i % 2 ? "INFY" : "TCS" } });
      const deadline = Date.now() + 10_000;
      while (answers.length < 50 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(answers.length, 50);
      assert.equal(kite.fake.requests.filter((r) => r.path === "/instruments/NSE").length, 1);
    });
  });
});
