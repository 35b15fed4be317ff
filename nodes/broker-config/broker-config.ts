import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NodeAPI, NodeDef } from "node-red";
import { createBroker, paperJournalFile } from "../../lib/brokers/create-broker";
import type { BrokerLogger } from "../../lib/brokers/logger";
import type { BrokerSettingsInput } from "../../lib/brokers/settings";
// Not from kite-broker.ts: that would load kiteconnect in a paper-only runtime (kite-lazy-load spec).
import { KITE_LOGIN_NEEDED, SESSION_EXPIRED } from "../../lib/kite/errors";
import { BrokerSettings } from "../../lib/brokers/settings";
import { BrokerError, toBrokerError } from "../../lib/protocol/errors";
import { formatIssues } from "../../lib/protocol/validate";
import type { KillCommand, RiskGuard } from "../../lib/risk/guard";
import { KILL_COMMANDS, guardBroker, isGuarded } from "../../lib/risk/guard";
import { loadState } from "../../lib/risk/state-file";
import { defaultRateLimits } from "../../lib/risk/settings";
import type { ManagedBroker, Unusable } from "../shared/broker-connection";
import { BrokerConnection } from "../shared/broker-connection";
import type { BrokerConfigNode, BrokerCredentials } from "../shared/broker-link";
import { BROKER_CONFIG_TYPE, isBrokerConfigNode } from "../shared/broker-link";
import { flag, numeric, text, withoutUndefined } from "../shared/coerce";
import { failureText, toError } from "../shared/errors";
import { brokerMetrics, forgetBrokerMetrics, registerMetricsEndpoint } from "../shared/metrics";
import { failureStatus, problemStatus, shorten, statusForState } from "../shared/status";
import { registerKiteLogin } from "./kite-login";
import { withStoredKiteSession } from "./kite-session-file";
import { carryStory, forgetStory } from "./websocket-story";
import { WebSocketBroker } from "../../lib/brokers/websocket-broker";
import { removeStory, websocketStoryFile } from "../../lib/brokers/websocket-story-file";
import { liveBrokers } from "../../lib/kite/live-brokers";

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
  market?: unknown;
  market_rules?: unknown;
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
  startup_budget_ms?: unknown;
  login_url?: unknown;
  orders_per_second?: unknown;
  orders_per_minute?: unknown;
  requests_per_second?: unknown;
  quotes_per_second?: unknown;
  rate_max_wait_ms?: unknown;
  // risk guard, any kind; blank means "not checked"
  risk_max_order_quantity?: unknown;
  risk_max_order_value?: unknown;
  risk_max_position_quantity?: unknown;
  risk_max_position_value?: unknown;
  risk_max_open_orders?: unknown;
  risk_max_orders_per_second?: unknown;
  risk_max_orders_per_minute?: unknown;
  risk_price_band_pct?: unknown;
  risk_allowed_symbols?: unknown;
  risk_window?: unknown;
  risk_window_start?: unknown;
  risk_window_end?: unknown;
  risk_window_weekends?: unknown;
  risk_max_daily_loss?: unknown;
  risk_flatten_on_daily_loss?: unknown;
}

/**
 * The paper market: the preset alone, or the preset with the overrides typed as JSON in the
 * dialog (`{"margin": {"mis_leverage": 4}}`). Text that is not a JSON object is a CONFIG error
 * naming the field; the schema checks the rules themselves.
 */
