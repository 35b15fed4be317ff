import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NodeAPI, NodeDef } from "node-red";
import { createBroker, paperJournalFile } from "../../lib/brokers/create-broker";
import type { BrokerLogger } from "../../lib/brokers/logger";
import type { BrokerSettingsInput } from "../../lib/brokers/settings";
import { SESSION_EXPIRED } from "../../lib/kite/errors";
import { BrokerSettings } from "../../lib/brokers/settings";
import { BrokerError, toBrokerError } from "../../lib/protocol/errors";
import { formatIssues } from "../../lib/protocol/validate";
import type { ManagedBroker, Unusable } from "../shared/broker-connection";
import { BrokerConnection } from "../shared/broker-connection";
import type { BrokerConfigNode, BrokerCredentials } from "../shared/broker-link";
import { BROKER_CONFIG_TYPE, isBrokerConfigNode } from "../shared/broker-link";
import { flag, numeric, text, withoutUndefined } from "../shared/coerce";
import { failureText, toError } from "../shared/errors";
import { brokerMetrics, forgetBrokerMetrics, registerMetricsEndpoint } from "../shared/metrics";
import { problemStatus, statusForState } from "../shared/status";
import { registerKiteLogin } from "./kite-login";

/** The editor stores every field as text (numbers too); blank means "use the default". */
interface BrokerConfigDef extends NodeDef {
  kind?: string;
  account?: unknown;
  starting_cash?: unknown;
  slippage_bps?: unknown;
  quote_source?: unknown;
  start_price?: unknown;
  volatility?: unknown;
  spread_bps?: unknown;
  interval_ms?: unknown;
  seed?: unknown;
  csv_file?: unknown;
  replay_speed?: unknown;
  replay_loop?: unknown;
  retention?: unknown;
  max_fill_per_quote?: unknown;
  // websocket kind; the api key and secret are credentials, never properties
  url?: unknown;
  ca_file?: unknown;
  reconnect_initial_ms?: unknown;
  reconnect_factor?: unknown;
  reconnect_max_ms?: unknown;
  heartbeat_ms?: unknown;
  request_timeout_ms?: unknown;
  queue_max?: unknown;
  queue_ttl_ms?: unknown;
  rate_per_second?: unknown;
  rate_burst?: unknown;
  breaker_threshold?: unknown;
  breaker_cool_down_ms?: unknown;
  resolve_window_ms?: unknown;
  // kite kind (reconnect_* and resolve_window_ms above too); api key and access token are credentials
  root?: unknown;
  ticker_url?: unknown;
  market_protection?: unknown;
  ticker_mode?: unknown;
  timeout_ms?: unknown;
  read_timeout_ms?: unknown;
  order_ttl_ms?: unknown;
  gtt_poll_ms?: unknown;
  login_url?: unknown;
  orders_per_second?: unknown;
  orders_per_minute?: unknown;
  requests_per_second?: unknown;
  quotes_per_second?: unknown;
  rate_max_wait_ms?: unknown;
}

function paperSettingsOf(def: BrokerConfigDef): Record<string, unknown> {
  return withoutUndefined({
    account: text(def.account),
    starting_cash: numeric(def.starting_cash),
    slippage_bps: numeric(def.slippage_bps),
    quote_source: text(def.quote_source),
    start_price: numeric(def.start_price),
    volatility: numeric(def.volatility),
    spread_bps: numeric(def.spread_bps),
    interval_ms: numeric(def.interval_ms),
    seed: numeric(def.seed),
    csv_file: text(def.csv_file),
    replay_speed: numeric(def.replay_speed),
    replay_loop: flag(def.replay_loop),
    retention: numeric(def.retention),
    max_fill_per_quote: numeric(def.max_fill_per_quote),
  });
}

/** A credential as typed; blank is absent. Never trimmed or logged: it goes to the broker as is. */
function secret(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value : undefined;
}

/** The CA file's PEM text, or why it cannot be used, naming the field as the schema would. */
function readCa(file: string, url: unknown, userDir: string): string | BrokerError {
  const bad = (rule: string): BrokerError =>
    new BrokerError("CONFIG", `invalid broker settings: websocket.ca_file: ${rule}`);
  if (typeof url === "string" && !url.startsWith("wss://")) {
    return bad("only applies to a wss:// URL (a ws:// connection is not encrypted)");
  }
  const resolved = path.resolve(userDir, file);
  let pem: string;
  try {
    pem = fs.readFileSync(resolved, "utf8");
  } catch (error) {
    return bad(`cannot read ${resolved}: ${toError(error).message}`);
  }
  return pem.includes("-----BEGIN CERTIFICATE-----")
    ? pem
    : bad(`${resolved} holds no PEM certificate (no BEGIN CERTIFICATE line)`);
}

