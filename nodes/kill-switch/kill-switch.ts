import type { Node, NodeAPI, NodeDef } from "node-red";
import { BrokerError } from "../../lib/protocol/errors";
import type { KillCommand } from "../../lib/risk/guard";
import { KILL_COMMANDS, isGuarded } from "../../lib/risk/guard";
import { linkBroker } from "../shared/broker-link";
import { flag, text } from "../shared/coerce";
import { handleInput, isPlainObject } from "../shared/input";

interface KillSwitchDef extends NodeDef {
  broker?: string;
  /** Blank: the command comes from msg.payload. */
  command?: string;
  cancel?: unknown;
  flatten?: unknown;
}

interface KillSwitchNode extends Node {
  options: { command: KillCommand | undefined; cancel: boolean; flatten: boolean };
}

/** Reads the state without changing it: what a dashboard shows at start, before any change. */
const READ_STATE = "state";

function isCommand(value: unknown): value is KillCommand {
  return typeof value === "string" && (KILL_COMMANDS as readonly string[]).includes(value);
}

/** A value as it may be quoted in an error: short, and never an object dumped whole. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === undefined || value === null || typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  return typeof value;
}

function bool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === "boolean") return value;
  throw new BrokerError("VALIDATION", `invalid kill switch message: ${field}: must be true or false`);
}

export = function (RED: NodeAPI): void {
  function KillSwitch(this: KillSwitchNode, def: KillSwitchDef): void {
    RED.nodes.createNode(this, def);
    startKillSwitch(this, def);
  }

  function startKillSwitch(node: KillSwitchNode, def: KillSwitchDef): void {
    const configured = text(def.command);
    node.options = {
      command: isCommand(configured) ? configured : undefined,
      cancel: flag(def.cancel) === true,
      flatten: flag(def.flatten) === true,
    };
    if (configured !== undefined && !isCommand(configured)) {
      node.error(RED._("trading-kill-switch.errors.bad-command", { command: configured }));
    }
    const broker = linkBroker(RED, node, def.broker);
    const by = `kill switch ${node.name !== undefined && node.name !== "" ? node.name : node.id}`;

    handleInput(node, async (msg, send) => {
      // "halt", or { command: "halt", reason, cancel, flatten }; the editor's command when neither says.
      const payload = msg.payload;
      const fields = isPlainObject(payload) ? payload : {};
      const asked = isPlainObject(payload)
        ? payload.command
        : typeof payload === "string"
          ? payload.trim()
          : undefined;
      const command = asked ?? node.options.command;
      if (command === READ_STATE) {
        const guarded = await broker.ready();
        if (!isGuarded(guarded)) throw new BrokerError("CONFIG", "this broker has no risk guard");
        const record = guarded.risk.stateRecord;
        msg.payload = {
          state: record.state,
          previous: record.state,
          by: record.by,
          reason: record.reason,
          at: record.at,
          cancelled: [],
          deleted_gtts: [],
          placed: [],
          failures: [],
        };
        send(msg);
        return;
      }
      if (!isCommand(command)) {
        throw new BrokerError(
          "VALIDATION",
          `invalid kill switch message: command: must be one of ${[...KILL_COMMANDS, READ_STATE].join(", ")} (got ${shown(command)})`,
        );
      }
      const cancel = bool(fields.cancel, "cancel", node.options.cancel);
      const flatten = bool(fields.flatten, "flatten", node.options.flatten);
      const reason =
        typeof fields.reason === "string" && fields.reason.trim() !== ""
          ? fields.reason.trim()
          : typeof msg.topic === "string" && msg.topic.trim() !== ""
            ? msg.topic.trim()
            : command;
      const guarded = await broker.ready();
      if (!isGuarded(guarded)) throw new BrokerError("CONFIG", "this broker has no risk guard");
      const outcome = await guarded.risk.kill(command, by, reason, { cancel, flatten });
      msg.payload = outcome;
      broker.restoreStatus();
      send(msg);
    });
  }

  RED.nodes.registerType("trading-kill-switch", KillSwitch);
};
