import os from "node:os";
import path from "node:path";
import type { NodeAPI, NodeDef } from "node-red";
import { createBroker, paperJournalFile } from "../../lib/brokers/create-broker";
import type { BrokerLogger } from "../../lib/brokers/logger";
import type { BrokerSettingsInput } from "../../lib/brokers/settings";
import { BrokerSettings } from "../../lib/brokers/settings";
import { BrokerError, toBrokerError } from "../../lib/protocol/errors";
import { formatIssues } from "../../lib/protocol/validate";
import type { ManagedBroker, Unusable } from "../shared/broker-connection";
import { BrokerConnection } from "../shared/broker-connection";
import type { BrokerConfigNode, BrokerCredentials } from "../shared/broker-link";
import { BROKER_CONFIG_TYPE, isBrokerConfigNode } from "../shared/broker-link";
import { flag, numeric, text, withoutUndefined } from "../shared/coerce";
import { failureText } from "../shared/errors";
import { problemStatus, statusForState } from "../shared/status";

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

/** The settings object for createBroker, or a CONFIG error naming every bad field and its rule. */
function brokerSettingsOf(def: BrokerConfigDef): BrokerSettingsInput | BrokerError {
  const kind = text(def.kind) ?? "paper";
  const input = { kind, [kind]: kind === "paper" ? paperSettingsOf(def) : {} };
  const parsed = BrokerSettings.safeParse(input);
  if (parsed.success) return parsed.data;
  return new BrokerError("CONFIG", `invalid broker settings: ${formatIssues(parsed.error.issues)}`);
}

/** Names the account a broker serves, so a new broker for it waits until the old one has closed. */
function accountOf(settings: BrokerSettingsInput): string {
  return settings.kind === "paper" ? (settings.paper.account ?? "default") : settings.websocket.url;
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
    const settings = brokerSettingsOf(def);
    let unusable: Unusable | undefined;
    if (settings instanceof BrokerError) {
      node.error(settings.message);
      unusable = { error: settings, status: problemStatus(RED._("trading-broker.status.invalid-settings")) };
    }
    const userDir = userDirFor(node);
    const connection = new BrokerConnection(
      {
        accountKey:
          settings instanceof BrokerError ? node.id : paperJournalFile(userDir, accountOf(settings)),
        create: (): ManagedBroker => {
          if (settings instanceof BrokerError) throw settings;
          return createBroker(settings, { userDir, log });
        },
        log,
        stateStatus: (state) => statusForState(state, RED._),
        failedStatus: (error) =>
          problemStatus(RED._("trading-broker.status.failed", { reason: failureText(error) })),
      },
      unusable,
    );
    Object.defineProperty(node, "connection", { value: connection, enumerable: false });
    Object.defineProperty(node, "broker", { get: () => connection.broker, enumerable: false });

    node.on("close", (_removed: boolean, done: () => void) => {
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
};
