import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import type { GttRequest as GttRequestOut, GttSnapshot } from "../../lib/protocol/gtt";
import { GttRef, GttRequest } from "../../lib/protocol/gtt";
import { BrokerError } from "../../lib/protocol/errors";
import { parseOrThrow } from "../../lib/protocol/validate";
import type { ManagedBroker } from "../shared/broker-connection";
import { linkBroker } from "../shared/broker-link";
import { fillMissing, handleInput, isPlainObject, payloadFields } from "../shared/input";
import { successStatus } from "../shared/status";
import type { EditorField, ResolvedField } from "../shared/typed-input";
import { editorValues, mergeEditorValues, resolveFields } from "../shared/typed-input";

const ACTIONS = ["place", "modify", "delete"] as const;
type GttAction = (typeof ACTIONS)[number];

interface GttDef extends NodeDef {
  broker?: string;
  action?: string;
  gttType?: string;
}

/** The editor's action and GTT type, used when a message names neither. */
interface GttNode extends Node {
  action: GttAction;
  gttType: "single" | "two-leg";
}

const REQUEST_FIELDS: readonly EditorField[] = [
  { field: "symbol", prop: "symbol" },
  { field: "exchange", prop: "exchange" },
  { field: "trigger_values", prop: "triggerValues" },
  { field: "orders", prop: "orders" },
];

function idIn(payload: unknown): unknown {
  if (typeof payload === "string" && payload.trim() !== "") return payload.trim();
  return isPlainObject(payload) ? payload.gtt_id : undefined;
}

function isAction(value: unknown): value is GttAction {
  return typeof value === "string" && (ACTIONS as readonly string[]).includes(value);
}

/** msg.action overrides the editor's action for one message. */
function actionOf(msg: NodeMessageInFlow, editorAction: GttAction): GttAction {
  if (msg.action === undefined) return editorAction;
  if (isAction(msg.action)) return msg.action;
  throw new BrokerError("VALIDATION", "invalid GTT request: action: must be place, modify or delete");
}

export = function (RED: NodeAPI): void {
  function Gtt(this: GttNode, def: GttDef): void {
    RED.nodes.createNode(this, def);
    startGtt(this, def);
  }

  function startGtt(node: GttNode, def: GttDef): void {
    const editorAction: GttAction = isAction(def.action) ? def.action : "place";
    const editorType = def.gttType === "two-leg" ? "two-leg" : "single";
    node.action = editorAction;
    node.gttType = editorType;
    const requestFields = resolveFields(def, REQUEST_FIELDS);
    const idFields = resolveFields(def, [{ field: "gtt_id", prop: "gttId" }]);
    const idFixed = idFields.some((field) => field.fixed);
    const broker = linkBroker(RED, node, def.broker);

    async function requestOf(
      msg: NodeMessageInFlow,
      fields: readonly ResolvedField[],
    ): Promise<Record<string, unknown>> {
      return mergeEditorValues(
        payloadFields(msg.payload),
        await editorValues(RED, node, fields, msg),
        fields,
      );
    }

    /** The GTT request in a place or modify message, with the editor's type when it names none. */
    function gttRequestOf(fields: Record<string, unknown>): GttRequestOut {
      return parseOrThrow(GttRequest, fillMissing(fields, { type: editorType }), "GTT");
    }

    /** Validates the message for `action`; what comes back only needs the broker to run. */
    async function prepare(
      action: GttAction,
      msg: NodeMessageInFlow,
    ): Promise<(gtts: ManagedBroker) => Promise<GttSnapshot>> {
      switch (action) {
        case "place": {
          const request = gttRequestOf(await requestOf(msg, requestFields));
          return (gtts) => gtts.placeGtt(request);
        }
        case "modify": {
          const { gtt_id, ...fields } = await requestOf(msg, [...idFields, ...requestFields]);
          const ref = parseOrThrow(GttRef, { gtt_id }, "GTT");
          const request = gttRequestOf(fields);
          return (gtts) => gtts.modifyGtt(ref.gtt_id, request);
        }
        case "delete": {
          // Like cancel-order: only the id matters, so a GTT snapshot (or its id as a string) will do.
          const given = idIn(msg.payload);
          const gtt_id =
            given !== undefined && !idFixed
              ? given
              : mergeEditorValues({ gtt_id: given }, await editorValues(RED, node, idFields, msg), idFields)
                  .gtt_id;
          const ref = parseOrThrow(GttRef, { gtt_id }, "GTT");
          return (gtts) => gtts.deleteGtt(ref.gtt_id);
        }
      }
    }

    handleInput(
      node,
      async (msg, send) => {
        const action = actionOf(msg, editorAction);
        const run = await prepare(action, msg);
        const snapshot = await run(await broker.ready());
        msg.payload = snapshot;
        broker.showOutcome(successStatus(`${action} ${snapshot.gtt_id}: ${snapshot.status}`));
        send(msg);
      },
      (status) => broker.showOutcome(status),
    );
  }

  RED.nodes.registerType("trading-gtt", Gtt);
};
