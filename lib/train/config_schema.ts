// A small declarative schema for the experiment config (lib/train/config.ts): each key is a
// Field with its default, its type and range, a one-line doc and where the value comes from;
// sections nest. The TypeScript type of a config is derived from the schema (ConfigOf), so
// the schema is the single place that lists keys. Validation reports one line naming the key
// path: "unknown key rl.grop (did you mean rl.grpo?)", "rl.group_size: expected an integer ≥ 2,
// got "eight"", "rl.grpo.clip_epsilon: 1.5 is out of range (expected a number in (0, 1))".

/** A config problem, with the dotted key path it concerns ("" for the whole document). */
export class ConfigIssue extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(path === "" ? problem : `${path}: ${problem}`);
  }
}

export interface Field<T> {
  readonly kind: "field";
  readonly default: T;
  /** The accepted values in words: "an integer ≥ 1", "compact | paper". */
  readonly type: string;
  readonly doc: string;
  /** Where the default comes from: a spec section, or "our default". */
  readonly source: string;
  /** The value, or a ConfigIssue-free error message (the caller adds the path). */
  parse(value: unknown): T;
}

// deno-lint-ignore no-explicit-any
export type AnyField = Field<any>;
export type Schema = { readonly [key: string]: AnyField | Schema };

/** The config type a schema describes. */
export type ConfigOf<S> = {
  -readonly [K in keyof S]: S[K] extends Field<infer T> ? T
    : S[K] extends Schema ? ConfigOf<S[K]>
    : never;
};

export function isField(node: AnyField | Schema): node is AnyField {
  return (node as AnyField).kind === "field";
}

/** A value in words for messages: "the string "eight"", "a list", "null", "1.5". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

class FieldError extends Error {}

interface Doc {
  doc: string;
  /** Spec section, or "our default". */
  spec: string;
}

interface Range {
  min?: number;
  max?: number;
  /** min itself is excluded. */
  minOpen?: boolean;
  /** max itself is excluded. */
  maxOpen?: boolean;
}

function rangeWords({ min, max, minOpen, maxOpen }: Range): string {
  if (min !== undefined && max !== undefined) {
    return `in ${minOpen ? "(" : "["}${min}, ${max}${maxOpen ? ")" : "]"}`;
  }
  if (min !== undefined) return `${minOpen ? ">" : "≥"} ${min}`;
  if (max !== undefined) return `${maxOpen ? "<" : "≤"} ${max}`;
  return "";
}

function inRange(x: number, { min, max, minOpen, maxOpen }: Range): boolean {
  if (min !== undefined && (minOpen ? !(x > min) : !(x >= min))) return false;
  if (max !== undefined && (maxOpen ? !(x < max) : !(x <= max))) return false;
  return true;
}

function numeric(
  what: "an integer" | "a number",
  options: Range & Doc & { default: number },
): Field<number> {
  const words = rangeWords(options);
  const type = words ? `${what} ${words}` : what;
  return {
    kind: "field",
    default: options.default,
    type,
    doc: options.doc,
    source: options.spec,
    parse(value) {
      const ok = typeof value === "number" && Number.isFinite(value) &&
        (what === "a number" || Number.isInteger(value));
      if (!ok) throw new FieldError(`expected ${type}, got ${describeValue(value)}`);
      if (!inRange(value, options)) {
        throw new FieldError(`${value} is out of range (expected ${type})`);
      }
      return value;
    },
  };
}

/** An integer field. */
export function integer(options: Range & Doc & { default: number }): Field<number> {
  return numeric("an integer", options);
}

/** A finite number field. */
export function number(options: Range & Doc & { default: number }): Field<number> {
  return numeric("a number", options);
}

/** One of a fixed list of strings. */
export function choice<const V extends readonly string[]>(
  values: V,
  options: Doc & { default: V[number] },
): Field<V[number]> {
  const type = values.join(" | ");
  return {
    kind: "field",
    default: options.default,
    type,
    doc: options.doc,
    source: options.spec,
    parse(value) {
      if (typeof value !== "string" || !values.includes(value)) {
        throw new FieldError(`expected one of ${type}, got ${describeValue(value)}`);
      }
      return value as V[number];
    },
  };
}

export function boolean(options: Doc & { default: boolean }): Field<boolean> {
  return {
    kind: "field",
    default: options.default,
    type: "true | false",
    doc: options.doc,
    source: options.spec,
    parse(value) {
      if (typeof value !== "boolean") {
        throw new FieldError(`expected true or false, got ${describeValue(value)}`);
      }
      return value;
    },
  };
}

