// A place-order node's status follows the risk guard's trading state: an order's own outcome that
// comes after the state changed must not paint over it (an order sent before a halt, answered
// after it, showed a green "BUY 1 INFY: OPEN" while trading was halted), and a refusal's text must
// not outlive the state that made it (after a resume, or once the state file is saved again).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { NodeStatus } from "node-red";
import { PaperBroker } from "../../lib/brokers/paper-broker";
import type { OrderRequestInput, OrderSnapshot } from "../../lib/protocol";
import type { KillOutcome } from "../../lib/risk/guard";
import { isGuarded } from "../../lib/risk/guard";
import brokerNode = require("../../nodes/broker-config/broker-config");
import killSwitchNode = require("../../nodes/kill-switch/kill-switch");
import placeOrderNode = require("../../nodes/place-order/place-order");
import type { FlowNode, Received } from "./support";
import { waitFor } from "../support/wait";
import {
  TAB,
  collect,
  freshRuntime,
  getNode,
  helper,
  lastStatus,
  nextMessage,
  paperBroker,
  paperConfig,
  statusMatching,
  teardownRuntime,
} from "./support";

const NODES = [brokerNode, placeOrderNode, killSwitchNode];
const ONE = { symbol: "INFY", side: "BUY", quantity: 1 } as const;

function flow(config: FlowNode = paperConfig()): FlowNode[] {
  return [
    { id: TAB, type: "tab", label: "status follows the guard" },
    config,
    { id: "k1", type: "trading-kill-switch", z: TAB, name: "panic", broker: "b1", wires: [["killed"]] },
    { id: "p1", type: "trading-place-order", z: TAB, broker: "b1", wires: [["placed"]] },
    { id: "killed", type: "helper", z: TAB },
    { id: "placed", type: "helper", z: TAB },
    { id: "c1", type: "catch", z: TAB, scope: null, uncaught: false, wires: [["caught"]] },
    { id: "caught", type: "helper", z: TAB },
  ];
}

async function kill(payload: unknown): Promise<KillOutcome> {
  const out = nextMessage("killed");
  getNode("k1").receive({ payload });
  return (await out).payload as KillOutcome;
}

