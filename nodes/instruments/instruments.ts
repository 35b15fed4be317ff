import type { Node, NodeAPI, NodeDef } from "node-red";
import type { KiteBroker } from "../../lib/brokers/kite-broker";
import type { InstrumentListing, InstrumentLookup } from "../../lib/market/instrument-lookup";
import {
  listingOfKiteInfo,
  lookupBuiltin,
  lookupTarget,
  notFound,
  parseLookup,
} from "../../lib/market/instrument-lookup";
import type { ManagedBroker } from "../shared/broker-connection";
import { linkBroker } from "../shared/broker-link";
import { fillMissing, isPlainObject, payloadFields } from "../shared/input";
import { handleInput } from "../shared/input";
import { successStatus } from "../shared/status";

interface InstrumentsDef extends NodeDef {
  broker?: string;
  /** "symbol" (exact) or "search" (text). */
  lookup?: string;
  text?: string;
  exchange?: string;
  limit?: string | number;
}

/** Editor text as a number when it is one; anything else goes to the schema, which names the rule. */
function editorNumber(value: string | number | undefined): unknown {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  return typeof value === "string" && value.trim() !== "" && Number.isFinite(n) ? n : value;
}

/** The editor's query, used for the fields msg.payload leaves out. */
function editorQuery(def: InstrumentsDef): Record<string, unknown> {
  const text = (def.text ?? "").trim();
  return {
    ...(text === "" ? {} : def.lookup === "search" ? { search: text } : { symbol: text }),
    exchange: def.exchange === "" ? undefined : def.exchange,
    limit: editorNumber(def.limit),
  };
}

/** A payload naming a symbol or search text replaces the editor's; otherwise the editor's is used. */
function queryOf(payload: unknown, def: InstrumentsDef): InstrumentLookup {
  const fields = payloadFields(payload);
  const own = isPlainObject(payload) && (fields.symbol !== undefined || fields.search !== undefined);
  const editor = editorQuery(def);
  if (own) {
    delete editor.symbol;
    delete editor.search;
  }
  return parseLookup(fillMissing(fields, editor));
}

function isKite(broker: ManagedBroker): broker is ManagedBroker & KiteBroker {
  return broker.kind === "kite";
}

/** Kite's list for a Kite broker; the built-in NSE list for the others (paper, websocket). */
async function lookup(broker: ManagedBroker, query: InstrumentLookup): Promise<InstrumentListing[]> {
  if (!isKite(broker)) return lookupBuiltin(query);
  const { exchange, text } = lookupTarget(query);
  if (query.symbol !== undefined) {
    const rows = await broker.findInstruments({ exchange, text, limit: 1 });
    const exact = rows.find((row) => row.tradingsymbol === text);
    if (exact === undefined) throw notFound(exchange, text, "Kite's instrument list for today");
    return [listingOfKiteInfo(exact)];
  }
  const rows = await broker.findInstruments({ exchange, text, limit: query.limit });
  return rows.map(listingOfKiteInfo);
}

export = function (RED: NodeAPI): void {
  function InstrumentsNode(this: Node, def: InstrumentsDef): void {
    RED.nodes.createNode(this, def);
    startInstruments(this, def);
  }

  function startInstruments(node: Node, def: InstrumentsDef): void {
    const broker = linkBroker(RED, node, def.broker);

    handleInput(node, async (msg, send) => {
      const query = queryOf(msg.payload, def);
      const listings = await lookup(await broker.ready(), query);
      msg.payload = listings;
      node.status(successStatus(RED._("trading-instruments.status.found", { count: listings.length })));
      send(msg);
    });
  }

  RED.nodes.registerType("trading-instruments", InstrumentsNode);
};
