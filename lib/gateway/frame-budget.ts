import type { RawData } from "ws";
import type { ErrorCode } from "../protocol/errors";
import type { Client } from "./client";
import { errorFrame } from "./frames";

/**
 * Frames a connection may send before AUTH succeeds: AUTH and a few a client pipelined around it.
 * A socket that keeps talking without authenticating is cut off unparsed: each frame it sends
 * would otherwise cost parsing and an answer, which is how two sockets stalled everyone.
 */
export const MAX_UNAUTHENTICATED_FRAMES = 4;
/** An AUTH is a few hundred bytes: a larger frame before it is not worth parsing. */
export const MAX_UNAUTHENTICATED_FRAME_BYTES = 8 * 1024;

/** Requests one connection may have executing at once (a stalled broker must not pile up work). */
export const MAX_IN_FLIGHT = 1000;

/**
 * Order book and GTT rows one connection may have listed in answers not yet handed to its socket: twenty
 * full pages, about 8 MB of answers (the default slow-consumer limit). Without it, ten 36 KB frames of 100 whole pages each made the
 * gateway build ~400 MB of answers in one go for a peer that read none of them, and stalled every
 * other connection while it did.
 */
export const MAX_LISTED_ROWS = 20_000;

export interface BudgetLimits {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly maxFrameBytes: number;
  readonly maxBatch: number;
  readonly maxStrikes: number;
}

/** What a frame may be given before (and instead of) its messages being executed. */
export type Admission =
  /** Read it: its bytes, parsed next. */
  | { kind: "read"; bytes: Buffer }
  /** Answer nothing more: the connection is being closed. */
  | { kind: "drop" }
  /** Answer these frames (the reply to a frame refused whole). */
  | { kind: "answer"; frames: string[] };

/**
 * The costs a connection pays per frame, checked before a frame is parsed: a budget before
 * authenticating, the rate, the size and the batch length, and strikes for frames refused in a
 * row. A connection that keeps breaking them is cut off.
 */
export class FrameBudget {
  readonly #limits: BudgetLimits;

  constructor(limits: BudgetLimits) {
    this.#limits = limits;
  }

  /** Budget first: no frame is parsed, or answered, beyond what the connection may spend. */
  admit(client: Client, data: RawData, isBinary: boolean): Admission {
    const limits = this.#limits;
    if (!client.authenticated) {
      client.unauthenticatedFrames += 1;
      if (client.unauthenticatedFrames > MAX_UNAUTHENTICATED_FRAMES) {
        client.cutOff(`${MAX_UNAUTHENTICATED_FRAMES} frames and still not authenticated`);
        return { kind: "drop" };
      }
      const size = rawSize(data);
      if (size > MAX_UNAUTHENTICATED_FRAME_BYTES) {
        client.cutOff(`a frame of ${size} bytes before authenticating`);
        return { kind: "drop" };
      }
    }
    if (client.bucket.available < 1) {
      this.#strike(client, `over the rate limit of ${limits.ratePerSecond} requests/s`);
      // Answered once (unparsed, id null); the frames after it in the same run are not.
      if (client.strikes !== 1) return { kind: "drop" };
      const waitMs = Math.max(1, Math.ceil(((1 - client.bucket.available) * 1000) / limits.ratePerSecond));
      return { kind: "answer", frames: [this.rateLimited(null, waitMs)] };
    }
    if (isBinary) {
      return this.refuse(client, "BAD_FRAME", "binary frames are not supported; send JSON text");
    }
    const bytes = rawBytes(data);
    if (bytes.length > limits.maxFrameBytes) {
      this.#strike(client, "frames over the size limit");
      const message = `frame of ${bytes.length} bytes exceeds the limit of ${limits.maxFrameBytes} bytes; it was not read`;
      return this.refuse(client, "FRAME_TOO_LARGE", message);
    }
    return { kind: "read", bytes };
  }

  /** A batch of `length` messages: refused whole past maxBatch, else undefined (run it). */
  admitBatch(client: Client, length: number): Admission | undefined {
    if (length === 0) return this.refuse(client, "BAD_FRAME", "a batch must hold at least one message");
    if (length > this.#limits.maxBatch) {
      // Nothing runs, and the batch is answered once (id null): one answer per request would
      // let a frame of tiny requests buy many times its size in answers.
      this.#strike(client, "batches over the length limit");
      const message = `batch of ${length} messages exceeds the limit of ${this.#limits.maxBatch}; nothing in it was executed and its requests get no other answer`;
      return this.refuse(client, "BATCH_TOO_LARGE", message);
    }
    client.strikes = 0;
    return undefined;
  }

  /** Answers a frame refused whole (id null). It costs one token, so a flood of bad frames is limited too. */
  refuse(client: Client, code: ErrorCode, message: string): Admission {
    const waitMs = client.bucket.take();
    return {
      kind: "answer",
      frames: [waitMs > 0 ? this.rateLimited(null, waitMs) : errorFrame(null, code, message)],
    };
  }

  rateLimited(id: string | null, waitMs: number): string {
    return errorFrame(
      id,
      "RATE_LIMITED",
      `over the rate limit of ${this.#limits.ratePerSecond} requests/s (burst ${this.#limits.burst}); not executed, retry after ${waitMs} ms`,
      waitMs,
    );
  }

  /** Counts a frame refused for a limit; past maxStrikes in a row the connection is cut off. */
  #strike(client: Client, what: string): void {
    client.strikes += 1;
    if (client.strikes > this.#limits.maxStrikes) client.cutOff(`${client.strikes} ${what} in a row`);
  }
}

function rawSize(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data.byteLength;
}

function rawBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
