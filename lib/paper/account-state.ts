import type { GttSnapshot, OrderSnapshot, Quote } from "../protocol";
import type { PositionState } from "./ledger";

/** A GTT as the paper account keeps it: the snapshot plus the side a single trigger fires from. */
export interface GttState extends GttSnapshot {
  /** For single GTTs: fire when the price rises to (up) or falls to (down) the trigger value. */
  direction?: "up" | "down";
}

/** The whole paper account: what a compacted journal starts with. */
export interface AccountSnapshot {
  version: 1;
  cash: number;
  seq: number;
  next_order: number;
  next_gtt: number;
  orders: OrderSnapshot[];
  gtts: GttState[];
  positions: PositionState[];
  /** Last prices, so a random walk resumes where it was instead of jumping back to the start price. */
  prices: Quote[];
}

/** What one mutation changed; replayed in order on top of the snapshot. */
export interface AccountRecord {
  seq: number;
  cash: number;
  next_order: number;
  next_gtt: number;
  orders?: OrderSnapshot[];
  gtts?: GttState[];
  positions?: PositionState[];
}
