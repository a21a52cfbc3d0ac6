/**
 * Task identity for deduplicating task requests (reference §1 "Identity", DESIGN §3): the `identity_hash`
 * stored under a UNIQUE index, so a second identical request fails with 409 instead of creating a task.
 *
 * Unlike tasker-core (64-bit SipHash, not stable across Rust versions) the hash is SHA-256 over a canonical
 * JSON form we define here, so it is stable across processes, versions and languages.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ValidationError } from '../errors.ts';

type IdentityStrategy = 'strict' | 'caller_provided' | 'always_unique';

/** Deeper values are rejected with a clear error instead of overflowing the stack. */
export const MAX_CANONICAL_JSON_DEPTH = 512;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function childPath(path: string, key: string): string {
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function notJson(path: string, what: string, fix: string): ValidationError {
  return new ValidationError(
    'TASKER_INVALID_ARGUMENT',
    `${path} is ${what}, which JSON cannot represent; ${fix}`,
    {
      details: { path },
    },
  );
}

/** Orders strings by Unicode code point (not UTF-16 code unit, which is what `Array.prototype.sort` uses). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length) {
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(i) ?? 0;
    if (ca !== cb) {
      return ca - cb;
    }
    // Equal code points have equal widths, so one index serves both strings.
    i += ca > 0xffff ? 2 : 1;
  }
  // One is a prefix of the other: the shorter sorts first.
  return a.length - b.length;
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function hasToJson(value: object): value is { toJSON: (key: string) => unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === 'function';
}

function serialize(input: unknown, key: string, path: string, depth: number, ancestors: Set<object>): string {
  let value = input;
  // Like JSON.stringify: honour toJSON (Date and friends) once per position, so the hash covers exactly
  // what ends up stored as jsonb.
  if (typeof value === 'object' && value !== null && hasToJson(value)) {
    value = value.toJSON(key);
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw notJson(path, String(value), 'send a finite number, a string or null');
      }
      // JSON form: -0 becomes 0, large and small magnitudes use exponent notation (1e+21).
      return JSON.stringify(value);
    case 'undefined':
      throw notJson(path, 'undefined', 'omit the key or send null');
    case 'function':
      throw notJson(path, 'a function', 'send data only');
    case 'symbol':
      throw notJson(path, 'a symbol', 'send a string instead');
    case 'bigint':
      throw notJson(path, 'a bigint', 'send it as a string or a safe integer');
    case 'object':
      break;
  }
  if (value === null) {
    return 'null';
  }
  if (depth >= MAX_CANONICAL_JSON_DEPTH) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${path} is nested deeper than ${MAX_CANONICAL_JSON_DEPTH} levels; flatten the value`,
      { details: { path, maxDepth: MAX_CANONICAL_JSON_DEPTH } },
    );
  }
  if (ancestors.has(value)) {
    throw notJson(path, 'a circular reference', 'send a tree, not a graph');
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const items: string[] = [];
      // An index loop, not map(): holes must be visited (and rejected as undefined).
      for (let index = 0; index < value.length; index += 1) {
        items.push(
          serialize(value[index] as unknown, String(index), `${path}[${index}]`, depth + 1, ancestors),
        );
      }
      return `[${items.join(',')}]`;
    }
    if (!isPlainObject(value)) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      throw notJson(
        path,
        `an instance of ${typeof name === 'string' && name !== '' ? name : 'a class'}`,
        'convert it to a plain object, array, string, number, boolean or null',
      );
    }
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .sort(compareCodePoints)
      .map(
        (k) => `${JSON.stringify(k)}:${serialize(record[k], k, childPath(path, k), depth + 1, ancestors)}`,
      );
    return `{${members.join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

function canonicalJsonAt(value: unknown, rootPath: string): string {
  return serialize(value, '', rootPath, 0, new Set());
}

/**
 * The canonical JSON text of a JSON value: object keys sorted recursively by code point, arrays in their
 * order, no whitespace, numbers and strings as JSON.stringify writes them. Two values that are equal as
 * JSON produce the same text. Throws a ValidationError naming the path (`$.items[2].price`) of the first
 * value JSON cannot hold: undefined, functions, symbols, bigints, NaN, ±Infinity, class instances
 * without `toJSON` (Map, Set, ...), circular references.
 */
export function canonicalJson(value: unknown): string {
  return canonicalJsonAt(value, '$');
}

export interface TaskIdentityInput {
  readonly namedTaskUuid: string;
  /** The template's `identity_strategy`. */
  readonly strategy: IdentityStrategy;
  /** The task's input context (ignored unless the strategy is `strict` and there is no key). */
  readonly context: unknown;
  /** The request's `idempotency_key`; when present it decides identity whatever the strategy. */
  readonly idempotencyKey?: string | undefined;
  /** For `always_unique` only: use this instead of a fresh random UUID (deterministic tests). */
  readonly uniqueId?: string | undefined;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The task's `identity_hash`, 64 lowercase hex characters (SHA-256). Precedence (reference §1):
 * 1. an `idempotencyKey` wins regardless of strategy: `sha256(namedTaskUuid + "\0" + key)`;
 * 2. `strict`: `sha256(namedTaskUuid + "\0" + canonicalJson(context))`;
 * 3. `caller_provided` without a key: ValidationError `TASKER_IDEMPOTENCY_KEY_REQUIRED`;
 * 4. `always_unique`: `sha256(fresh random UUID)` (or of `uniqueId`), so it never collides.
 * The NUL separator cannot occur in a UUID, so the named task and the rest cannot run into each other.
 */
export function taskIdentityHash(input: TaskIdentityInput): string {
  const { namedTaskUuid, strategy, idempotencyKey } = input;
  if (typeof namedTaskUuid !== 'string' || namedTaskUuid === '' || namedTaskUuid.includes('\0')) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `namedTaskUuid must be a non-empty string without NUL characters, got ${JSON.stringify(namedTaskUuid)}`,
      { details: { namedTaskUuid } },
    );
  }
  if (idempotencyKey !== undefined) {
    if (typeof idempotencyKey !== 'string' || idempotencyKey === '') {
      throw new ValidationError(
        'TASKER_INVALID_ARGUMENT',
        'idempotency_key must be a non-empty string; omit it to use the template identity strategy',
        { details: { idempotencyKey } },
      );
    }
    return sha256Hex(`${namedTaskUuid}\0${idempotencyKey}`);
  }
  switch (strategy) {
    case 'strict':
      return sha256Hex(`${namedTaskUuid}\0${canonicalJsonAt(input.context, 'context')}`);
    case 'caller_provided':
      throw new ValidationError(
        'TASKER_IDEMPOTENCY_KEY_REQUIRED',
        "this task's template uses identity_strategy 'caller_provided': send an idempotency_key with the " +
          'request (the same key for retries of the same request, a new key for a new task)',
        { details: { namedTaskUuid, strategy } },
      );
    case 'always_unique':
      return sha256Hex(input.uniqueId ?? randomUUID());
  }
  throw new ValidationError(
    'TASKER_INVALID_ARGUMENT',
    `identity strategy must be strict, caller_provided or always_unique, got ${JSON.stringify(strategy)}`,
    { details: { strategy } },
  );
}
