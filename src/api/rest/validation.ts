/**
 * Request validation with the routes' JSON schemas (the same schemas the OpenAPI document is built from),
 * and the translation of schema violations into `{field, location, message}` problems a client can act on.
 *
 * Two Ajv instances: query strings and path parameters arrive as text, so they are coerced to the schema's
 * types (`?page=2`); bodies are JSON and are not coerced, so `{"limit": "5"}` is a type error, not a 5.
 */
import { Ajv } from 'ajv';
import type { ErrorObject, Options as AjvOptions } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { ApiError, quoteInput } from './apiError.ts';
import type { FieldProblem } from './apiError.ts';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const UUID_EXAMPLE = '01966b4e-8a3c-7d2e-9f10-3b5c7a9e1d42';

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-](\d{2}):?(\d{2}))?)?$/;

/**
 * An ISO-8601 date or date-time PostgreSQL's timestamptz accepts as it is: a real calendar day, year
 * 1..9999, an offset within ±15:59. Date.parse alone is lenient (it turns February 31 into March 3).
 */
function isIsoTimestamp(value: string): boolean {
  const m = ISO_TIMESTAMP.exec(value);
  if (m === null) return false;
  const n = (index: number): number => Number(m[index] ?? 0);
  const [year, month, day] = [n(1), n(2), n(3)];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return (
    year >= 1 &&
    day >= 1 &&
    day <= daysInMonth &&
    n(4) <= 23 &&
    n(5) <= 59 &&
    n(6) <= 59 &&
    n(8) <= 15 &&
    n(9) <= 59
  );
}

/** The instant of a value isIsoTimestamp accepts; a time without an offset is UTC, like a date alone. */
export function isoTimestampToDate(value: string): Date {
  const normalized = value.replace(' ', 'T').toUpperCase();
  const hasTime = normalized.includes('T');
  const hasZone = hasTime && /(?:Z|[+-]\d{2}:?\d{2})$/.test(normalized);
  return new Date(hasTime && !hasZone ? `${normalized}Z` : normalized);
}

function createAjv(options: AjvOptions): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    // verbose: errors carry the failing schema, so messages can list allowed values and field names.
    verbose: true,
    // OpenAPI annotations (example, x-*) are not validation keywords.
    strict: false,
    useDefaults: true,
    removeAdditional: false,
    ...options,
  });
  ajv.addFormat('uuid', UUID_PATTERN);
  ajv.addFormat('date-time', { type: 'string', validate: isIsoTimestamp });
  return ajv;
}

const textAjv = createAjv({ coerceTypes: 'array' });
const bodyAjv = createAjv({ coerceTypes: false });

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);

type Location = NonNullable<FieldProblem['location']>;

const LOCATION_BY_CONTEXT: Record<string, Location> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

const NOUN: Record<Location, string> = {
  body: 'request body',
  query: 'query parameter',
  path: 'path parameter',
  header: 'header',
};

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required' && typeof params.missingProperty === 'string')
    path.push(params.missingProperty);
  if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string')
    path.push(params.additionalProperty);
  return path.join('.');
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  return quoteInput(value);
}

function messageOf(error: ErrorObject, location: Location): string {
  const params = error.params as Record<string, unknown>;
  const parent = error.parentSchema;
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties': {
      const allowed = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
      const what = location === 'query' ? 'query parameter' : 'field';
      const known =
        allowed.length > 0 ? `; allowed: ${allowed.join(', ')}` : `; this route takes no ${what}s`;
      return `is not a known ${what}${known}`;
    }
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')} (got ${quoteInput(error.data)})`;
    case 'type':
      return `must be ${String(params.type)} (got ${describeValue(error.data)})`;
    case 'format':
      if (params.format === 'uuid')
        return `must be a UUID such as ${UUID_EXAMPLE} (got ${quoteInput(error.data)})`;
      if (params.format === 'date-time')
        return `must be an ISO-8601 date or date-time such as 2026-03-01 or 2026-03-01T12:00:00Z (got ${quoteInput(error.data)})`;
      return `must be a ${String(params.format)} (got ${quoteInput(error.data)})`;
    case 'pattern': {
      const hint = typeof parent?.description === 'string' ? ` (${parent.description})` : '';
      return `must match ${String(params.pattern)}${hint}; got ${quoteInput(error.data)}`;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${error.message ?? 'is out of range'} (got ${quoteInput(error.data)})`;
    default:
      return error.message ?? 'is invalid';
  }
}

/** Turns a fastify schema-validation failure into the API's 400. */
export function validationFailure(errors: readonly ErrorObject[], context: string | undefined): ApiError {
  const location = LOCATION_BY_CONTEXT[context ?? 'body'] ?? 'body';
  const seen = new Set<string>();
  const fields: FieldProblem[] = [];
  // A value of the wrong type also fails its enum, pattern...: the type error alone says it.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const error of errors) {
    // anyOf/oneOf/if report a summary next to the member errors that explain it.
    if (['anyOf', 'oneOf', 'if', 'not'].includes(error.keyword)) continue;
    if (error.keyword !== 'type' && wrongType.has(error.instancePath)) continue;
    // ?status=a&status=b is an array inside; the client knows it as one parameter.
    const field = location === 'query' ? fieldOf(error).replace(/\.\d+$/, '') : fieldOf(error);
    const message =
      field === '' && location === 'body' && (error.data === null || error.data === undefined)
        ? 'is missing: send a JSON object with Content-Type: application/json'
        : messageOf(error, location);
    const key = `${field}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    fields.push({ field: field === '' ? `(${location})` : field, location, message });
  }
  if (fields.length === 0) fields.push({ field: `(${location})`, location, message: 'is invalid' });

  const uuidProblem =
    location === 'path' &&
    errors.find((e) => e.keyword === 'format' && (e.params as { format?: unknown }).format === 'uuid');
  if (uuidProblem) {
    const name = fieldOf(uuidProblem);
    return new ApiError(
      400,
      'TASKER_INVALID_UUID',
      `path parameter ${name} must be a UUID such as ${UUID_EXAMPLE}; got ${quoteInput(uuidProblem.data)}`,
      { details: { fields } },
    );
  }
  const summary = fields
    .map((p) => (p.field.startsWith('(') ? `${NOUN[location]} ${p.message}` : `${p.field} ${p.message}`))
    .join('; ');
  const whole = fields.every((p) => p.field.startsWith('('));
  return new ApiError(
    400,
    'TASKER_INVALID_REQUEST',
    whole ? summary : `invalid ${NOUN[location]}: ${summary}`,
    {
      details: { fields },
    },
  );
}
