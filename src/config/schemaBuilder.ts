import { z } from 'zod';

/**
 * Small builders for the configuration schema. Each leaf carries what an operator needs to read: what it
 * means, what values it takes (used verbatim in error messages: "expected an integer 1..10000"), whether it
 * is a secret, and whether the feature that reads it exists yet.
 */
export interface KeyDoc {
  description: string;
  /** The accepted values, phrased for "expected …". */
  expected: string;
  /** Printed redacted by `config show` and never logged. */
  secret?: boolean;
  /** Set while the code that reads the key is still to come, e.g. "deployment modes (issue 6)". */
  pending?: string;
}

export interface TableDoc {
  description: string;
  pending?: string;
}

export const keyDocs = new WeakMap<z.ZodType, KeyDoc>();
export const tableDocs = new WeakMap<z.ZodType, TableDoc>();

type LeafOptions = { secret?: boolean; pending?: string };

function leaf<T extends z.ZodType>(schema: T, doc: KeyDoc): T {
  keyDocs.set(schema, doc);
  return schema;
}

export function int(
  min: number,
  max: number,
  defaultValue: number,
  description: string,
  options: LeafOptions = {},
) {
  return leaf(z.number().int().min(min).max(max), {
    description,
    expected: `an integer ${min}..${max}`,
    ...options,
  }).default(defaultValue);
}

export function decimal(
  min: number,
  max: number,
  defaultValue: number,
  description: string,
  options: LeafOptions = {},
) {
  return leaf(z.number().min(min).max(max), {
    description,
    expected: `a number ${min}..${max}`,
    ...options,
  }).default(defaultValue);
}

export function bool(defaultValue: boolean, description: string, options: LeafOptions = {}) {
  return leaf(z.boolean(), { description, expected: 'true or false', ...options }).default(defaultValue);
}

export function text(
  defaultValue: string,
  description: string,
  options: LeafOptions & { pattern?: RegExp; expected?: string } = {},
) {
  const base = options.pattern === undefined ? z.string().min(1) : z.string().regex(options.pattern);
  return leaf(base, {
    description,
    expected: options.expected ?? 'a non-empty string',
    ...(options.secret !== undefined && { secret: options.secret }),
    ...(options.pending !== undefined && { pending: options.pending }),
  }).default(defaultValue);
}

export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  defaultValue: T[number],
  description: string,
  options: LeafOptions = {},
) {
  return leaf(z.enum(values), {
    description,
    expected: `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
    ...options,
  }).default(defaultValue as never);
}

export function list(
  element: { pattern: RegExp; expected: string },
  defaultValue: string[],
  description: string,
  options: LeafOptions & { min?: number } = {},
) {
  const item = z.string().regex(element.pattern);
  keyDocs.set(item, { description, expected: element.expected });
  return leaf(z.array(item).min(options.min ?? 0), {
    description,
    expected: `an array of ${element.expected}${options.min !== undefined && options.min > 0 ? ` (at least ${options.min})` : ''}`,
    ...(options.secret !== undefined && { secret: options.secret }),
    ...(options.pending !== undefined && { pending: options.pending }),
  }).default(defaultValue);
}

/**
 * An array of TOML tables (`[[a.b]]`): each entry a strict table whose keys carry their own docs; the array
 * is one documented key (the reference lists it with its entries' keys in `expected`).
 */
export function tableList<Shape extends z.ZodRawShape>(
  shape: Shape,
  description: string,
  expected: string,
  entryDescription: string,
) {
  const entry = z.strictObject(shape);
  tableDocs.set(entry, { description: entryDescription });
  return leaf(z.array(entry), { description, expected }).default([] as never);
}

/** A TOML table: unknown keys inside it are errors (a typo must never be silently ignored). */
export function table<Shape extends z.ZodRawShape>(shape: Shape, doc: TableDoc) {
  const schema = z.strictObject(shape);
  tableDocs.set(schema, doc);
  // Defaults of the inner keys fill in a table that is absent altogether.
  return schema.prefault({} as never);
}

/** The schema node under a wrapper (default / prefault / optional), to find its docs. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    const def = current.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional') && def.innerType) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      current = def.in;
    } else {
      return current;
    }
  }
}

/** The child schema at `key` of an object schema, or undefined. */
export function childSchema(schema: z.ZodType, key: string | number): z.ZodType | undefined {
  const inner = unwrap(schema);
  const def = inner.def as { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType };
  if (def.type === 'object' && def.shape !== undefined) return def.shape[String(key)];
  if (def.type === 'array' && def.element !== undefined) return def.element;
  return undefined;
}

export function schemaAt(root: z.ZodType, path: readonly (string | number)[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const key of path) {
    if (current === undefined) return undefined;
    current = childSchema(current, key);
  }
  return current;
}

export function objectKeys(schema: z.ZodType): string[] {
  const def = unwrap(schema).def as { type: string; shape?: Record<string, z.ZodType> };
  return def.type === 'object' && def.shape !== undefined ? Object.keys(def.shape) : [];
}

export function isTable(schema: z.ZodType): boolean {
  return (unwrap(schema).def as { type: string }).type === 'object';
}
