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
    this.ensure(17);
    const buf = this.buf;
    let n = value;
    if (n < 0) {
      buf[this.at++] = 0x2d; // -
      n = -n;
    }
    if (n < 10) {
      buf[this.at++] = 0x30 + n;
      return;
    }
    let digits = 0;
    for (let rest = n; rest > 0; rest = Math.floor(rest / 10)) digits++;
    let end = this.at + digits;
    this.at = end;
    while (n > 0) {
      const next = Math.floor(n / 10);
      buf[--end] = 0x30 + (n - next * 10);
      n = next;
    }
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

  /** Any array element: arrays element by element, numbers and strings as above, the rest by V8. */
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
    } else {
      // JSON.stringify writes null for what it cannot write inside an array (undefined, functions).
      const text: string | undefined = JSON.stringify(value);
      this.#text(text ?? "null");
    }
  }

  #text(text: string): void {
    this.ensure(text.length * 3);
    this.at += this.buf.write(text, this.at, "utf8");
  }
}
