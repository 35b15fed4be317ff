import type { Node, NodeAPI, NodeDef } from "node-red";
import { OrderRequest } from "../../lib/protocol/orders";
import { parseOrThrow } from "../../lib/protocol/validate";
import { BrokerError } from "../../lib/protocol/errors";
import type { MomentumSignal } from "../../lib/strategy/momentum";
import { MomentumQuote, MomentumSettings, MomentumStrategy } from "../../lib/strategy/momentum";
import { seedFromAccount } from "../../lib/strategy/account-read";
import { offersCandles, warmUpFromCandles } from "../../lib/strategy/momentum-warmup";
import { flag, numeric, text, withoutUndefined } from "../shared/coerce";
import { toError } from "../shared/errors";
import { handleInput } from "../shared/input";
import { linkBroker } from "../shared/broker-link";
import type { BrokerLink } from "../shared/broker-link";
import { problemStatus, successStatus } from "../shared/status";

interface MomentumDef extends NodeDef {
  /** Optional: with a broker, positions are the account's; without, the strategy's own memory. */
  broker?: string;
  lookback?: unknown;
  threshold?: unknown;
  quantity?: unknown;
  maxPosition?: unknown;
  allowShort?: unknown;
  cooldown?: unknown;
  product?: unknown;
  /** Fill each symbol's lookback from the broker's minute candles before its first quote. */
  warmup?: unknown;
}

interface MomentumNode extends Node {
  settings?: MomentumSettings;
}

function settingsOf(def: MomentumDef): Record<string, unknown> {
  return withoutUndefined({
    lookback: numeric(def.lookback),
    threshold: numeric(def.threshold),
    quantity: numeric(def.quantity),
    max_position: numeric(def.maxPosition),
    allow_short: flag(def.allowShort),
    cooldown: numeric(def.cooldown),
    product: text(def.product),
  });
}

function describe(signal: MomentumSignal): string {
  const { side, quantity, symbol } = signal.order;
  return `${side} ${quantity} ${symbol} @ ${signal.price} (roc ${(signal.roc * 100).toFixed(2)}%)`;
}

export = function (RED: NodeAPI): void {
  function Momentum(this: MomentumNode, def: MomentumDef): void {
    RED.nodes.createNode(this, def);
    startMomentum(this, def);
  }

  function startMomentum(node: MomentumNode, def: MomentumDef): void {
    const brokerId = typeof def.broker === "string" && def.broker !== "" ? def.broker : undefined;
    let strategy: MomentumStrategy | BrokerError;
    try {
      strategy = new MomentumStrategy(parseOrThrow(MomentumSettings, settingsOf(def), "momentum settings"), {
        fromAccount: brokerId !== undefined,
      });
      node.settings = strategy.settings;
    } catch (error) {
      strategy = new BrokerError("CONFIG", toError(error).message);
      node.error(strategy.message);
      node.status(problemStatus(RED._("trading-momentum.status.invalid-settings")));
    }
    let warm: ((payload: unknown) => Promise<void>) | undefined;
    if (brokerId !== undefined && !(strategy instanceof BrokerError)) {
      const link = linkBroker(RED, node, brokerId);
      followAccount(node, strategy, link);
      if (flag(def.warmup) === true) warm = warmer(node, strategy, link);
    }

    handleInput(node, async (msg, send) => {
      if (strategy instanceof BrokerError) throw strategy;
      if (warm !== undefined && msg.reset !== true) await warm(msg.payload);
      if (msg.reset === true) {
        strategy.reset();
        node.status({ fill: "grey", shape: "ring", text: RED._("trading-momentum.status.reset") });
        return;
      }
      const signal = strategy.onQuote(msg.payload);
      if (signal === undefined) return;
      msg.payload = parseOrThrow(OrderRequest, signal.order, "order");
      msg.topic = signal.order.symbol;
      msg.momentum = {
        roc: signal.roc,
        lookback: signal.lookback,
        price: signal.price,
        position_after: signal.position_after,
      };
      node.status(successStatus(describe(signal)));
      send(msg);
    });
  }

  /**
   * The warm-up for each symbol, once, before its first quote is fed: the quotes that arrive
   * meanwhile wait on the same promise, so they still reach the strategy in order. A failed
   * warm-up is reported and the symbol starts cold; it is not tried again.
   */
  function warmer(
    node: MomentumNode,
    strategy: MomentumStrategy,
    broker: BrokerLink,
  ): (payload: unknown) => Promise<void> {
    const warmed = new Map<string, Promise<void>>();
    let unsupported = false;
    return (payload) => {
      const quote = MomentumQuote.safeParse(payload);
      // A bad quote is refused by the strategy itself, with the field named.
      if (!quote.success) return Promise.resolve();
      const { exchange, symbol } = quote.data;
      const key = `${exchange}:${symbol}`;
      let warming = warmed.get(key);
      if (warming === undefined) {
        warming = (async () => {
          const ready = await broker.ready();
          if (!offersCandles(ready)) {
            if (!unsupported) node.warn(RED._("trading-momentum.errors.warmup-unsupported"));
            unsupported = true;
            return;
          }
          const held = await warmUpFromCandles(strategy, ready, exchange, symbol, Date.now());
          node.log(RED._("trading-momentum.status.warmed", { symbol: key, count: held }));
        })().catch((error: unknown) => {
          node.warn(RED._("trading-momentum.errors.warmup", { symbol: key, reason: toError(error).message }));
        });
        warmed.set(key, warming);
      }
      return warming;
    };
  }

  /**
   * Positions come from the account: read when the broker connects (and again after every
   * reconnect, since fills may have happened meanwhile), then kept in step by its order events.
   */
  function followAccount(node: MomentumNode, strategy: MomentumStrategy, broker: BrokerLink): void {
    let reading = false;
    let again = false;
    async function read(): Promise<void> {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const ready = await broker.ready();
          // Book, positions, book: a fill landing between two reads is never lost (account-read.ts).
          const moved = await seedFromAccount(strategy, ready);
          if (moved !== undefined)
            node.warn(RED._("trading-momentum.errors.positions-moving", { order: moved }));
        } while (again);
      } catch (error) {
        node.error(RED._("trading-momentum.errors.positions", { reason: toError(error).message }));
      } finally {
        reading = false;
      }
    }
    broker.on("order", (event) => strategy.onOrder(event.order));
    broker.on("state", (state) => {
      if (state === "connected") void read();
    });
    void read();
  }

  RED.nodes.registerType("trading-momentum", Momentum);
};
