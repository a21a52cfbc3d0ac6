/**
 * The readiness SQL (tasker.get_step_readiness_status, tasker.get_task_execution_context) step by step,
 * driving a workflow by hand with claim_steps / complete_many_and_claim (batches of one, through completeOne; no
 * worker, no orchestrator), plus the fencing of a result by its attempt and a result caught between storage and
 * application by a cancel.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import type { ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import { cancelTask, processStepResults } from '../../../src/db/queries/orchestrationQueues.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { stepStates, stepsByName, taskRow } from '../../helpers/engine/inspect.ts';
import { waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

interface Readiness {
  name: string;
  current_state: string;
  dependencies_satisfied: boolean;
  retry_eligible: boolean;
  ready_for_execution: boolean;
  total_parents: number;
  completed_parents: number;
  attempts: number;
}

interface ExecutionContext {
  total_steps: number;
  pending_steps: number;
  in_progress_steps: number;
  completed_steps: number;
  failed_steps: number;
  ready_steps: number;
  execution_status: string;
  recommended_action: string;
  completion_percentage: string;
  health_status: string;
}

const WORKER = 'manual-worker';

async function readiness(db: Database, taskUuid: string): Promise<Record<string, Omit<Readiness, 'name'>>> {
  const { rows } = await db.query<Readiness>(
    `SELECT name, current_state, dependencies_satisfied, retry_eligible, ready_for_execution, total_parents,
            completed_parents, attempts
     FROM tasker.get_step_readiness_status($1)`,
    [taskUuid],
  );
  return Object.fromEntries(rows.map(({ name, ...rest }) => [name, rest]));
}

async function executionContext(db: Database, taskUuid: string): Promise<ExecutionContext> {
  const { rows } = await db.query<ExecutionContext>(
    `SELECT total_steps, pending_steps, in_progress_steps, completed_steps, failed_steps, ready_steps,
            execution_status, recommended_action, completion_percentage::text, health_status
     FROM tasker.get_task_execution_context($1)`,
    [taskUuid],
  );
  const row = rows[0];
  if (row === undefined) throw new Error('no execution context');
  return row;
}

/** A row of the readiness table in short form. */
const r = (
  current_state: string,
  deps: boolean,
  ready: boolean,
  parents: [completed: number, total: number],
  attempts = 0,
): Omit<Readiness, 'name'> => ({
  current_state,
  dependencies_satisfied: deps,
  retry_eligible: true,
  ready_for_execution: ready,
  completed_parents: parents[0],
  total_parents: parents[1],
  attempts,
});

