import type { z } from "zod";
import { BrokerError } from "../protocol/errors";
import type { ErrorCode } from "../protocol/errors";

/**
 * zod's default wording ("Invalid input: expected boolean, received number") told in the words the
 * rest of the pack uses ("must be true or false"). Messages the schemas set themselves win; this
 * only fills the gaps.
 */
function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      const expected = String(issue.expected);
      if (issue.input === undefined) return "is required";
      if (expected === "boolean") return "must be true or false";
      if (expected === "int") return "must be a whole number";
      if (expected === "number") return "must be a number";
      if (expected === "string") return "must be a string";
      if (expected === "array") return "must be a list";
      if (expected === "object") return "must be an object";
      return `must be a ${expected}`;
    }
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      if (issue.origin === "array") return `must have at least ${String(issue.minimum)} entries`;
      return issue.inclusive === false
        ? `must be greater than ${String(issue.minimum)}`
        : `must be at least ${String(issue.minimum)}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${String(issue.maximum)} characters`;
      if (issue.origin === "array") return `must have at most ${String(issue.maximum)} entries`;
      return issue.inclusive === false
        ? `must be less than ${String(issue.maximum)}`
        : `must be at most ${String(issue.maximum)}`;
    case "unrecognized_keys":
      return `has unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => String(v)).join(", ")}`;
    default:
      return undefined;
  }
}

/** Parses, or throws a BrokerError whose message is "prefix.path: rule" for the first problem. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  code: ErrorCode,
  prefix: string,
): z.output<S> {
  const parsed = schema.safeParse(input, { error: plainMessage });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join(".");
  throw new BrokerError(code, `${prefix}${path === "" ? "" : `.${path}`}: ${issue.message}`);
}