/** A non-empty string. */
export function text(options: Doc & { default: string }): Field<string> {
  return {
    kind: "field",
    default: options.default,
    type: "a string",
    doc: options.doc,
    source: options.spec,
    parse(value) {
      if (typeof value !== "string" || value.length === 0) {
        throw new FieldError(`expected a non-empty string, got ${describeValue(value)}`);
      }
      return value;
    },
  };
}

/** A file or folder path (kept as written: relative paths are relative to the working folder). */
export function path(options: Doc & { default: string | null }): Field<string | null> {
  return {
    kind: "field",
    default: options.default,
    type: "a path or null",
    doc: options.doc,
    source: options.spec,
    parse(value) {
      if (value === null) return null;
      if (typeof value !== "string" || value.length === 0) {
        throw new FieldError(`expected a path or null, got ${describeValue(value)}`);
      }
      return value;
    },
  };
}

// ---- validating a layer (one YAML document or one --set) ---------------------------------

/** A partial config: what one layer sets, already type-checked. */
export type Layer = { [key: string]: unknown };

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/** The closest known key, if close enough to be a likely typo. */
export function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

/**
 * Checks one layer against the schema: every key known, every value of the right type and in
 * range. Returns the parsed values (same nesting); throws ConfigIssue naming the key path.
 * A section given as null (an empty `rl:` in YAML) counts as empty.
 */
export function checkLayer(schema: Schema, raw: unknown, prefix = ""): Layer {
  if (raw === null || raw === undefined) return {};
  if (!isMapping(raw)) {
    throw new ConfigIssue(prefix, `expected a mapping of keys, got ${describeValue(raw)}`);
  }
  const out: Layer = {};
  for (const [key, value] of Object.entries(raw)) {
    const keyPath = prefix === "" ? key : `${prefix}.${key}`;
    const node = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (node === undefined) {
      const guess = closestKey(key, Object.keys(schema));
      const hint = guess === null
        ? ""
        : ` (did you mean ${prefix === "" ? "" : prefix + "."}${guess}?)`;
      throw new ConfigIssue("", `unknown key ${keyPath}${hint}`);
    }
    if (isField(node)) {
      try {
        out[key] = node.parse(value);
      } catch (e) {
        if (e instanceof FieldError) throw new ConfigIssue(keyPath, e.message);
        throw e;
      }
    } else {
      out[key] = checkLayer(node, value, keyPath);
    }
  }
  return out;
}

/** `over` on top of `base`: sections merge key by key, values replace. */
export function mergeLayers(base: Layer, over: Layer): Layer {
  const out: Layer = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const below = out[key];
    out[key] = isMapping(value) && isMapping(below) ? mergeLayers(below, value) : value;
  }
  return out;
}

/** The full config: every key from the merged layers, or its default, in schema order. */
export function fillDefaults<S extends Schema>(schema: S, layer: Layer): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema)) {
    const value = layer[key];
    if (isField(node)) out[key] = value === undefined ? structuredClone(node.default) : value;
    else out[key] = fillDefaults(node, isMapping(value) ? value : {});
  }
  return out as ConfigOf<S>;
}

/** Every field with its dotted path, in schema order (for the reference table). */
export function listFields(schema: Schema, prefix = ""): { path: string; field: AnyField }[] {
  const out: { path: string; field: AnyField }[] = [];
  for (const [key, node] of Object.entries(schema)) {
    const keyPath = prefix === "" ? key : `${prefix}.${key}`;
    if (isField(node)) out.push({ path: keyPath, field: node });
    else out.push(...listFields(node, keyPath));
  }
  return out;
}

/** The field at a dotted path, or the section, or a ConfigIssue for an unknown key. */
export function lookup(schema: Schema, keyPath: string): AnyField | Schema {
  let node: AnyField | Schema = schema;
  const parts = keyPath.split(".");
  for (let i = 0; i < parts.length; i++) {
    const prefix = parts.slice(0, i).join(".");
    if (isField(node) || !Object.hasOwn(node, parts[i])) {
      const siblings = isField(node) ? [] : Object.keys(node);
      const guess = closestKey(parts[i], siblings);
      const here = parts.slice(0, i + 1).join(".");
      const hint = guess === null
        ? ""
        : ` (did you mean ${prefix === "" ? "" : prefix + "."}${guess}?)`;
      throw new ConfigIssue("", `unknown key ${here}${hint}`);
    }
    node = (node as Schema)[parts[i]];
  }
  return node;
}
