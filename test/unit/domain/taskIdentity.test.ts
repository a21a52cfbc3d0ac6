import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import {
  canonicalJson,
  compareCodePoints,
  MAX_CANONICAL_JSON_DEPTH,
  taskIdentityHash,
} from '../../../src/domain/identity/taskIdentity.ts';
import type { TaskIdentityInput } from '../../../src/domain/identity/taskIdentity.ts';

const NAMED_TASK = '0190f1a2-7c3e-7d4f-8a9b-0c1d2e3f4a5b';
const OTHER_NAMED_TASK = '0190f1a2-7c3e-7d4f-8a9b-ffffffffffff';
const HEX_SHA256 = /^[0-9a-f]{64}$/;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

function strict(context: unknown, namedTaskUuid = NAMED_TASK): string {
  return taskIdentityHash({ namedTaskUuid, strategy: 'strict', context });
}

describe('canonicalJson', () => {
  it('sorts object keys recursively, keeps array order, writes no whitespace', () => {
    const value = { b: 1, a: { d: [3, 1, { z: 1, y: 2 }], c: null }, e: [] as unknown[], f: {} };
    expect(canonicalJson(value)).toBe('{"a":{"c":null,"d":[3,1,{"y":2,"z":1}]},"b":1,"e":[],"f":{}}');
  });

  it.each([
    [null, 'null'],
    [true, 'true'],
    [false, 'false'],
    [0, '0'],
    [-0, '0'],
    [12.5, '12.5'],
    [0.1, '0.1'],
    [-3, '-3'],
    [1e21, '1e+21'],
    [1e-7, '1e-7'],
    ['', '""'],
    ['line\nbreak "quoted" \\ tab\t', '"line\\nbreak \\"quoted\\" \\\\ tab\\t"'],
    ['ünïcode ✓ 😀', '"ünïcode ✓ 😀"'],
    ['\u0001', '"\\u0001"'],
  ])('writes %j as %s', (value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it('orders keys by code point, not by UTF-16 code unit', () => {
    // U+FFFD is below U+1F600 as code points, but its code unit 0xFFFD is above the surrogate 0xD83D.
    const value = { '😀': 2, '\uFFFD': 1, a: 0, B: 0, '': 0, aa: 0 };
    expect(canonicalJson(value)).toBe('{"":0,"B":0,"a":0,"aa":0,"\uFFFD":1,"😀":2}');
    expect(['😀', '\uFFFD'].sort()).toEqual(['😀', '\uFFFD']); // what a naive sort would do
  });

  it('compareCodePoints orders like code points and puts prefixes first', () => {
    expect(compareCodePoints('a', 'b')).toBeLessThan(0);
    expect(compareCodePoints('b', 'a')).toBeGreaterThan(0);
    expect(compareCodePoints('abc', 'abc')).toBe(0);
    expect(compareCodePoints('ab', 'abc')).toBeLessThan(0);
    expect(compareCodePoints('\uFFFD', '😀')).toBeLessThan(0);
    expect(compareCodePoints('😀a', '😀b')).toBeLessThan(0);
  });

  it('gives the same text for the same value whatever the key insertion order', () => {
    const one = { x: { p: 1, q: [1, 2] }, y: 'y' };
    const two = { y: 'y', x: { q: [1, 2], p: 1 } };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it('round-trips through JSON.parse', () => {
    const value = { z: [1, 'two', { three: 3 }, null, true], a: { nested: { deeper: -1.25 } } };
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });

  it('honours toJSON like JSON.stringify (dates become ISO strings)', () => {
    const value = {
      when: new Date('2026-01-02T03:04:05.000Z'),
      money: { toJSON: () => ({ cents: 5, cur: 'EUR' }) },
    };
    expect(canonicalJson(value)).toBe('{"money":{"cents":5,"cur":"EUR"},"when":"2026-01-02T03:04:05.000Z"}');
  });

  it('accepts the same object twice when it is not a cycle', () => {
    const shared = { k: 1 };
    expect(canonicalJson({ a: shared, b: [shared, shared] })).toBe('{"a":{"k":1},"b":[{"k":1},{"k":1}]}');
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.b = 2;
    bare.a = 1;
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}');
  });

  class Point {
    constructor(readonly x: number) {}
  }
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = { back: circular };
  const holey: unknown[] = [1];
  holey[2] = 3;

  it.each([
    ['NaN', { a: { b: [1, Number.NaN] } }, '$.a.b[1]', 'NaN'],
    ['Infinity', { n: Number.POSITIVE_INFINITY }, '$.n', 'Infinity'],
    ['-Infinity', [Number.NEGATIVE_INFINITY], '$[0]', '-Infinity'],
    ['undefined at the root', undefined, '$', 'undefined'],
    ['an undefined property', { a: 1, missing: undefined }, '$.missing', 'undefined'],
    ['an array hole', holey, '$[1]', 'undefined'],
    ['a function', { run: () => 1 }, '$.run', 'a function'],
    ['a symbol', { s: Symbol('x') }, '$.s', 'a symbol'],
    ['a bigint', { big: 10n }, '$.big', 'a bigint'],
    ['a Map', { m: new Map([['a', 1]]) }, '$.m', 'an instance of Map'],
    ['a class instance', { p: new Point(1) }, '$.p', 'an instance of Point'],
    ['a key that is not an identifier', { 'my key': { 'x-y': Number.NaN } }, '$["my key"]["x-y"]', 'NaN'],
    ['a circular reference', circular, '$.self.back', 'a circular reference'],
  ])('rejects %s with a ValidationError naming the path', (_name, value, path, what) => {
    const error = caught(() => canonicalJson(value));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT', details: { path } });
    expect((error as Error).message).toContain(`${path} is ${what}`);
  });

  it(`rejects values nested deeper than ${MAX_CANONICAL_JSON_DEPTH} levels instead of overflowing the stack`, () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_JSON_DEPTH + 1; i += 1) {
      deep = [deep];
    }
    const error = caught(() => canonicalJson(deep));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain(`nested deeper than ${MAX_CANONICAL_JSON_DEPTH} levels`);

    let allowed: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_JSON_DEPTH; i += 1) {
      allowed = [allowed];
    }
    expect(canonicalJson(allowed)).toBe(
      `${'['.repeat(MAX_CANONICAL_JSON_DEPTH)}1${']'.repeat(MAX_CANONICAL_JSON_DEPTH)}`,
    );
  });
});

