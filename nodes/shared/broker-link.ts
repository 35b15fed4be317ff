import type { Node, NodeAPI, NodeStatus } from "node-red";
import type { BrokerEvents } from "../../lib/brokers/interface";
import { BrokerError } from "../../lib/protocol/errors";
import type { BrokerListener, ManagedBroker } from "./broker-connection";
import { BrokerConnection } from "./broker-connection";
import { problemStatus } from "./status";

export const BROKER_CONFIG_TYPE = "trading-broker";

export interface BrokerCredentials {
  apiKey?: string;
  apiSecret?: string;
  accessToken?: string;
}

/** The trading-broker config node as its users see it. */
export interface BrokerConfigNode extends Node<BrokerCredentials> {
  readonly connection: BrokerConnection;
  /** The live broker, once a user brought it up; for tests and the admin endpoint. */
  readonly broker: ManagedBroker | undefined;
}

export function isBrokerConfigNode(node: Node | null | undefined): node is BrokerConfigNode {
  return (
    node !== null &&
    node !== undefined &&
    node.type === BROKER_CONFIG_TYPE &&
    "connection" in node &&
    node.connection instanceof BrokerConnection
  );
}

/** What a user node holds of its broker; the same shape whether or not a broker is configured. */
export interface BrokerLink {
  ready(): Promise<ManagedBroker>;
  on<E extends keyof BrokerEvents>(event: E, listener: BrokerListener<E>): void;
  subscribe(keys: readonly string[]): Promise<void>;
  unsubscribe(keys: readonly string[]): Promise<void>;
  restoreStatus(): void;
  /** Shows a request's outcome, unless the trading state (halted, reducing, unsaved) must show. */
  showOutcome(status: NodeStatus): void;
}

/** A node without a broker: it says so once, stays red, and fails every message it gets. */
class MissingBroker implements BrokerLink {
  readonly #node: Node;
  readonly #error: BrokerError;
  readonly #status;

  constructor(RED: NodeAPI, node: Node) {
    this.#node = node;
    this.#error = new BrokerError("CONFIG", RED._(`${node.type}.errors.missing-config`));
    this.#status = problemStatus(RED._(`${node.type}.status.no-broker`));
  }

  ready(): Promise<ManagedBroker> {
    return Promise.reject(this.#error);
  }

  on(): void {}

  subscribe(): Promise<void> {
    return Promise.reject(this.#error);
  }

  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }

  restoreStatus(): void {
    this.#node.status(this.#status);
  }

  showOutcome(status: NodeStatus): void {
    this.#node.status(status);
  }

  announce(): void {
    this.#node.status(this.#status);
    this.#node.error(this.#error.message);
  }
}

/** Registers `node` with the config node `brokerId` names, or marks it as having no broker. */
export function linkBroker(RED: NodeAPI, node: Node, brokerId: string | undefined): BrokerLink {
  const config = brokerId === undefined || brokerId === "" ? undefined : RED.nodes.getNode(brokerId);
  if (isBrokerConfigNode(config)) return config.connection.register(node);
  const missing = new MissingBroker(RED, node);
  missing.announce();
  return missing;
}
