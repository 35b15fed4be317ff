import assert from "node:assert/strict";
import type { BrokerInterface } from "../../lib/brokers/interface";
import type { ErrorCode } from "../../lib/protocol/errors";
import { BrokerError } from "../../lib/protocol/errors";
import { classify, fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import { PaperHost } from "../support/paper-host";
import { waitFor } from "../support/wait";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/**
 * A relay that, while `lose` names a request type, swallows the answers to requests of that type:
 * the gateway carries them out and the client hears nothing (a TIMEOUT, outcome unknown).
 */
function loseAnswers(relay: WsTamperProxy): { lose: string | undefined; lost: number } {
  const state = { lose: undefined as string | undefined, lost: 0 };
  const doomed = new Set<string>();
  relay.tap = (direction, text) => {
    const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (direction === "up") {
      if (state.lose === undefined) return undefined;
      for (const m of list) if (m.type === state.lose) doomed.add(String(m.id));
      return undefined;
    }
    const kept = list.filter((m) => !(m.type !== "EVENT" && doomed.has(String(m.id))));
    if (kept.length === list.length) return undefined;
    state.lost += list.length - kept.length;
    if (kept.length === 0) return null;
    return JSON.stringify(Array.isArray(parsed) ? kept : kept[0]);
  };
  return state;
}

/** The paper broker, but getAccount answers with `sick`'s code while it is set. */
function sickly(paper: BrokerInterface): { broker: BrokerInterface; sick: ErrorCode | undefined } {
  const control = { broker: paper, sick: undefined as ErrorCode | undefined };
  control.broker = new Proxy(paper, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (property !== "getAccount") return method.bind(target);
      return (...args: unknown[]) => {
        if (control.sick !== undefined) {
          return Promise.reject(new BrokerError(control.sick, `the venue says ${control.sick}`));
        }
        return method.apply(target, args);
      };
    },
  });
  return control;
}

