import type { Node, NodeAPI, NodeDef } from "node-red";
import { CancelRequest } from "../../lib/protocol/orders";
import { parseOrThrow } from "../../lib/protocol/validate";
import { linkBroker } from "../shared/broker-link";
import { handleInput, isPlainObject } from "../shared/input";
import { successStatus } from "../shared/status";
import { editorValues, mergeEditorValues, resolveFields } from "../shared/typed-input";
import type { ResolvedField } from "../shared/typed-input";

interface CancelOrderDef extends NodeDef {
  broker?: string;
}

/**
 * A cancel needs nothing but the order id, so it is read from wherever it is: a string payload,
 * payload.order_id (other fields ignored, so a place-order's output can be wired straight in), or
 * the editor.
 */
function orderIdIn(payload: unknown): unknown {
  if (typeof payload === "string" && payload.trim() !== "") return payload.trim();
  return isPlainObject(payload) ? payload.order_id : undefined;
}

/** The editor's values as TypedInputs, resolved once at start. */
interface CancelOrderNode extends Node {
  editorFields: readonly ResolvedField[];
}

export = function (RED: NodeAPI): void {
  function CancelOrder(this: CancelOrderNode, def: CancelOrderDef): void {
    RED.nodes.createNode(this, def);
    startCancelOrder(this, def);
  }

  function startCancelOrder(node: CancelOrderNode, def: CancelOrderDef): void {
    const fields = resolveFields(def, [{ field: "order_id", prop: "orderId" }]);
    node.editorFields = fields;
    const idFixed = fields.some((field) => field.fixed);
    const broker = linkBroker(RED, node, def.broker);

    handleInput(
      node,
      async (msg, send) => {
        const given = orderIdIn(msg.payload);
        // The editor's value is evaluated only when it is needed: no id in the payload, or a fixed one.
        const order_id =
          given !== undefined && !idFixed
            ? given
            : mergeEditorValues({ order_id: given }, await editorValues(RED, node, fields, msg), fields)
                .order_id;
        const request = parseOrThrow(CancelRequest, { order_id }, "cancel request");
        const snapshot = await (await broker.ready()).cancelOrder(request.order_id);
        msg.payload = snapshot;
        broker.showOutcome(successStatus(`${snapshot.order_id}: ${snapshot.status}`));
        send(msg);
      },
      (status) => broker.showOutcome(status),
    );
  }

  RED.nodes.registerType("trading-cancel-order", CancelOrder);
};
