/**
 * Retries and failures (examples/templates/{retry_then_succeed,always_fails,permanent_error,mixed_outcomes}):
 * attempts, backoff actually waited, retries started promptly when due, error records, and what fail-fast
 * does to the other steps of the task — in both result modes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resilienceHandlers } from '../../../examples/handlers/index.ts';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import type { StepContext, StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';
import { RESULT_MODES, startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed, templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import {
  queueCounts,
  resultAudit,
  stepStates,
  stepsByName,
  taskRow,
  taskTransitions,
  transitionsOfStep,
} from '../../helpers/engine/inspect.ts';
import type { TransitionRow } from '../../helpers/engine/inspect.ts';
import { sleep, waitFor, waitForSettledTask, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** Hooks the tests set to order the mixed_outcomes handlers against each other. */
const hooks: {
  beforePermanent?: (ctx: StepContext) => Promise<void>;
  beforeRetryable?: (ctx: StepContext) => Promise<void>;
} = {};

const handlers: StepHandlerDefinition[] = resilienceHandlers.map((handler) => ({
  name: handler.name,
  run: async (ctx: StepContext): Promise<unknown> => {
    if (handler.name === 'Resilience.AlwaysPermanent') await hooks.beforePermanent?.(ctx);
    if (handler.name === 'Resilience.AlwaysRetryable') await hooks.beforeRetryable?.(ctx);
    return handler.run(ctx);
  },
}));

const at = (iso: unknown): number => Date.parse(String(iso));

function retryWaits(transitions: readonly TransitionRow[]): { delayMs: number; dueAt: number; at: number }[] {
  return transitions
    .filter((t) => t.to_state === 'waiting_for_retry')
    .map((t) => ({ delayMs: Number(t.metadata.delay_ms), dueAt: at(t.metadata.due_at), at: t.at_ms }));
}

const starts = (transitions: readonly TransitionRow[]): number[] =>
  transitions.filter((t) => t.to_state === 'in_progress').map((t) => t.at_ms);

const getTestDb = useTestDatabase();

