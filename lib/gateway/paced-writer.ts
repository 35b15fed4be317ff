import { WebSocket } from "ws";
import { FrameSource } from "./push-chunks";

interface Queued {
  frame: string;
  written: (() => void) | undefined;
}

export interface PacedLimits {
  readonly maxBufferedBytes: number;
  readonly maxAnswerFrameBytes: number;
  readonly maxBatch: number;
  /**
   * Replayed events a connection may have waiting to be written: past it, a client asking for
   * replay after replay without reading them is cut off as a slow consumer, as it was when each
   * replay was written at once.
   */
  readonly maxReplayEvents: number;
}

/**
 * A connection's frames written as its socket takes them: while a replay is being written, every
 * later frame (pushes, answers, the RESUME's own RESULT) waits behind it, so the connection still
 * gets each event once and in seq order. Past half the slow-consumer limit the next frame waits
 * until the socket has taken one the writer sent, as Client.deliver paces a large answer.
 *
 * The replay's frames are made from the replay buffer's events as they go (FrameSource), so the
 * replay itself costs no more memory than that buffer; what waits behind it as strings counts
 * toward the slow-consumer limit (`queuedBytes`): a reader that does not keep up is still cut off.
 */
export class PacedWriter {
  readonly #ws: WebSocket;
  readonly #limits: PacedLimits;
  readonly #onSlow: (why: string) => void;
  #items: (Queued | FrameSource)[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** Frames this writer sent that the socket has not yet taken. */
  #unwritten = 0;
  #waiting = false;

  constructor(ws: WebSocket, limits: PacedLimits, onSlow: (why: string) => void) {
    this.#ws = ws;
    this.#limits = limits;
    this.#onSlow = onSlow;
  }

  /** True while something waits: then every frame for this connection must go through `queue`. */
  get active(): boolean {
    return this.#head < this.#items.length;
  }

  /** String lengths of the frames waiting (a replay's frames not yet made do not count). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** A frame behind whatever waits; `written` as Client.send's. */
  queue(frame: string, written: (() => void) | undefined): void {
    this.#items.push({ frame, written });
    this.#queuedBytes += frame.length;
  }

  /** A run of frames made as they go, behind whatever waits; writing starts now if nothing did. */
  replay(source: FrameSource): void {
    if (source.remaining === 0) return;
    let waiting = source.remaining;
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i];
      if (item instanceof FrameSource) waiting += item.remaining;
    }
    if (waiting > this.#limits.maxReplayEvents) {
      this.#onSlow(
        `${waiting} replayed events waiting to be written (limit ${this.#limits.maxReplayEvents})`,
      );
      this.#drop();
      return;
    }
    const idle = !this.active;
    this.#items.push(source);
    if (idle) this.#pump();
  }

  #pump(): void {
    const ws = this.#ws;
    const limits = this.#limits;
    while (this.active) {
      if (ws.readyState !== WebSocket.OPEN) {
        this.#drop();
        return;
      }
      if (this.#unwritten > 0 && ws.bufferedAmount > limits.maxBufferedBytes / 2) {
        this.#waiting = true;
        return;
      }
      const head = this.#items[this.#head]!;
      let frame: string;
      let written: (() => void) | undefined;
      if (head instanceof FrameSource) {
        frame = head.takeChunk(limits.maxBatch, limits.maxAnswerFrameBytes);
        if (head.remaining === 0) this.#shift();
      } else {
        frame = head.frame;
        written = head.written;
        this.#queuedBytes -= frame.length;
        this.#shift();
      }
      this.#unwritten++;
      ws.send(frame, () => this.#written(written));
      if (ws.bufferedAmount > limits.maxBufferedBytes) {
        this.#onSlow(`${ws.bufferedAmount} bytes unsent (limit ${limits.maxBufferedBytes})`);
        this.#drop();
        return;
      }
    }
  }

  #written(written: (() => void) | undefined): void {
    this.#unwritten--;
    written?.();
    if (this.#waiting) {
      this.#waiting = false;
      this.#pump();
    }
  }

  #shift(): void {
    this.#items[this.#head] = undefined as never;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The socket is gone: whatever waits is never written, and each `written` is told so. */
  #drop(): void {
    const items = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    for (const item of items) if (!(item instanceof FrameSource)) item.written?.();
  }
}
