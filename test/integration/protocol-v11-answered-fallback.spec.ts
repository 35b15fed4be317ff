import assert from "node:assert/strict";
import { fastSettings, ObservedBroker, useCleanup } from "../support/broker-chaos";
import type { PaperGateway } from "../support/gateway-client";
import { startPaperGateway } from "../support/gateway-client";
import { waitFor } from "../support/wait";
import type { ProxiedConnection } from "../support/ws-tamper-proxy";
import { WsTamperProxy } from "../support/ws-tamper-proxy";

/** What a v1.1 gateway built before answered_events answered an AUTH naming it (strict options). */
const OLD_REFUSAL = "invalid AUTH: answered_events: unknown field (not part of the order shape)";

interface AuthSeen {
  connection: number;
  options: Record<string, unknown> | undefined;
}

/**
 * A real gateway behind a proxy that answers, in place of the gateway, what one from before
 * answered_events would: an AUTH naming it is refused with VALIDATION and never reaches the gateway.
 */
function refuseAnsweredEvents(proxy: WsTamperProxy, auths: AuthSeen[], message = OLD_REFUSAL): void {
  proxy.tap = (direction, text, connection: ProxiedConnection) => {
    if (direction !== "up") return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined;
    }
    const request = parsed as { type?: unknown; id?: unknown; options?: Record<string, unknown> };
    if (request.type !== "AUTH") return undefined;
    auths.push({ connection: connection.index, options: request.options });
    if (request.options === undefined || !("answered_events" in request.options)) return undefined;
    connection.client.send(
      JSON.stringify({ type: "ERROR", id: request.id, error: { code: "VALIDATION", message } }),
    );
    return null;
  };
}

describe("protocol v1.1: a gateway from before answered_events", function () {
  this.timeout(20_000);
  const cleanup = useCleanup();

  async function setup(message?: string): Promise<{
    made: PaperGateway;
    proxy: WsTamperProxy;
    auths: AuthSeen[];
    observed: ObservedBroker;
  }> {
    const made = await startPaperGateway();
    cleanup(() => made.close());
    const proxy = await WsTamperProxy.start(made.url);
    cleanup(() => proxy.close());
    const auths: AuthSeen[] = [];
    refuseAnsweredEvents(proxy, auths, message);
    const observed = new ObservedBroker(fastSettings(proxy.url, { heartbeat_ms: 5000 }), "v1.1 skip");
    cleanup(() => observed.broker.close());
    return { made, proxy, auths, observed };
  }

  it("authenticates again without the option, once, and runs with every event pushed", async () => {
    const { made, proxy, auths, observed } = await setup();
    await observed.broker.connect();
    assert.equal(observed.broker.state, "connected");
    // The refused AUTH and the one without answered_events, on the same connection.
    assert.deepEqual(auths, [
      { connection: 1, options: { event_format: "delta", answered_events: "skip" } },
      { connection: 1, options: { event_format: "delta" } },
    ]);
    assert.ok(
      observed.warnings.some((w) => w.includes("answered_events") && w.includes(OLD_REFUSAL)),
      `a warning names the refusal: ${JSON.stringify(observed.warnings)}`,
    );
    made.broker.setPrice("INFY", 100);
    for (let i = 0; i < 20; i++) {
      const placed = await observed.broker.placeOrder({
        symbol: "INFY",
        side: i % 2 ? "SELL" : "BUY",
        quantity: 1,
      });
      assert.equal(placed.status, "FILLED");
    }
    await waitFor(() => observed.orders.length === 40, "every placed and filled event", 5000);
    // "send" mode: no answer carried events; each event came as a push of its own.
    const answersWithEvents = proxy.messages("down", "RESULT").filter((m) => m.events !== undefined);
    assert.equal(answersWithEvents.length, 0);
    assert.deepEqual(
      observed.orders.map((e) => e.seq),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    assert.deepEqual(observed.errors, []);

    // A reconnect does not ask again: the server has said it does not know the option.
    const before = observed.states.length;
    proxy.cutAll();
    await waitFor(
      () => observed.states.slice(before).includes("connected") && observed.broker.state === "connected",
      "reconnected",
      5000,
    );
    const second = auths.filter((a) => a.connection === 2);
    assert.deepEqual(second, [{ connection: 2, options: { event_format: "delta" } }]);
    const after = await observed.broker.placeOrder({ symbol: "INFY", side: "BUY", quantity: 1 });
    assert.equal(after.status, "FILLED");
    await waitFor(() => observed.orders.length === 42, "the events after the reconnect", 5000);
  });

  it("does not retry a VALIDATION refusal that does not name answered_events", async () => {
    const { auths, observed } = await setup("invalid AUTH: options.event_format: Invalid option");
    void observed.broker.connect().catch(() => undefined);
    // The session fails as before and the client reconnects: one AUTH per connection, never the
    // same connection asked twice.
    await waitFor(() => new Set(auths.map((a) => a.connection)).size >= 3, "three attempts", 5000);
    const perConnection = new Map<number, number>();
    for (const auth of auths)
      perConnection.set(auth.connection, (perConnection.get(auth.connection) ?? 0) + 1);
    for (const [connection, count] of perConnection) assert.equal(count, 1, `connection ${connection}`);
    assert.notEqual(observed.broker.state, "connected");
    assert.ok(auths.every((a) => a.options?.answered_events === "skip"));
  });
});
