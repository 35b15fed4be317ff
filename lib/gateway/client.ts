import type http from "node:http";
import { WebSocket } from "ws";
import type { BrokerLogger } from "../brokers/logger";
import { CLOSE_CODES } from "../protocol/wire";
import type { TokenBucket } from "../ws/token-bucket";
import { KeyShare } from "./key-share";
import { PacedWriter } from "./paced-writer";
import { chunkEnd, FrameSource } from "./push-chunks";

/** A push waiting for its tick's flush; `seq` for account events, so none is sent twice. */
export interface Outgoing {
  seq?: number;
  frame: string;
}

/** What a connection needs from the gateway's settings to write to its socket. */
export interface ClientLimits {
  readonly log: BrokerLogger;
  readonly maxBufferedBytes: number;
  readonly maxAnswerFrameBytes: number;
  readonly maxBatch: number;
  /** Replayed events that may wait to be written (paced-writer.ts). */
  readonly maxReplayEvents: number;
}

/**
 * One WebSocket connection to the gateway: its session state and the ways frames leave it. A
 * socket that cannot keep up, or keeps breaking the rules, is closed here.
 */
export class Client {
  readonly remote: string;
  readonly ip: string;
  authenticated = false;
  account = "";
  /** Set by a failed AUTH: nothing more is executed and the socket closes after the reply. */
  closeCode: number | undefined = undefined;
  authTimer: NodeJS.Timeout | undefined = undefined;
  missedPongs = 0;
  /** Quote subscriptions as "EXCHANGE:SYMBOL". */
  readonly symbols = new Set<string>();
  /** Pushes waiting for this tick's flush. */
  outbox: Outgoing[] = [];
  /** v1.1: it asked for order events as deltas. */
  deltas = false;
  /** v1.1: it asked for the events its own order requests' answers stand for inside those answers. */
  skipAnswered = false;
  /**
   * Every account event after this seq has been (or will be) sent to it, in order: a delta over
   * a base after it is one the client holds. Set at AUTH, lowered by a complete RESUME.
   */
  heldFrom = Number.MAX_SAFE_INTEGER;
  /** Highest event seq sent, so a replay and the live flush never send one event twice in a row. */
  sentSeq = 0;
  /** performance.now() of the last frame received. */
  lastFrameAt = performance.now();
  /** Set by its first PING: from then on a silence past pingIdleMs means a dead link. */
  pings = false;
  /** The api key it authenticated with ("" before). */
  apiKey = "";
  /** Frames received before AUTH succeeded. */
  unauthenticatedFrames = 0;
  /**
   * Set while the gateway itself has stopped reading this socket (durable-backlog.ts): its pongs
   * and frames wait unread, so neither missed pongs nor silence may be held against it.
   */
  readingPaused = false;
  /** Frames in a row refused for being over a limit. */
  strikes = 0;
  /** Its share of its api key's rate budget (key-share.ts). */
  readonly keyShare = new KeyShare();
  /** Ids of its requests being executed: a second request with one of them is refused. */
  readonly inFlight = new Set<string>();
  /** Order book and GTT rows listed in answers not yet handed to the socket (MAX_LISTED_ROWS). */
  listedRows = 0;

