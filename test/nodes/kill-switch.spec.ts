import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { OrderSnapshot } from "../../lib/protocol";
import type { RiskEvent } from "../../lib/protocol/events";
import type { KillOutcome } from "../../lib/risk/guard";
import { isGuarded } from "../../lib/risk/guard";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import orderEventsNode = require("../../nodes/order-events/order-events");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode, Received } from "./support";
import {
  ERROR,
  TAB,
  collect,
  configNode,
  getNode,
  helper,
  logged,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
} from "./support";
import { nodeRedPerTest } from "../support/node-red-runtime";

const NODES = [brokerNode, placeOrderNode, killSwitchNode, orderEventsNode];

function flow(config: FlowNode = paperConfig(), kill: Record<string, unknown> = {}): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "kill switch" },
    config,
    {
      id: "k1",
      type: "trading-kill-switch",
      z: TAB,
      name: "panic",
      broker: "b1",
      wires: [["killed"]],
      ...kill,
    },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["placed"]] },
    { id: "e1", type: "trading-order-events", z: TAB, broker: "b1", wires: [["events"]] },
    { id: "killed", type: "helper", z: TAB },
    { id: "placed", type: "helper", z: TAB },
    { id: "events", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

interface Caught {
  error: { message: string; source: { id: string } };
}

async function kill(payload: unknown): Promise<KillOutcome> {
  const out = nextMessage("killed");
  getNode("k1").receive({ payload });
  return (await out).payload as KillOutcome;
}

/** The one outcome of a place-order input: its output, or the error a Catch node got. */
async function place(payload: Record<string, unknown>): Promise<Received> {
  const placed = collect("placed");
  const caught = collect("caught");
  try {
    getNode("p1").receive({ payload });
    const deadline = Date.now() + 2000;
    for (;;) {
      const outcome = placed.messages[0] ?? caught.messages[0];
      if (outcome !== undefined) return outcome;
      if (Date.now() > deadline) throw new Error("place-order gave no outcome within 2000 ms");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    placed.stop();
    caught.stop();
  }
}

describe("trading-kill-switch", function () {
  const runtime = nodeRedPerTest();

  it("halts: the state survives a restart of Node-RED on the same user dir; resume trades again", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    const outcome = await kill("halt");
    assert.equal(outcome.state, "HALTED");
    assert.equal(outcome.previous, "ACTIVE");
    assert.equal(outcome.by, "kill switch panic");
    await statusMatching(
      "p1",
      (s) => s.fill === "red" && s.shape === "dot" && s.text === "trading-broker.status.halted",
    );
    const refused = (await place({ symbol: "INFY", side: "BUY", quantity: 1 })) as unknown as Caught;
    assert.match(refused.error.message, /trading is HALTED \(halt\): no new orders/);
    const stateFile = path.join(runtime.userDir, "trading-broker", "risk-paper-test.json");
    assert.equal(JSON.parse(fs.readFileSync(stateFile, "utf8")).state, "HALTED");

    // A new runtime on the same user dir: still halted until a person resumes.
    await helper.unload();
    helper.settings({ userDir: runtime.userDir });
    await helper.load(NODES, flow());
    await paperBroker();
    await statusMatching("p1", (s) => s.fill === "red" && s.text === "trading-broker.status.halted");
    const again = (await place({ symbol: "INFY", side: "BUY", quantity: 1 })) as unknown as Caught;
    assert.match(again.error.message, /HALTED/);
    assert.equal((await (await paperBroker()).getOrderbook()).length, 0, "nothing reached the broker");

    const resumed = await kill({ command: "resume", reason: "checked the flow" });
    assert.equal(resumed.state, "ACTIVE");
    await statusMatching("p1", (s) => s.fill === "green" && s.text === "trading-broker.status.connected");
    (await paperBroker()).setPrice("INFY", 1500);
    const placed = await place({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.equal((placed.payload as OrderSnapshot).status, "FILLED");
  });

  it("a halt on a full disk holds, every node shows it is not saved, and the outcome says RISK (state_file)", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    await place({ symbol: "INFY", side: "BUY", quantity: 3 });
    const stateFile = path.join(runtime.userDir, "trading-broker", "risk-paper-test.json");
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    // Every write of the state file fails ENOSPC, as on a full disk.
    fs.symlinkSync("/dev/full", `${stateFile}.tmp`);
    const outcome = await kill({ command: "halt", flatten: true });
    assert.equal(outcome.state, "HALTED");
    assert.deepEqual(
      outcome.failures.map((f) => [f.action, f.code]),
      [["save_state", "RISK"]],
    );
    assert.match(
      outcome.failures[0]!.message,
      /trading is HALTED in this process only: cannot save the trading state to .*risk-paper-test\.json: .*ENOSPC.*\(state_file\)$/,
    );
    // The close asked for still ran.
    assert.deepEqual(
      outcome.placed.map((o) => [o.symbol, o.side, o.quantity]),
      [["INFY", "SELL", 3]],
    );
    for (const id of ["p1", "k1"]) {
      await statusMatching(
        id,
        (s) => s.fill === "red" && s.shape === "dot" && s.text === "trading-broker.status.unsaved",
      );
    }
    const refused = (await place({ symbol: "INFY", side: "BUY", quantity: 1 })) as unknown as Caught;
    assert.match(
      refused.error.message,
      /trading is HALTED \(halt\) and cannot save the trading state to .*risk-paper-test\.json.*\(state_file\)/,
    );
    // Mended: the next refused order retries the write; the halt is then on disk and shown as such.
    fs.rmSync(`${stateFile}.tmp`);
    await place({ symbol: "INFY", side: "BUY", quantity: 1 });
    // The kill switch's status: place-order shows its own refusal, which may come after.
    await statusMatching("k1", (s) => s.fill === "red" && s.text === "trading-broker.status.halted");
    assert.equal(JSON.parse(fs.readFileSync(stateFile, "utf8")).state, "HALTED");
  });

  it("flatten cancels every open order and closes every position with MARKET orders", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    broker.setPrice("TCS", 3500);
    await place({ symbol: "INFY", side: "BUY", quantity: 7 });
    await place({ symbol: "TCS", side: "SELL", quantity: 3 });
    await place({ symbol: "INFY", side: "BUY", quantity: 2, order_type: "LIMIT", price: 1400 });
    await place({ symbol: "TCS", side: "SELL", quantity: 1, order_type: "LIMIT", price: 3900 });
    const outcome = await kill({ command: "halt", flatten: true });
    assert.equal(outcome.cancelled.length, 2);
    assert.ok(outcome.cancelled.every((o) => o.status === "CANCELLED"));
    assert.deepEqual(outcome.placed.map((o) => [o.symbol, o.side, o.quantity, o.order_type, o.tag]).sort(), [
      ["INFY", "SELL", 7, "MARKET", "killswitch"],
      ["TCS", "BUY", 3, "MARKET", "killswitch"],
    ]);
    assert.deepEqual(outcome.failures, []);
    const paper = await paperBroker();
    assert.ok((await paper.getPositions()).every((p) => p.quantity === 0));
    assert.deepEqual(
      (await paper.getOrderbook()).filter((o) => o.status === "OPEN" || o.status === "TRIGGER_PENDING"),
      [],
    );
  });

  for (const bad of ["stop", "", 42, { command: "HALT" }, { command: "halt", cancel: "yes" }]) {
    it(`refuses ${JSON.stringify(bad)} with an error to Catch and changes nothing`, async function () {
      await helper.load(NODES, flow());
      await paperBroker();
      const caught = nextMessage("caught");
      getNode("k1").receive({ payload: bad });
      const msg = (await caught) as unknown as Caught;
      assert.equal(msg.error.source.id, "k1");
      assert.match(
        msg.error.message,
        /invalid kill switch message: (command: must be one of halt, reduce, resume|cancel: must be true or false)/,
      );
      const guarded = configNode().broker;
      assert.ok(isGuarded(guarded));
      assert.equal(guarded.risk.tradingState, "ACTIVE");
    });
  }

  it("takes its command from the editor when the payload names none", async function () {
    await helper.load(NODES, flow(paperConfig(), { command: "reduce" }));
    await paperBroker();
    const outcome = await kill(1733300000000);
    assert.equal(outcome.state, "REDUCING");
    await statusMatching("p1", (s) => s.fill === "yellow" && s.text === "trading-broker.status.reducing");
  });

  it("order-events passes on RISK_STATE_CHANGED and ORDER_DENIED", async function () {
    await helper.load(NODES, flow(paperConfig("b1", { risk_max_order_quantity: "10" })));
    (await paperBroker()).setPrice("INFY", 1500);
    const events = collect("events");
    const refused = (await place({ symbol: "INFY", side: "BUY", quantity: 11 })) as unknown as Caught;
    assert.match(refused.error.message, /max order quantity 10: order is for 11 INFY \(max_order_quantity\)/);
    await kill({ command: "halt", reason: "loop in flow" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    events.stop();
    const risk = events.messages.map((m) => m.payload as RiskEvent);
    assert.deepEqual(
      risk.map((e) => e.type),
      ["ORDER_DENIED", "RISK_STATE_CHANGED"],
    );
    const denied = risk[0]!;
    assert.ok(denied.type === "ORDER_DENIED");
    assert.equal(denied.limit, "max_order_quantity");
    assert.equal(events.messages[0]!.topic, "INFY");
    const changed = risk[1]!;
    assert.ok(changed.type === "RISK_STATE_CHANGED");
    assert.deepEqual(
      [changed.state, changed.by, changed.reason],
      ["HALTED", "kill switch panic", "loop in flow"],
    );
  });
});

describe("trading-broker risk settings and the state endpoint", function () {
  nodeRedPerTest();

  for (const [fields, pattern] of [
    [{ risk_max_order_quantity: "ten" }, /risk\.max_order_quantity: must be a number/],
    [{ risk_max_position_quantity: "-5" }, /risk\.max_position_quantity: must be greater than 0/],
    [
      { risk_max_orders_per_second: "50", risk_max_orders_per_minute: "20" },
      /risk\.max_orders_per_second: must not be more than max_orders_per_minute/,
    ],
    [
      { risk_window: true, risk_window_start: "16:00", risk_window_end: "09:00" },
      /risk\.trading_window\.end: must be later than start/,
    ],
    [{ risk_flatten_on_daily_loss: true }, /risk\.flatten_on_daily_loss: needs max_daily_loss/],
    [
      { risk_allowed_symbols: "INFY, symbol!" },
      /risk\.allowed_symbols\.1: must be a symbol or EXCHANGE:SYMBOL/,
    ],
  ] as const) {
    it(`refuses ${JSON.stringify(fields)} at deploy, naming the field`, async function () {
      await helper.load(NODES, flow(paperConfig("b1", fields)));
      await statusMatching("p1", (s) => s.text === "trading-broker.status.invalid-settings");
      assert.match(logged("b1", ERROR).join("\n"), pattern);
      const caught = nextMessage("caught");
      getNode("p1").receive({ payload: { symbol: "INFY", side: "BUY", quantity: 1 } });
      assert.match(((await caught) as unknown as Caught).error.message, pattern);
    });
  }

  it("POST /trading-broker/:id/state halts, reports what it cancelled, and resumes", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    await place({ symbol: "INFY", side: "BUY", quantity: 1, order_type: "LIMIT", price: 1400 });
    const halted = await helper
      .request()
      .post("/trading-broker/b1/state")
      .send({ command: "halt", reason: "news", cancel: true });
    assert.equal(halted.status, 200);
    const body = halted.body as KillOutcome;
    assert.equal(body.state, "HALTED");
    assert.equal(body.by, "admin");
    assert.equal(body.cancelled.length, 1);
    const read = await helper.request().get("/trading-broker/b1/state");
    assert.equal((read.body as { state: string; reason: string }).state, "HALTED");
    assert.equal((read.body as { reason: string }).reason, "news");
    const resumed = await helper.request().post("/trading-broker/b1/state").send({ command: "resume" });
    assert.equal((resumed.body as KillOutcome).state, "ACTIVE");
  });

  it("GET /trading-broker/:id/state reads the state file without bringing a broker up", async function () {
    await helper.load(NODES, flow());
    await paperBroker();
    await kill({ command: "halt", reason: "lunch" });
    await helper.setFlows([{ id: TAB, type: "tab", label: "config only" }, paperConfig()], "full");
    const read = await helper.request().get("/trading-broker/b1/state");
    assert.equal(read.status, 200);
    assert.deepEqual(
      [(read.body as { state: string }).state, (read.body as { reason: string }).reason],
      ["HALTED", "lunch"],
    );
    assert.equal(configNode().broker, undefined, "no broker was brought up to read it");
    const unknown = await helper.request().get("/trading-broker/nope/state");
    assert.equal(unknown.status, 200);
    assert.equal((unknown.body as { state: unknown }).state, null);
  });

  it("metrics count denied orders and show the trading state", async function () {
    await helper.load(NODES, flow(paperConfig("b1", { risk_max_order_quantity: "10" })));
    (await paperBroker()).setPrice("INFY", 1500);
    // Counters live as long as the process and config ids repeat across specs: count the change.
    const scrape = async (): Promise<string> =>
      ((await helper.request().get("/trading-broker/metrics")) as unknown as { text: string }).text;
    const denied = (text: string): number =>
      Number(/^trading_broker_orders_denied_total\{id="b1",name="paper"\} (\d+)$/m.exec(text)?.[1]);
    const before = denied(await scrape());
    for (let i = 0; i < 3; i++) await place({ symbol: "INFY", side: "BUY", quantity: 11 + i });
    await kill("halt");
    const text = await scrape();
    assert.equal(denied(text) - before, 3);
    assert.match(text, /^trading_broker_trading_state\{id="b1",name="paper",state="HALTED"\} 1$/m);
    assert.match(text, /^trading_broker_trading_state\{id="b1",name="paper",state="ACTIVE"\} 0$/m);
  });

  it("answers 400 for a bad command and 404 for an unknown config", async function () {
    await helper.load(NODES, flow());
    const bad = await helper.request().post("/trading-broker/b1/state").send({ command: "panic" });
    assert.equal(bad.status, 400);
    assert.match((bad.body as { message: string }).message, /command: must be one of halt, reduce, resume/);
    const badFlag = await helper
      .request()
      .post("/trading-broker/b1/state")
      .send({ command: "halt", flatten: "y" });
    assert.equal(badFlag.status, 400);
    const unknown = await helper.request().post("/trading-broker/nope/state").send({ command: "halt" });
    assert.equal(unknown.status, 404);
    const guarded = await configNode().connection.ready();
    assert.ok(isGuarded(guarded));
    assert.equal(guarded.risk.tradingState, "ACTIVE", "nothing changed");
  });
});
