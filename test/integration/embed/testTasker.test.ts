/**
 * `tasker-workflows/testing`: a user's workflows run to their end in the test's own process on a fresh
 * in-memory database; outputs come back typed by `returns`; failures come back with the failing step's error;
 * one step runs alone with the context a worker would build.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createTestTasker, runStep, WorkflowRunError } from '../../../src/testing.ts';
import type { TestTasker } from '../../../src/testing.ts';
import { workflow } from '../../../src/worker/workflow.ts';
import { diamond, split, total } from '../../fixtures/workflows/diamondWorkflow.ts';
import { invoice, placeOrder, price, refuseOrder } from '../../fixtures/workflows/orderWorkflow.ts';

describe('createTestTasker', () => {
  let env: TestTasker;
  beforeAll(async () => {
    env = await createTestTasker({ workflows: [placeOrder, refuseOrder, diamond] });
  }, 60_000);
  afterAll(async () => {
    await env.stop();
  });

  it('runs a task to its end and answers the output its workflow declares, typed', async () => {
    const output = await env.run(placeOrder, { sku: 'A1', quantity: 3, unitCents: 250 });
    expectTypeOf(output).toEqualTypeOf<{
      invoice: { number: string; total: number; currency: string };
      reserved: { reservation: string };
    }>();
    expect(output).toEqual({
      invoice: { number: 'INV-R-A1-3', total: 750, currency: 'EUR' },
      reserved: { reservation: 'R-A1-3' },
    });
  });

  it('answers every step result by name for a workflow without returns', async () => {
    const output = await env.run(diamond, { n: 4 });
    expectTypeOf(output).toEqualTypeOf<Record<string, unknown>>();
    expect(Object.keys(output).sort()).toEqual(['double', 'split', 'square', 'total']);
    expect(output['total']).toMatchObject({ total: 8, label: 'diamond' });
  });

  it('fails a run whose task failed with the failing step and its error', async () => {
    const failure = await env.run(refuseOrder, {}).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowRunError);
    const error = failure as WorkflowRunError;
    expect(error.code).toBe('TASKER_TASK_FAILED');
    expect(error.status).toBe('error');
    expect(error.message).toContain('step "check": sku BANNED cannot be sold');
    expect(error.failedSteps).toHaveLength(1);
    expect(error.failedSteps[0]).toMatchObject({
      name: 'check',
      status: 'error',
      error: { error_type: 'permanent_error', message: 'sku BANNED cannot be sold' },
    });
  });

  it('executes a task to whatever end and shows each step', async () => {
    const task = await env.execute(refuseOrder, {});
    expect(task.status).toBe('error');
    const check = env.step(task, 'check');
    expect(check.attempts).toBe(1);
    expect(check.error).toMatchObject({ message: 'sku BANNED cannot be sold', retryable: false });
    expect(() => env.step(task, 'nope')).toThrow(/has no step "nope"; its steps: check/);

    const done = await env.execute(placeOrder, { sku: 'B2', quantity: 1, unitCents: 99 });
    expect(done.status).toBe('complete');
    expect(env.step(done, invoice).result).toEqual({ number: 'INV-R-B2-1', total: 99, currency: 'EUR' });
  });

  it('refuses input its schema refuses before any task exists', async () => {
    await expect(
      // @ts-expect-error quantity must be a number: the input is typed by the workflow's schema
      env.run(placeOrder, { sku: 'A1', quantity: 'three', unitCents: 1 }),
    ).rejects.toMatchObject({ code: 'TASKER_INVALID_CONTEXT' });
  });

  it('follows, inspects and cancels a started run', async () => {
    const slow = workflow({
      namespace: 'typed_orders',
      name: 'slow',
      version: '1.0.0',
      identity: 'always_unique',
    });
    slow.step('wait', {
      run: (ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => resolve('aborted'));
        }),
    });
    const own = await createTestTasker({ workflows: [slow], waitMs: 1_500 });
    try {
      const run = await own.start(slow, {});
      const timeout = await run.result({ waitMs: 300 }).catch((error: unknown) => error);
      expect(timeout).toMatchObject({ code: 'TASKER_WAIT_TIMEOUT', taskUuid: run.taskUuid });
      const cancelled = await run.cancel();
      expect(cancelled.status).toBe('cancelled');
      await expect(run.result()).rejects.toMatchObject({ code: 'TASKER_TASK_CANCELLED' });
      await expect(run.cancel()).rejects.toMatchObject({ code: 'TASKER_TASK_TERMINAL' });
    } finally {
      await own.stop();
    }
  }, 30_000);
});

describe('runStep', () => {
  it("runs one step with the worker's context: parsed input, parents' results and the step's config", async () => {
    const result = await runStep(placeOrder, invoice, {
      input: { sku: 'Z9', quantity: 2, unitCents: 5 },
      results: { price: { cents: 10 }, reserve: { reservation: 'R-1' } },
    });
    expectTypeOf(result).toEqualTypeOf<{ number: string; total: number; currency: string }>();
    expect(result).toEqual({ number: 'INV-R-1', total: 10, currency: 'EUR' });
    // The schema's defaults apply as they do in a worker.
    expect(await runStep(diamond, split, { input: { n: 10 } })).toEqual({ half: 5, label: 'DIAMOND' });
    expect(await runStep(placeOrder, price, { input: { sku: 'a', quantity: 4, unitCents: 3 } })).toEqual({
      cents: 12,
    });
  });

  it('fails as the worker would when a parent result is missing or the input does not parse', async () => {
    await expect(runStep(diamond, total, { input: { n: 1 }, results: {} })).rejects.toThrow(
      /has no dependency result "double"/,
    );
    // @ts-expect-error n must be a number
    await expect(runStep(diamond, split, { input: { n: 'x' } })).rejects.toMatchObject({
      code: 'TASKER_INVALID_CONTEXT',
    });
  });

  it('refuses a step of another workflow', async () => {
    await expect(runStep(diamond, invoice, { input: { n: 1 } })).rejects.toMatchObject({
      code: 'TASKER_INVALID_ARGUMENT',
    });
  });
});
