import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import { compileInputSchema, inputSchemaProblems } from '../../../src/domain/template/inputValidator.ts';
import { parseFixture } from './templateTestKit.ts';

const ORDER_SCHEMA = {
  type: 'object',
  required: ['amount', 'customer'],
  additionalProperties: false,
  properties: {
    amount: { type: 'number', minimum: 0 },
    currency: { enum: ['EUR', 'USD'] },
    channel: { const: 'web' },
    customer: {
      type: 'object',
      required: ['email'],
      properties: {
        email: { type: 'string', format: 'email' },
        tags: { type: 'array', items: { type: 'string' } },
      },
    },
  },
};

describe('compileInputSchema', () => {
  it('accepts a context that satisfies the schema', () => {
    const validate = compileInputSchema(ORDER_SCHEMA);
    expect(
      validate({ amount: 10, currency: 'EUR', customer: { email: 'a@example.com', tags: ['vip'] } }),
    ).toEqual({
      ok: true,
    });
  });

  it('reports every failing field at once with a JSON pointer and a human message', () => {
    const result = compileInputSchema(ORDER_SCHEMA)({
      amount: -1,
      currency: 'GBP',
      channel: 'phone',
      customer: { email: 42, tags: ['ok', 7] },
      coupon: 'FREE',
    });
    expect(result).toEqual({
      ok: false,
      errors: [
        { path: '(root)', message: "must NOT have additional property 'coupon'" },
        { path: '/amount', message: 'must be >= 0' },
        { path: '/currency', message: 'must be equal to one of the allowed values: "EUR", "USD"' },
        { path: '/channel', message: 'must be equal to constant: "web"' },
        { path: '/customer/email', message: 'must be string' },
        { path: '/customer/tags/1', message: 'must be string' },
      ],
    });
  });

  it('names a missing required property at the object that lacks it', () => {
    expect(compileInputSchema(ORDER_SCHEMA)({ customer: {} })).toEqual({
      ok: false,
      errors: [
        { path: '(root)', message: "must have required property 'amount'" },
        { path: '/customer', message: "must have required property 'email'" },
      ],
    });
  });

  it('rejects a context that is not an object, with or without a schema', () => {
    for (const validate of [compileInputSchema(null), compileInputSchema({ required: [] })]) {
      for (const context of [null, [], 'text', 3]) {
        expect(validate(context)).toEqual({
          ok: false,
          errors: [{ path: '(root)', message: 'must be object' }],
        });
      }
      expect(validate({ anything: true })).toEqual({ ok: true });
    }
  });

  it('treats format as an annotation (no ajv-formats): a wrong email format passes', () => {
    expect(compileInputSchema(ORDER_SCHEMA)({ amount: 1, customer: { email: 'not an email' } })).toEqual({
      ok: true,
    });
  });

  it('compiles each schema once and reuses the validator, also for an equal copy', () => {
    const schema = { type: 'object', properties: { id: { type: 'string' } } };
    expect(compileInputSchema(schema)).toBe(compileInputSchema(schema));
    // The same content as a new object (a template read again from the database) is not compiled again.
    expect(compileInputSchema(structuredClone(schema))).toBe(compileInputSchema(schema));
    expect(compileInputSchema({ ...schema, required: ['id'] })).not.toBe(compileInputSchema(schema));
  });

  it('reuses the validator the parser compiled for a template', () => {
    const template = parseFixture('valid/payments/process_refund.yaml');
    const validate = compileInputSchema(template.inputSchema);
    expect(validate).toBe(compileInputSchema(template.inputSchema));
    expect(validate({ refund_id: 'r1' })).toEqual({
      ok: false,
      errors: [{ path: '(root)', message: "must have required property 'amount'" }],
    });
  });

  it('compiles two schemas with the same $id (a template reloaded)', () => {
    const first = compileInputSchema({ $id: 'https://example.com/order', type: 'object', required: ['a'] });
    const second = compileInputSchema({ $id: 'https://example.com/order', type: 'object', required: ['b'] });
    expect(first({ b: 1 })).toMatchObject({ ok: false });
    expect(second({ b: 1 })).toEqual({ ok: true });
  });

  it('follows $schema: draft-07 definitions and 2020-12 $defs', () => {
    const draft07 = compileInputSchema({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      definitions: { id: { type: 'string' } },
      properties: { id: { $ref: '#/definitions/id' } },
    });
    expect(draft07({ id: 5 })).toEqual({ ok: false, errors: [{ path: '/id', message: 'must be string' }] });
    const draft2020 = compileInputSchema({
      type: 'object',
      $defs: { id: { type: 'integer' } },
      properties: { id: { $ref: '#/$defs/id' }, pair: { type: 'array', prefixItems: [{ type: 'string' }] } },
    });
    expect(draft2020({ id: 'x', pair: [1] })).toEqual({
      ok: false,
      errors: [
        { path: '/id', message: 'must be integer' },
        { path: '/pair/0', message: 'must be string' },
      ],
    });
  });

  it('throws a ValidationError naming the problem for a schema that cannot be used', () => {
    expect(() =>
      compileInputSchema({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }),
    ).toThrow(ValidationError);
    expect(() => compileInputSchema({ type: 'string' })).toThrow(
      /invalid input schema: type: the task context is a JSON object/,
    );
  });
});

describe('inputSchemaProblems', () => {
  it('is empty for a usable schema', () => {
    expect(inputSchemaProblems(ORDER_SCHEMA)).toEqual([]);
  });

  it('places each invalid keyword by its path in the schema, array indexes as numbers', () => {
    expect(
      inputSchemaProblems({
        type: 'object',
        properties: { a: { type: 'strin' } },
        allOf: [{ minimum: 'x' }],
      }),
    ).toEqual([
      {
        path: ['properties', 'a', 'type'],
        message: expect.stringContaining('must be equal to one of the allowed values') as unknown,
        hint: expect.any(String) as unknown,
      },
      {
        path: ['allOf', 0, 'minimum'],
        message: 'input_schema is not a valid JSON Schema: must be number',
        hint: expect.any(String) as unknown,
      },
    ]);
  });

  it('reports a wrong root type once, as "must describe an object", not also as Ajv\'s enum error', () => {
    expect(inputSchemaProblems({ type: 'objec' }).map((p) => [p.path, p.message.slice(0, 40)])).toEqual([
      [['type'], 'the task context is a JSON object, so th'],
    ]);
  });

  it('reports an unresolvable $ref with the Ajv compile text', () => {
    expect(inputSchemaProblems({ properties: { a: { $ref: '#/$defs/missing' } } })).toEqual([
      {
        path: [],
        message: "input_schema does not compile: can't resolve reference #/$defs/missing from id #",
        hint: expect.stringContaining('$refs that point inside the schema') as unknown,
      },
    ]);
  });
});