function paperMarketOf(def: BrokerConfigDef): unknown {
  const preset = text(def.market);
  const rules = text(def.market_rules);
  if (rules === undefined) return preset;
  let parsed: unknown;
  try {
    parsed = JSON.parse(rules);
  } catch (error) {
    return new BrokerError(
      "CONFIG",
      `invalid broker settings: paper.market_rules: must be a JSON object (${toError(error).message})`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return new BrokerError("CONFIG", "invalid broker settings: paper.market_rules: must be a JSON object");
  }
  return { preset: preset ?? "relaxed", ...parsed };
}

function paperSettingsOf(def: BrokerConfigDef): Record<string, unknown> | BrokerError {
  const market = paperMarketOf(def);
  if (market instanceof BrokerError) return market;
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
    market,
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
    // With the api secret and no token the broker waits for a login from the editor (kite-login.ts);
    // with neither, "" makes the schema name the missing token, as it always has.
    access_token: secret(credentials?.accessToken) ?? (secret(credentials?.apiSecret) ? undefined : ""),
    // Instrument lists are cached for the trading day beside the flows (issue 10).
    cache_dir: path.join(userDir, "kite-cache"),
    // Each config on one api key keeps its own record of what it reported (reported-ledger.ts).
    instance_id: text(def.id),
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
    startup_budget_ms: numeric(def.startup_budget_ms),
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

/** "INFY, NSE:TCS" or "INFY TCS" as a list; blank is no list (every symbol allowed). */
function symbolList(value: unknown): unknown {
  if (Array.isArray(value)) return value;
  const raw = text(value);
  return raw === undefined ? undefined : raw.split(/[\s,]+/).filter((part) => part !== "");
}

/**
 * The risk guard's limits as the schema wants them. A Kite config with no rate limit of its own
 * gets rates safely under Kite's (defaultRateLimits); the other kinds get none.
 */
function riskSettingsOf(def: BrokerConfigDef, kind: string): Record<string, unknown> {
  const windowOn = flag(def.risk_window);
  const risk = withoutUndefined({
    max_order_quantity: numeric(def.risk_max_order_quantity),
    max_order_value: numeric(def.risk_max_order_value),
    max_position_quantity: numeric(def.risk_max_position_quantity),
    max_position_value: numeric(def.risk_max_position_value),
    max_open_orders: numeric(def.risk_max_open_orders),
    max_orders_per_second: numeric(def.risk_max_orders_per_second),
    max_orders_per_minute: numeric(def.risk_max_orders_per_minute),
    price_band_pct: numeric(def.risk_price_band_pct),
    allowed_symbols: symbolList(def.risk_allowed_symbols),
    trading_window:
      windowOn === true
        ? withoutUndefined({
            start: text(def.risk_window_start),
            end: text(def.risk_window_end),
            weekends: flag(def.risk_window_weekends),
          })
        : undefined,
    max_daily_loss: numeric(def.risk_max_daily_loss),
    flatten_on_daily_loss: flag(def.risk_flatten_on_daily_loss),
  });
  if (risk.max_orders_per_second === undefined && risk.max_orders_per_minute === undefined) {
    if (kind === "paper" || kind === "websocket" || kind === "kite")
      Object.assign(risk, defaultRateLimits(kind));
  }
  return risk;
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
  const parsed = BrokerSettings.safeParse({ kind, [kind]: kindSettings, risk: riskSettingsOf(def, kind) });
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

/**
 * Where the risk guard keeps the account's trading state: beside the paper journal, or for a
 * remote account under a name derived from it (a digest, so no URL or key shows in a file name).
 */
function riskStateFile(settings: BrokerSettingsInput, userDir: string): string {
  return path.join(userDir, "trading-broker", `risk-${riskAccountOf(settings, userDir)}.json`);
}

/** The account a state file belongs to, as its name says it and as the file records it. */
function riskAccountOf(settings: BrokerSettingsInput, userDir: string): string {
  if (settings.kind === "paper") return `paper-${settings.paper.account ?? "default"}`;
  const digest = createHash("sha256").update(accountKeyOf(settings, userDir)).digest("hex").slice(0, 16);
  return `${settings.kind}-${digest}`;
}

/** Where a remote broker dials, for messages: no user info, query or fragment (they may hold secrets). */
function addressOf(settings: BrokerSettingsInput): string | undefined {
  const raw =
    settings.kind === "websocket"
      ? settings.websocket.url
      : settings.kind === "kite"
        ? settings.kite.root
        : undefined;
  if (raw === undefined) return undefined;
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

/** Which kind's credentials are not all entered ("websocket", "kite"), if that is the case. */
function missingCredentials(
  kind: unknown,
  credentials: BrokerCredentials | undefined,
): "websocket-credentials" | "kite-credentials" | undefined {
  if (kind === "websocket" && (!secret(credentials?.apiKey) || !secret(credentials?.apiSecret)))
    return "websocket-credentials";
  if (
    kind === "kite" &&
    (!secret(credentials?.apiKey) || (!secret(credentials?.accessToken) && !secret(credentials?.apiSecret)))
  )
    return "kite-credentials";
  return undefined;
}

export = function (RED: NodeAPI): void {
  let warnedUserDir = false;
  /** Each deployed config node's trading state file (for reading it while no broker is up). */
  const stateFiles = new WeakMap<BrokerConfigNode, string>();

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
      // A Kite config not logged in yet is a state the user acts on (the editor's login button),
      // not a fault: it goes out as a warning, once.
      error: (message) => (message === KITE_LOGIN_NEEDED ? node.warn(message) : node.error(message)),
    };
    const userDir = userDirFor(node);
    // Kite: a login from earlier today outlives a restart (kite-session-file.ts).
    const kept = def.kind === "kite" ? withStoredKiteSession(RED, node, userDir) : undefined;
    const credentials = kept?.credentials ?? node.credentials;
    const bad = brokerSettingsOf(def, credentials, userDir);
    const missing = bad instanceof BrokerError ? missingCredentials(def.kind, credentials) : undefined;
    // A first run has no credentials yet: say where to enter them, not only which schema rule failed.
    const settings =
      missing === undefined || !(bad instanceof BrokerError)
        ? bad
        : new BrokerError(
            "CONFIG",
            `${bad.message}. ${RED._(`trading-broker.errors.enter-${missing}`, { name: node.name || node.id })}`,
          );
    const kind = settings instanceof BrokerError ? undefined : settings.kind;
    const address = settings instanceof BrokerError ? undefined : addressOf(settings);
    let unusable: Unusable | undefined;
    if (settings instanceof BrokerError) {
      node.error(settings.message);
      const status = missing === undefined ? "invalid-settings" : `enter-${missing}`;
      unusable = { error: settings, status: problemStatus(RED._(`trading-broker.status.${status}`)) };
    }
    if (!(settings instanceof BrokerError)) stateFiles.set(node, riskStateFile(settings, userDir));
    // Where a WebSocket broker's story outlives the process (per config node and gateway URL).
    const storyFile =
      settings instanceof BrokerError || settings.kind !== "websocket"
        ? undefined
        : websocketStoryFile(userDir, node.id, settings.websocket.url);
    const metrics = brokerMetrics(node.id, node.name ?? "");
    const connection = new BrokerConnection(
      {
        accountKey: settings instanceof BrokerError ? node.id : accountKeyOf(settings, userDir),
        create: (): ManagedBroker => {
          if (settings instanceof BrokerError) throw settings;
          const made = createBroker(settings, {
            userDir,
            log,
            ...(storyFile === undefined ? {} : { websocketStoryFile: storyFile }),
          });
          if (made instanceof WebSocketBroker) carryStory(node.id, made);
          const broker = metrics.instrument(made);
          if (kept?.session !== undefined && settings.kind === "kite") {
            for (const kite of liveBrokers(settings.kite.api_key)) kite.restoreSession(kept.session);
          }
          const guarded = guardBroker(broker, {
            settings: settings.risk ?? {},
            stateFile: riskStateFile(settings, userDir),
            account: riskAccountOf(settings, userDir),
            log,
          });
          metrics.watchRisk(guarded.risk);
          return guarded;
        },
        log,
        stateStatus: (state) => statusForState(state, RED._),
        tradingStatus: (guard: RiskGuard) => {
          const record = guard.stateRecord;
          // Nothing new goes out while the state file cannot be written, whatever the state.
          const unsaved = guard.unsaved;
          if (unsaved !== undefined) {
            return failureStatus(
              RED._("trading-broker.status.unsaved", { state: record.state.toLowerCase(), reason: unsaved }),
            );
          }
          // ACTIVE, but the daily loss cannot be checked: no new orders either.
          const unread = guard.pnlUnread;
          if (record.state === "ACTIVE" && unread !== undefined) {
            return failureStatus(RED._("trading-broker.status.pnl-unread", { reason: unread }));
          }
          if (record.state === "ACTIVE") return undefined;
          const key = record.state === "HALTED" ? "halted" : "reducing";
          const text = RED._(`trading-broker.status.${key}`, { reason: record.reason });
          return record.state === "HALTED"
            ? failureStatus(text)
            : { fill: "yellow", shape: "dot", text: shorten(text) };
        },
        ...(address === undefined ? {} : { address }),
        unreachableStatus: (why) =>
          problemStatus(RED._("trading-broker.status.unreachable", { reason: why.replace(/^connect /, "") })),
        failedStatus: (error) =>
          problemStatus(
            error.code === "AUTH"
              ? // Kite: the very text place-order shows for the same error, so every node agrees.
                kind === "kite"
                ? error.message === KITE_LOGIN_NEEDED
                  ? RED._("trading-broker.status.kite-login")
                  : SESSION_EXPIRED
                : RED._("trading-broker.status.auth-failed")
              : RED._("trading-broker.status.failed", { reason: failureText(error) }),
          ),
      },
      unusable,
    );
    Object.defineProperty(node, "connection", { value: connection, enumerable: false });
    Object.defineProperty(node, "broker", { get: () => connection.broker, enumerable: false });

    node.on("close", (removed: boolean, done: () => void) => {
      if (removed) {
        forgetBrokerMetrics(node.id);
        forgetStory(node.id);
      }
      connection
        .close()
        // Removed: no config will take its story up again (after the close, which writes it last).
        .then(() => (removed && storyFile !== undefined ? removeStory(storyFile) : undefined))
        .then(done, (error: unknown) => {
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

  /** The deployed config node an admin route names, or a 404 naming the id. */
  function configNodeOr404(
    req: { params: Record<string, unknown> },
    res: { status(code: number): { json(body: unknown): unknown } },
  ): BrokerConfigNode | undefined {
    const id = String(req.params.id);
    const node = RED.nodes.getNode(id);
    if (isBrokerConfigNode(node)) return node;
    res
      .status(404)
      .json({ code: "NOT_FOUND", message: RED._("trading-broker.errors.unknown-config", { id }) });
    return undefined;
  }

  /** A broker's refusal as the admin API answers it: 409 for a refusal, 500 for a fault of ours. */
  function replyFailure(
    res: { status(code: number): { json(body: unknown): unknown } },
    error: unknown,
  ): void {
    const failure = toBrokerError(error);
    res.status(failure.code === "INTERNAL" ? 500 : 409).json(failure.toJSON());
  }

  RED.httpAdmin.post(
    "/trading-broker/:id/reset",
    RED.auth.needsPermission("trading-broker.write"),
    (req, res) => {
      const node = configNodeOr404(req, res);
      if (node === undefined) return;
      node.connection.resetAccount().then(
        () => {
          node.log(RED._("trading-broker.log.reset"));
          res.json({ ok: true });
        },
        (error: unknown) => replyFailure(res, error),
      );
    },
  );

  /** Who asked, for the RISK_STATE_CHANGED event: the admin user when there is one. */
  function adminUser(req: { user?: unknown }): string {
    const user = req.user as { username?: unknown } | undefined;
    return typeof user?.username === "string" ? `admin ${user.username}` : "admin";
  }

  RED.httpAdmin.post(
    "/trading-broker/:id/state",
    RED.auth.needsPermission("trading-broker.write"),
    (req, res) => {
      const node = configNodeOr404(req, res);
      if (node === undefined) return;
      const body = (typeof req.body === "object" && req.body !== null ? req.body : {}) as Record<
        string,
        unknown
      >;
      const command = body.command;
      if (typeof command !== "string" || !KILL_COMMANDS.includes(command as KillCommand)) {
        res.status(400).json({
          code: "VALIDATION",
          message: `command: must be one of ${KILL_COMMANDS.join(", ")}`,
        });
        return;
      }
      for (const option of ["cancel", "flatten"] as const) {
        if (body[option] !== undefined && typeof body[option] !== "boolean") {
          res.status(400).json({ code: "VALIDATION", message: `${option}: must be true or false` });
          return;
        }
      }
      const reason =
        typeof body.reason === "string" && body.reason.trim() !== "" ? body.reason.trim() : command;
      const by = adminUser(req as { user?: unknown });
      node.connection
        .killSwitch(command as KillCommand, by, reason, {
          cancel: body.cancel === true,
          flatten: body.flatten === true,
        })
        .then(
          (outcome) => res.json(outcome),
          (error: unknown) => replyFailure(res, error),
        );
    },
  );

  /**
   * The trading state for display (the config dialog). It never brings a broker up (that would dial
   * Kite just to show a word): a live guard answers, else the state file. Always 200, so an
   * undeployed or misconfigured node shows "unknown" rather than a failed request.
   */
  RED.httpAdmin.get(
    "/trading-broker/:id/state",
    RED.auth.needsPermission("trading-broker.read"),
    (req, res) => {
      const id = String(req.params.id);
      const node = RED.nodes.getNode(id);
      if (!isBrokerConfigNode(node)) {
        res.json({ state: null, reason: RED._("trading-broker.errors.unknown-config", { id }) });
        return;
      }
      const broker = node.broker;
      if (isGuarded(broker)) {
        // A guard not yet connected still holds its default record: read the file first (load()
        // only reads the state file, it never brings the broker up), so a halted account never
        // shows ACTIVE after a restart.
        broker.risk.load().then(
          () => res.json({ ...broker.risk.stateRecord }),
          () => res.json({ state: null, reason: "cannot read the state file" }),
        );
        return;
      }
      const file = stateFiles.get(node);
      if (file === undefined) {
        res.json({ state: null, reason: RED._("trading-broker.status.invalid-settings") });
        return;
      }
      loadState(file).then(
        (loaded) =>
          res.json(
            loaded.kind === "ok"
              ? loaded.record
              : loaded.kind === "missing"
                ? { state: "ACTIVE", by: "default", reason: "no state saved yet" }
                : { state: "HALTED", by: "risk guard", reason: `state file unreadable: ${loaded.why}` },
          ),
        () => res.json({ state: null, reason: "cannot read the state file" }),
      );
    },
  );

  registerMetricsEndpoint(RED);
  registerKiteLogin(RED, userDirFor);
};
