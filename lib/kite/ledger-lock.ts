import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { BrokerError } from "../protocol/errors";

/** A lock whose content cannot be read yet (being written) counts as held for this long. */
const UNREADABLE_GRACE_MS = 10_000;

interface LockOwner {
  pid: number;
  /** The owner's start time as the kernel tells it (/proc/<pid>/stat), to tell a reused pid. */
  start?: string;
  nonce: string;
  holder: string;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Gone already (another process took it away first).
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot (Linux). */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return errorCode(error) === "EPERM";
  }
}

function readOwner(lock: string): LockOwner | "unreadable" | undefined {
  let text: string;
  try {
    text = readFileSync(lock, "utf8");
  } catch (error) {
    return errorCode(error) === "ENOENT" ? undefined : "unreadable";
  }
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isSafeInteger(owner.pid) && typeof owner.nonce === "string") return owner as LockOwner;
  } catch {
    // Cut short or being written.
  }
  return "unreadable";
}

/** Whether the process that wrote the lock still runs (the same process, not a reuse of its pid). */
function stillHeld(lock: string, owner: LockOwner | "unreadable"): boolean {
  if (owner === "unreadable") {
    try {
      return Date.now() - statSync(lock).mtimeMs < UNREADABLE_GRACE_MS;
    } catch {
      return false;
    }
  }
  if (!isAlive(owner.pid)) return false;
  const now = startOf(owner.pid);
  if (owner.start !== undefined && now !== undefined && owner.start !== now) return false;
  // Our own pid, started when we did: a lock this process left (its holders are counted in-process,
  // ledger-holders.ts, and none holds this file), not another process's.
  return !(owner.pid === process.pid && now === startOf(process.pid));
}

/** Creates `lock` holding `content`, whole from the first moment another process can see it. */
function create(lock: string, content: string): boolean {
  const aside = `${lock}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    const fd = openSync(aside, "wx", 0o600);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    linkSync(aside, lock);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  } finally {
    removeFile(aside);
  }
}

function describe(owner: LockOwner | "unreadable"): string {
  return owner === "unreadable" ? "a process starting up" : `${owner.holder}, process ${owner.pid}`;
}

/**
 * Takes `<file>.lock` for this process, across processes: two Node-RED instances on one user
 * directory with the same config would otherwise both append to (and compact) one ledger. The lock
 * file names its owner (pid, start time); one whose owner no longer runs (killed, crashed, or its
 * pid now another process's) is taken over. Stale locks are removed under a second, short-lived
 * lock, so two processes finding one stale at once cannot both take it. Returns the release;
 * throws CONFIG naming the owner while another process holds it. Where no lock can be written at
 * all (a read-only directory), the ledger itself cannot be either: no lock is taken.
 */
export function lockLedgerFile(file: string, holder: string): () => void {
  const lock = `${file}.lock`;
  const start = startOf(process.pid);
  const me: LockOwner = {
    pid: process.pid,
    ...(start === undefined ? {} : { start }),
    nonce: randomBytes(8).toString("hex"),
    holder,
  };
  const content = JSON.stringify(me);
  const release = (): void => {
    const owner = readOwner(lock);
    if (owner === undefined || owner === "unreadable" || owner.nonce !== me.nonce) return;
    removeFile(lock);
  };
  const inUse = (owner: LockOwner | "unreadable"): BrokerError =>
    new BrokerError(
      "CONFIG",
      `the Kite reported ledger ${file} is in use by another process (${describe(owner)}); two Node-RED instances on one user directory cannot run the same Kite broker config at once`,
    );
  try {
    mkdirSync(path.dirname(lock), { recursive: true });
    // Twice at most: a stale lock taken away between our two looks is tried for once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (create(lock, content)) return release;
      const owner = readOwner(lock);
      if (owner === undefined) continue;
      if (stillHeld(lock, owner)) throw inUse(owner);
      takeOver(lock, owner);
    }
    if (create(lock, content)) return release;
    throw inUse(readOwner(lock) ?? "unreadable");
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    // No lock can be written here (read-only or full disk): nor can the ledger, which then runs as
    // if there were none.
    return () => undefined;
  }
}

/**
 * Removes what a process that died holding `file`'s lock left: the lock itself, a takeover guard,
 * or a lock half made (written aside, not yet linked). Only a lock whose owner no longer runs is
 * taken, and under the same guard as a takeover; a lock held by this process (`heldHere`) or any
 * live one stays. `names` is the directory's listing. Without this, each day a holder crashed left its lock behind for good: the next
 * day's ledger has another name, so nothing ever took that lock over (issue kite11, item 1).
 */
export function clearStaleLock(file: string, heldHere: boolean, names: readonly string[]): void {
  const lock = `${file}.lock`;
  if (heldHere) return;
  try {
    const owner = readOwner(lock);
    if (owner !== undefined && !stillHeld(lock, owner)) takeOver(lock, owner);
    const guard = `${lock}.takeover`;
    const taker = readOwner(guard);
    if (taker !== undefined && !stillHeld(guard, taker)) removeFile(guard);
    const dir = path.dirname(lock);
    const prefix = `${path.basename(lock)}.`;
    for (const name of names) {
      const m = ASIDE.exec(name.startsWith(prefix) ? name.slice(prefix.length) : "");
      if (m === null) continue;
      const pid = Number(m[1]);
      // Ours are removed before create() returns; another live process's may be mid-create.
      if (pid === process.pid || !isAlive(pid)) removeFile(path.join(dir, name));
    }
  } catch {
    // A directory that cannot be read or written: nothing could have been cleaned.
  }
}

/** A lock written aside before it is linked: `<lock>.<pid>.<8 hex>`. */
const ASIDE = /^(\d+)\.[0-9a-f]{8}$/;

/** Removes a stale lock, unless it changed hands meanwhile (then the next look decides). */
function takeOver(lock: string, stale: LockOwner | "unreadable"): void {
  const guard = `${lock}.takeover`;
  const guardContent = JSON.stringify({ pid: process.pid, start: startOf(process.pid), nonce: "guard" });
  if (!create(guard, guardContent)) {
    const other = readOwner(guard);
    if (other !== undefined && stillHeld(guard, other)) return; // another process is at it
    // Its taker died at it: a window of microseconds, so two finding that at once is not guarded.
    removeFile(guard);
    if (!create(guard, guardContent)) return;
  }
  try {
    const now = readOwner(lock);
    const same =
      now !== undefined &&
      (now === "unreadable" ? stale === "unreadable" : stale !== "unreadable" && now.nonce === stale.nonce);
    if (same) removeFile(lock);
  } finally {
    removeFile(guard);
  }
}
