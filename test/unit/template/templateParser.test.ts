import { describe, expect, it } from 'vitest';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import type { RetryPolicy, StepTemplate, TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { minimalTemplate, parseFixture } from './templateTestKit.ts';

function step(template: TaskTemplate, name: string): StepTemplate {
  const found = template.steps.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no step ${name} in ${template.name}`);
  return found;
}

const DEFAULT_RETRY: RetryPolicy = {
  retryable: true,
  maxAttempts: 3,
  backoff: 'exponential',
  backoffBaseMs: 1000,
  maxBackoffMs: 30_000,
};

describe('parseTaskTemplate: valid templates', () => {
  it('turns a minimal template into the camelCase type with every default filled in', () => {
    expect(parseTaskTemplate(minimalTemplate(), 'minimal.yaml')).toEqual({
      name: 'minimal',
      namespace: 'tests',
      version: '1.0.0',
      description: null,
      inputSchema: null,
      identityStrategy: 'strict',
      steps: [
        {
          name: 'only_step',
          description: null,
          handler: { callable: 'Only', initialization: {} },
          dependencies: [],
          retry: DEFAULT_RETRY,
          timeoutSeconds: null,
        },
      ],
      lifecycle: {
        maxDurationMinutes: null,
        maxWaitingForDependenciesMinutes: null,
        maxWaitingForRetryMinutes: null,
        maxStepsInProcessMinutes: null,
      },
      metadata: {},
    } satisfies TaskTemplate);
  });

  it('parses the reference §7 refund example: fan-out, join, retry, input schema, lifecycle', () => {
    const refund = parseFixture('valid/payments/process_refund.yaml');
    expect([refund.namespace, refund.name, refund.version]).toEqual(['payments', 'process_refund', '1.0.0']);
    expect(refund.description).toBe('Validate, reverse charge and ledger entry in parallel, then notify');
    expect(refund.inputSchema).toEqual({ type: 'object', required: ['refund_id', 'amount'] });
    expect(refund.steps.map((s) => [s.name, s.dependencies])).toEqual([
      ['validate_refund', []],
      ['reverse_charge', ['validate_refund']],
      ['write_ledger', ['validate_refund']],
      ['notify_customer', ['reverse_charge', 'write_ledger']],
    ]);
    expect(step(refund, 'validate_refund').retry).toEqual({
      ...DEFAULT_RETRY,
      retryable: false,
      maxAttempts: 1,
    });
    expect(step(refund, 'reverse_charge').retry).toEqual({ ...DEFAULT_RETRY, maxAttempts: 5 });
    expect(step(refund, 'reverse_charge').handler).toEqual({
      callable: 'Payments.ReverseCharge',
      initialization: { gateway: 'stripe' },
    });
    expect(step(refund, 'write_ledger').retry).toEqual(DEFAULT_RETRY);
    expect(refund.lifecycle).toEqual({
      maxDurationMinutes: null,
      maxWaitingForDependenciesMinutes: null,
      maxWaitingForRetryMinutes: null,
      maxStepsInProcessMinutes: 60,
    });
  });

  it('maps every snake_case key it accepts', () => {
    const template = parseTaskTemplate(
      `name: full
namespace_name: tests
version: 2.1.0-rc.1+build.7
description: Everything set
metadata: {author: payments-team, tags: [refunds, money], documentation_url: https://example.com/refunds}
identity_strategy: caller_provided
input_schema:
  $schema: https://json-schema.org/draft/2020-12/schema
  type: object
  properties: {order_id: {type: string}}
lifecycle:
  max_duration_minutes: 120
  max_waiting_for_dependencies_minutes: 30
  max_waiting_for_retry_minutes: 15
  max_steps_in_process_minutes: 45
steps:
  - name: first
    description: The first step
    type: standard
    handler:
      callable: Full.First
      initialization: {nested: {deep: [1, 2]}, flag: true}
    retry: {retryable: true, max_attempts: 7, backoff: linear, backoff_base_ms: 250, max_backoff_ms: 2000}
    timeout_seconds: 90
  - name: second
    step_type: standard
    handler: {callable: Full.Second}
    depends_on: [first]
`,
      'full.yaml',
    );
    expect(template).toMatchObject({
      version: '2.1.0-rc.1+build.7',
      description: 'Everything set',
      metadata: {
        author: 'payments-team',
        tags: ['refunds', 'money'],
        documentation_url: 'https://example.com/refunds',
      },
      identityStrategy: 'caller_provided',
      inputSchema: { type: 'object', properties: { order_id: { type: 'string' } } },
      lifecycle: {
        maxDurationMinutes: 120,
        maxWaitingForDependenciesMinutes: 30,
        maxWaitingForRetryMinutes: 15,
        maxStepsInProcessMinutes: 45,
      },
    });
    expect(template.steps[0]).toEqual({
      name: 'first',
      description: 'The first step',
      handler: { callable: 'Full.First', initialization: { nested: { deep: [1, 2] }, flag: true } },
      dependencies: [],
      retry: { retryable: true, maxAttempts: 7, backoff: 'linear', backoffBaseMs: 250, maxBackoffMs: 2000 },
      timeoutSeconds: 90,
    });
    expect(template.steps[1]?.dependencies).toEqual(['first']);
  });

  it('reads depends_on as an alias of dependencies (the diamond fixture)', () => {
    const diamond = parseFixture('valid/shapes/diamond.yaml');
    expect(step(diamond, 'diamond_end').dependencies).toEqual(['diamond_branch_b', 'diamond_branch_c']);
    expect(step(diamond, 'diamond_branch_b').dependencies).toEqual(['diamond_start']);
  });

  it('keeps max_attempts as written when retryable is false', () => {
    const template = parseTaskTemplate(
      minimalTemplate(
        '',
        '  - name: once\n    handler: {callable: Once}\n    retry: {retryable: false, max_attempts: 4}\n',
      ),
      'once.yaml',
    );
    expect(template.steps[0]?.retry).toEqual({ ...DEFAULT_RETRY, retryable: false, maxAttempts: 4 });
  });

  it('accepts the inclusive bounds of every numeric limit', () => {
    const template = parseTaskTemplate(
      minimalTemplate(
        'lifecycle: {max_duration_minutes: 1}\n',
        `  - name: lowest
    handler: {callable: Low}
    retry: {max_attempts: 1, backoff_base_ms: 0, max_backoff_ms: 0}
    timeout_seconds: 1
  - name: highest
    handler: {callable: High}
    retry: {max_attempts: 100, backoff_base_ms: 3600000, max_backoff_ms: 86400000}
    timeout_seconds: 86400
`,
      ),
      'bounds.yaml',
    );
    expect(
      template.steps.map((s) => [
        s.retry.maxAttempts,
        s.retry.backoffBaseMs,
        s.retry.maxBackoffMs,
        s.timeoutSeconds,
      ]),
    ).toEqual([
      [1, 0, 0, 1],
      [100, 3_600_000, 86_400_000, 86_400],
    ]);
    expect(template.lifecycle.maxDurationMinutes).toBe(1);
  });

  it('accepts names at their length limits: namespace 34, template 64, step 128', () => {
    const namespace = 'n'.repeat(34);
    const name = 't'.repeat(64);
    const stepName = 's'.repeat(128);
    const template = parseTaskTemplate(
      `name: ${name}\nnamespace_name: ${namespace}\nversion: 0.0.1\nsteps:\n  - name: ${stepName}\n    handler: {callable: X}\n`,
      'limits.yaml',
    );
    expect([template.namespace.length, template.name.length, template.steps[0]?.name.length]).toEqual([
      34, 64, 128,
    ]);
    expect(`worker_${template.namespace}_queue`).toHaveLength(47);
  });

  it('follows YAML anchors and merge keys, so templates can share a retry block', () => {
    const template = parseTaskTemplate(
      minimalTemplate(
        '',
        `  - name: first
    handler: {callable: First}
    retry: &patient {max_attempts: 10, backoff: fixed}
  - name: second
    handler: {callable: Second}
    retry:
      <<: *patient
      backoff_base_ms: 200
`,
      ),
      'anchors.yaml',
    );
    expect(template.steps[0]?.retry).toEqual({ ...DEFAULT_RETRY, maxAttempts: 10, backoff: 'fixed' });
    expect(template.steps[1]?.retry).toEqual({
      ...DEFAULT_RETRY,
      maxAttempts: 10,
      backoff: 'fixed',
      backoffBaseMs: 200,
    });
  });

  it('parses every §13 fixture shape with its dependencies in declaration order', () => {
    const tree = parseFixture('valid/shapes/tree/hierarchical_tree.yaml');
    expect(step(tree, 'tree_final_convergence').dependencies).toEqual([
      'tree_leaf_d',
      'tree_leaf_e',
      'tree_leaf_f',
      'tree_leaf_g',
    ]);
    const mixed = parseFixture('valid/shapes/mixed_dag.yml');
    expect(step(mixed, 'dag_finalize').dependencies).toEqual([
      'dag_validate',
      'dag_transform',
      'dag_analyze',
    ]);
    expect(parseFixture('valid/shapes/linear.yaml').steps.map((s) => s.dependencies)).toEqual([
      [],
      ['linear_step_1'],
      ['linear_step_2'],
      ['linear_step_3'],
    ]);
    const errors = parseFixture('valid/errors/error_scenarios.yaml');
    expect(errors.identityStrategy).toBe('always_unique');
    expect(step(errors, 'retryable_error_step').retry).toEqual({
      retryable: true,
      maxAttempts: 3,
      backoff: 'fixed',
      backoffBaseMs: 0,
      maxBackoffMs: 0,
    });
  });
});

describe('parseTaskTemplate: environment overrides', () => {
  const FILE = 'valid/shapes/order_fulfillment.yaml';

  it('leaves the template as written without an environment, or for one without overrides', () => {
    for (const options of [{}, { environment: 'staging' }]) {
      const template = parseFixture(FILE, options);
      const payment = step(template, 'process_payment');
      expect(payment.timeoutSeconds).toBe(30);
      expect(payment.handler.initialization).toEqual({ gateway: { name: 'stripe', timeout_ms: 5000 } });
      expect(payment.retry).toEqual({
        retryable: true,
        maxAttempts: 5,
        backoff: 'linear',
        backoffBaseMs: 500,
        maxBackoffMs: 10_000,
      });
      expect(step(template, 'ship_order').timeoutSeconds).toBeNull();
    }
  });

  it('applies ALL to every step, deep-merges initialization and replaces the retry block as a whole', () => {
    const template = parseFixture(FILE, { environment: 'production' });
    expect(template.steps.map((s) => s.timeoutSeconds)).toEqual([120, 120, 120, 120]);
    const payment = step(template, 'process_payment');
    expect(payment.handler).toEqual({
      callable: 'Orders.ProcessPayment',
      initialization: { gateway: { name: 'stripe', timeout_ms: 15_000 }, live: true },
    });
    // Replaced, not merged: backoff and its bounds fall back to the defaults, not to the step's linear 500/10000.
    expect(payment.retry).toEqual({ ...DEFAULT_RETRY, maxAttempts: 10 });
    expect(step(template, 'validate_order').retry).toEqual(DEFAULT_RETRY);
  });

  it('applies only the selected environment', () => {
    const template = parseFixture(FILE, { environment: 'test' });
    const payment = step(template, 'process_payment');
    expect(payment.retry).toEqual({ ...DEFAULT_RETRY, retryable: false, maxAttempts: 1 });
    expect(payment.timeoutSeconds).toBe(30);
    expect(payment.handler.initialization).toEqual({ gateway: { name: 'stripe', timeout_ms: 5000 } });
  });

  it('applies overrides in listed order: a later ALL wins over an earlier named override', () => {
    const yaml = minimalTemplate(
      `environments:
  production:
    steps:
      - {name: only_step, timeout_seconds: 10, handler: {initialization: {mode: named, named_only: 1}}}
      - {name: ALL, timeout_seconds: 20, handler: {initialization: {mode: all}}}
`,
    );
    const only = parseTaskTemplate(yaml, 'order.yaml', { environment: 'production' }).steps[0];
    expect(only?.timeoutSeconds).toBe(20);
    expect(only?.handler.initialization).toEqual({ mode: 'all', named_only: 1 });
  });

  it('replaces lists inside initialization and keeps a __proto__ key as plain data', () => {
    const yaml = minimalTemplate(
      `environments:
  production:
    steps:
      - name: only_step
        handler: {initialization: {hosts: [b], __proto__: {polluted: true}}}
`,
      '  - name: only_step\n    handler: {callable: Only, initialization: {hosts: [a, c], keep: yes}}\n',
    );
    const initialization = parseTaskTemplate(yaml, 'lists.yaml', { environment: 'production' }).steps[0]
      ?.handler.initialization;
    expect(initialization?.['hosts']).toEqual(['b']);
    expect(initialization?.['keep']).toBe('yes');
    expect(Object.getPrototypeOf(initialization)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.keys(initialization ?? {})).toContain('__proto__');
  });
});
