import fs from "node:fs";

/** What the next write on the watched fd does: land whole, fail at once, or land half then fail. */
export type WriteFault = "none" | "fail" | "partial";

export interface FdFaultPlan {
  /** Asked per fdatasync of the watched fd (0-based count): true answers it with EIO. */
  sync?(n: number): boolean;
  /** Asked per writeSync call on the watched fd (0-based count). */
  write?(n: number): WriteFault;
}

/**
 * A disk that fails under one file only: fs.fdatasync and fs.writeSync are replaced (the library
 * calls them through the shared `node:fs` module object) and answer for the fd that has `file` open
 * by the plan, for every other fd as the real disk does. The fd is found through /proc/self/fd, so
 * the code under test needs no seam of its own.
 */
export class FdFaults {
  readonly #file: string;
  readonly #plan: FdFaultPlan;
  readonly #realSync = fs.fdatasync;
  readonly #realWrite = fs.writeSync;
  #fd = -1;
  #syncs = 0;
  #writes = 0;
  /** A partial write landed: the next call fails, as a disk that filled up part-way does. */
  #failNext = false;
  failedSyncs = 0;
  failedWrites = 0;

  constructor(file: string, plan: FdFaultPlan) {
    this.#file = file;
    this.#plan = plan;
  }

  /** Starts failing; the file must already be open for appending. */
  install(): void {
    this.#fd = openFdOf(this.#file);
    const sync = this.#realSync;
    const write = this.#realWrite;
    const patchedSync = (fd: number, callback: fs.NoParamCallback): void => {
      if (fd === this.#fd && this.#plan.sync?.(this.#syncs++) === true) {
        this.failedSyncs += 1;
        setImmediate(callback, errno("EIO", -5, "i/o error", "fdatasync"));
        return;
      }
      sync(fd, callback);
    };
    const patchedWrite = (fd: number, buffer: Buffer, offset?: number, length?: number): number => {
      if (fd !== this.#fd) return (write as (...a: unknown[]) => number)(fd, buffer, offset, length);
      const fault = this.#failNext ? "fail" : (this.#plan.write?.(this.#writes++) ?? "none");
      this.#failNext = false;
      if (fault === "fail") {
        this.failedWrites += 1;
        throw errno("ENOSPC", -28, "no space left on device", "write");
      }
      const start = offset ?? 0;
      const whole = length ?? buffer.length - start;
      if (fault === "partial" && whole > 1) {
        this.#failNext = true;
        return write(fd, buffer, start, Math.floor(whole / 2));
      }
      return write(fd, buffer, start, whole);
    };
    (fs as { fdatasync: unknown }).fdatasync = patchedSync;
    (fs as { writeSync: unknown }).writeSync = patchedWrite;
  }

  uninstall(): void {
    (fs as { fdatasync: unknown }).fdatasync = this.#realSync;
    (fs as { writeSync: unknown }).writeSync = this.#realWrite;
  }
}

function errno(code: string, number: number, text: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, errno: number, syscall });
}

/** The one fd of this process open on `file` (Linux). */
export function openFdOf(file: string): number {
  const target = fs.realpathSync(file);
  const found: number[] = [];
  for (const name of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === target) found.push(Number(name));
    } catch {
      // The fd readdir itself used, closed by now.
    }
  }
  if (found.length !== 1) throw new Error(`expected one fd open on ${file}, found ${found.length}`);
  return found[0]!;
}
