import { closeSync, fsyncSync, openSync, promises as fsp, writeSync } from "node:fs";

/**
 * Writes a whole file and fsyncs it before closing: once this resolves, a crash leaves the new
 * contents. Used for temporary files that a rename then puts in place.
 */
export async function writeFileDurably(file: string, data: Buffer | string, mode?: number): Promise<void> {
  const handle = await fsp.open(file, "w", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A create or rename is only durable once the directory entry itself is synced. */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals its metadata anyway.
  if (process.platform === "win32") return;
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `bytes` at the file's position: one writeSync may take only part of them. */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) {
    const written = writeSync(fd, bytes, at, bytes.length - at);
    // A zero-byte write would otherwise spin forever.
    if (written <= 0) throw new Error("write made no progress");
    at += written;
  }
}

/** syncDirectory for callers that must not yield (a record made durable before an event goes out). */
export function syncDirectorySync(dir: string): void {
  // Windows cannot open a directory for fsync; NTFS journals its metadata anyway.
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
