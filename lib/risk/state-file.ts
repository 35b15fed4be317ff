import fsp from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { IsoTimestamp } from "../protocol/fields";
import { TradingState } from "../protocol/events";
import { syncDirectory, writeFileDurably } from "../common/durable-file";
import { messageOf } from "../common/error-message";

/**
 * What the guard keeps on disk beside the account: the trading state (so a restart or redeploy
 * stays halted until a person resumes) and where the day's P&L started.
 */
export const RiskStateRecord = z.strictObject({
  version: z.literal(1),
  state: TradingState,
  by: z.string(),
  reason: z.string(),
  at: IsoTimestamp,
  /** IST day the P&L baseline belongs to, and the account's realized + unrealized P&L then. */
  day: z.string().optional(),
  day_start_pnl: z.number().optional(),
  /**
   * The last P&L any process read, and when: a day whose start no process saw (Node-RED down at
   * midnight) starts no lower than it, so a loss made while nobody watched is not forgiven.
   */
  last_pnl: z.number().optional(),
  last_pnl_at: IsoTimestamp.optional(),
  /** The account the file belongs to (absent in files written before it was kept). */
  account: z.string().optional(),
});
export type RiskStateRecord = z.output<typeof RiskStateRecord>;

export type LoadedState =
  { kind: "missing" } | { kind: "ok"; record: RiskStateRecord } | { kind: "corrupt"; why: string };

/** Reads the state file; a file that exists but cannot be read or understood is "corrupt". */
export async function loadState(file: string): Promise<LoadedState> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    return { kind: "corrupt", why: `cannot read ${file}: ${messageOf(error)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { kind: "corrupt", why: `${file} is not JSON (${messageOf(error)})` };
  }
  const parsed = RiskStateRecord.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? "record" : issue.path.join(".");
    return {
      kind: "corrupt",
      why: `${file} is not a trading state (${field}: ${issue?.message ?? "invalid"})`,
    };
  }
  return { kind: "ok", record: parsed.data };
}

/**
 * Replaces the state file atomically: a crash leaves either the old record or the new one,
 * never half of one (write a temporary file, fsync it, rename it over, fsync the directory).
 */
export async function saveState(file: string, record: RiskStateRecord): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp`;
  await writeFileDurably(tmp, `${JSON.stringify(record, null, 2)}\n`, 0o600);
  await fsp.rename(tmp, file);
  await syncDirectory(dir);
}

/**
 * The second witness of a trading state other than ACTIVE: a small file beside the state file
 * (`<state file>.halted`), written when trading stops or reduces and removed once it is ACTIVE
 * again. It is read only when the state file is missing, so a state file deleted by hand (or by
 * a cleanup that took one file) does not restart a halted account ACTIVE.
 */
export function witnessFile(file: string): string {
  return `${file}.halted`;
}

/** Writes the witness of `record` (not ACTIVE), or removes it (ACTIVE). */
export async function saveWitness(file: string, record: RiskStateRecord): Promise<void> {
  const witness = witnessFile(file);
  if (record.state === "ACTIVE") {
    await fsp.rm(witness, { force: true });
  } else {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const { state, by, reason, at } = record;
    await writeFileDurably(witness, `${JSON.stringify({ state, by, reason, at })}\n`, 0o600);
  }
  await syncDirectory(path.dirname(file));
}

/**
 * What the witness says, if there is one: its state and why (a witness that cannot be read or
 * understood still says trading was not ACTIVE, and is answered as HALTED).
 */
export async function loadWitness(
  file: string,
): Promise<{ state: "HALTED" | "REDUCING"; said: string } | undefined> {
  const witness = witnessFile(file);
  let text: string;
  try {
    text = await fsp.readFile(witness, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return { state: "HALTED", said: `${witness} exists but cannot be read (${messageOf(error)})` };
  }
  const parsed = RiskStateRecord.pick({ state: true, by: true, reason: true, at: true }).safeParse(
    (() => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return undefined;
      }
    })(),
  );
  if (!parsed.success || parsed.data.state === "ACTIVE") {
    return { state: "HALTED", said: `${witness} exists but is not a trading state` };
  }
  const { state, by, reason, at } = parsed.data;
  return { state, said: `${witness} says ${state} since ${at} (${by}: ${reason})` };
}
