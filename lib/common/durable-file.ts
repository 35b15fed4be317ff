import { promises as fsp } from "node:fs";

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
