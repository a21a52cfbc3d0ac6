/**
 * Operator step actions (tasker.apply_step_action via applyStepAction): reset_for_retry, resolve_manually and
 * complete_manually on a failed step bring the task in error back to life, and it runs to completion with its
 * dependents seeing the right data; the actions are refused in the wrong states (409) and for a step of another
 * task (404); two operators acting at once: one wins, the other gets a conflict.
 *
 * A real cluster (orchestrator + worker) runs the operator_ops templates; the tests in operator_manual claim
 * and complete steps themselves for exact set-ups.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../../../src/db/database.ts';
import { cancelTask } from '../../../src/db/queries/orchestrationQueues.ts';
import { applyStepAction } from '../../../src/db/queries/stepActions.ts';
import type { StepAction } from '../../../src/db/queries/stepActions.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../../src/domain/errors.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import type { StepContext } from '../../../src/worker/handlerApi.ts';
import { defineHandler, PermanentError, RetryableError } from '../../../src/worker/handlerApi.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import {
  historyProblems,
  queueCounts,
  stepStates,
  stepsByName,
  taskRow,
  taskTransitions,
  transitionsOfStep,
} from '../../helpers/engine/inspect.ts';
import { createMemoryLogger, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { awaitGate, deferred } from '../../helpers/engine/recorder.ts';
import type { Deferred } from '../../helpers/engine/recorder.ts';
import { waitFor, waitForSettledTask, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import { claim, createTaskOf, drain, finish, freshTemplates, inlineTemplate } from './operatorHelpers.ts';

const NS = 'operator_ops';

const chain = inlineTemplate(`
name: op_chain
namespace_name: ${NS}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: fetch
    handler: { callable: Ops.Fetch }
  - name: flaky
    handler: { callable: Ops.Flaky }
    dependencies: [fetch]
    retry: { retryable: true, max_attempts: 2, backoff: fixed, backoff_base_ms: 50, max_backoff_ms: 100 }
  - name: report
    handler: { callable: Ops.Report }
    dependencies: [flaky]
`);

const pair = inlineTemplate(`
name: op_pair
namespace_name: ${NS}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: left
    handler: { callable: Ops.Left }
    retry: { retryable: false, max_attempts: 1 }
  - name: right
    handler: { callable: Ops.Right }
    retry: { retryable: false, max_attempts: 1 }
  - name: join
    handler: { callable: Ops.Join }
    dependencies: [left, right]
`);

const block = inlineTemplate(`
name: op_block
namespace_name: ${NS}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: blocker
    handler: { callable: Ops.Block }
  - name: after
    handler: { callable: Ops.Report }
    dependencies: [blocker]
`);

type Mode = 'succeed' | 'retryable' | 'permanent';
/** How Ops.Flaky / Ops.Left / Ops.Right behave, per task. */
const modes = new Map<string, Mode>();
/** Gates Ops.Block and Ops.Right wait on, per task. */
const gates = new Map<string, Deferred<void>>();
const gateFor = (taskUuid: string): Deferred<void> => {
  let gate = gates.get(taskUuid);
  if (gate === undefined) {
    gate = deferred();
    gates.set(taskUuid, gate);
  }
  return gate;
};
/** What each dependent handler received as dependency results, per task and step. */
const received = new Map<string, Record<string, unknown>>();

function behave(ctx: StepContext, value: () => unknown): unknown {
  const mode = modes.get(ctx.taskUuid) ?? 'succeed';
  if (mode === 'retryable') throw new RetryableError(`upstream down (attempt ${ctx.attempt})`);
  if (mode === 'permanent') throw new PermanentError('bad input data');
  return value();
}

