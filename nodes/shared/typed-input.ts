import type { Node, NodeAPI, NodeMessage } from "node-red";
import { BrokerError } from "../../lib/protocol/errors";
import { numericOrAsIs } from "./coerce";

/** One editor property backed by a Node-RED TypedInput: the text and the type picked beside it. */
export interface TypedValue {
  value: string;
  type: string;
}

/**
 * The request fields a node can take from its editor form: `field` in the request, `prop` in the
 * node definition (with `${prop}Type` beside it), and whether the field is a number.
 */
export interface EditorField {
  field: string;
  prop: string;
  numeric?: boolean;
}

/** Types Node-RED evaluates on the spot; flow/global (context stores) and JSONata may answer later. */
const IMMEDIATE_TYPES = new Set(["str", "num", "bool", "json", "msg", "env", "date"]);
const DEFERRED_TYPES = new Set(["flow", "global", "jsonata"]);

function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return "";
}

/** Reads `prop` and `${prop}Type` from a node definition; a missing type means a plain string. */
export function readTyped(def: object, prop: string): TypedValue {
  const record = def as Partial<Record<string, unknown>>;
  const type = textOf(record[`${prop}Type`]);
  return { value: textOf(record[prop]), type: type === "" ? "str" : type };
}

function isBlank(typed: TypedValue): boolean {
  return typed.value.trim() === "";
}

/**
 * The editor value for `msg`. A blank field is "not set", whatever its type: the payload (or the
 * schema default) decides. Types other than Node-RED's are our option lists: the value is literal.
 */
export function evaluateTyped(RED: NodeAPI, node: Node, typed: TypedValue, msg: NodeMessage): unknown {
  if (isBlank(typed)) return undefined;
  if (IMMEDIATE_TYPES.has(typed.type)) {
    return RED.util.evaluateNodeProperty(typed.value, typed.type, node, msg) as unknown;
  }
  if (!DEFERRED_TYPES.has(typed.type)) return typed.value;
  return new Promise((resolve, reject) => {
    RED.util.evaluateNodeProperty(typed.value, typed.type, node, msg, (error, result: unknown) => {
      if (error) reject(error);
      else resolve(result);
    });
  });
}

export interface ResolvedField extends EditorField {
  typed: TypedValue;
}

export function resolveFields(def: object, fields: readonly EditorField[]): ResolvedField[] {
  return fields.map((field) => ({ ...field, typed: readTyped(def, field.prop) }));
}

/** Evaluates the editor's values for `msg`; fields left blank are absent from the result. */
export async function editorValues(
  RED: NodeAPI,
  node: Node,
  fields: readonly ResolvedField[],
  msg: NodeMessage,
): Promise<Record<string, unknown>> {
  const values: Record<string, unknown> = {};
  for (const field of fields) {
    // Blank fields are skipped and immediate types answer synchronously: most orders wait on nothing.
    if (isBlank(field.typed)) continue;
    let value: unknown;
    try {
      const evaluated = evaluateTyped(RED, node, field.typed, msg);
      value = evaluated instanceof Promise ? await evaluated : evaluated;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new BrokerError(
        "VALIDATION",
        `${field.field}: the editor value could not be evaluated: ${reason}`,
      );
    }
    if (value === undefined) continue;
    values[field.field] = field.numeric === true ? numericOrAsIs(value) : value;
  }
  return values;
}
