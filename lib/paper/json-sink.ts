/**
 * Writes JSON straight into a growing byte buffer, producing exactly the UTF-8 bytes of
 * `JSON.stringify` of the same values. Whole numbers and printable ASCII strings (what a journal
 * record is made of: ids, symbols, enum words, paise, timestamps) are written byte by byte with no
 * string built; anything else (objects, fractions, strings needing escapes or beyond ASCII) goes
 * through `JSON.stringify` itself, so the two can never disagree on it. A record that went through
 * a string first cost a JSON.stringify and an intermediate string per operation, which the
 * journaled broker paid as garbage collection.
 */
export class JsonSink {
  /** The buffer written into; replaced (contents copied) when it grows. */
  buf: Buffer;
  /** Where the next byte goes. */
  at: number;

  constructor(buf: Buffer, at = 0) {
    this.buf = buf;
    this.at = at;
  }

  /** Makes room for `bytes` more, keeping everything before `at`. */
  ensure(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** One ASCII byte (a bracket, a comma). */
  byte(code: number): void {
    if (this.at >= this.buf.length) this.ensure(1);
    this.buf[this.at++] = code;
  }

  /** An array element that should be a number, as JSON.stringify writes it (whatever it is). */
  number(value: number): void {
    // Safe integers print as plain digits; anything else (fractions, 1e21, NaN, not a number) is left to V8.
    if (!Number.isSafeInteger(value)) {
      this.item(value);
      return;
    }
    if (this.at + 17 > this.buf.length) this.ensure(17);
    let n = value;
    if (n < 0) {
      this.buf[this.at++] = 0x2d; // -
      n = -n;
    }
    if (n < 10) {
      this.buf[this.at++] = 0x30 + n;
      return;
    }
    // Below 1e8 in 32-bit integer arithmetic (V8 turns `/ 10 | 0` into a multiply); above it, the
    // high part (under 2^53 / 1e8, so also 32-bit) then the low eight digits zero-padded. Safe
    // integers split exactly, and the float division this replaces was the sink's dearest line.
    if (n < 1e8) {
      this.at = writeDigits(this.buf, this.at, n, digitCount(n));
      return;
    }
    const high = Math.floor(n / 1e8);
    const at = writeDigits(this.buf, this.at, high, digitCount(high));
    this.at = writeDigits(this.buf, at, n - high * 1e8, 8);
  }

  /** An array element that should be a string, as JSON.stringify writes it (whatever it is). */
  string(value: string): void {
    if (typeof value !== "string") {
      this.item(value);
      return;
    }
    const length = value.length;
    this.ensure(length + 2);
    const buf = this.buf;
    const start = this.at;
    let at = start + 1;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      // Printable ASCII except `"` and `\`: written as it is. Anything else needs JSON's escaping.
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
        this.#text(JSON.stringify(value));
        return;
      }
      buf[at++] = code;
    }
    buf[start] = 0x22;
    buf[at++] = 0x22;
    this.at = at;
  }

  /**
   * Any array element: arrays element by element, plain objects member by member, numbers and
   * strings as above, the rest (class instances, toJSON, fractions) by V8. Plain objects are
   * written here rather than by JSON.stringify because a snapshot is one: V8 returns a megabyte
   * string as a rope, and flattening it, then encoding it into the buffer, cost more than writing
   * the bytes from the objects.
   */
  item(value: unknown): void {
    if (typeof value === "number" && Number.isSafeInteger(value)) this.number(value);
    else if (typeof value === "string") this.string(value);
    else if (Array.isArray(value)) {
      this.byte(0x5b); // [
      for (let i = 0; i < value.length; i++) {
        if (i > 0) this.byte(0x2c); // ,
        this.item(value[i]);
      }
      this.byte(0x5d); // ]
    } else if (typeof value === "boolean") this.#ascii(value ? "true" : "false");
    else if (value === null) this.#ascii("null");
    else if (isPlainObject(value)) this.#object(value);
    else if (isSelfWriting(value)) value.writeJson(this);
    else {
      // JSON.stringify writes null for what it cannot write inside an array (undefined, functions).
      const text: string | undefined = JSON.stringify(value);
      this.#text(text ?? "null");
    }
  }

  /** Own members in for-in order, which is JSON.stringify's (integer keys first, then as added). */
  #object(value: Record<string, unknown>): void {
    this.byte(0x7b); // {
    let first = true;
    for (const key in value) {
      // for-in also lists what was added, enumerable, to Object.prototype; JSON.stringify does not.
      if (!Object.hasOwn(value, key)) continue;
      const member = value[key];
      // JSON.stringify leaves out members it cannot write.
      if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
      if (!first) this.byte(0x2c); // ,
      first = false;
      this.string(key);
      this.byte(0x3a); // :
      this.item(member);
    }
    this.byte(0x7d); // }
  }

  #ascii(text: string): void {
    this.ensure(text.length);
    for (let i = 0; i < text.length; i++) this.buf[this.at++] = text.charCodeAt(i);
  }

  #text(text: string): void {
    this.ensure(text.length * 3);
    this.at += this.buf.write(text, this.at, "utf8");
  }
}

/**
 * A value that writes its own JSON into a sink: exactly the bytes JSON.stringify gives for it through
 * its toJSON(). For a large part of a snapshot that has a cheaper written form than its objects.
 */
export interface SelfWriting {
  writeJson(sink: JsonSink): void;
  toJSON(): unknown;
}

function isSelfWriting(value: unknown): value is SelfWriting {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { writeJson?: unknown }).writeJson === "function" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  );
}

/**
 * An object JSON.stringify writes as its own enumerable string-keyed members: prototype
 * Object.prototype or none, and no toJSON. Anything else (a Date, a class instance, a Map) is left
 * to JSON.stringify.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return (
    (proto === Object.prototype || proto === null) &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function"
  );
}

/** Decimal digits of 0 <= n < 2^31. */
function digitCount(n: number): number {
  if (n < 10_000) return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : 4;
  if (n < 100_000_000) return n < 100_000 ? 5 : n < 1_000_000 ? 6 : n < 10_000_000 ? 7 : 8;
  return n < 1_000_000_000 ? 9 : 10;
}

/** Writes 0 <= n < 2^31 as exactly `digits` digits (zero-padded) at `at`; returns the end. */
function writeDigits(buf: Buffer, at: number, n: number, digits: number): number {
  const end = at + digits;
  let rest = n | 0;
  for (let i = end - 1; i >= at; i--) {
    const next = (rest / 10) | 0;
    buf[i] = 0x30 + rest - next * 10;
    rest = next;
  }
  return end;
}
