/**
 * Where the array frame that starts at `start` ends: at most `maxBatch` frames and about
 * `maxBytes` (string lengths, as the answer framing counts them), but always at least one, so an
 * event larger than the bound still goes, alone. Counting alone let 100 events at the wire's
 * longest fields make one push far over the frame bound the answers keep.
 */
export function chunkEnd(
  frames: readonly string[],
  start: number,
  maxBatch: number,
  maxBytes: number,
): number {
  const last = Math.min(frames.length, start + maxBatch);
  // The brackets, and the first frame whatever its size.
  let bytes = 2 + (frames[start]?.length ?? 0);
  let end = start + 1;
  while (end < last) {
    const next = bytes + 1 + (frames[end]?.length ?? 0);
    if (next > maxBytes) break;
    bytes = next;
    end++;
  }
  return end;
}

/**
 * Frames made one at a time as the socket takes them: a RESUME over the whole replay buffer
 * (10,000 events of a few hundred bytes each, more with long broker messages) written in one go
 * went past the slow-consumer limit and cut off the very reader that asked for it.
 */
export class FrameSource {
  #next = 0;
  #peeked: string | undefined;

  constructor(
    readonly count: number,
    /** The i-th frame, asked for once each, in order. */
    readonly frameAt: (i: number) => string,
  ) {}

  /** Frames not yet taken. */
  get remaining(): number {
    return this.count - this.#next;
  }

  /** The next frame, built once (only called while `remaining` > 0). */
  peek(): string {
    this.#peeked ??= this.frameAt(this.#next);
    return this.#peeked;
  }

  /**
   * Up to maxBatch frames of about maxBytes (at least one): one push frame, a lone frame bare,
   * several as an array frame, as Client.sendChunked frames them.
   */
  takeChunk(maxBatch: number, maxBytes: number): string {
    const parts = [this.#take()];
    let bytes = 2 + (parts[0]?.length ?? 0);
    while (parts.length < maxBatch && this.remaining > 0) {
      const next = bytes + 1 + this.peek().length;
      if (next > maxBytes) break;
      bytes = next;
      parts.push(this.#take());
    }
    if (parts.length === 1) return parts[0] ?? "";
    parts[0] = `[${parts[0] ?? ""}`;
    parts[parts.length - 1] = `${parts[parts.length - 1] ?? ""}]`;
    return parts.join(",");
  }

  #take(): string {
    const frame = this.peek();
    this.#peeked = undefined;
    this.#next++;
    return frame;
  }
}