  readonly #limits: ClientLimits;
  /** Frames waiting behind a replay being written (paced-writer.ts); idle almost always. */
  readonly #paced: PacedWriter;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    req: http.IncomingMessage,
    readonly bucket: TokenBucket,
    limits: ClientLimits,
  ) {
    this.remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    this.ip = req.socket.remoteAddress ?? "?";
    this.#limits = limits;
    this.#paced = new PacedWriter(ws, limits, (why) => this.#slowConsumer(why));
  }

  /** `written`, when given, is called once the frame is on the socket or can never be (always once). */
  send(frame: string, written?: () => void): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) {
      written?.();
      return;
    }
    if (this.#paced.active) {
      this.#paced.queue(frame, written);
      if (this.unsent > this.#limits.maxBufferedBytes) this.#slowConsumer();
      return;
    }
    if (written === undefined) ws.send(frame);
    else ws.send(frame, () => written());
    if (ws.bufferedAmount > this.#limits.maxBufferedBytes) this.#slowConsumer();
  }

  /** Bytes given to this connection and not yet on the socket: ws's buffer and what waits behind a replay. */
  get unsent(): number {
    return this.ws.bufferedAmount + this.#paced.queuedBytes;
  }

  #slowConsumer(why = `${this.unsent} bytes unsent (limit ${this.#limits.maxBufferedBytes})`): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    this.#limits.log.warn(
      `gateway: connection ${this.id} (${this.remote}) has ${why}; terminating the slow consumer`,
    );
    ws.terminate();
  }

  /** Pushes, at most maxBatch and about maxAnswerFrameBytes to an array frame (push-chunks.ts). */
  sendChunked(frames: string[]): void {
    const { maxBatch, maxAnswerFrameBytes } = this.#limits;
    for (let start = 0; start < frames.length;) {
      const end = chunkEnd(frames, start, maxBatch, maxAnswerFrameBytes);
      this.send(end - start === 1 ? (frames[start] ?? "") : arrayFrame(frames, start, end));
      start = end;
    }
  }

  /**
   * A RESUME's replay, framed as sendChunked frames pushes but made and written as the socket
   * takes them; whatever is sent to this connection after it waits behind it (paced-writer.ts).
   */
  sendReplay<T>(items: readonly T[], frameOf: (item: T) => string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.#paced.replay(new FrameSource(items.length, (i) => frameOf(items[i] as T)));
  }

  /**
   * One frame's answers, then the close a failed AUTH asked for. Answers go out in array frames
   * of about maxAnswerFrameBytes, never one string of a whole batch (100 pages of a large book
   * would pass V8's string limit). Past half the slow-consumer limit the next frame waits until
   * the socket has taken the last one, so big answers to a reader that keeps up are paced rather
   * than cut off. Returns a promise only when it had to wait: the usual answer (one frame) is
   * written in the caller's turn without one.
   */
  deliver(frames: string[], batch: boolean): Promise<void> | undefined {
    if (!batch) {
      this.send(frames[0] ?? "");
      this.#closeAsAsked();
      return undefined;
    }
    return this.#deliverFrom(frames, 0, undefined);
  }

  /** Sends frames[start…] in chunks; `written` settles once the chunk sent before them is on the socket. */
  #deliverFrom(
    frames: string[],
    start: number,
    written: Promise<void> | undefined,
  ): Promise<void> | undefined {
    const ws = this.ws;
    const maxBytes = this.#limits.maxAnswerFrameBytes;
    while (start < frames.length) {
      let end = start;
      let bytes = 2;
      do {
        bytes += (frames[end]?.length ?? 0) + 1;
        end++;
      } while (end < frames.length && bytes + (frames[end]?.length ?? 0) <= maxBytes);
      if (ws.readyState !== WebSocket.OPEN) return undefined;
      if (written !== undefined && this.unsent > this.#limits.maxBufferedBytes / 2) {
        const from = start;
        return written.then(() => this.#deliverFrom(frames, from, undefined));
      }
      const frame = arrayFrame(frames, start, end);
      start = end;
      // Only a chunk with another after it needs to say when it is written.
      if (start < frames.length) written = new Promise<void>((resolve) => this.send(frame, resolve));
      else this.send(frame);
    }
    this.#closeAsAsked();
    return undefined;
  }

  #closeAsAsked(): void {
    const ws = this.ws;
    if (this.closeCode !== undefined && ws.readyState === WebSocket.OPEN) {
      ws.close(
        this.closeCode,
        this.closeCode === CLOSE_CODES.tryAgainLater ? "try again later" : "authentication failed",
      );
    }
  }

  /** Stops reading this socket (TCP pushes back on the peer); the heartbeat stops judging it. */
  pauseReading(): void {
    this.readingPaused = true;
    this.ws.pause();
  }

  /**
   * Reads again, judged afresh from now: a peer that is really dead misses its next pongs and is
   * terminated within (maxMissedPongs + 1) heartbeats of this, as any other.
   */
  resumeReading(): void {
    this.readingPaused = false;
    this.missedPongs = 0;
    this.lastFrameAt = performance.now();
    this.ws.resume();
  }

  /** Closes a connection that keeps breaking the rules (1008), without answering it further. */
  cutOff(why: string): void {
    if (this.closeCode !== undefined) return;
    this.closeCode = CLOSE_CODES.policy;
    this.#limits.log.warn(`gateway: closing connection ${this.id} (${this.remote}): ${why}`);
    this.ws.close(CLOSE_CODES.policy, why.slice(0, 120));
    // Whatever it keeps sending meanwhile is still read off the socket: give it 100 ms, not the
    // polite closeTimeoutMs.
    setTimeout(() => this.ws.terminate(), 100).unref();
  }

  /** Closes with 1001, terminating a peer that does not answer within timeoutMs. */
  shutDown(timeoutMs: number): Promise<void> {
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => ws.terminate(), timeoutMs);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_CODES.goingAway, "gateway shutting down");
    });
  }
}

/**
 * `[frames[start],…,frames[end - 1]]` as one flat string. The brackets go onto the first and last
 * element before the join rather than around its result: `"[" + joined + "]"` is a rope that ws
 * flattens again (Buffer.byteLength) into a second copy of the whole frame, ~0.7 KB of garbage
 * per pipelined order.
 */
export function arrayFrame(frames: readonly string[], start: number, end: number): string {
  if (end - start === 1) return `[${frames[start] ?? ""}]`;
  const parts = frames.slice(start, end);
  parts[0] = `[${parts[0] ?? ""}`;
  parts[parts.length - 1] = `${parts[parts.length - 1] ?? ""}]`;
  return parts.join(",");
}
