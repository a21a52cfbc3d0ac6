/**
 * A template's `input_schema` (JSON Schema, draft 2020-12 or draft-07) checked against a task's context.
 *
 * Choices, and why:
 * - The draft follows `$schema`; without one, 2020-12. Ajv cannot mix both drafts in one instance.
 * - Unknown keywords are errors (Ajv strict schema mode): a misspelt `requird` would otherwise accept anything.
 * - `format` is an annotation only (as draft 2020-12 specifies by default): ajv-formats is not a dependency,
 *   and an unknown format would otherwise make `format: email` a compile error.
 * - Schemas are treated as immutable: validators are cached per schema object, and by content for schemas
 *   that arrive as fresh objects (a template read from the database for every task request).
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ValidationError } from '../errors.ts';

/** One way a context fails its schema. */
interface InputFieldError {
  /** JSON pointer into the context (`/customer/email`), or `(root)` for the context itself. */
  path: string;
  /** e.g. `must have required property 'amount'`, `must be string`. */
  message: string;
}

type InputValidation = { ok: true } | { ok: false; errors: InputFieldError[] };

export type InputValidator = (context: unknown) => InputValidation;

const JSON_SCHEMA_DRAFTS = {
  '2020-12': 'https://json-schema.org/draft/2020-12/schema',
  'draft-07': 'http://json-schema.org/draft-07/schema#',
} as const;

const OPTIONS = {
  allErrors: true,
  // A schema with an `$id` must compile again when its template is reloaded; the default would register the
  // id on the shared instance and refuse the second compile.
  addUsedSchema: false,
  validateFormats: false,
  strictSchema: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  // Domain code does not write to the console.
  logger: false,
} as const;

let draft2020: Ajv2020 | undefined;
let draft07: Ajv | undefined;

function stripHash(uri: string): string {
  return uri.endsWith('#') ? uri.slice(0, -1) : uri;
}

/** The Ajv instance for the schema's `$schema`, or undefined for a draft we do not support. */
function ajvFor(schema: Readonly<Record<string, unknown>>): Ajv | Ajv2020 | undefined {
  const declared = schema['$schema'];
  if (
    declared === undefined ||
    (typeof declared === 'string' && stripHash(declared) === JSON_SCHEMA_DRAFTS['2020-12'])
  ) {
    draft2020 ??= new Ajv2020(OPTIONS);
    return draft2020;
  }
  if (typeof declared === 'string' && stripHash(declared) === stripHash(JSON_SCHEMA_DRAFTS['draft-07'])) {
    draft07 ??= new Ajv(OPTIONS);
    return draft07;
  }
  return undefined;
}

/** A mistake in an input schema: where (keys from the schema's root) and what. */
export interface InputSchemaProblem {
  path: (string | number)[];
  message: string;
  hint: string;
}

/** `/properties/items/0` as keys of `schema`: numbers where the schema has an array. */
function pointerToPath(pointer: string, schema: unknown): (string | number)[] {
  if (pointer === '') return [];
  const path: (string | number)[] = [];
  let current: unknown = schema;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(current) && /^\d+$/.test(key)) {
      path.push(Number(key));
      current = (current as unknown[])[Number(key)];
    } else {
      path.push(key);
      current =
        typeof current === 'object' && current !== null
          ? (current as Record<string, unknown>)[key]
          : undefined;
    }
  }
  return path;
}

/** Ajv's message with the detail it keeps in `params` (which property, which values). */
function describeAjvError(error: ErrorObject): string {
  const message = error.message ?? `fails the "${error.keyword}" rule`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `must NOT have additional property '${String(params['additionalProperty'])}'`;
    case 'enum':
      return Array.isArray(params['allowedValues'])
        ? `${message}: ${params['allowedValues'].map((value) => JSON.stringify(value)).join(', ')}`
        : message;
    case 'const':
      return `${message}: ${JSON.stringify(params['allowedValue'])}`;
    default:
      return message;
  }
}

/**
 * What is wrong with `schema` as a task's input schema: it must be a valid JSON Schema of a supported draft,
 * compile (every `$ref` resolvable, no unknown keyword), and describe an object. Empty when it is usable.
 */