function websocketSettingsOf(
  def: BrokerConfigDef,
  credentials: BrokerCredentials | undefined,
  userDir: string,
): Record<string, unknown> | BrokerError {
  const url = text(def.url);
  const caFile = text(def.ca_file);
  const ca = caFile === undefined ? undefined : readCa(caFile, url, userDir);
  if (ca instanceof BrokerError) return ca;
  return withoutUndefined({
    url,
    api_key: secret(credentials?.apiKey),
    api_secret: secret(credentials?.apiSecret),
    ca,
    reconnect: withoutUndefined({
      initial_ms: numeric(def.reconnect_initial_ms),
      factor: numeric(def.reconnect_factor),
      max_ms: numeric(def.reconnect_max_ms),
    }),
    heartbeat_ms: numeric(def.heartbeat_ms),
    request_timeout_ms: numeric(def.request_timeout_ms),
    queue: withoutUndefined({ max: numeric(def.queue_max), ttl_ms: numeric(def.queue_ttl_ms) }),
    rate_limit: withoutUndefined({
      per_second: numeric(def.rate_per_second),
      burst: numeric(def.rate_burst),
    }),
    breaker: withoutUndefined({
      failure_threshold: numeric(def.breaker_threshold),
      cool_down_ms: numeric(def.breaker_cool_down_ms),
    }),
    resolve_window_ms: numeric(def.resolve_window_ms),
  });
}

/**
 * Kite Connect: blank root / ticker URL mean Kite's real endpoints (the schema's defaults), so a
 * flow only sets them to point at a fake or a proxy. Blank market protection is automatic (-1).
 */
function kiteSettingsOf(
  def: BrokerConfigDef,
  credentials: BrokerCredentials | undefined,
  userDir: string,
): Record<string, unknown> {
  return withoutUndefined({
    api_key: secret(credentials?.apiKey),
    access_token: secret(credentials?.accessToken),
    // Instrument lists are cached for the trading day beside the flows (issue 10).
    cache_dir: path.join(userDir, "kite-cache"),
    login_url: text(def.login_url),
    root: text(def.root),
    ticker_url: text(def.ticker_url),
    market_protection: numeric(def.market_protection),
    ticker_mode: text(def.ticker_mode),
    timeout_ms: numeric(def.timeout_ms),
    read_timeout_ms: numeric(def.read_timeout_ms),
    order_ttl_ms: numeric(def.order_ttl_ms),
    resolve_window_ms: numeric(def.resolve_window_ms),
    gtt_poll_ms: numeric(def.gtt_poll_ms),
    reconnect: withoutUndefined({
      initial_ms: numeric(def.reconnect_initial_ms),
      factor: numeric(def.reconnect_factor),
      max_ms: numeric(def.reconnect_max_ms),
    }),
    rate_limit: withoutUndefined({
      orders_per_second: numeric(def.orders_per_second),
      orders_per_minute: numeric(def.orders_per_minute),
      requests_per_second: numeric(def.requests_per_second),
      quotes_per_second: numeric(def.quotes_per_second),
      max_wait_ms: numeric(def.rate_max_wait_ms),
    }),
  });
}

/**
 * The settings object for createBroker, or a CONFIG error naming every bad field and its rule.
 * Messages name fields and rules only: the schema's messages never quote a value, so a secret in
 * a wrong place cannot reach the log.
 */
function brokerSettingsOf(
  def: BrokerConfigDef,
  credentials: BrokerCredentials | undefined,
  userDir: string,
): BrokerSettingsInput | BrokerError {
  const kind = text(def.kind) ?? "paper";
  let kindSettings: Record<string, unknown> | BrokerError = {};
  if (kind === "paper") kindSettings = paperSettingsOf(def);
  else if (kind === "websocket") kindSettings = websocketSettingsOf(def, credentials, userDir);
  else if (kind === "kite") kindSettings = kiteSettingsOf(def, credentials, userDir);
  if (kindSettings instanceof BrokerError) return kindSettings;
  const parsed = BrokerSettings.safeParse({ kind, [kind]: kindSettings });
  if (parsed.success) return parsed.data;
  return new BrokerError("CONFIG", `invalid broker settings: ${formatIssues(parsed.error.issues)}`);
}

