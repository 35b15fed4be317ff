import type { Node, NodeAPI, NodeDef } from "node-red";
import { z } from "zod";
import type { Quote } from "../../lib/protocol/quotes";
import { SymbolList } from "../../lib/protocol/quotes";
import { BrokerError } from "../../lib/protocol/errors";
import { parseOrThrow } from "../../lib/protocol/validate";
import { linkBroker } from "../shared/broker-link";
import { toError } from "../shared/errors";
import { handleInput } from "../shared/input";
import { problemStatus, successStatus } from "../shared/status";
import { instrumentKeys, parseSymbolList } from "../shared/symbols";

interface QuotesDef extends NodeDef {
  broker?: string;
  symbols?: string;
}

interface QuotesNode extends Node {
  /** Instrument keys ("NSE:INFY") this node emits quotes for. */
  symbols: ReadonlySet<string>;
}

/** A control message: symbols to add to or drop from this node's subscription. */
const SubscriptionChange = z
  .strictObject({ subscribe: SymbolList.optional(), unsubscribe: SymbolList.optional() })
  .refine((change) => change.subscribe !== undefined || change.unsubscribe !== undefined, {
    message: "must hold subscribe or unsubscribe (a list of symbols)",
  });

/** Failures that say nothing about the symbols, only that no connection carried the request. */
const UNTIL_CONNECTED: ReadonlySet<string> = new Set([
  "EXPIRED",
  "TIMEOUT",
  "NOT_CONNECTED",
  "NETWORK",
  "CIRCUIT_OPEN",
  "RATE_LIMITED",
]);

export = function (RED: NodeAPI): void {
  function Quotes(this: QuotesNode, def: QuotesDef): void {
    RED.nodes.createNode(this, def);
    startQuotes(this, def);
  }

  function startQuotes(node: QuotesNode, def: QuotesDef): void {
    const broker = linkBroker(RED, node, def.broker);
    // What this node emits. The connection keeps the shared ref-counts and drops this node's holds on close.
    const mine = new Set<string>();
    node.symbols = mine;

    function subscribe(keys: readonly string[]): Promise<void> {
      for (const key of keys) mine.add(key);
      return broker.subscribe(keys).catch((error: unknown) => {
        for (const key of keys) mine.delete(key);
        throw error;
      });
    }

    broker.on("quote", (quote: Quote) => {
      if (!mine.has(`${quote.exchange}:${quote.symbol}`)) return;
      node.send({ payload: structuredClone(quote), topic: quote.symbol });
    });

    let initial: string[] = [];
    try {
      initial = parseSymbolList(def.symbols ?? "");
    } catch (error) {
      node.error(RED._("trading-quotes.errors.bad-symbols", { reason: toError(error).message }));
      node.status(problemStatus(RED._("trading-quotes.status.bad-symbols")));
    }
    /** Symbols whose subscription failed for want of a connection: asked for again once connected. */
    let waiting: string[] = [];
    let watching = false;
    function subscribeInitial(keys: string[]): void {
      subscribe(keys).catch((error: unknown) => {
        // A missing or unusable broker config has already been reported, by this node or the config node.
        if (error instanceof BrokerError && error.code === "CONFIG") return;
        node.error(RED._("trading-quotes.errors.subscribe-failed", { reason: toError(error).message }));
        // A gateway started after the deploy: without this the flow would show connected and never quote.
        if (error instanceof BrokerError && UNTIL_CONNECTED.has(error.code)) retryWhenConnected(keys);
      });
    }
    // Listens only once a subscription has failed, so a healthy node adds no listener to the broker.
    function retryWhenConnected(keys: string[]): void {
      waiting = keys;
      if (watching) return;
      watching = true;
      broker.on("state", (state) => {
        if (state !== "connected" || waiting.length === 0) return;
        const again = waiting.filter((key) => !mine.has(key));
        waiting = [];
        if (again.length > 0) subscribeInitial(again);
      });
    }
    if (initial.length > 0) subscribeInitial(initial);

    handleInput(node, async (msg) => {
      const change = parseOrThrow(SubscriptionChange, msg.payload, "subscription change");
      const drop = change.unsubscribe === undefined ? [] : instrumentKeys(change.unsubscribe);
      const add = change.subscribe === undefined ? [] : instrumentKeys(change.subscribe);
      for (const key of drop) mine.delete(key);
      await broker.unsubscribe(drop);
      await subscribe(add);
      node.status(successStatus(RED._("trading-quotes.status.symbols", { count: mine.size })));
    });
  }

  RED.nodes.registerType("trading-quotes", Quotes);
};
