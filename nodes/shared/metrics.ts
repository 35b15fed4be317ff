import type { NodeAPI } from "node-red";
import type { OrderEvent } from "../../lib/protocol";
import type { RiskEvent } from "../../lib/protocol/events";
import { ConnectionState, TradingState } from "../../lib/protocol/events";
import type { RiskGuard } from "../../lib/risk/guard";
import type { ManagedBroker } from "./broker-connection";
import { isBrokerConfigNode } from "./broker-link";
import { isGuarded } from "../../lib/risk/guard";

/**
 * Prometheus metrics per trading-broker config node, served by the admin endpoint
 * `GET <httpAdminRoot>/trading-broker/metrics` (permission `trading-broker.read`).
 *
 * The text exposition format 0.0.4 is written here by hand rather than with prom-client: nine
 * families need a few dozen lines, while prom-client would add a runtime dependency (with its own
 * dependencies) to every Node-RED that installs the pack, and its process-wide default registry
 * would be shared with whatever else in that Node-RED uses prom-client.
 */

export const METRICS_PATH = "/trading-broker/metrics";
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const METRICS_PERMISSION = "trading-broker.read";

/** Latency quantiles are taken over this many latest placements; _sum and _count cover them all. */
export const LATENCY_WINDOW = 1024;
const QUANTILES = [0.5, 0.9, 0.99] as const;

/** The latest `capacity` observations in a ring, plus the running sum and count of all of them. */
export class LatencyWindow {
  readonly #samples: number[] = [];
  readonly #capacity: number;
  #next = 0;
  sum = 0;
  count = 0;

  constructor(capacity = LATENCY_WINDOW) {
    this.#capacity = capacity;
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count += 1;
    if (this.#samples.length < this.#capacity) this.#samples.push(seconds);
    else this.#samples[this.#next] = seconds;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  get size(): number {
    return this.#samples.length;
  }

  /** Nearest-rank quantiles of the window; NaN (Prometheus's "no value") when it is empty. */
  quantiles(qs: readonly number[]): number[] {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return qs.map((q) =>
      sorted.length === 0 ? Number.NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!,
    );
  }
}

/** Counters of one config node; they outlive redeploys of it and go when it is removed. */
export class BrokerMetrics {
  readonly id: string;
  name: string;
  placed = 0;
  rejected = 0;
  expired = 0;
  reconnects = 0;
  /** Orders, modifies and GTTs the risk guard refused. */
  denied = 0;
  readonly latency = new LatencyWindow();
  /** Only the newest broker counts: an old one still closing after a redeploy is ignored. */
  #current: ManagedBroker | undefined;
  #currentGuard: RiskGuard | undefined;

  constructor(id: string, name: string) {
    this.id = id;
    this.name = name;
  }

  /**
   * Counts the order events and reconnects of `broker` and times its placeOrder round trips
   * (request sent to snapshot back, rejected snapshots included, failed calls not). Returns it.
   *
   * It watches the broker's own `emit` instead of adding listeners: every listener on a broker
   * belongs to a user node (one per kind, dropped when the user leaves), and the leak checks count
   * them, so metrics must not add their own.
   */
  instrument(broker: ManagedBroker): ManagedBroker {
    this.#current = broker;
    let state: ConnectionState = broker.state;
    const emit = broker.emit.bind(broker) as (event: string | symbol, ...args: unknown[]) => boolean;
    const watched = (event: string | symbol, ...args: unknown[]): boolean => {
      if (this.#current === broker) {
        if (event === "order") this.#count(args[0] as OrderEvent);
        else if (event === "state") {
          const next = args[0] as ConnectionState;
          // One dropped connection is one reconnect, however many attempts it takes.
          if (next === "reconnecting" && state !== "reconnecting") this.reconnects += 1;
          state = next;
        }
      }
      return emit(event, ...args);
    };
    broker.emit = watched as typeof broker.emit;
    const place = broker.placeOrder.bind(broker);
    broker.placeOrder = async (request) => {
      const started = process.hrtime.bigint();
      const snapshot = await place(request);
      this.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return snapshot;
    };
    return broker;
  }

