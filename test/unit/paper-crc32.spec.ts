// The journal checksums small records with a CRC32 written in JS (lib/paper/crc32.ts) and larger
// ones with zlib's. Journals written before and after must read alike, so the two must agree on
// every byte range, and a line sealed either way must still catch every flipped byte.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { crc32Byte, crc32Range } from "../../lib/paper/crc32";
import { Journal } from "../../lib/paper/journal";

describe("paper/crc32", () => {
  it("gives zlib.crc32 of the range, from any start and any initial CRC", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 700 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, a, b, init) => {
          // Never empty: zlib answers 0 for no bytes whatever the initial CRC (a sealed body never is).
          fc.pre(bytes.length > 0);
          const start = a % bytes.length;
          const end = start + 1 + (b % (bytes.length - start));
          assert.equal(crc32Range(bytes, start, end, init), crc32(bytes.subarray(start, end), init));
          assert.equal(crc32Range(bytes, start, end), crc32(bytes.subarray(start, end)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("gives zlib.crc32 of one more byte", () => {
    for (let byte = 0; byte < 256; byte++) {
      for (const init of [0, 1, 0x7d, 0xdeadbeef, 0xffffffff, 0x80000000]) {
        assert.equal(crc32Byte(init, byte), crc32(Buffer.of(byte), init), `byte ${byte} after ${init}`);
      }
    }
  });

  describe("journal lines sealed with it", () => {
    let dir: string;
    let file: string;

    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "paper-crc32-"));
      file = path.join(dir, "j.jsonl");
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Records whose JSON is `length` bytes: `"xx…x"`. */
    const record = (length: number) => "x".repeat(length - 2);

    it("carry zlib's CRC32 of their text at every size around the switch to zlib", async () => {
      const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
      const lengths: number[] = [];
      for (let n = 2; n <= 40; n++) lengths.push(n);
      for (let n = 240; n <= 280; n++) lengths.push(n);
      for (const n of [1000, 1024, 1025, 5000]) lengths.push(n);
      // Through both ways in: append() and the in-place writer.
      lengths.forEach((n, i) => {
        if (i % 2 === 0) journal.append(record(n));
        else {
          const sink = journal.beginRecord();
          sink.string(record(n));
          journal.endRecord();
        }
      });
      await journal.close();
      const lines = fs.readFileSync(file, "latin1").split("\n");
      assert.equal(lines.pop(), "");
      assert.equal(lines.length, lengths.length);
      lines.forEach((line, i) => {
        const body = `{"r":${JSON.stringify(record(lengths[i]!))}}`;
        const sum = crc32(body).toString(16).padStart(8, "0");
        assert.equal(line, `${body.slice(0, -1)},"k":"${sum}"}`, `record of ${lengths[i]} bytes`);
      });
      const again = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
      assert.deepEqual(again.contents.records, lengths.map(record));
      assert.equal(again.quarantine, undefined);
      await again.journal.close();
    });

    it("catch a flipped bit in every other byte of a record of either size, never applying it", async () => {
      // Just under and just over the switch, so both ways of summing are checked.
      for (const length of [250, 300]) {
        fs.rmSync(file, { force: true });
        const { journal } = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
        journal.append("before");
        const sink = journal.beginRecord();
        sink.string(record(length));
        journal.endRecord();
        journal.append("after");
        await journal.close();
        const pristine = fs.readFileSync(file);
        const from = pristine.indexOf(0x0a) + 1;
        const to = pristine.indexOf(0x0a, from);
        let trials = 0;
        // Every other byte (the odd ones for one size, the even for the other), one bit each, a
        // different bit from byte to byte: every bit of every byte would be ~4,000 quarantines,
        // each with its fsyncs.
        for (let at = from + (length % 4 === 0 ? 1 : 0); at < to; at += 2) {
          const bit = ((at - from) >> 1) % 8;
          const damaged = Buffer.from(pristine);
          damaged[at] = damaged[at]! ^ (1 << bit);
          if (damaged[at] === 0x0a) continue; // a new line break is a different damage, tested apart
          for (const f of fs.readdirSync(dir)) if (f !== "j.jsonl") fs.rmSync(path.join(dir, f));
          fs.writeFileSync(file, damaged);
          const opened = await Journal.open<unknown, unknown>({ file, fsyncIntervalMs: 60_000 });
          await opened.journal.close();
          trials++;
          assert.deepEqual(opened.contents.records, ["before"], `${length}: flip at ${at} bit ${bit}`);
          assert.equal(opened.quarantine?.lineNo, 2, `${length}: flip at ${at} bit ${bit} quarantined`);
          assert.equal(opened.quarantine?.droppedAfter, 1);
        }
        assert.ok(trials > length / 2, `${trials} flips of a ${length}-byte record`);
      }
    });
  });
});
