import fs from "node:fs";
import { openFdOf } from "./fd-faults";

/**
 * What survives a power cut, for one file (the idempotency index, the paper journal): writes land in the page cache dirty; a successful
 * fdatasync makes the bytes dirty when it started durable (and the size); a failed one drops every
 * dirty byte and marks it clean, as Linux does, so nothing later writes it unless it is written again.
 * Wraps whatever fs.writeSync/fdatasync/ftruncateSync are when installed (FdFaults' included), so it
 * sees the failures those inject.
 */
export class DiskModel {
  readonly #file: string;
  readonly #fd: number;
  readonly #write = fs.writeSync;
  readonly #sync = fs.fdatasync;
  readonly #truncate = fs.ftruncateSync;
  /** The bytes on the platter. */
  disk: Buffer;
  /** Per byte of the file: 0 clean, else the clock of the write that dirtied it. */
  #dirty: number[] = [];
  #clock = 0;

  constructor(file: string) {
    this.#file = file;
    this.#fd = openFdOf(file);
    this.disk = fs.readFileSync(file);
    this.#dirty = Array.from({ length: this.disk.length }, () => 0);
  }

  install(): void {
    const fd = this.#fd;
    const write = this.#write as (...a: unknown[]) => number;
    const sync = this.#sync;
    const truncate = this.#truncate;
    (fs as { writeSync: unknown }).writeSync = (f: number, ...rest: unknown[]): number => {
      if (f !== fd) return write(f, ...rest);
      const at = fs.fstatSync(fd).size; // O_APPEND: every write lands at the end
      const wrote = write(f, ...rest);
      this.#clock += 1;
      for (let i = at; i < at + wrote; i++) this.#dirty[i] = this.#clock;
      return wrote;
    };
    (fs as { ftruncateSync: unknown }).ftruncateSync = (f: number, len?: number): void => {
      truncate(f, len);
      if (f !== fd) return;
      const size = len ?? 0;
      this.#dirty.length = Math.min(this.#dirty.length, size);
      this.#clock += 1;
      for (let i = 0; i < size; i++) this.#dirty[i] ??= this.#clock;
    };
    (fs as { fdatasync: unknown }).fdatasync = (f: number, callback: fs.NoParamCallback): void => {
      if (f !== fd) return sync(f, callback);
      const content = fs.readFileSync(this.#file);
      const stamp = this.#clock;
      sync(f, (error) => {
        if (error !== null) {
          // The failed writeback dropped them: clean, never written by a later sync.
          for (let i = 0; i < this.#dirty.length; i++) this.#dirty[i] = 0;
        } else {
          const next = Buffer.alloc(content.length);
          this.disk.copy(next, 0, 0, Math.min(this.disk.length, next.length));
          for (let i = 0; i < content.length; i++) {
            const d = this.#dirty[i] ?? 0;
            if (d !== 0 && d <= stamp) {
              next[i] = content[i]!;
              this.#dirty[i] = 0;
            }
          }
          this.disk = next;
        }
        callback(error);
      });
    };
  }

  uninstall(): void {
    (fs as { writeSync: unknown }).writeSync = this.#write;
    (fs as { fdatasync: unknown }).fdatasync = this.#sync;
    (fs as { ftruncateSync: unknown }).ftruncateSync = this.#truncate;
  }
}
