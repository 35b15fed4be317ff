/** Editor fields arrive as text (numbers too); hand-written flows may hold real numbers and booleans. */

const NUMERIC_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** Trimmed text; blank (or absent) is undefined, meaning "use the default". */
export function text(value: unknown): string | undefined {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** A number, or the raw text when it is not one, so the schema names the field and the rule. */
export function numeric(value: unknown): unknown {
  if (typeof value === "number") return value;
  const raw = text(value);
  return raw !== undefined && NUMERIC_TEXT.test(raw) ? Number(raw) : raw;
}

export function flag(value: unknown): unknown {
  if (value === "true") return true;
  if (value === "false") return false;
  return value === "" || value === null ? undefined : value;
}

/** A number typed as text (env variables, str fields) becomes a number; anything else is left as is. */
export function numericOrAsIs(value: unknown): unknown {
  return typeof value === "string" && NUMERIC_TEXT.test(value) ? Number(value) : value;
}

export function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
