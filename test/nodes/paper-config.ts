// The paper broker config the node specs (and the restart test's own Node-RED) run against; a module
// of its own so a spec that starts Node-RED in a child process need not load the test helper.
import type { FlowNode } from "node-red-node-test-helper";

/**
 * A paper broker config. Quotes tick once a minute, so within a test prices only move when the
 * test calls setPrice; every symbol starts at 100 and fills have no spread or slippage.
 */
export function paperConfig(id = "b1", overrides: Record<string, unknown> = {}): FlowNode {
  return {
    id,
    type: "trading-broker",
    name: "paper",
    kind: "paper",
    account: "test",
    starting_cash: "1000000",
    slippage_bps: "0",
    quote_source: "random-walk",
    start_price: "100",
    volatility: "0",
    spread_bps: "0",
    interval_ms: "60000",
    seed: "1",
    csv_file: "",
    replay_speed: "1",
    replay_loop: true,
    retention: "10000",
    ...overrides,
  };
}
