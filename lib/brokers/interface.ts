import type { EventEmitter } from "node:events";
import type {
  Account,
  ConnectionState,
  GttEvent,
  GttRequestInput,
  GttSnapshot,
  OrderChanges,
  OrderEvent,
  OrderRequestInput,
  OrderSnapshot,
  Position,
  Quote,
} from "../protocol";
import type { SessionEvent } from "../protocol/events";
import type { BrokerError } from "../protocol/errors";

/** The events every broker emits, with their argument types. */
export interface BrokerEvents {
  order: [event: OrderEvent];
  gtt: [event: GttEvent];
  quote: [quote: Quote];
  state: [state: ConnectionState, detail?: string];
  error: [error: BrokerError];
  /** Login session news (Kite's daily token); brokers without sessions never emit it. */
  session: [event: SessionEvent];
}

export type BrokerKind = "paper" | "websocket" | "kite";

/**
 * One interface under every node. Methods validate their input with the protocol schemas and
 * reject with a BrokerError (stable `code`, human message); nothing invalid reaches a venue.
 *
 * `close()` resolves only when every socket, timer and file handle the broker opened is gone, so
 * Node-RED can redeploy many times a day without leaks.
 */
export interface BrokerInterface extends EventEmitter<BrokerEvents> {
  readonly kind: BrokerKind;
  /**
   * The account's P&L is the venue's own figure for its trading day (Kite's day positions, which
   * start again each session), not a running total (paper). Absent: a running total. The risk
   * guard then takes no earlier process's last reading as a floor for the day's start.
   */
  readonly pnlResetsDaily?: boolean;
  readonly state: ConnectionState;

  connect(): Promise<void>;
  close(): Promise<void>;

  placeOrder(request: OrderRequestInput): Promise<OrderSnapshot>;
  modifyOrder(orderId: string, changes: OrderChanges): Promise<OrderSnapshot>;
  cancelOrder(orderId: string): Promise<OrderSnapshot>;
  getOrder(orderId: string): Promise<OrderSnapshot>;
  getOrderbook(): Promise<OrderSnapshot[]>;

  placeGtt(request: GttRequestInput): Promise<GttSnapshot>;
  modifyGtt(gttId: string, request: GttRequestInput): Promise<GttSnapshot>;
  deleteGtt(gttId: string): Promise<GttSnapshot>;
  getGtts(): Promise<GttSnapshot[]>;

  getPositions(): Promise<Position[]>;
  /** Cash and P&L where the broker reports them. */
  getAccount(): Promise<Account>;

  subscribeQuotes(symbols: string[]): Promise<void>;
  unsubscribeQuotes(symbols: string[]): Promise<void>;

  /**
   * Optional, for brokers whose order_ids sort (as strings) in the order they were made: the
   * highest order_id it made and no longer holds ("" when it holds every order it ever made), so
   * every order with a higher id is still in getOrderbook(). The gateway uses it to tell, after a
   * crash, an order that was never placed from one that has left the broker's retention.
   */
  lastForgottenOrderId?(): Promise<string>;
}
