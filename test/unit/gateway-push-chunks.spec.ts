import assert from "node:assert/strict";
import fc from "fast-check";
import { arrayFrame } from "../../lib/gateway/client";
import { chunkEnd, FrameSource } from "../../lib/gateway/push-chunks";

/** Chunks `frames` the way Client.sendChunked does. */
function chunked(frames: string[], maxBatch: number, maxBytes: number): string[] {
  const out: string[] = [];
  for (let start = 0; start < frames.length;) {
    const end = chunkEnd(frames, start, maxBatch, maxBytes);
    out.push(end - start === 1 ? frames[start]! : arrayFrame(frames, start, end));
    start = end;
  }
  return out;
}

describe("push chunks: at most maxBatch frames and about maxBytes each", function () {
  it("every frame once, in order; a chunk over the bound only when it is one frame; no chunk could take the next (property)", function () {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ minLength: 1, maxLength: 400 }).map((s) => JSON.stringify(s)),
          { maxLength: 300 },
        ),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 5000 }),
        (frames, maxBatch, maxBytes) => {
          const chunks = chunked(frames, maxBatch, maxBytes);
          const back = chunks.flatMap((chunk) => {
            const parsed: unknown = JSON.parse(chunk);
            return Array.isArray(parsed) ? (parsed as string[]) : [parsed as string];
          });
          assert.deepEqual(
            back,
            frames.map((f) => JSON.parse(f) as string),
          );
          let at = 0;
          for (const chunk of chunks) {
            const parsed: unknown = JSON.parse(chunk);
            const count = Array.isArray(parsed) ? parsed.length : 1;
            assert.ok(count <= maxBatch);
            if (count > 1) assert.ok(chunk.length <= maxBytes, `${chunk.length} > ${maxBytes}`);
            at += count;
            // Greedy: the next frame would not have fitted.
            if (at < frames.length && count < maxBatch) {
              const grown = arrayFrame(frames, at - count, at + 1);
              assert.ok(grown.length > maxBytes, "the next frame would have fitted");
            }
          }
          // A replay's frames made as they go chunk exactly alike.
          const source = new FrameSource(frames.length, (i) => frames[i]!);
          const lazy: string[] = [];
          while (source.remaining > 0) lazy.push(source.takeChunk(maxBatch, maxBytes));
          assert.deepEqual(lazy, chunks);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("makes each replay frame once, when it is taken", function () {
    const made: number[] = [];
    const source = new FrameSource(10, (i) => {
      made.push(i);
      return `"${"x".repeat(40)}"`;
    });
    source.takeChunk(3, 1000);
    assert.deepEqual(made, [0, 1, 2], "three taken, none ahead");
    source.takeChunk(100, 100);
    assert.deepEqual(made, [0, 1, 2, 3, 4, 5], "two taken, the sixth peeked at: too large for this chunk");
    source.takeChunk(100, 100);
    assert.deepEqual(made, [0, 1, 2, 3, 4, 5, 6, 7], "the peeked one is not made again");
    assert.equal(source.remaining, 3);
  });
});