export function inputSchemaProblems(schema: Readonly<Record<string, unknown>>): InputSchemaProblem[] {
  const problems: InputSchemaProblem[] = [];
  const type = schema['type'];
  if (type !== undefined && type !== 'object') {
    problems.push({
      path: ['type'],
      message: `the task context is a JSON object, so the schema must describe one: type must be "object" (or be left out), found ${JSON.stringify(type)}`,
      hint: 'set type: object and describe the fields under properties',
    });
  }
  const ajv = ajvFor(schema);
  if (ajv === undefined) {
    problems.push({
      path: ['$schema'],
      message: `unsupported JSON Schema draft ${JSON.stringify(schema['$schema'])}`,
      hint: `use ${JSON_SCHEMA_DRAFTS['2020-12']} (the default when $schema is left out) or ${JSON_SCHEMA_DRAFTS['draft-07']}`,
    });
    return problems;
  }
  if (!ajv.validateSchema(schema)) {
    // One problem per place: a bad `type` alone yields three Ajv errors (enum, array, anyOf) at the same path.
    const seen = new Set<string>(problems.length > 0 ? ['/type'] : []);
    for (const error of ajv.errors ?? []) {
      if (seen.has(error.instancePath)) continue;
      seen.add(error.instancePath);
      problems.push({
        path: pointerToPath(error.instancePath, schema),
        message: `input_schema is not a valid JSON Schema: ${describeAjvError(error)}`,
        hint: 'fix the schema keyword (see https://json-schema.org/understanding-json-schema/reference)',
      });
    }
    return problems;
  }
  if (problems.length > 0) return problems;
  try {
    remember(schema, build(ajv.compile(schema)));
  } catch (error) {
    problems.push({
      path: [],
      message: `input_schema does not compile: ${error instanceof Error ? error.message : String(error)}`,
      hint: 'use only standard JSON Schema keywords and $refs that point inside the schema (e.g. #/$defs/address)',
    });
  } finally {
    // Ajv keeps every compiled schema object in its own cache; ours is weak, so templates can be reloaded.
    ajv.removeSchema(schema);
  }
  return problems;
}

const byObject = new WeakMap<object, InputValidator>();
/** Insertion-ordered, so the first key is the least recently compiled or used. */
const byContent = new Map<string, InputValidator>();
const MAX_CACHED_SCHEMAS = 256;

function remember(schema: object, validator: InputValidator): void {
  byObject.set(schema, validator);
  const key = JSON.stringify(schema);
  byContent.delete(key);
  byContent.set(key, validator);
  if (byContent.size > MAX_CACHED_SCHEMAS) {
    const oldest = byContent.keys().next();
    if (oldest.done !== true) byContent.delete(oldest.value);
  }
}

function cached(schema: object): InputValidator | undefined {
  const known = byObject.get(schema);
  if (known !== undefined) return known;
  const key = JSON.stringify(schema);
  const sameContent = byContent.get(key);
  if (sameContent !== undefined) remember(schema, sameContent);
  return sameContent;
}

function isContextObject(context: unknown): boolean {
  return typeof context === 'object' && context !== null && !Array.isArray(context);
}

const NOT_AN_OBJECT: InputValidation = { ok: false, errors: [{ path: '(root)', message: 'must be object' }] };

function build(validate: ValidateFunction): InputValidator {
  return (context) => {
    if (!isContextObject(context)) return NOT_AN_OBJECT;
    if (validate(context)) return { ok: true };
    const errors: InputFieldError[] = [];
    const seen = new Set<string>();
    for (const error of validate.errors ?? []) {
      const field = {
        path: error.instancePath === '' ? '(root)' : error.instancePath,
        message: describeAjvError(error),
      };
      const key = `${field.path}\u0000${field.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      errors.push(field);
    }
    return { ok: false, errors };
  };
}

const ANY_OBJECT: InputValidator = (context) => (isContextObject(context) ? { ok: true } : NOT_AN_OBJECT);

/**
 * A validator for task contexts. `null` (a template without `input_schema`) accepts any JSON object; every
 * validator rejects a context that is not an object. Compiled once per schema (by object, then by content; the last 256 are kept).
 * @throws ValidationError (TASKER_INVALID_TEMPLATE) when the schema is not usable (parseTaskTemplate has
 * already rejected such a template)
 */
export function compileInputSchema(schema: Readonly<Record<string, unknown>> | null): InputValidator {
  if (schema === null) return ANY_OBJECT;
  const known = cached(schema);
  if (known !== undefined) return known;
  const problems = inputSchemaProblems(schema);
  const compiled = byObject.get(schema);
  if (problems.length > 0 || compiled === undefined) {
    throw new ValidationError(
      'TASKER_INVALID_TEMPLATE',
      `invalid input schema: ${problems.map((p) => `${p.path.join('.') || '(root)'}: ${p.message}`).join('; ')}`,
      { details: { problems } },
    );
  }
  return compiled;
}
