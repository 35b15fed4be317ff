import type { Node, NodeAPI, NodeDef } from "node-red";
import { ModifyRequest, OrderChanges } from "../../lib/protocol/orders";
import { parseOrThrow } from "../../lib/protocol/validate";
import { linkBroker } from "../shared/broker-link";
import { handleInput, payloadFields } from "../shared/input";
import { successStatus } from "../shared/status";
import type { EditorField, ResolvedField } from "../shared/typed-input";
import { editorValues, mergeEditorValues, resolveFields } from "../shared/typed-input";

interface ModifyOrderDef extends NodeDef {
  broker?: string;
}

const FIELDS: readonly EditorField[] = [
  { field: "order_id", prop: "orderId" },
  { field: "quantity", prop: "quantity", numeric: true },
  { field: "order_type", prop: "orderType" },
  { field: "price", prop: "price", numeric: true },
  { field: "trigger_price", prop: "triggerPrice", numeric: true },
  { field: "validity", prop: "validity" },
  { field: "disclosed_quantity", prop: "disclosedQuantity", numeric: true },
];

/** The editor's values as TypedInputs, resolved once at start. */
interface ModifyOrderNode extends Node {
  editorFields: readonly ResolvedField[];
}

export = function (RED: NodeAPI): void {
  function ModifyOrder(this: ModifyOrderNode, def: ModifyOrderDef): void {
    RED.nodes.createNode(this, def);
    startModifyOrder(this, def);
  }

  function startModifyOrder(node: ModifyOrderNode, def: ModifyOrderDef): void {
    const fields = resolveFields(def, FIELDS);
    node.editorFields = fields;
    const broker = linkBroker(RED, node, def.broker);

    handleInput(
      node,
      async (msg, send) => {
        const values = await editorValues(RED, node, fields, msg);
        const fieldsIn = mergeEditorValues(payloadFields(msg.payload), values, fields);
        const { order_id, ...changes } = parseOrThrow(ModifyRequest, fieldsIn, "modify request");
        parseOrThrow(OrderChanges, changes, "modify request");
        const snapshot = await (await broker.ready()).modifyOrder(order_id, changes);
        msg.payload = snapshot;
        broker.showOutcome(successStatus(`${snapshot.order_id}: ${snapshot.status}`));
        send(msg);
      },
      (status) => broker.showOutcome(status),
    );
  }

  RED.nodes.registerType("trading-modify-order", ModifyOrder);
};
