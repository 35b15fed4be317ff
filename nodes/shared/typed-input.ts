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
  /** `${prop}Fixed` in the node definition: msg.payload may not change this field. */
  fixed: boolean;
}

export function resolveFields(def: object, fields: readonly EditorField[]): ResolvedField[] {
  const record = def as Partial<Record<string, unknown>>;
  return fields.map((field) => {
    const fixed = record[`${field.prop}Fixed`];
    return { ...field, typed: readTyped(def, field.prop), fixed: fixed === true || fixed === "true" };
  });
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

function sameValue(field: ResolvedField, given: unknown, editor: unknown): boolean {
  return (field.numeric === true ? numericOrAsIs(given) : given) === editor;
}

/** The fixed value as the error shows it: short, so a long context value cannot flood the log. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * The request from msg.payload's fields and the editor's values. A field the payload may override
 * (the default) takes the payload's value when it has one, else the editor's. A fixed field is the
 * editor's value only: a payload carrying a different value is refused with an error naming the
 * field, so a quantity of 1 set as a cap stays a cap; an equal value passes. A fixed blank field
 * may not be set by the payload. The payload's own value is never quoted (it may be anything).
 */
export function mergeEditorValues(
  payload: Record<string, unknown>,
  values: Record<string, unknown>,
  fields: readonly ResolvedField[],
): Record<string, unknown> {
  for (const field of fields) {
    const name = field.field;
    const given = payload[name];
    const editor = values[name];
    if (!field.fixed) {
      if (given === undefined && editor !== undefined) payload[name] = editor;
      continue;
    }
    if (given !== undefined && !sameValue(field, given, editor)) {
      throw new BrokerError(
        "VALIDATION",
        editor === undefined
          ? `${name}: is fixed blank in this node, so msg.payload.${name} may not set it`
          : `${name}: is fixed at ${shown(editor)} in this node, so msg.payload.${name} may not change it`,
      );
    }
    if (editor === undefined) delete payload[name];
    else payload[name] = editor;
  }
  return payload;
}