describe('readiness and execution context, driven by hand', () => {
  const getTestDb = useTestDatabase();
  let db: Database;

  /** The template copied into its own namespace, so each test has its own queue. */
  async function isolated(name: string, namespace: string): Promise<TaskTemplate> {
    const template = { ...templateNamed(name), namespace };
    await registerTemplate(db, template);
    return template;
  }

  async function claim(namespace: string, expected: number): Promise<ClaimedStep[]> {
    const claimed = await claimSteps(db, namespace, WORKER, 30, 10);
    expect(claimed.map((c) => c.stepName).sort(), 'claimed steps').toHaveLength(expected);
    return claimed.sort((a, b) => a.stepName.localeCompare(b.stepName));
  }

  function succeed(step: ClaimedStep, result: unknown): Promise<string> {
    return completeOne(db, {
      taskUuid: step.taskUuid,
      stepUuid: step.stepUuid,
      attempt: step.attempt,
      success: true,
      payload: result,
      workerId: WORKER,
      executionMs: 1,
      inline: true,
    });
  }

  function fail(step: ClaimedStep, failure: Record<string, unknown>): Promise<string> {
    return completeOne(db, {
      taskUuid: step.taskUuid,
      stepUuid: step.stepUuid,
      attempt: step.attempt,
      success: false,
      payload: failure,
      workerId: WORKER,
      executionMs: 1,
      inline: true,
    });
  }

  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 4 });
  });

  it('follows a diamond from creation through a retry to completion', async () => {
    const ns = 'ready_diamond';
    const template = await isolated('diamond_pattern', ns);
    const { taskUuid } = await createTask(db, requestFor(template, { n: 3 }));

    // Created: the root is enqueued at once (not "ready": ready means eligible to be enqueued).
    expect(await readiness(db, taskUuid)).toEqual({
      diamond_start: r('enqueued', true, false, [0, 0]),
      diamond_branch_b: r('pending', false, false, [0, 1]),
      diamond_branch_c: r('pending', false, false, [0, 1]),
      diamond_end: r('pending', false, false, [0, 2]),
    });
    expect(await executionContext(db, taskUuid)).toEqual({
      total_steps: 4,
      pending_steps: 3,
      in_progress_steps: 1,
      completed_steps: 0,
      failed_steps: 0,
      ready_steps: 0,
      execution_status: 'processing',
      recommended_action: 'wait_for_completion',
      completion_percentage: '0.00',
      health_status: 'healthy',
    });

    const [start] = await claim(ns, 1);
    if (start === undefined) throw new Error('unreachable');
    expect(start).toMatchObject({
      stepName: 'diamond_start',
      attempt: 1,
      taskContext: { n: 3 },
      dependencyResults: {},
    });
    expect((await readiness(db, taskUuid)).diamond_start).toEqual(r('in_progress', true, false, [0, 0], 1));
    expect(await succeed(start, { value: 9 })).toBe('complete');

    // Both branches' one parent is complete: they were enqueued in the same commit.
    expect(await readiness(db, taskUuid)).toEqual({
      diamond_start: r('complete', true, false, [0, 0], 1),
      diamond_branch_b: r('enqueued', true, false, [1, 1]),
      diamond_branch_c: r('enqueued', true, false, [1, 1]),
      diamond_end: r('pending', false, false, [0, 2]),
    });
    expect(await executionContext(db, taskUuid)).toMatchObject({
      pending_steps: 1,
      in_progress_steps: 2,
      completed_steps: 1,
      execution_status: 'processing',
      completion_percentage: '25.00',
    });

    const [b, c] = await claim(ns, 2);
    if (b === undefined || c === undefined) throw new Error('unreachable');
    expect(b.dependencyResults).toEqual({ diamond_start: { value: 9 } });
    expect(await succeed(b, { value: 18 })).toBe('complete');
    expect((await readiness(db, taskUuid)).diamond_end).toEqual(r('pending', false, false, [1, 2]));

    // c fails and asks for a 150 ms retry: nothing is ready or running, the task waits.
    expect(
      await fail(c, { message: 'busy', error_type: 'retryable_error', retryable: true, retry_after_ms: 150 }),
    ).toBe('retry');
    expect((await readiness(db, taskUuid)).diamond_branch_c).toEqual(
      r('waiting_for_retry', true, false, [1, 1], 1),
    );
    expect(await executionContext(db, taskUuid)).toMatchObject({
      in_progress_steps: 0,
      ready_steps: 0,
      execution_status: 'waiting_for_dependencies',
      recommended_action: 'wait_for_dependencies',
      completion_percentage: '50.00',
      health_status: 'recovering',
    });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('waiting_for_retry');

    // Once due, c is ready: the only moment a step of this engine is ready without being enqueued.
    const due = await waitFor('c to become ready', async () => {
      const row = (await readiness(db, taskUuid)).diamond_branch_c;
      return row?.ready_for_execution === true ? row : undefined;
    });
    expect(due).toEqual(r('waiting_for_retry', true, true, [1, 1], 1));
    expect(await executionContext(db, taskUuid)).toMatchObject({
      ready_steps: 1,
      execution_status: 'has_ready_steps',
      recommended_action: 'execute_ready_steps',
      health_status: 'recovering',
    });

    const [retry] = await claim(ns, 1);
    if (retry === undefined) throw new Error('unreachable');
    expect(retry).toMatchObject({ stepName: 'diamond_branch_c', attempt: 2 });
    expect(await executionContext(db, taskUuid)).toMatchObject({
      execution_status: 'processing',
      ready_steps: 0,
    });
    expect(await succeed(retry, { value: 27 })).toBe('complete');
    expect((await readiness(db, taskUuid)).diamond_end).toEqual(r('enqueued', true, false, [2, 2]));

    const [end] = await claim(ns, 1);
    if (end === undefined) throw new Error('unreachable');
    // Every ancestor's result, by name.
    expect(end.dependencyResults).toEqual({
      diamond_start: { value: 9 },
      diamond_branch_b: { value: 18 },
      diamond_branch_c: { value: 27 },
    });
    expect(await succeed(end, { value: 45 })).toBe('complete');
    expect((await taskRow(db, taskUuid))?.current_state).toBe('complete');
    expect(await executionContext(db, taskUuid)).toEqual({
      total_steps: 4,
      pending_steps: 0,
      in_progress_steps: 0,
      completed_steps: 4,
      failed_steps: 0,
      ready_steps: 0,
      execution_status: 'all_complete',
      recommended_action: 'finalize_task',
      completion_percentage: '100.00',
      health_status: 'healthy',
    });
  });

  it('a permanent failure blocks the task; a sibling finishing later leaves its child pending (but "ready")', async () => {
    const ns = 'ready_blocked';
    const template = await isolated('complex_dag', ns);
    const { taskUuid } = await createTask(db, requestFor(template, { n: 2 }));
    const [init] = await claim(ns, 1);
    if (init === undefined) throw new Error('unreachable');
    expect(await succeed(init, { value: 2 })).toBe('complete');
    const [left, right] = await claim(ns, 2);
    if (left === undefined || right === undefined) throw new Error('unreachable');
    expect(left.stepName).toBe('dag_process_left');

    expect(await fail(left, { message: 'bad input', error_type: 'permanent_error', retryable: false })).toBe(
      'error',
    );
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    expect(await executionContext(db, taskUuid)).toMatchObject({
      failed_steps: 1,
      in_progress_steps: 1,
      execution_status: 'blocked_by_failures',
      recommended_action: 'handle_failures',
      health_status: 'blocked',
    });
    const failed = (await readiness(db, taskUuid)).dag_process_left;
    const limits = await db.query<{ max_attempts: number; retryable: boolean }>(
      `SELECT max_attempts, retryable FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = 'dag_process_left'`,
      [taskUuid],
    );
    expect(limits.rows[0]).toEqual({ max_attempts: 3, retryable: true });
    // Attempts are left (1 of 3, the template default), but the handler said the failure is permanent: nothing will retry it.
    expect(failed).toMatchObject({
      current_state: 'error',
      attempts: 1,
      retry_eligible: false,
      ready_for_execution: false,
    });

    // The right branch was running: its result is kept, but nothing new starts in a failed task.
    expect(await succeed(right, { value: 6 })).toBe('complete');
    expect(await stepStates(db, taskUuid)).toMatchObject({
      dag_process_right: 'complete',
      dag_analyze: 'pending',
      dag_validate: 'pending',
    });
    const rows = await readiness(db, taskUuid);
    // The readiness function does not look at the task's state: analyze counts as ready in an errored task.
    expect(rows.dag_analyze).toEqual(r('pending', true, true, [1, 1]));
    expect(rows.dag_validate).toEqual(r('pending', false, false, [1, 2]));
    // The context's precedence still reports the failure first.
    expect(await executionContext(db, taskUuid)).toMatchObject({
      ready_steps: 1,
      execution_status: 'blocked_by_failures',
    });
    expect(await claimSteps(db, ns, WORKER, 30, 10)).toEqual([]);
  });

  it('completing refuses a result from an attempt that no longer holds the claim', async () => {
    const ns = 'ready_fencing';
    const template = await isolated('diamond_pattern', ns);
    const { taskUuid } = await createTask(db, requestFor(template, { n: 1 }));
    const [start] = await claim(ns, 1);
    if (start === undefined) throw new Error('unreachable');
    expect(await succeed({ ...start, attempt: 2 }, { value: 999 })).toBe('stale');
    expect((await stepsByName(db, taskUuid)).diamond_start).toMatchObject({
      current_state: 'in_progress',
      results: null,
    });
    expect(await succeed(start, { value: 1 })).toBe('complete');
    expect(await succeed(start, { value: 1 })).toBe('stale');
  });

  it('a result stored for orchestration but cancelled before it was applied is dropped', async () => {
    const ns = 'ready_cancel';
    const template = await isolated('diamond_pattern', ns);
    const { taskUuid } = await createTask(db, requestFor(template, { n: 1 }));
    const [start] = await claim(ns, 1);
    if (start === undefined) throw new Error('unreachable');
    const stored = await completeOne(db, {
      taskUuid,
      stepUuid: start.stepUuid,
      attempt: 1,
      success: true,
      payload: { value: 1 },
      workerId: WORKER,
      executionMs: 1,
      inline: false,
    });
    expect(stored).toBe('stored');
    expect((await stepsByName(db, taskUuid)).diamond_start?.current_state).toBe('enqueued_for_orchestration');
    expect(await cancelTask(db, taskUuid, null)).toBe('cancelled');
    // Applying it now (as process_step_results does: the task locked first, in the same transaction) does nothing.
    const outcome = await db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE', [taskUuid]);
      const { rows } = await tx.query<{ outcome: string }>(
        'SELECT outcome FROM tasker._apply_step_result($1, NULL)',
        [start.stepUuid],
      );
      return rows[0]?.outcome;
    });
    expect(outcome).toBe('noop');
    // The orchestrator reading the message later handles (archives) it and changes nothing.
    expect(
      await processStepResults(db, 50, 30, '01900000-0000-7000-8000-000000000001'),
    ).toBeGreaterThanOrEqual(1);
    expect(await stepStates(db, taskUuid)).toEqual({
      diamond_start: 'cancelled',
      diamond_branch_b: 'cancelled',
      diamond_branch_c: 'cancelled',
      diamond_end: 'cancelled',
    });
    expect(await claimSteps(db, ns, WORKER, 30, 10)).toEqual([]);
  });
});