/**
 * Names the account a broker serves, so a new broker for it waits until the old one has closed:
 * the paper journal file, or the gateway's URL.
 */
function accountKeyOf(settings: BrokerSettingsInput, userDir: string): string {
  switch (settings.kind) {
    case "paper":
      return paperJournalFile(userDir, settings.paper.account ?? "default");
    case "websocket":
      return `websocket ${settings.websocket.url}`;
    case "kite":
      return `kite ${settings.kite.api_key}`;
  }
}

export = function (RED: NodeAPI): void {
  let warnedUserDir = false;

  /** Where brokers keep their files; the test helper and embedded runtimes may not set userDir. */
  function userDirFor(node: BrokerConfigNode): string {
    const configured = RED.settings.userDir;
    if (typeof configured === "string" && configured !== "") return configured;
    const fallback = path.join(os.tmpdir(), "node-red-trading-broker");
    if (!warnedUserDir) {
      warnedUserDir = true;
      node.warn(RED._("trading-broker.errors.no-user-dir", { dir: fallback }));
    }
    return fallback;
  }

  function BrokerConfig(this: BrokerConfigNode, def: BrokerConfigDef): void {
    RED.nodes.createNode(this, def);
    startBrokerConfig(this, def);
  }

  function startBrokerConfig(node: BrokerConfigNode, def: BrokerConfigDef): void {
    const log: BrokerLogger = {
      info: (message) => node.log(message),
      warn: (message) => node.warn(message),
      error: (message) => node.error(message),
    };
    const userDir = userDirFor(node);
    const settings = brokerSettingsOf(def, node.credentials, userDir);
    const kind = settings instanceof BrokerError ? undefined : settings.kind;
    let unusable: Unusable | undefined;
    if (settings instanceof BrokerError) {
      node.error(settings.message);
      unusable = { error: settings, status: problemStatus(RED._("trading-broker.status.invalid-settings")) };
    }
    const metrics = brokerMetrics(node.id, node.name ?? "");
    const connection = new BrokerConnection(
      {
        accountKey: settings instanceof BrokerError ? node.id : accountKeyOf(settings, userDir),
        create: (): ManagedBroker => {
          if (settings instanceof BrokerError) throw settings;
          return metrics.instrument(createBroker(settings, { userDir, log }));
        },
        log,
        stateStatus: (state) => statusForState(state, RED._),
        failedStatus: (error) =>
          problemStatus(
            error.code === "AUTH"
              ? // Kite: the very text place-order shows for the same error, so every node agrees.
                kind === "kite"
                ? SESSION_EXPIRED
                : RED._("trading-broker.status.auth-failed")
              : RED._("trading-broker.status.failed", { reason: failureText(error) }),
          ),
      },
      unusable,
    );
    Object.defineProperty(node, "connection", { value: connection, enumerable: false });
    Object.defineProperty(node, "broker", { get: () => connection.broker, enumerable: false });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) forgetBrokerMetrics(node.id);
      connection.close().then(done, (error: unknown) => {
        node.error(toBrokerError(error).message);
        done();
      });
    });
  }

  RED.nodes.registerType<BrokerConfigNode, BrokerConfigDef, Record<string, never>, BrokerCredentials>(
    BROKER_CONFIG_TYPE,
    BrokerConfig,
    {
      credentials: {
        apiKey: { type: "password" },
        apiSecret: { type: "password" },
        accessToken: { type: "password" },
      },
    },
  );

  RED.httpAdmin.post(
    "/trading-broker/:id/reset",
    RED.auth.needsPermission("trading-broker.write"),
    (req, res) => {
      const id = String(req.params.id);
      const node = RED.nodes.getNode(id);
      if (!isBrokerConfigNode(node)) {
        res
          .status(404)
          .json({ code: "NOT_FOUND", message: RED._("trading-broker.errors.unknown-config", { id }) });
        return;
      }
      node.connection.resetAccount().then(
        () => {
          node.log(RED._("trading-broker.log.reset"));
          res.json({ ok: true });
        },
        (error: unknown) => {
          const failure = toBrokerError(error);
          res.status(failure.code === "INTERNAL" ? 500 : 409).json(failure.toJSON());
        },
      );
    },
  );

  registerMetricsEndpoint(RED);
  registerKiteLogin(RED);
};
