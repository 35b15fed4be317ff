import type { Node, NodeAPI, NodeDef } from "node-red";
import { parseOrderRequest } from "../../lib/protocol/order-fast-path";
import { linkBroker } from "../shared/broker-link";
import { OrderRejectedError } from "../shared/errors";
import { handleInput, payloadFields } from "../shared/input";
import { successStatus } from "../shared/status";
import type { EditorField, ResolvedField } from "../shared/typed-input";
import { editorValues, mergeEditorValues, resolveFields } from "../shared/typed-input";

/**
 * Each editor field is a TypedInput: `<prop>` holds the text, `<prop>Type` the type beside it, and
 * `<prop>Fixed` whether msg.payload may override it.
 */
interface PlaceOrderDef extends NodeDef {
  broker?: string;
}

const FIELDS: readonly EditorField[] = [
  { field: "symbol", prop: "symbol" },
  { field: "exchange", prop: "exchange" },
  { field: "side", prop: "side" },
  { field: "quantity", prop: "quantity", numeric: true },
  { field: "order_type", prop: "orderType" },
  { field: "price", prop: "price", numeric: true },
  { field: "trigger_price", prop: "triggerPrice", numeric: true },
  { field: "product", prop: "product" },
  { field: "validity", prop: "validity" },
  { field: "tag", prop: "tag" },
  { field: "variety", prop: "variety" },
  { field: "validity_ttl", prop: "validityTtl", numeric: true },
  { field: "disclosed_quantity", prop: "disclosedQuantity", numeric: true },
  { field: "iceberg_legs", prop: "icebergLegs", numeric: true },
  { field: "iceberg_quantity", prop: "icebergQuantity", numeric: true },
];

/** The editor's values as TypedInputs, resolved once at start. */
interface PlaceOrderNode extends Node {
  editorFields: readonly ResolvedField[];
}

export = function (RED: NodeAPI): void {
  function PlaceOrder(this: PlaceOrderNode, def: PlaceOrderDef): void {
    RED.nodes.createNode(this, def);
    startPlaceOrder(this, def);
  }

  function startPlaceOrder(node: PlaceOrderNode, def: PlaceOrderDef): void {
    const fields = resolveFields(def, FIELDS);
    node.editorFields = fields;
    const broker = linkBroker(RED, node, def.broker);

    handleInput(
      node,
      async (msg, send) => {
        const values = await editorValues(RED, node, fields, msg);
        const request = mergeEditorValues(payloadFields(msg.payload), values, fields);
        // Invalid orders stop here: the broker only ever sees a request that passed the schema.
        const order = parseOrderRequest(request);
        const snapshot = await (await broker.ready()).placeOrder(order);
        msg.payload = snapshot;
        if (snapshot.status === "REJECTED") throw new OrderRejectedError(snapshot);
        broker.showOutcome(
          successStatus(`${snapshot.side} ${snapshot.quantity} ${snapshot.symbol}: ${snapshot.status}`),
        );
        send(msg);
      },
      (status) => broker.showOutcome(status),
    );
  }

  RED.nodes.registerType("trading-place-order", PlaceOrder);
};