const handlers = [
  defineHandler('Ops.Fetch', (ctx) => ({ value: typeof ctx.input.base === 'number' ? ctx.input.base : 1 })),
  defineHandler('Ops.Flaky', (ctx) =>
    behave(ctx, () => ({ value: ctx.dependency<{ value: number }>('fetch').value + 10 })),
  ),
  defineHandler('Ops.Report', (ctx) => {
    received.set(`${ctx.taskUuid}/${ctx.stepName}`, { ...ctx.dependencyResults });
    return { saw: ctx.dependencyResults };
  }),
  defineHandler('Ops.Left', async (ctx) => {
    // Fails only once right has started, so both end up in error.
    await waitFor('right to start', () => received.has(`${ctx.taskUuid}/right-started`), 10_000);
    return behave(ctx, () => ({ side: 'left' }));
  }),
  defineHandler('Ops.Right', async (ctx) => {
    received.set(`${ctx.taskUuid}/right-started`, {});
    if (modes.get(ctx.taskUuid) !== 'succeed') await awaitGate(gateFor(ctx.taskUuid).promise, ctx.signal);
    return behave(ctx, () => ({ side: 'right' }));
  }),
  defineHandler('Ops.Join', (ctx) => {
    received.set(`${ctx.taskUuid}/join`, { ...ctx.dependencyResults });
    return { joined: Object.keys(ctx.dependencyResults).sort() };
  }),
  defineHandler('Ops.Block', async (ctx) => {
    await awaitGate(gateFor(ctx.taskUuid).promise, ctx.signal);
    return { released: true };
  }),
];

const getTestDb = useTestDatabase();