describe("the circuit breaker and the lookups that settle unknown outcomes", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  async function setUp(breaker: { failure_threshold: number; cool_down_ms: number }, windowMs: number) {
    let control: ReturnType<typeof sickly> | undefined;
    const made = await PaperHost.start({}, (paper) => (control = sickly(paper)).broker);
    cleanup(() => made.close());
    const relay = await WsTamperProxy.start(made.url);
    cleanup(() => relay.close());
    const losing = loseAnswers(relay);
    const connect = async (): Promise<ObservedBroker> => {
      const observed = new ObservedBroker(
        fastSettings(relay.url, {
          heartbeat_ms: 5000,
          request_timeout_ms: 200,
          resolve_window_ms: windowMs,
          breaker,
        }),
      );
      cleanup(() => observed.broker.close());
      await observed.broker.connect();
      return observed;
    };
    return { made, losing, control: control!, connect };
  }

  const order = (tag: string) => ({
    symbol: "INFY",
    side: "BUY" as const,
    quantity: 1,
    order_type: "LIMIT" as const,
    price: 50,
    client_order_id: tag,
  });

  for (const windowMs of [3000, 10_000]) {
    it(`settles orders whose answers timed out through the circuit they opened (window ${windowMs} ms, cool-down 10 s), 6 rounds`, async function () {
      const { made, losing, connect } = await setUp({ failure_threshold: 3, cool_down_ms: 10_000 }, windowMs);
      for (let round = 0; round < 6; round++) {
        const observed = await connect();
        const broker = observed.broker;
        losing.lose = "PLACE_ORDER";
        const ids = [0, 1, 2, 3, 4].map((i) => `brk${windowMs}r${round}i${i}`);
        const placements = ids.map((id) => classify(broker.placeOrder(order(id))));
        await waitFor(() => broker.stats.circuit === "open", "the circuit to open");
        losing.lose = undefined;
        // New orders stay out while the circuit is open, and never reach the gateway.
        const refused = await classify(broker.placeOrder(order(`brk${windowMs}r${round}x`)));
        assert.equal(refused.kind, "failed");
        if (refused.kind === "failed") assert.equal(refused.error.code, "CIRCUIT_OPEN");
        const started = Date.now();
        const settled = await Promise.all(placements);
        const outcomes = settled.map((s) =>
          s.kind === "accepted"
            ? `${s.value.client_order_id} ${s.value.status}`
            : `${s.kind} ${s.error.code}: ${s.error.message}`,
        );
        assert.deepEqual(
          outcomes,
          ids.map((id) => `${id} OPEN`),
        );
        assert.ok(Date.now() - started < windowMs, "settled inside the window, not at its end");
        assert.equal(broker.stats.circuit, "open", "settling lookups leave the cool-down standing");
        const book = await made.paper.getOrderbook();
        for (const id of ids) {
          assert.equal(book.filter((o) => o.client_order_id === id).length, 1, `exactly one order ${id}`);
        }
        assert.equal(
          book.filter((o) => o.client_order_id === `brk${windowMs}r${round}x`).length,
          0,
          "the refused order was not placed",
        );
        await broker.close();
      }
      assert.ok(losing.lost >= 6 * 5, `answers were lost (${losing.lost})`);
    });
  }

  it("a trial that ends neither way (the gateway says RATE_LIMITED) leaves the next caller a trial, 10 rounds", async function () {
    const { losing, control, connect } = await setUp({ failure_threshold: 2, cool_down_ms: 100 }, 1000);
    const broker = (await connect()).broker;
    for (let round = 0; round < 10; round++) {
      losing.lose = "GET_ACCOUNT";
      await Promise.all([classify(broker.getAccount()), classify(broker.getAccount())]);
      losing.lose = undefined;
      assert.equal(broker.stats.circuit, "open");
      await waitFor(() => broker.stats.circuit === "half-open", "the cool-down to pass");
      control.sick = "RATE_LIMITED";
      const trial = await classify(broker.getAccount());
      assert.ok(trial.kind === "failed" && trial.error.code === "RATE_LIMITED", "the trial was answered");
      control.sick = undefined;
      const next = await classify(broker.getAccount());
      assert.equal(
        next.kind,
        "accepted",
        `round ${round}: ${next.kind === "accepted" ? "" : next.error.message}`,
      );
      assert.equal(broker.stats.circuit, "closed");
    }
  });

  it("a gateway that answers its trial with an unhealthy code re-opens the circuit; a business refusal closes it, 3 rounds each", async function () {
    const { losing, control, connect } = await setUp({ failure_threshold: 2, cool_down_ms: 150 }, 1000);
    const observed = await connect();
    const broker = observed.broker;
    const trip = async (): Promise<void> => {
      losing.lose = "GET_ACCOUNT";
      await Promise.all([classify(broker.getAccount()), classify(broker.getAccount())]);
      losing.lose = undefined;
      assert.equal(broker.stats.circuit, "open");
      await waitFor(() => broker.stats.circuit === "half-open", "the cool-down to pass");
    };
    const unhealthy: ErrorCode[] = ["INTERNAL", "NOT_CONNECTED", "CIRCUIT_OPEN"];
    const healthy: ErrorCode[] = ["VALIDATION", "INSUFFICIENT_FUNDS", "RISK", "NOT_FOUND"];
    await trip();
    for (let round = 0; round < 3; round++) {
      for (const code of unhealthy) {
        control.sick = code;
        const trial = await classify(broker.getAccount());
        assert.equal(trial.kind, "failed");
        if (trial.kind === "failed") assert.equal(trial.error.code, code, "the gateway's own answer");
        assert.equal(
          broker.stats.circuit,
          "open",
          `a trial answered ${code} does not prove the gateway healthy`,
        );
        const next = await classify(broker.getAccount());
        assert.ok(next.kind === "failed" && next.error.code === "CIRCUIT_OPEN", `refused after ${code}`);
        await waitFor(() => broker.stats.circuit === "half-open", "the cool-down to pass");
      }
      for (const code of healthy) {
        control.sick = code;
        const trial = await classify(broker.getAccount());
        assert.ok(trial.kind !== "accepted" && trial.error.code === code, `the gateway refused with ${code}`);
        assert.equal(broker.stats.circuit, "closed", `a ${code} refusal comes from a working gateway`);
        control.sick = undefined;
        assert.equal((await classify(broker.getAccount())).kind, "accepted");
        await trip();
      }
    }
  });
});
