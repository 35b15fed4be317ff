import type { Node, NodeAPI, NodeDef } from "node-red";
import type { Account, GttSnapshot, OrderSnapshot, Position } from "../../lib/protocol";
import { isTerminal } from "../../lib/protocol/orders";
import { linkBroker } from "../shared/broker-link";
import { handleInput } from "../shared/input";
import { successStatus } from "../shared/status";

interface OrderbookDef extends NodeDef {
  broker?: string;
  openOnly?: boolean | string;
  positions?: boolean | string;
  gtts?: boolean | string;
  account?: boolean | string;
}

interface Orderbook {
  orders: OrderSnapshot[];
  positions?: Position[];
  gtts?: GttSnapshot[];
  account?: Account;
}

interface OrderbookOptions {
  openOnly: boolean;
  positions: boolean;
  gtts: boolean;
  account: boolean;
}

interface OrderbookNodeType extends Node {
  options: OrderbookOptions;
}

/** Checkboxes arrive as booleans from the editor, as "true"/"false" from hand-written flows. */
function ticked(value: boolean | string | undefined): boolean {
  return value === true || value === "true";
}

export = function (RED: NodeAPI): void {
  function OrderbookNode(this: OrderbookNodeType, def: OrderbookDef): void {
    RED.nodes.createNode(this, def);
    startOrderbookNode(this, def);
  }

  function startOrderbookNode(node: OrderbookNodeType, def: OrderbookDef): void {
    const options = (node.options = {
      openOnly: ticked(def.openOnly),
      positions: ticked(def.positions),
      gtts: ticked(def.gtts),
      account: ticked(def.account),
    });
    const broker = linkBroker(RED, node, def.broker);

    handleInput(node, async (msg, send) => {
      const source = await broker.ready();
      const [orders, positions, gtts, account] = await Promise.all([
        source.getOrderbook(),
        options.positions ? source.getPositions() : undefined,
        options.gtts ? source.getGtts() : undefined,
        options.account ? source.getAccount() : undefined,
      ]);
      const book: Orderbook = {
        orders: options.openOnly ? orders.filter((o) => !isTerminal(o.status)) : orders,
      };
      if (positions !== undefined) book.positions = positions;
      if (gtts !== undefined) book.gtts = gtts;
      if (account !== undefined) book.account = account;
      msg.payload = book;
      node.status(successStatus(RED._("trading-orderbook.status.orders", { count: book.orders.length })));
      send(msg);
    });
  }

  RED.nodes.registerType("trading-orderbook", OrderbookNode);
};
