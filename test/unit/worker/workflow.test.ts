import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TaskerError } from '../../../src/domain/errors.ts';
import { TemplateError } from '../../../src/domain/template/templateError.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import { combineTemplates, loadWorkerModule } from '../../../src/services/handlerModule.ts';
import { PermanentError } from '../../../src/worker/handlerApi.ts';
import type { StepContext, StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';
import { workflow } from '../../../src/worker/workflow.ts';

const DIAMOND_MODULE = fileURLToPath(new URL('../../fixtures/workflows/diamondWorkflow.ts', import.meta.url));

/** The order workflow in code; ORDER_YAML below is the same template written as a file. */
function orderWorkflow() {
  const flow = workflow({
    namespace: 'shop',
    name: 'fulfil_order',
    version: '2.1.0',
    description: 'charge, pack and ship an order',
    input: z.object({
      order_id: z.string().min(1),
      amount: z.number().positive(),
      express: z.boolean().default(false),
    }),
    identity: 'caller_provided',
    lifecycle: { maxDurationMinutes: 120, maxWaitingForRetryMinutes: 30 },
    metadata: { owner: 'shop-team', tags: ['orders'] },
  });
  const charge = flow.step('charge', {
    description: 'take the payment',
    handler: 'Shop.Charge',
    retry: { maxAttempts: 5, backoff: 'linear', backoffBaseMs: 200, maxBackoffMs: 5000 },
    timeoutSeconds: 30,
    config: { gateway: 'stripe' },
    run: (ctx) => ({ chargeId: `ch_${ctx.input.order_id}`, amount: ctx.input.amount }),
  });
  const pack = flow.step('pack', {
    parents: [charge],
    retry: { retryable: false, maxAttempts: 1 },
    run: () => ({ boxes: 2 }),
  });
  const label = flow.step('label', { parents: [charge], run: (ctx) => ({ express: ctx.input.express }) });
  flow.step('ship', {
    parents: [pack, label],
    run: (ctx) => ({ boxes: ctx.parent(pack).boxes, express: ctx.parent(label).express }),
  });
  return flow;
}

const ORDER_YAML = `
name: fulfil_order
namespace_name: shop
version: 2.1.0
description: charge, pack and ship an order
identity_strategy: caller_provided
metadata:
  owner: shop-team
  tags: [orders]
lifecycle:
  max_duration_minutes: 120
  max_waiting_for_retry_minutes: 30
input_schema:
  $schema: https://json-schema.org/draft/2020-12/schema
  type: object
  properties:
    order_id: { type: string, minLength: 1 }
    amount: { type: number, exclusiveMinimum: 0 }
    express: { type: boolean, default: false }
  required: [order_id, amount]
steps:
  - name: charge
    description: take the payment
    handler:
      callable: Shop.Charge
      initialization: { gateway: stripe }
    retry: { max_attempts: 5, backoff: linear, backoff_base_ms: 200, max_backoff_ms: 5000 }
    timeout_seconds: 30
  - name: pack
    handler: { callable: shop.fulfil_order.pack@2.1.0 }
    dependencies: [charge]
    retry: { retryable: false, max_attempts: 1 }
  - name: label
    handler: { callable: shop.fulfil_order.label@2.1.0 }
    dependencies: [charge]
  - name: ship
    handler: { callable: shop.fulfil_order.ship@2.1.0 }
    dependencies: [pack, label]
`;

/** A StepContext as the executor builds it, for running a workflow's handlers without a worker. */
function stepContext(
  stepName: string,
  input: unknown,
  dependencyResults: Record<string, unknown> = {},
): StepContext {
  return {
    taskUuid: 't',
    stepUuid: 's',
    stepName,
    correlationId: 'c',
    namespace: 'shop',
    input: input as Record<string, unknown>,
    config: {},
    dependencyResults,
    attempt: 1,
    maxAttempts: 3,
    signal: new AbortController().signal,
    idempotencyKey: 'k',
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    dependency: <T>(name: string): T => {
      if (!(name in dependencyResults)) throw new PermanentError(`no dependency result "${name}"`);
      return dependencyResults[name] as T;
    },
  };
}

function handlerFor(handlers: readonly StepHandlerDefinition[], name: string): StepHandlerDefinition {
  const handler = handlers.find((h) => h.name === name);
  if (handler === undefined) throw new Error(`no handler ${name}`);
  return handler;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('workflow(): the template', () => {
  it('is exactly the template the equivalent YAML file parses to: retry, timeout, identity, input schema, lifecycle', () => {
    const fromCode = orderWorkflow().template();
    const fromYaml = parseTaskTemplate(ORDER_YAML, 'fulfil_order.yaml');
    expect(fromCode).toEqual(fromYaml);
    // Spot checks, so the equality cannot hold by both sides being empty.
    expect(fromCode.identityStrategy).toBe('caller_provided');
    expect(fromCode.steps.map((s) => [s.name, s.dependencies])).toEqual([
      ['charge', []],
      ['pack', ['charge']],
      ['label', ['charge']],
      ['ship', ['pack', 'label']],
    ]);
    expect(fromCode.steps[0]).toMatchObject({
      handler: { callable: 'Shop.Charge', initialization: { gateway: 'stripe' } },
      retry: { maxAttempts: 5, backoff: 'linear', backoffBaseMs: 200, maxBackoffMs: 5000, retryable: true },
      timeoutSeconds: 30,
    });
    expect(fromCode.inputSchema).toMatchObject({ required: ['order_id', 'amount'] });
  });

  it('takes a JSON Schema object as written, and defaults what is left out as YAML does', () => {
    const schema = { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } };
    const flow = workflow({ namespace: 'math', name: 'plain', version: '1.0.0', input: schema });
    flow.step('only', { run: (ctx) => ctx.input['n'] });
    const yaml = `
name: plain
namespace_name: math
version: 1.0.0
input_schema: { type: object, required: [n], properties: { n: { type: integer } } }
steps:
  - name: only
    handler: { callable: math.plain.only@1.0.0 }
`;
    expect(flow.template()).toEqual(parseTaskTemplate(yaml, 'plain.yaml'));
    expect(flow.template()).toMatchObject({ identityStrategy: 'strict', description: null, metadata: {} });
  });

  it('reports invalid values with the YAML messages, placed by workflow and step name', () => {
    const flow = workflow({ namespace: 'Shop', name: 'bad', version: '1.0' });
    flow.step('ok', { run: () => 1 });
    flow.step('slow', { retry: { maxAttempts: 0 }, timeoutSeconds: 100_000, run: () => 2 });
    const error = thrown(() => flow.template());
    expect(error).toBeInstanceOf(TemplateError);
    const problems = (error as TemplateError).problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
    expect(problems).toEqual([
      'workflow Shop/bad@1.0: namespace: must be 1-34 characters of lowercase letters, digits and underscores, not starting with a digit, found "Shop": the worker queue worker_<namespace>_queue must fit PGMQ\'s 47-character queue name limit, which leaves 34 for the namespace',
      'workflow Shop/bad@1.0: version: must be a semantic version major.minor.patch such as 1.0.0, found "1.0"',
      'workflow Shop/bad@1.0: step("slow").retry.maxAttempts: must be a whole number from 1 to 100, found 0',
      'workflow Shop/bad@1.0: step("slow").timeoutSeconds: must be a whole number from 1 to 86400, found 100000',
    ]);
    // The same step written as YAML fails with the same message, placed by line instead.
    const yamlError = thrown(() =>
      parseTaskTemplate(
        'name: bad\nnamespace_name: shop\nversion: 1.0.0\nsteps:\n  - name: slow\n    handler: {callable: X}\n    retry: {max_attempts: 0}\n',
        'bad.yaml',
      ),
    ) as TemplateError;
    expect(yamlError.problems.map((p) => p.message)).toEqual([problems[2]?.split(': ').slice(2).join(': ')]);
    expect(yamlError.problems[0]?.path).toBe('steps[0].retry.max_attempts');
  });

  it('refuses a workflow without steps, a misspelt retry key and an input schema the parser refuses', () => {
    const empty = workflow({ namespace: 'shop', name: 'empty', version: '1.0.0' });
    expect((thrown(() => empty.template()) as TemplateError).problems.map((p) => p.message)).toEqual([
      'must list at least one step, found an empty list',
    ]);
    const misspelt = workflow({
      namespace: 'shop',
      name: 'misspelt',
      version: '1.0.0',
      input: { type: 'object', requird: [] },
    });
    misspelt.step('a', { retry: { maxAtempts: 2 } as never, run: () => 1 });
    const problems = (thrown(() => misspelt.template()) as TemplateError).problems;
    expect(problems.map((p) => p.path)).toEqual(['step("a").retry.maxAtempts', 'input']);
    expect(problems[1]?.message).toContain('requird');
  });

  it('refuses, with TASKER_INVALID_WORKFLOW, a duplicate step, a parent of another workflow and a step added after template()', () => {
    const flow = workflow({ namespace: 'shop', name: 'checks', version: '1.0.0' });
    const other = workflow({ namespace: 'shop', name: 'other', version: '1.0.0' });
    const a = flow.step('a', { run: () => 1 });
    const foreign = other.step('a', { run: () => 1 });
    const duplicate = thrown(() => flow.step('a', { run: () => 2 }));
    expect(duplicate).toBeInstanceOf(TaskerError);
    expect(duplicate).toMatchObject({
      code: 'TASKER_INVALID_WORKFLOW',
      message:
        'workflow shop/checks@1.0.0: two steps are named "a": step names must be unique within a workflow',
    });
    expect(thrown(() => flow.step('b', { parents: [foreign], run: () => 2 }))).toMatchObject({
      code: 'TASKER_INVALID_WORKFLOW',
      message:
        'workflow shop/checks@1.0.0: step "b" lists parent "a" of workflow shop/other@1.0.0; parents must be steps declared earlier on this workflow',
    });
    flow.step('b', { parents: [a], run: (ctx) => ctx.parent(a) + 1 });
    expect(flow.template().steps).toHaveLength(2);
    expect(thrown(() => flow.step('c', { run: () => 3 }))).toMatchObject({
      code: 'TASKER_INVALID_WORKFLOW',
      message: expect.stringContaining(
        'step "c" was added after the workflow\'s template or handlers were taken',
      ) as unknown,
    });
  });

  it('refuses a zod schema JSON Schema cannot express', () => {
    const flow = workflow({
      namespace: 'shop',
      name: 'dates',
      version: '1.0.0',
      input: z.object({ at: z.date() }),
    });
    flow.step('a', { run: () => 1 });
    expect(thrown(() => flow.template())).toMatchObject({
      code: 'TASKER_INVALID_WORKFLOW',
      message: expect.stringContaining('its input schema cannot be written as JSON Schema') as unknown,
    });
  });
});

describe('workflow(): the handlers', () => {
  it('registers one handler per step; ctx.input is parsed by the zod schema and ctx.parent reads the parents', async () => {
    const handlers = orderWorkflow().handlers();
    expect(handlers.map((h) => h.name)).toEqual([
      'Shop.Charge',
      'shop.fulfil_order.pack@2.1.0',
      'shop.fulfil_order.label@2.1.0',
      'shop.fulfil_order.ship@2.1.0',
    ]);
    const input = { order_id: 'o1', amount: 12 };
    expect(await handlerFor(handlers, 'Shop.Charge').run(stepContext('charge', input))).toEqual({
      chargeId: 'ch_o1',
      amount: 12,
    });
    // The default of `express` applies: the step sees the schema's output, not the raw context.
    expect(
      await handlerFor(handlers, 'shop.fulfil_order.label@2.1.0').run(stepContext('label', input)),
    ).toEqual({
      express: false,
    });
    const ship = handlerFor(handlers, 'shop.fulfil_order.ship@2.1.0');
    expect(
      await ship.run(
        stepContext('ship', input, { charge: {}, pack: { boxes: 3 }, label: { express: true } }),
      ),
    ).toEqual({ boxes: 3, express: true });
  });

  it('fails a step for good when the context does not match the zod schema (a refinement JSON Schema cannot carry)', async () => {
    const flow = workflow({
      namespace: 'shop',
      name: 'refined',
      version: '1.0.0',
      input: z.object({ n: z.number().refine((n) => n % 2 === 0, 'must be even') }),
    });
    flow.step('a', { run: (ctx) => ctx.input.n });
    const [handler] = flow.handlers();
    const failure = await Promise.resolve(handler?.run(stepContext('a', { n: 3 }))).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(PermanentError);
    expect((failure as Error).message).toBe(
      'the task context does not match the input schema of workflow shop/refined@1.0.0: n: must be even',
    );
  });

  it('refuses, at run time, a parent read that got around the types', async () => {
    const flow = workflow({ namespace: 'shop', name: 'sneaky', version: '1.0.0' });
    const a = flow.step('a', { run: () => 1 });
    const b = flow.step('b', { run: () => 2 });
    flow.step('c', { parents: [a], run: (ctx) => ctx.parent(b as unknown as typeof a) });
    const handler = handlerFor(flow.handlers(), 'shop.sneaky.c@1.0.0');
    const failure = await Promise.resolve(handler.run(stepContext('c', {}, { a: 1, b: 2 }))).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(PermanentError);
    expect((failure as Error).message).toContain('read the result of "b", which is not one of its parents');
  });
});

describe('handlers modules with workflows', () => {
  it('loads a module that exports a workflow and its steps: the template and a handler per step', async () => {
    const loaded = await loadWorkerModule(DIAMOND_MODULE);
    expect(loaded.workflowTemplates.map((t) => `${t.namespace}/${t.name}@${t.version}`)).toEqual([
      'typed_flows/typed_diamond@1.0.0',
    ]);
    expect(loaded.handlers.map((h) => h.name).sort()).toEqual([
      'typed_flows.typed_diamond.double@1.0.0',
      'typed_flows.typed_diamond.split@1.0.0',
      'typed_flows.typed_diamond.square@1.0.0',
      'typed_flows.typed_diamond.total@1.0.0',
    ]);
  });

  it('refuses a workflow and a YAML template with the same namespace, name and version', async () => {
    const { workflowTemplates } = await loadWorkerModule(DIAMOND_MODULE);
    const yaml = parseTaskTemplate(
      'name: typed_diamond\nnamespace_name: typed_flows\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: {callable: A}\n',
      'typed_diamond.yaml',
    );
    const error = thrown(() =>
      combineTemplates([
        { template: yaml, source: 'a YAML template under templates/' },
        ...workflowTemplates.map((template) => ({
          template,
          source: 'workflow typed_flows/typed_diamond@1.0.0',
        })),
      ]),
    );
    expect(error).toBeInstanceOf(TemplateError);
    expect((error as TemplateError).message).toContain(
      'workflow typed_flows/typed_diamond@1.0.0: template typed_flows/typed_diamond version 1.0.0 is also defined in a YAML template under templates/',
    );
  });
});