describe('taskIdentityHash', () => {
  const context = {
    order: {
      id: 42,
      items: [
        { sku: 'b', qty: 2 },
        { sku: 'a', qty: 1 },
      ],
    },
    customer: 'ünïcode ✓',
    amount: 12.5,
  };

  it('strict: SHA-256 of the named task, NUL and the canonical context (golden value)', () => {
    const hash = strict(context);
    expect(hash).toBe('0b0332b749a628b93da1f0d6dd7b908a0f9aebeff71539f041ccbc19d9b4d17e');
    expect(hash).toBe(sha256(`${NAMED_TASK}\0${canonicalJson(context)}`));
  });

  it('strict: the same across calls, whatever the key order at any depth', () => {
    const reordered = {
      amount: 12.5,
      customer: 'ünïcode ✓',
      order: {
        items: [
          { qty: 2, sku: 'b' },
          { qty: 1, sku: 'a' },
        ],
        id: 42,
      },
    };
    expect(strict(context)).toBe(strict(context));
    expect(strict(reordered)).toBe(strict(context));
    expect(strict(context)).toMatch(HEX_SHA256);
  });

  it('strict: array order, values and types matter', () => {
    const swapped = { ...context, order: { ...context.order, items: [...context.order.items].reverse() } };
    expect(strict(swapped)).not.toBe(strict(context));
    expect(strict({ a: 1 })).not.toBe(strict({ a: 2 }));
    expect(strict({ a: 1 })).not.toBe(strict({ a: '1' }));
    expect(strict({})).not.toBe(strict([]));
  });

  it('strict: different named tasks with the same context differ', () => {
    expect(strict(context, OTHER_NAMED_TASK)).not.toBe(strict(context));
  });

  it('strict: a context JSON cannot hold is rejected, naming the path under "context"', () => {
    const error = caught(() => strict({ amount: Number.NaN }));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('context.amount is NaN');
    expect(caught(() => strict(undefined))).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
  });

  it.each(['strict', 'caller_provided', 'always_unique'] as const)(
    'an idempotency key wins over the %s strategy (golden value)',
    (strategy) => {
      const hash = taskIdentityHash({
        namedTaskUuid: NAMED_TASK,
        strategy,
        context,
        idempotencyKey: 'order-42',
      });
      expect(hash).toBe('1c09772bbc8b9699ce8418b30e1ad1a6a49675a67208566f6ef1e6d7958c5176');
      expect(hash).toBe(sha256(`${NAMED_TASK}\0order-42`));
    },
  );

  it('with an idempotency key the context does not matter, the key and the named task do', () => {
    const base: TaskIdentityInput = {
      namedTaskUuid: NAMED_TASK,
      strategy: 'strict',
      context,
      idempotencyKey: 'k1',
    };
    expect(taskIdentityHash({ ...base, context: { other: true } })).toBe(taskIdentityHash(base));
    expect(taskIdentityHash({ ...base, idempotencyKey: 'k2' })).not.toBe(taskIdentityHash(base));
    expect(taskIdentityHash({ ...base, namedTaskUuid: OTHER_NAMED_TASK })).not.toBe(taskIdentityHash(base));
    expect(taskIdentityHash(base)).not.toBe(strict(context));
  });

  it('caller_provided without a key asks the caller for an idempotency_key', () => {
    const error = caught(() =>
      taskIdentityHash({ namedTaskUuid: NAMED_TASK, strategy: 'caller_provided', context }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'TASKER_IDEMPOTENCY_KEY_REQUIRED' });
    expect((error as Error).message).toContain('send an idempotency_key');
  });

  it('always_unique: a different hash every time, independent of the context', () => {
    const input: TaskIdentityInput = { namedTaskUuid: NAMED_TASK, strategy: 'always_unique', context };
    const hashes = new Set(Array.from({ length: 20 }, () => taskIdentityHash(input)));
    expect(hashes.size).toBe(20);
    for (const hash of hashes) {
      expect(hash).toMatch(HEX_SHA256);
    }
  });

  it('always_unique: uniqueId makes it deterministic for tests', () => {
    const uniqueId = '0190f1a2-0000-7000-8000-000000000001';
    const input: TaskIdentityInput = {
      namedTaskUuid: NAMED_TASK,
      strategy: 'always_unique',
      context,
      uniqueId,
    };
    expect(taskIdentityHash(input)).toBe(sha256(uniqueId));
    expect(taskIdentityHash({ ...input, context: { different: 1 } })).toBe(sha256(uniqueId));
  });

  it.each([
    [{ idempotencyKey: '' }, 'idempotency_key must be a non-empty string'],
    [{ namedTaskUuid: '' }, 'namedTaskUuid must be a non-empty string'],
    [{ namedTaskUuid: 'a\0b' }, 'without NUL characters'],
    [
      { strategy: 'loose' as TaskIdentityInput['strategy'] },
      'identity strategy must be strict, caller_provided or always_unique',
    ],
  ])('rejects %j', (override, message) => {
    const error = caught(() =>
      taskIdentityHash({ namedTaskUuid: NAMED_TASK, strategy: 'strict', context, ...override }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
    expect((error as Error).message).toContain(message);
  });
});
