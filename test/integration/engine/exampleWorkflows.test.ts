/**
 * Every example workflow (examples/templates) end to end through 2 orchestrators and 2 workers, in both
 * result modes: final states, attempts, the values that flowed along the edges, one handler run per step,
 * and clean transition histories.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { RESULT_MODES, startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { exampleTemplates, requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { dependencyOrderViolations, edgesOf } from '../../helpers/engine/graph.ts';
import {
  duplicateStepTransitions,
  duplicateTaskTransitions,
  historyProblems,
  orphanRows,
  resultAudit,
  stepStates,
  stepTransitions,
  stepValues,
  stepsByName,
  taskTransitions,
} from '../../helpers/engine/inspect.ts';
import { waitForSettledTask, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import { HAPPY_PATHS, HAPPY_TASK_PATH } from '../../helpers/engine/exampleExpectations.ts';

const HAPPY_STEP_PATH = ['pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration', 'complete'];
const FAILED_RUN = ['pending', 'enqueued', 'in_progress', 'enqueued_as_error_for_orchestration'];

// One database for the file: createTask's process-wide template cache must not see two databases.
const getTestDb = useTestDatabase();

describe.each(RESULT_MODES)('example workflows on 2 orchestrators + 2 workers ($mode)', ({ inline }) => {
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
      templates: exampleTemplates(),
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it.each(HAPPY_PATHS)(
    '$template completes with the expected value on every step, each handler run once',
    async ({ template: name, context, values }) => {
      const template = templateNamed(name);
      const { taskUuid } = await createTask(db, requestFor(template, context));
      const task = await waitForTask(db, taskUuid, ['complete', 'error']);
      expect(task.current_state).toBe('complete');
      expect(task.complete).toBe(true);
      expect(task.completed_at).toBeInstanceOf(Date);

      expect(await stepValues(db, taskUuid)).toEqual(values);
      const steps = await stepsByName(db, taskUuid);
      expect(Object.keys(steps).sort()).toEqual(template.steps.map((s) => s.name).sort());
      for (const step of Object.values(steps)) {
        expect(step, step.name).toMatchObject({
          current_state: 'complete',
          attempts: 1,
          last_error: null,
          processed: true,
          in_process: false,
        });
      }

      // Each handler ran exactly once, succeeded, on attempt 1, and the stored result names the worker that ran it.
      const executions = cluster.recorder.forTask(taskUuid);
      expect(executions.map((e) => e.stepName).sort()).toEqual(Object.keys(values).sort());
      expect(cluster.recorder.stepsRunMoreThanOnce([taskUuid])).toEqual([]);
      expect(executions.every((e) => e.outcome === 'success' && e.attempt === 1)).toBe(true);
      const audit = await resultAudit(db, taskUuid);
      expect(audit.map((a) => a.step_name).sort()).toEqual(Object.keys(values).sort());
      const workerIds = cluster.workers.map((w) => w.id);
      for (const row of audit) {
        expect(row).toMatchObject({ success: true, attempt: 1 });
        expect(workerIds).toContain(row.worker_uuid);
        expect(row.worker_uuid).toBe(executions.find((e) => e.stepName === row.step_name)?.workerId);
      }

      // No state entered twice; every history a clean chain; the task took the direct path.
      expect(await duplicateStepTransitions(db, [taskUuid])).toEqual([]);
      expect(await duplicateTaskTransitions(db, [taskUuid])).toEqual([]);
      expect(await historyProblems(db, taskUuid)).toEqual([]);
      const transitions = await taskTransitions(db, taskUuid);
      expect(transitions.map((t) => t.to_state)).toEqual(HAPPY_TASK_PATH);
      expect(transitions.map((t) => t.sort_key)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(transitions.filter((t) => t.most_recent).map((t) => t.to_state)).toEqual(['complete']);
      const stepHistory = await stepTransitions(db, taskUuid);
      for (const name of Object.keys(values)) {
        expect(
          stepHistory.filter((t) => t.step_name === name).map((t) => t.to_state),
          name,
        ).toEqual(HAPPY_STEP_PATH);
      }
      // No step started before all of its parents were complete.
      const edges = await edgesOf(db, taskUuid);
      expect(edges.length).toBe(template.steps.reduce((n, s) => n + s.dependencies.length, 0));
      expect(dependencyOrderViolations(edges, executions)).toEqual([]);
    },
  );

  it('retry_then_succeed completes: flaky_step on its third attempt, its result passed on', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('retry_then_succeed')));
    await waitForTask(db, taskUuid, 'complete');
    const steps = await stepsByName(db, taskUuid);
    expect(steps.flaky_step).toMatchObject({
      current_state: 'complete',
      attempts: 3,
      results: { succeeded_on_attempt: 3 },
    });
    expect(steps.after_flaky).toMatchObject({
      current_state: 'complete',
      attempts: 1,
      results: { echoed: { succeeded_on_attempt: 3 } },
    });
    expect(cluster.recorder.forTask(taskUuid).map((e) => `${e.stepName}#${e.attempt}:${e.outcome}`)).toEqual([
      'flaky_step#1:error',
      'flaky_step#2:error',
      'flaky_step#3:success',
      'after_flaky#1:success',
    ]);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state)).toEqual([
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'waiting_for_retry',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'complete',
    ]);
  });

  it('always_fails ends in error after 3 attempts; the dependent step never runs', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('always_fails')));
    await waitForTask(db, taskUuid, ['error', 'complete']);
    expect(await stepStates(db, taskUuid)).toEqual({ doomed_step: 'error', never_runs: 'pending' });
    const steps = await stepsByName(db, taskUuid);
    expect(steps.doomed_step).toMatchObject({ attempts: 3, results: null });
    expect(steps.doomed_step?.last_error).toMatchObject({
      error_type: 'retryable_error',
      retryable: true,
      attempt: 3,
      message: 'still failing on attempt 3',
    });
    expect(steps.never_runs).toMatchObject({ attempts: 0, results: null });
    expect(cluster.recorder.forTask(taskUuid).map((e) => `${e.stepName}#${e.attempt}`)).toEqual([
      'doomed_step#1',
      'doomed_step#2',
      'doomed_step#3',
    ]);
    expect(
      (await stepTransitions(db, taskUuid))
        .filter((t) => t.step_name === 'doomed_step')
        .map((t) => t.to_state),
    ).toEqual([
      ...FAILED_RUN,
      'waiting_for_retry',
      ...FAILED_RUN,
      'waiting_for_retry',
      ...FAILED_RUN,
      'error',
    ]);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state).slice(-3)).toEqual([
      'evaluating_results',
      'blocked_by_failures',
      'error',
    ]);
  });

  it('permanent_error fails its step on the first attempt and the task with it', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('permanent_error')));
    await waitForTask(db, taskUuid, ['error', 'complete']);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.rejecting_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(steps.rejecting_step?.last_error).toEqual({
      message: 'the request is invalid and will never succeed',
      error_type: 'permanent_error',
      retryable: false,
      code: 'INVALID_REQUEST',
      attempt: 1,
    });
    expect(cluster.recorder.forTask(taskUuid)).toHaveLength(1);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state)).toEqual([
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'blocked_by_failures',
      'error',
    ]);
  });

  it('mixed_outcomes fails fast on the permanent error; no step starts after that', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('mixed_outcomes')));
    await waitForSettledTask(db, taskUuid);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.permanent_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(steps.permanent_step?.last_error).toMatchObject({ code: 'INVALID_REQUEST', retryable: false });
    // The other two ran only if a worker claimed them before the failure was applied (retries.test.ts pins
    // each ordering down); either way none is retried to exhaustion and stored attempts match the runs.
    const ran = (name: string): number =>
      cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === name).length;
    expect(
      steps.succeeding_step?.current_state === 'complete'
        ? steps.succeeding_step.results
        : { unstarted: steps.succeeding_step?.current_state, attempts: steps.succeeding_step?.attempts },
    ).toEqual(
      steps.succeeding_step?.attempts === 1 ? { value: 'ok' } : { unstarted: 'enqueued', attempts: 0 },
    );
    expect(['enqueued', 'waiting_for_retry', 'error']).toContain(steps.retryable_step?.current_state);
    for (const step of Object.values(steps)) expect(ran(step.name), step.name).toBe(step.attempts);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  // Runs after the others: every row they wrote points at a task, step and transition that exists (the
  // engine's tables have no foreign keys, docs/decisions/0009-engine-tables-without-foreign-keys.md; the
  // functions keep them consistent).
  it('leaves no row pointing at a missing task, step or transition', async () => {
    const orphans = await orphanRows(db);
    expect(Object.values(orphans).length).toBe(6);
    expect(orphans).toEqual(Object.fromEntries(Object.keys(orphans).map((kind) => [kind, 0])));
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM tasker.workflow_step_result_audit',
    );
    expect(Number(rows[0]?.n)).toBeGreaterThan(0);
  });
});