/** Sends one order in; resolves with its one outcome (output or caught error). */
function place(payload: Record<string, unknown>): Promise<Received> {
  const placed = collect("placed");
  const caught = collect("caught");
  getNode("p1").receive({ payload });
  return (async () => {
    try {
      const deadline = Date.now() + 5000;
      for (;;) {
        const outcome = placed.messages[0] ?? caught.messages[0];
        if (outcome !== undefined) return outcome;
        if (Date.now() > deadline) throw new Error("place-order gave no outcome within 5000 ms");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      placed.stop();
      caught.stop();
    }
  })();
}

const halted = (s: NodeStatus): boolean =>
  s.fill === "red" && s.shape === "dot" && s.text === "trading-broker.status.halted";
const reducing = (s: NodeStatus): boolean =>
  s.fill === "yellow" && s.text === "trading-broker.status.reducing";
const connected = (s: NodeStatus): boolean =>
  s.fill === "green" && s.text === "trading-broker.status.connected";

/** The paper broker under the guard, each placement held until `release` (a slow venue). */
function holdPlacements(broker: PaperBroker): { release(): void; held(): number } {
  assert.ok(isGuarded(broker));
  const inner = broker.risk.broker as PaperBroker;
  const place = inner.placeOrder.bind(inner);
  const waiting: (() => void)[] = [];
  let held = 0;
  inner.placeOrder = async (request: OrderRequestInput): Promise<OrderSnapshot> => {
    held += 1;
    await new Promise<void>((resolve) => waiting.push(resolve));
    return place(request);
  };
  return {
    release: () => {
      for (const go of waiting.splice(0)) go();
    },
    held: () => held,
  };
}

describe("trading-place-order: its status follows the risk guard's state", function () {
  this.timeout(20_000);
  let userDir: string;
  beforeEach(function () {
    userDir = freshRuntime();
  });
  afterEach(teardownRuntime);

  for (const [command, shown] of [
    ["halt", halted],
    ["reduce", reducing],
  ] as const) {
    it(`an order sent before a ${command} and answered after it leaves the status showing the ${command} (5 rounds)`, async function () {
      await helper.load(NODES, flow());
      const broker = await paperBroker();
      broker.setPrice("INFY", 1500);
      const venue = holdPlacements(broker);
      for (let round = 0; round < 5; round++) {
        const answered = place({ ...ONE, order_type: "LIMIT", price: 1400, tag: `r${round}` });
        await waitFor(() => venue.held() === round + 1, `round ${round}: the order at the venue`);
        await kill(command);
        await statusMatching("p1", shown);
        venue.release();
        const outcome = await answered;
        assert.equal((outcome.payload as OrderSnapshot).status, "OPEN", `round ${round}: the order's answer`);
        // The answer went out on the wire; the status still says trading is stopped.
        await new Promise((resolve) => setImmediate(resolve));
        assert.ok(
          shown(lastStatus("p1")!),
          `round ${round}: status after the answer: ${JSON.stringify(lastStatus("p1"))}`,
        );
        await kill("resume");
        await statusMatching("p1", connected);
      }
    });
  }

  it("a refusal shows the state that made it, and goes once trading resumes, from halted and from reducing (10 rounds)", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    for (let round = 0; round < 10; round++) {
      const command = round % 2 === 0 ? "halt" : "reduce";
      await kill(command);
      const refused = await place({ ...ONE, tag: `r${round}` });
      assert.match(
        String((refused as unknown as { error: { message: string } }).error.message),
        /trading is (HALTED|REDUCING)/,
      );
      // The refusal went to Catch; the status goes on saying why nothing trades.
      const now = lastStatus("p1")!;
      assert.ok(command === "halt" ? halted(now) : reducing(now), `round ${round}: ${JSON.stringify(now)}`);
      await kill("resume");
      await statusMatching("p1", connected);
    }
  });

  it("after the disk is mended, no status still says the state cannot be saved", async function () {
    await helper.load(NODES, flow());
    const broker = await paperBroker();
    broker.setPrice("INFY", 1500);
    const stateFile = path.join(userDir, "trading-broker", "risk-paper-test.json");
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    fs.symlinkSync("/dev/full", `${stateFile}.tmp`);
    await kill("halt");
    await statusMatching("p1", (s) => s.text === "trading-broker.status.unsaved");
    await place(ONE);
    fs.rmSync(`${stateFile}.tmp`);
    // The next refusal retries the write; once saved, every node shows plain "halted".
    await place(ONE);
    await statusMatching("p1", halted, 5000);
    await statusMatching("k1", halted, 5000);
    assert.equal(JSON.parse(fs.readFileSync(stateFile, "utf8")).state, "HALTED");
  });
  it("a P&L that cannot be read at connect shows on every node and refuses orders, until it is read", async function () {
    // The account cannot be read from the start: the guard's first read at connect fails.
    const getAccount = Object.getOwnPropertyDescriptor(PaperBroker.prototype, "getAccount")!;
    let failing = true;
    PaperBroker.prototype.getAccount = function (this: PaperBroker) {
      if (failing) return Promise.reject(new Error("account store unavailable"));
      return (getAccount.value as PaperBroker["getAccount"]).call(this);
    };
    try {
      await helper.load(NODES, flow(paperConfig("b1", { risk_max_daily_loss: "1000" })));
      const broker = await paperBroker();
      broker.setPrice("INFY", 1500);
      const unread = (s: NodeStatus): boolean =>
        s.fill === "red" && s.text === "trading-broker.status.pnl-unread";
      await statusMatching("p1", unread, 5000);
      await statusMatching("k1", unread, 5000);
      const refused = await place(ONE);
      assert.match(
        String((refused.error as { message?: string } | undefined)?.message),
        /P&L not read yet: account store unavailable.*\(max_daily_loss\)/,
      );
      failing = false;
      // The retry reads it (after 1 s, 2 s ...): every node shows connected again, and orders go.
      await statusMatching("p1", connected, 10_000);
      await statusMatching("k1", connected, 10_000);
      const placed = await place(ONE);
      assert.equal((placed.payload as OrderSnapshot).status, "FILLED");
    } finally {
      Object.defineProperty(PaperBroker.prototype, "getAccount", getAccount);
    }
  });
});