describe.each(RESULT_MODES)('retries and failures ($mode)', ({ inline }) => {
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    cluster = await startCluster({
      db,
      orchestrators: 2,
      workers: 2,
      inline,
      handlers,
      templates: templatesInNamespace('resilience'),
    });
  });
  afterEach(() => {
    delete hooks.beforePermanent;
    delete hooks.beforeRetryable;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('retry_then_succeed: 3 attempts, exponential backoff waited, each retry started promptly when due', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('retry_then_succeed')));
    await waitForTask(db, taskUuid, 'complete');
    const steps = await stepsByName(db, taskUuid);
    expect(steps.flaky_step).toMatchObject({
      current_state: 'complete',
      attempts: 3,
      results: { succeeded_on_attempt: 3 },
    });
    // A success keeps the previous failure on record.
    expect(steps.flaky_step?.last_error).toMatchObject({
      attempt: 2,
      error_type: 'retryable_error',
      message: 'simulated outage on attempt 2 of 5',
    });
    expect(steps.after_flaky).toMatchObject({ current_state: 'complete', attempts: 1 });

    const flaky = await transitionsOfStep(db, taskUuid, 'flaky_step');
    const waits = retryWaits(flaky);
    expect(waits).toHaveLength(2);
    const [first, second] = waits;
    if (first === undefined || second === undefined) throw new Error('two waits expected');
    // base 200 ms * 2^(attempt-1), with up to 10% downward jitter.
    expect(first.delayMs).toBeGreaterThanOrEqual(180);
    expect(first.delayMs).toBeLessThanOrEqual(200);
    expect(second.delayMs).toBeGreaterThanOrEqual(360);
    expect(second.delayMs).toBeLessThanOrEqual(400);
    // due_at is the clock when the delay was computed + delay; the transition is written just after that
    // (one statement later, which a loaded 2-core machine has been seen to delay by 60 ms).
    expect(first.dueAt - first.at).toBeLessThanOrEqual(first.delayMs + 1);
    expect(first.dueAt - first.at).toBeGreaterThan(first.delayMs - 150);

    const [s1, s2, s3] = starts(flaky);
    if (s1 === undefined || s2 === undefined || s3 === undefined) throw new Error('three starts expected');
    expect(s2 - s1).toBeGreaterThanOrEqual(0.9 * 200);
    expect(s3 - s2).toBeGreaterThanOrEqual(0.9 * 400);
    // Never before due (claim_steps tolerates 50 ms early), and promptly after.
    expect(s2 - first.dueAt).toBeGreaterThan(-50);
    expect(s2 - first.dueAt).toBeLessThan(250);
    expect(s3 - second.dueAt).toBeGreaterThan(-50);
    expect(s3 - second.dueAt).toBeLessThan(250);

    // The handler saw the same spacing.
    const runs = cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === 'flaky_step');
    expect(runs.map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'error'],
      [2, 'error'],
      [3, 'success'],
    ]);
    const [r1, r2, r3] = runs.map((e) => e.startedAt);
    expect((r2 ?? 0) - (r1 ?? 0)).toBeGreaterThanOrEqual(0.9 * 200);
    expect((r3 ?? 0) - (r2 ?? 0)).toBeGreaterThanOrEqual(0.9 * 400);

    expect(
      (await resultAudit(db, taskUuid))
        .filter((a) => a.step_name === 'flaky_step')
        .map((a) => [a.attempt, a.success]),
    ).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(flaky.map((t) => t.to_state).filter((s) => s === 'waiting_for_retry')).toHaveLength(2);
  });

  it('always_fails: 3 attempts with fixed backoff, then step and task in error; never_runs stays pending', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('always_fails')));
    await waitForSettledTask(db, taskUuid);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    expect(await stepStates(db, taskUuid)).toEqual({ doomed_step: 'error', never_runs: 'pending' });
    const steps = await stepsByName(db, taskUuid);
    expect(steps.doomed_step).toMatchObject({ attempts: 3, max_attempts: 3 });
    expect(steps.doomed_step?.last_error).toMatchObject({ attempt: 3, retryable: true });
    expect(steps.never_runs?.attempts).toBe(0);

    const doomed = await transitionsOfStep(db, taskUuid, 'doomed_step');
    const waits = retryWaits(doomed);
    expect(waits.map((w) => w.delayMs >= 135 && w.delayMs <= 150)).toEqual([true, true]);
    const [s1, s2, s3] = starts(doomed);
    expect((s2 ?? 0) - (s1 ?? 0)).toBeGreaterThanOrEqual(135);
    expect((s3 ?? 0) - (s2 ?? 0)).toBeGreaterThanOrEqual(135);
    expect(doomed.at(-1)).toMatchObject({
      to_state: 'error',
      metadata: { event: 'fail', attempts: 3, max_attempts: 3 },
    });
    expect(cluster.recorder.forTask(taskUuid).map((e) => e.stepName)).toEqual([
      'doomed_step',
      'doomed_step',
      'doomed_step',
    ]);
  });

  it('permanent_error: one attempt, no retry, the error recorded with its type and code', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('permanent_error')));
    await waitForSettledTask(db, taskUuid);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    const step = (await stepsByName(db, taskUuid)).rejecting_step;
    expect(step).toMatchObject({ current_state: 'error', attempts: 1, max_attempts: 3, results: null });
    expect(step?.last_error).toMatchObject({
      error_type: 'permanent_error',
      code: 'INVALID_REQUEST',
      retryable: false,
      attempt: 1,
    });
    const history = await transitionsOfStep(db, taskUuid, 'rejecting_step');
    expect(history.some((t) => t.to_state === 'waiting_for_retry')).toBe(false);
    // Give a wrongly scheduled retry the time to show up.
    await sleep(300);
    expect((await stepsByName(db, taskUuid)).rejecting_step?.attempts).toBe(1);
    expect(cluster.recorder.forTask(taskUuid)).toHaveLength(1);
  });

  it('mixed_outcomes as it comes: task error on the permanent failure, nothing runs or retries after that', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('mixed_outcomes')));
    await waitForSettledTask(db, taskUuid);
    const errorAt = (await taskTransitions(db, taskUuid)).find((t) => t.to_state === 'error')?.at_ms ?? 0;
    const steps = await stepsByName(db, taskUuid);
    expect(steps.permanent_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(['complete', 'enqueued']).toContain(steps.succeeding_step?.current_state);
    // A retry scheduled before the failure is left waiting; a failure applied after it is not retried.
    expect(['enqueued', 'waiting_for_retry', 'error']).toContain(steps.retryable_step?.current_state);
    // Past any retry that was pending, nothing has started and the worker queue holds nothing runnable.
    await sleep(400);
    const after = await stepsByName(db, taskUuid);
    expect(Object.values(after).map((s) => [s.name, s.attempts])).toEqual(
      Object.values(steps).map((s) => [s.name, s.attempts]),
    );
    expect((await queueCounts(db, 'worker_resilience_queue')).visible).toBe(0);
    const runs = cluster.recorder.forTask(taskUuid);
    expect(runs.every((e) => e.startedAt <= errorAt + 5)).toBe(true);
  });

  it('mixed_outcomes, retryable step exhausted first: it ends in error after 2 attempts and fails the task', async () => {
    hooks.beforePermanent = async (ctx) => {
      await waitFor('retryable_step to fail for good', async () => {
        const step = (await stepsByName(db, ctx.taskUuid)).retryable_step;
        return step?.current_state === 'error';
      });
    };
    const { taskUuid } = await createTask(db, requestFor(templateNamed('mixed_outcomes')));
    await waitForSettledTask(db, taskUuid);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.retryable_step).toMatchObject({ current_state: 'error', attempts: 2 });
    expect(steps.retryable_step?.last_error).toMatchObject({ attempt: 2, retryable: true });
    expect(steps.succeeding_step).toMatchObject({ current_state: 'complete', results: { value: 'ok' } });
    // Already running when the task failed, the permanent step still ends with its own failure.
    expect(steps.permanent_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(steps.permanent_step?.last_error).toMatchObject({ code: 'INVALID_REQUEST' });
    const transitions = await taskTransitions(db, taskUuid);
    expect(transitions.map((t) => t.to_state).slice(-3)).toEqual([
      'evaluating_results',
      'blocked_by_failures',
      'error',
    ]);
    expect(transitions.filter((t) => t.to_state === 'error')).toHaveLength(1);
  });

  it('mixed_outcomes, permanent failure first: a retryable failure arriving after it is not retried', async () => {
    hooks.beforeRetryable = async (ctx) => {
      await waitForTask(db, ctx.taskUuid, 'error');
    };
    const { taskUuid } = await createTask(db, requestFor(templateNamed('mixed_outcomes')));
    await waitForSettledTask(db, taskUuid);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.permanent_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(steps.retryable_step).toMatchObject({ current_state: 'error', attempts: 1, max_attempts: 2 });
    const retryable = await transitionsOfStep(db, taskUuid, 'retryable_step');
    expect(retryable.some((t) => t.to_state === 'waiting_for_retry')).toBe(false);
    expect(retryable.at(-1)).toMatchObject({ to_state: 'error', metadata: { event: 'fail', attempts: 1 } });
    await sleep(300);
    expect((await stepsByName(db, taskUuid)).retryable_step?.attempts).toBe(1);
    expect(cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === 'retryable_step')).toHaveLength(1);
  });
});
