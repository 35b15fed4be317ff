import type { z } from "zod";
import { BrokerError } from "./errors";

/** One line per issue, "field: rule", so the message names both what is wrong and why. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "payload";
      if (issue.code === "unrecognized_keys") {
        return `${issue.keys.join(", ")}: unknown field${issue.keys.length > 1 ? "s" : ""} (not part of the order shape)`;
      }
      return `${field}: ${issue.message}`;
    })
    .join("; ");
}

/** Parses `input` with `schema`, throwing a VALIDATION BrokerError whose message names field and rule. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new BrokerError("VALIDATION", `invalid ${what}: ${formatIssues(result.error.issues)}`);
}