  /** Counts the refusals of the guard in front of the current broker. */
  watchRisk(guard: RiskGuard): void {
    this.#currentGuard = guard;
    guard.on("event", (event: RiskEvent) => {
      if (event.type === "ORDER_DENIED" && this.#currentGuard === guard) this.denied += 1;
    });
  }

  #count(event: OrderEvent): void {
    if (event.type === "ORDER_PLACED") this.placed += 1;
    else if (event.type === "ORDER_REJECTED") this.rejected += 1;
    else if (event.type === "ORDER_EXPIRED") this.expired += 1;
  }
}

const registry = new Map<string, BrokerMetrics>();

/** The metrics of config node `id`, created on first use; `name` is refreshed on every call. */
export function brokerMetrics(id: string, name: string): BrokerMetrics {
  let metrics = registry.get(id);
  if (metrics === undefined) {
    metrics = new BrokerMetrics(id, name);
    registry.set(id, metrics);
  }
  metrics.name = name;
  return metrics;
}

/** Drops the metrics of a config node that was removed from the flows. */
export function forgetBrokerMetrics(id: string): void {
  registry.delete(id);
}

/** What a scrape reports of one config node: its counters and its broker's state right now. */
export interface BrokerSample {
  metrics: BrokerMetrics;
  state: ConnectionState;
  /** The risk guard's trading state; absent while no broker is up (nothing is known then). */
  trading?: TradingState;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labels(pairs: Record<string, string>): string {
  const body = Object.entries(pairs)
    .map(([key, value]) => `${key}="${escapeLabel(value)}"`)
    .join(",");
  return `{${body}}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** The text exposition (format 0.0.4) of `samples`, one series per config node. */
export function exposition(samples: readonly BrokerSample[]): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string, series: (sample: BrokerSample) => string[]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const sample of samples) lines.push(...series(sample));
  };
  const id = (sample: BrokerSample, extra: Record<string, string> = {}): string =>
    labels({ id: sample.metrics.id, name: sample.metrics.name, ...extra });

  family("trading_broker_connected", "gauge", "1 when the broker is connected, else 0.", (s) => [
    `trading_broker_connected${id(s)} ${s.state === "connected" ? 1 : 0}`,
  ]);
  family("trading_broker_state", "gauge", "The broker's connection state: 1 for the current one.", (s) =>
    ConnectionState.options.map(
      (state) => `trading_broker_state${id(s, { state })} ${s.state === state ? 1 : 0}`,
    ),
  );
  const counter = (name: string, help: string, value: (m: BrokerMetrics) => number): void =>
    family(name, "counter", help, (s) => [`${name}${id(s)} ${value(s.metrics)}`]);
  counter(
    "trading_broker_orders_placed_total",
    "Orders the broker accepted (ORDER_PLACED).",
    (m) => m.placed,
  );
  counter(
    "trading_broker_orders_rejected_total",
    "Orders the broker rejected (ORDER_REJECTED).",
    (m) => m.rejected,
  );
  counter("trading_broker_orders_expired_total", "Orders that expired (ORDER_EXPIRED).", (m) => m.expired);
  counter(
    "trading_broker_reconnects_total",
    "Times the connection dropped and the broker started reconnecting.",
    (m) => m.reconnects,
  );
  family(
    "trading_broker_order_latency_seconds",
    "summary",
    `placeOrder round trip; quantiles over the latest ${LATENCY_WINDOW} orders.`,
    (s) => {
      const latency = s.metrics.latency;
      const values = latency.quantiles(QUANTILES);
      return [
        ...QUANTILES.map(
          (q, i) =>
            `trading_broker_order_latency_seconds${id(s, { quantile: String(q) })} ${number(values[i]!)}`,
        ),
        `trading_broker_order_latency_seconds_sum${id(s)} ${number(latency.sum)}`,
        `trading_broker_order_latency_seconds_count${id(s)} ${latency.count}`,
      ];
    },
  );
  family(
    "trading_broker_trading_state",
    "gauge",
    "The risk guard's trading state: 1 for the current one (no series while no broker is up).",
    (s) =>
      s.trading === undefined
        ? []
        : TradingState.options.map(
            (state) => `trading_broker_trading_state${id(s, { state })} ${s.trading === state ? 1 : 0}`,
          ),
  );
  counter(
    "trading_broker_orders_denied_total",
    "Orders, modifies and GTTs the risk guard refused (ORDER_DENIED).",
    (m) => m.denied,
  );
  return `${lines.join("\n")}\n`;
}

/** Every config node deployed now, with its broker's state (disconnected while nobody uses it). */
function currentSamples(RED: NodeAPI): BrokerSample[] {
  const samples: BrokerSample[] = [];
  for (const metrics of registry.values()) {
    const node = RED.nodes.getNode(metrics.id);
    if (!isBrokerConfigNode(node)) continue;
    const broker = node.broker;
    const sample: BrokerSample = { metrics, state: broker?.state ?? "disconnected" };
    if (isGuarded(broker)) sample.trading = broker.risk.tradingState;
    samples.push(sample);
  }
  return samples.sort((a, b) => a.metrics.id.localeCompare(b.metrics.id));
}

/** Serves the exposition on the admin API; call once per runtime, from broker-config. */
export function registerMetricsEndpoint(RED: NodeAPI): void {
  RED.httpAdmin.get(METRICS_PATH, RED.auth.needsPermission(METRICS_PERMISSION), (_req, res) => {
    // A Buffer, so express sends the content type as written instead of re-ordering its charset.
    res.set("Content-Type", METRICS_CONTENT_TYPE);
    res.send(Buffer.from(exposition(currentSamples(RED)), "utf8"));
  });
}