async function stepUuid(db: Database, taskUuid: string, name: string): Promise<string> {
  const step = (await stepsByName(db, taskUuid))[name];
  if (step === undefined) throw new Error(`task ${taskUuid} has no step ${name}`);
  return step.workflow_step_uuid;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('operator step actions', () => {
  const logs = createMemoryLogger('info');
  const templates = freshTemplates();
  const processor = uuidv7();
  let db: Database;
  let cluster: Cluster;

  const start = async (template: typeof chain, mode: Mode, context: Record<string, unknown> = {}) => {
    const { taskUuid } = await createTask(
      db,
      { namespace: NS, name: template.name, version: template.version, context },
      { templates },
    );
    modes.set(taskUuid, mode);
    return taskUuid;
  };

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    cluster = await startCluster({
      db,
      orchestrators: 1,
      workers: 1,
      inline: false,
      handlers,
      templates: [chain, pair, block],
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    for (const gate of gates.values()) gate.resolve();
    await cluster.stop();
    expect(unexpectedErrors(logs)).toEqual([]);
  });

  it('reset_for_retry on a step that exhausted its retries revives the task, which completes with the right data', async () => {
    const taskUuid = await start(chain, 'retryable', { base: 5 });
    await waitForSettledTask(db, taskUuid);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    expect(await stepStates(db, taskUuid)).toEqual({ fetch: 'complete', flaky: 'error', report: 'pending' });
    expect((await stepsByName(db, taskUuid)).flaky).toMatchObject({ attempts: 2 });

    modes.set(taskUuid, 'succeed');
    const flakyUuid = await stepUuid(db, taskUuid, 'flaky');
    const outcome = await applyStepAction(
      db,
      taskUuid,
      flakyUuid,
      { action: 'reset_for_retry', operator: 'alice', reason: 'upstream fixed' },
      processor,
    );
    // The step is enqueued again and the task running again, in the action's own commit.
    expect(outcome).toEqual({
      taskUuid,
      stepUuid: flakyUuid,
      stepState: 'enqueued',
      taskState: 'steps_in_process',
    });

    const task = await waitForTask(db, taskUuid, 'complete');
    expect(task.completed_at).toBeInstanceOf(Date);
    const steps = await stepsByName(db, taskUuid);
    // A fresh retry budget: one run after the reset.
    expect(steps.flaky).toMatchObject({ current_state: 'complete', attempts: 1, results: { value: 15 } });
    expect(steps.report?.results).toEqual({ saw: { fetch: { value: 5 }, flaky: { value: 15 } } });
    expect(received.get(`${taskUuid}/report`)).toEqual({ fetch: { value: 5 }, flaky: { value: 15 } });
    expect(cluster.recorder.forTask(taskUuid).map((e) => [e.stepName, e.attempt, e.outcome])).toEqual([
      ['fetch', 1, 'success'],
      ['flaky', 1, 'error'],
      ['flaky', 2, 'error'],
      ['flaky', 1, 'success'],
      ['report', 1, 'success'],
    ]);

    const reset = (await transitionsOfStep(db, taskUuid, 'flaky')).find((t) => t.from_state === 'error');
    expect(reset).toMatchObject({
      to_state: 'pending',
      metadata: {
        event: 'reset_for_retry',
        operator: 'alice',
        reason: 'upstream fixed',
        previous_attempts: 2,
        previous_error: { error_type: 'retryable_error', message: 'upstream down (attempt 2)' },
      },
    });
    const revived = (await taskTransitions(db, taskUuid)).find((t) => t.from_state === 'error');
    expect(revived).toMatchObject({
      to_state: 'pending',
      processor_uuid: processor,
      metadata: {
        event: 'reset',
        cause: 'step_action',
        action: 'reset_for_retry',
        step_uuid: flakyUuid,
        operator: 'alice',
      },
    });
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state).slice(-7)).toEqual([
      'error',
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'complete',
    ]);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('resolve_manually on a failed step lets its dependents run and the task complete', async () => {
    const taskUuid = await start(chain, 'permanent');
    await waitForSettledTask(db, taskUuid);
    expect(await stepStates(db, taskUuid)).toEqual({ fetch: 'complete', flaky: 'error', report: 'pending' });

    const outcome = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'flaky'), {
      action: 'resolve_manually',
      operator: 'bob',
      reason: 'handled outside Tasker',
    });
    expect(outcome.stepState).toBe('resolved_manually');
    await waitForTask(db, taskUuid, 'complete');
    const steps = await stepsByName(db, taskUuid);
    expect(steps.flaky).toMatchObject({
      current_state: 'resolved_manually',
      attempts: 1,
      results: null,
      processed: true,
    });
    // The failure stays on record; the dependent sees a resolved step without results.
    expect(steps.flaky?.last_error).toMatchObject({
      error_type: 'permanent_error',
      message: 'bad input data',
    });
    expect(received.get(`${taskUuid}/report`)).toEqual({ fetch: { value: 1 }, flaky: null });
    expect(cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === 'report')).toHaveLength(1);
    expect((await transitionsOfStep(db, taskUuid, 'flaky')).at(-1)).toMatchObject({
      from_state: 'error',
      to_state: 'resolved_manually',
      metadata: { event: 'resolve_manually', operator: 'bob', reason: 'handled outside Tasker' },
    });
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('complete_manually: the dependent handler receives exactly the supplied result; metadata is recorded', async () => {
    const taskUuid = await start(chain, 'permanent', { base: 2 });
    await waitForSettledTask(db, taskUuid);
    const flakyUuid = await stepUuid(db, taskUuid, 'flaky');
    const result = { value: 42, source: 'operator', items: [1, 2, { nested: true }] };
    const outcome = await applyStepAction(db, taskUuid, flakyUuid, {
      action: 'complete_manually',
      result,
      metadata: { ticket: 'OPS-7' },
      operator: 'carol',
      reason: 'computed by hand',
    });
    expect(outcome.stepState).toBe('complete');
    await waitForTask(db, taskUuid, 'complete');

    expect(received.get(`${taskUuid}/report`)).toEqual({ fetch: { value: 2 }, flaky: result });
    expect((await stepsByName(db, taskUuid)).report?.results).toEqual({
      saw: { fetch: { value: 2 }, flaky: result },
    });
    expect((await stepsByName(db, taskUuid)).flaky).toMatchObject({ results: result, attempts: 1 });
    // The handler of flaky did not run again.
    expect(cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === 'flaky')).toHaveLength(1);
    expect((await transitionsOfStep(db, taskUuid, 'flaky')).at(-1)).toMatchObject({
      from_state: 'error',
      to_state: 'complete',
      metadata: {
        event: 'complete_manually',
        operator: 'carol',
        reason: 'computed by hand',
        metadata: { ticket: 'OPS-7' },
      },
    });
  });

  it('with two failed steps, fixing one keeps the task in error; fixing the last revives it', async () => {
    const taskUuid = await start(pair, 'permanent');
    await waitForTask(db, taskUuid, 'error');
    gateFor(taskUuid).resolve();
    await waitForSettledTask(db, taskUuid);
    expect(await stepStates(db, taskUuid)).toEqual({ left: 'error', right: 'error', join: 'pending' });

    const first = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'left'), {
      action: 'complete_manually',
      result: { side: 'left', by: 'hand' },
    });
    expect(first).toMatchObject({ stepState: 'complete', taskState: 'error' });
    expect(await stepStates(db, taskUuid)).toEqual({ left: 'complete', right: 'error', join: 'pending' });
    expect((await queueCounts(db, `worker_${NS}_queue`)).total).toBe(0);

    modes.set(taskUuid, 'succeed');
    const second = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'right'), {
      action: 'reset_for_retry',
    });
    expect(second.taskState).not.toBe('error');
    await waitForTask(db, taskUuid, 'complete');
    expect(received.get(`${taskUuid}/join`)).toEqual({
      left: { side: 'left', by: 'hand' },
      right: { side: 'right' },
    });
    expect((await taskTransitions(db, taskUuid)).filter((t) => t.from_state === 'error')).toHaveLength(1);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('refuses actions in the wrong state with TASKER_STEP_ACTION_NOT_ALLOWED (409) and changes nothing', async () => {
    // A running step: no action may race its handler.
    const running = await start(block, 'succeed');
    await waitFor('blocker to run', async () =>
      (await stepsByName(db, running)).blocker?.current_state === 'in_progress' ? true : undefined,
    );
    const blockerUuid = await stepUuid(db, running, 'blocker');
    for (const action of ['resolve_manually', 'complete_manually', 'reset_for_retry'] as const) {
      const body: StepAction = action === 'complete_manually' ? { action, result: { no: true } } : { action };
      const error = await caught(applyStepAction(db, running, blockerUuid, body));
      expect(error).toBeInstanceOf(ConflictError);
      expect(error).toMatchObject({
        code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
        details: {
          current_state: 'in_progress',
          allowed_from: action === 'reset_for_retry' ? ['error'] : ['pending', 'waiting_for_retry', 'error'],
          task_state: 'steps_in_process',
        },
      });
    }
    // reset_for_retry only from error: not from pending either.
    const afterUuid = await stepUuid(db, running, 'after');
    expect(
      await caught(applyStepAction(db, running, afterUuid, { action: 'reset_for_retry' })),
    ).toMatchObject({
      code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
      details: { current_state: 'pending', allowed_from: ['error'] },
    });
    expect((await transitionsOfStep(db, running, 'blocker')).map((t) => t.to_state)).toEqual([
      'pending',
      'enqueued',
      'in_progress',
    ]);
    gateFor(running).resolve();
    await waitForTask(db, running, 'complete');

    // A finished task: nothing to fix.
    for (const name of ['blocker', 'after']) {
      expect(
        await caught(
          applyStepAction(db, running, await stepUuid(db, running, name), { action: 'resolve_manually' }),
        ),
      ).toMatchObject({
        code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
        details: { current_state: 'complete', task_state: 'complete' },
      });
    }
    // A cancelled task: its steps stay as they are.
    const cancelled = await start(block, 'succeed');
    await waitFor('blocker to run', async () =>
      (await stepsByName(db, cancelled)).blocker?.current_state === 'in_progress' ? true : undefined,
    );
    expect(await cancelTask(db, cancelled, null)).toBe('cancelled');
    gateFor(cancelled).resolve();
    expect(
      await caught(
        applyStepAction(db, cancelled, await stepUuid(db, cancelled, 'after'), {
          action: 'complete_manually',
          result: 1,
        }),
      ),
    ).toMatchObject({
      code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
      details: { current_state: 'cancelled', task_state: 'cancelled' },
    });
    expect(await stepStates(db, cancelled)).toEqual({ blocker: 'cancelled', after: 'cancelled' });
    // A complete step of a task in error cannot be reset.
    const failed = await start(chain, 'permanent');
    await waitForSettledTask(db, failed);
    expect(
      await caught(
        applyStepAction(db, failed, await stepUuid(db, failed, 'fetch'), { action: 'reset_for_retry' }),
      ),
    ).toMatchObject({
      code: 'TASKER_STEP_ACTION_NOT_ALLOWED',
      details: { current_state: 'complete', task_state: 'error' },
    });
    expect((await taskRow(db, failed))?.current_state).toBe('error');
  });

  it('404 for an unknown task or a step of another task; 400 for malformed input', async () => {
    const a = await start(block, 'succeed');
    const b = await start(block, 'succeed');
    gateFor(a).resolve();
    gateFor(b).resolve();
    await waitForTask(db, a, 'complete');
    const stepOfB = await stepUuid(db, b, 'after');

    const unknownTask = await caught(applyStepAction(db, uuidv7(), stepOfB, { action: 'resolve_manually' }));
    expect(unknownTask).toBeInstanceOf(NotFoundError);
    expect(unknownTask).toMatchObject({ code: 'TASKER_TASK_NOT_FOUND' });

    const wrongPair = await caught(applyStepAction(db, a, stepOfB, { action: 'resolve_manually' }));
    expect(wrongPair).toBeInstanceOf(NotFoundError);
    expect(wrongPair).toMatchObject({
      code: 'TASKER_STEP_NOT_FOUND',
      details: { task_uuid: a, step_uuid: stepOfB },
    });

    expect(
      await caught(applyStepAction(db, 'not-a-uuid', stepOfB, { action: 'resolve_manually' })),
    ).toBeInstanceOf(ValidationError);
    expect(
      await caught(applyStepAction(db, a, stepOfB, { action: 'explode' } as unknown as StepAction)),
    ).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
    expect(
      await caught(applyStepAction(db, a, stepOfB, { action: 'complete_manually' } as unknown as StepAction)),
    ).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
  });

  it('two operators acting on the same failed step at once: exactly one applies, the other gets a conflict', async () => {
    const poolA = getTestDb().openPool({ maxConnections: 2 });
    const poolB = getTestDb().openPool({ maxConnections: 2 });
    for (let round = 0; round < 4; round++) {
      const taskUuid = await start(chain, 'permanent');
      await waitForSettledTask(db, taskUuid);
      modes.set(taskUuid, 'succeed');
      const flakyUuid = await stepUuid(db, taskUuid, 'flaky');
      const results = await Promise.allSettled([
        applyStepAction(poolA, taskUuid, flakyUuid, { action: 'reset_for_retry', operator: 'a' }),
        applyStepAction(poolB, taskUuid, flakyUuid, {
          action: 'complete_manually',
          result: { value: 99 },
          operator: 'b',
        }),
      ]);
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(1);
      expect(rejected[0]?.reason).toBeInstanceOf(ConflictError);
      expect(rejected[0]?.reason).toMatchObject({ code: 'TASKER_STEP_ACTION_NOT_ALLOWED' });

      await waitForTask(db, taskUuid, 'complete');
      const outOfError = (await transitionsOfStep(db, taskUuid, 'flaky')).filter(
        (t) => t.from_state === 'error',
      );
      expect(outOfError).toHaveLength(1);
      expect((await taskTransitions(db, taskUuid)).filter((t) => t.from_state === 'error')).toHaveLength(1);
      const winner = outOfError[0]?.metadata.operator;
      const expected = winner === 'a' ? { value: 11 } : { value: 99 };
      expect(received.get(`${taskUuid}/report`)).toEqual({ fetch: { value: 1 }, flaky: expected });
      expect(await historyProblems(db, taskUuid)).toEqual([]);
    }
  });
});

