import type { OrderSnapshot } from "../protocol/orders";
import type { Client } from "./client";

/**
 * An order request's answer to a connection that skips answered events: framed only as it goes
 * onto the socket (Pushes.answer), since which events it carries depends on what was sent before.
 */
export interface OrderAnswer {
  readonly id: string;
  readonly order: OrderSnapshot;
}

/** One message's answer: a frame, or an order answer framed when written. */
export type Answer = string | OrderAnswer;

/**
 * The answers to one incoming frame's messages, in their order, written together once the last
 * is in. Each request fills its own slot, so a batch of 100 orders costs one counter, not a
 * Promise.all (a promise, a closure and a microtask hop per order) — that was a tenth of the
 * gateway's CPU per pipelined order.
 */
export class AnswerBatch {
  readonly answers: Answer[];
  /** Slots not yet filled, plus one held by whoever fills the batch until it is sealed. */
  #pending: number;
  /** Order book and GTT rows its answers list: given back to the connection once it is written. */
  listedRows = 0;

  constructor(
    readonly client: Client,
    size: number,
    /** True when the messages came as an array frame: the answers go out as array frames too. */
    readonly isBatch: boolean,
    readonly write: (batch: AnswerBatch) => void,
  ) {
    this.answers = new Array<Answer>(size);
    this.#pending = size + 1;
  }

  /** Fills slot `index`; the batch is written when no slot is left and it is sealed. */
  settle(index: number, answer: Answer): void {
    this.answers[index] = answer;
    if (--this.#pending === 0) this.write(this);
  }

  /** Every message has been handed out: the batch may be written as soon as its slots are full. */
  seal(): void {
    if (--this.#pending === 0) this.write(this);
  }
}