describe('operator step actions on exact set-ups (no worker: the test runs the steps)', () => {
  const NS_MANUAL = 'operator_manual';
  const QUEUE = `worker_${NS_MANUAL}_queue`;
  const twoRoots = inlineTemplate(`
name: op_two_roots
namespace_name: ${NS_MANUAL}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: a
    handler: { callable: Manual.A }
    retry: { retryable: true, max_attempts: 3, backoff: fixed, backoff_base_ms: 60000, max_backoff_ms: 60000 }
  - name: b
    handler: { callable: Manual.B }
  - name: c
    handler: { callable: Manual.C }
    dependencies: [a, b]
`);
  let db: Database;

  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 4 });
  });

  it('a sibling left enqueued while the task was in error (its message archived) is sent again on revival', async () => {
    const taskUuid = await createTaskOf(db, twoRoots);
    const claimed = await claim(db, NS_MANUAL, 1);
    const first = claimed[0];
    if (first === undefined) throw new Error('nothing claimed');
    const other = first.stepName === 'a' ? 'b' : 'a';
    await finish(db, first, { success: false, message: 'broken', retryable: false });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    // A worker polls while the task is in error: the sibling's message is archived, the step stays enqueued.
    expect(await claim(db, NS_MANUAL)).toEqual([]);
    expect((await stepsByName(db, taskUuid))[other]?.current_state).toBe('enqueued');
    expect((await queueCounts(db, QUEUE)).total).toBe(0);

    const outcome = await applyStepAction(db, taskUuid, first.stepUuid, { action: 'reset_for_retry' });
    expect(outcome).toMatchObject({ stepState: 'enqueued', taskState: 'steps_in_process' });
    expect((await queueCounts(db, QUEUE)).total).toBe(2);

    const ran = await drain(db, NS_MANUAL, (step) => ({
      success: true,
      result: { name: step.stepName, deps: step.dependencyResults },
    }));
    expect(ran.map((s) => s.stepName).sort()).toEqual(['a', 'b', 'c']);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('complete');
    expect((await stepsByName(db, taskUuid)).c?.results).toEqual({
      name: 'c',
      deps: { a: { name: 'a', deps: {} }, b: { name: 'b', deps: {} } },
    });
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('complete_manually on a step waiting for a retry: dependents start at once, the retry message is absorbed', async () => {
    const taskUuid = await createTaskOf(db, twoRoots);
    for (const step of await claim(db, NS_MANUAL)) {
      await finish(
        db,
        step,
        step.stepName === 'a'
          ? { success: false, message: 'rate limited', retryable: true }
          : { success: true, result: { name: 'b' } },
      );
    }
    expect(await stepStates(db, taskUuid)).toEqual({ a: 'waiting_for_retry', b: 'complete', c: 'pending' });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('waiting_for_retry');

    const outcome = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'a'), {
      action: 'complete_manually',
      result: { name: 'a', manual: true },
    });
    expect(outcome).toEqual(
      expect.objectContaining({ stepState: 'complete', taskState: 'steps_in_process' }),
    );
    expect((await stepsByName(db, taskUuid)).a).toMatchObject({
      next_retry_at: null,
      results: { name: 'a', manual: true },
    });
    // The retry's delayed message comes due: it is archived, not run.
    await db.query(`UPDATE pgmq.q_${QUEUE} SET vt = now()`);
    const ran = await drain(db, NS_MANUAL, (step) => ({
      success: true,
      result: { deps: step.dependencyResults },
    }));
    expect(ran.map((s) => s.stepName)).toEqual(['c']);
    expect((await stepsByName(db, taskUuid)).c?.results).toEqual({
      deps: { a: { name: 'a', manual: true }, b: { name: 'b' } },
    });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('complete');
    expect((await queueCounts(db, QUEUE)).total).toBe(0);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('resolving the last unfinished step of a task in error finalizes it at once', async () => {
    const taskUuid = await createTaskOf(db, twoRoots);
    for (const step of await claim(db, NS_MANUAL)) {
      await finish(
        db,
        step,
        step.stepName === 'b'
          ? { success: false, message: 'bad', retryable: false }
          : { success: true, result: { name: 'a' } },
      );
    }
    expect(await stepStates(db, taskUuid)).toEqual({ a: 'complete', b: 'error', c: 'pending' });
    // c first: b is still in error, so the task stays in error and nothing is enqueued.
    const first = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'c'), {
      action: 'complete_manually',
      result: null,
    });
    expect(first).toMatchObject({ stepState: 'complete', taskState: 'error' });
    // b last: nothing is left to run, so the revived task is complete in the same commit.
    const outcome = await applyStepAction(db, taskUuid, await stepUuid(db, taskUuid, 'b'), {
      action: 'resolve_manually',
    });
    expect(outcome).toMatchObject({ stepState: 'resolved_manually', taskState: 'complete' });
    const task = await taskRow(db, taskUuid);
    expect(task).toMatchObject({ current_state: 'complete', complete: true });
    expect(task?.completed_at).toBeInstanceOf(Date);
    expect((await queueCounts(db, QUEUE)).total).toBe(0);
    expect(await stepStates(db, taskUuid)).toEqual({ a: 'complete', b: 'resolved_manually', c: 'complete' });
    expect((await stepsByName(db, taskUuid)).c).toMatchObject({ results: null, attempts: 0 });
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state).slice(-7)).toEqual([
      'error',
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'complete',
    ]);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });
});
