/**
 * The staleness detector (tasker.detect_stale_tasks + StalenessDetector): a task without progress past the
 * threshold of its state moves to error with exactly one pending DLQ entry, even with several detectors racing;
 * per-template lifecycle overrides; max lifetime; dry run; the task's steps stop running and a late result
 * cannot change them; and an operator's reset revives the task, which then completes.
 *
 * No worker runs here: the tests claim and complete steps themselves, so every state is set up exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import type { Database, QueryResult, SqlParam } from '../../../src/db/database.ts';
import { applyStepAction } from '../../../src/db/queries/stepActions.ts';
import {
  StalenessDetector,
  stalenessDetectorSettings,
} from '../../../src/orchestration/stalenessDetector.ts';
import type { StalenessThresholds, StaleTaskReport } from '../../../src/orchestration/stalenessDetector.ts';
import { configSchema } from '../../../src/config/schema.ts';
import {
  historyProblems,
  queueCounts,
  stepStates,
  stepsByName,
  taskRow,
  taskTransitions,
  transitionsOfStep,
} from '../../helpers/engine/inspect.ts';
import { createMemoryLogger, LOG_LEVEL, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import {
  backdate,
  claim,
  createTaskOf,
  dlqRows,
  drain,
  finish,
  inlineTemplate,
  moveTask,
} from './operatorHelpers.ts';

/** fetch -> process -> report, a chain; each test has its own namespace (its own queue). */
const chainIn = (ns: string) =>
  inlineTemplate(`
name: stale_chain
namespace_name: ${ns}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: fetch
    handler: { callable: Stale.Fetch }
  - name: process
    handler: { callable: Stale.Process }
    dependencies: [fetch]
    retry: { retryable: true, max_attempts: 3, backoff: fixed, backoff_base_ms: 100, max_backoff_ms: 3600000 }
  - name: report
    handler: { callable: Stale.Report }
    dependencies: [process]
`);

/** Two steps with a tighter steps_in_process limit and a 2-hour max duration of its own. */
const strictIn = (ns: string) =>
  inlineTemplate(`
name: stale_strict
namespace_name: ${ns}
version: 1.0.0
identity_strategy: always_unique
lifecycle: { max_steps_in_process_minutes: 5, max_duration_minutes: 120 }
steps:
  - name: fetch
    handler: { callable: Stale.Fetch }
  - name: process
    handler: { callable: Stale.Process }
    dependencies: [fetch]
`);

const THRESHOLDS: StalenessThresholds = {
  waitingForDependenciesMinutes: 60,
  waitingForRetryMinutes: 30,
  stepsInProcessMinutes: 30,
  taskMaxLifetimeMinutes: 1440,
};

/** Every step succeeds with something its dependents can check. */
const succeed = (step: { stepName: string; dependencyResults: Record<string, unknown> }) => ({
  success: true as const,
  result: { step: step.stepName, saw: Object.keys(step.dependencyResults).sort() },
});

const getTestDb = useTestDatabase();

describe('staleness detection', () => {
  let db: Database;
  const processor = uuidv7();
  const logs = createMemoryLogger('debug');

  const detector = (options: { db?: Database; dryRun?: boolean; batchSize?: number } = {}) =>
    new StalenessDetector({
      db: options.db ?? db,
      thresholds: THRESHOLDS,
      intervalMs: 60_000,
      batchSize: options.batchSize ?? 100,
      dryRun: options.dryRun ?? false,
      processorUuid: processor,
      logger: logs.logger,
    });

  const reportFor = (reports: readonly StaleTaskReport[], taskUuid: string) =>
    reports.filter((r) => r.task_uuid === taskUuid);

  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 6 });
  });
  afterAll(() => {
    expect(
      unexpectedErrors(logs).filter(
        (e) => e.msg !== 'staleness detection failed; it runs again at the next interval',
      ),
    ).toEqual([]);
  });

  it('moves a task stuck in waiting_for_dependencies to error with one DLQ entry, its enqueued step failed', async () => {
    const ns = 'op_stale_deps';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { order: 1 });
    await moveTask(db, taskUuid, ['steps_in_process', 'evaluating_results', 'waiting_for_dependencies']);
    await backdate(db, taskUuid, 61);

    const reports = await detector().runOnce();
    expect(reportFor(reports, taskUuid)).toEqual([
      {
        task_uuid: taskUuid,
        namespace: ns,
        name: 'stale_chain',
        state: 'waiting_for_dependencies',
        minutes_in_state: expect.closeTo(61, 0) as number,
        threshold_minutes: 60,
        reason: 'staleness_timeout',
        action: 'moved_to_error',
      },
    ]);

    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    const last = (await taskTransitions(db, taskUuid)).at(-1);
    expect(last).toMatchObject({
      from_state: 'waiting_for_dependencies',
      to_state: 'error',
      processor_uuid: processor,
      metadata: { event: 'staleness_timeout', threshold_minutes: 60, exceeded: 'state_threshold' },
    });

    const entries = await dlqRows(db, taskUuid);
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    expect(entry).toMatchObject({
      original_state: 'waiting_for_dependencies',
      dlq_reason: 'staleness_timeout',
      resolution_status: 'pending',
      metadata: { threshold_minutes: 60, detected_by: processor, exceeded: 'state_threshold' },
    });
    expect(Number(entry?.metadata.minutes_in_state)).toBeCloseTo(61, 0);
    // The snapshot is the task row and its steps as they were when the detector found them.
    expect(entry?.task_snapshot).toMatchObject({
      task_uuid: taskUuid,
      current_state: 'waiting_for_dependencies',
      context: { order: 1 },
    });
    const snapshotSteps = (entry?.task_snapshot.steps ?? []) as {
      name: string;
      current_state: string;
      attempts: number;
    }[];
    expect(snapshotSteps.map((s) => [s.name, s.current_state, s.attempts])).toEqual([
      ['fetch', 'enqueued', 0],
      ['process', 'pending', 0],
      ['report', 'pending', 0],
    ]);

    // The step that could still run failed with the task; pending steps never started and stay pending.
    expect(await stepStates(db, taskUuid)).toEqual({ fetch: 'error', process: 'pending', report: 'pending' });
    const fetch = (await stepsByName(db, taskUuid)).fetch;
    expect(fetch?.last_error).toMatchObject({
      error_type: 'staleness_timeout',
      retryable: false,
      previous_state: 'enqueued',
    });
    expect(await historyProblems(db, taskUuid)).toEqual([]);

    // Its queue message is not run: a claim archives it (the task is in error).
    expect(await claim(db, ns)).toEqual([]);
    expect(await stepStates(db, taskUuid)).toEqual({ fetch: 'error', process: 'pending', report: 'pending' });

    const warned = logs.withMessage('stale task moved to error and dead-lettered');
    expect(warned.filter((e) => e.task_uuid === taskUuid)).toEqual([
      expect.objectContaining({ level: LOG_LEVEL.warn, task_uuid: taskUuid, reason: 'staleness_timeout' }),
    ]);

    // Detecting again changes nothing: the task is no longer active.
    expect(reportFor(await detector().runOnce(), taskUuid)).toEqual([]);
    expect(await dlqRows(db, taskUuid)).toHaveLength(1);
  });

  it('leaves tasks under their threshold alone, and judges steps_in_process by the latest step activity', async () => {
    const ns = 'op_stale_progress';
    const chain = chainIn(ns);
    const young = await createTaskOf(db, chainIn('op_stale_young'), { order: 'young' });
    await moveTask(db, young, ['steps_in_process', 'evaluating_results', 'waiting_for_dependencies']);
    await backdate(db, young, 59);

    // steps_in_process for 45 minutes, but its first step finished 2 minutes ago: it is progressing.
    const progressing = await createTaskOf(db, chain, { order: 'progressing' });
    await backdate(db, progressing, 45);
    const [fetch] = await claim(db, ns);
    expect(fetch?.taskUuid).toBe(progressing);
    if (fetch === undefined) throw new Error('fetch not claimed');
    await finish(db, fetch, succeed(fetch));
    await db.query(
      `UPDATE tasker.workflow_step_transitions st SET created_at = clock_timestamp() - interval '2 minutes'
       FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = st.workflow_step_uuid AND ws.task_uuid = $1
         AND st.most_recent`,
      [progressing],
    );
    await db.query(
      `UPDATE tasker.task_transitions SET created_at = clock_timestamp() - interval '45 minutes'
       WHERE task_uuid = $1 AND most_recent`,
      [progressing],
    );
    expect((await taskRow(db, progressing))?.current_state).toBe('steps_in_process');

    const reports = await detector().runOnce();
    expect(reportFor(reports, young)).toEqual([]);
    expect(reportFor(reports, progressing)).toEqual([]);
    expect((await taskRow(db, young))?.current_state).toBe('waiting_for_dependencies');
    expect((await taskRow(db, progressing))?.current_state).toBe('steps_in_process');
    expect(await dlqRows(db, young)).toEqual([]);
    expect(await dlqRows(db, progressing)).toEqual([]);

    // Once its steps, too, have been quiet past 30 minutes, it is stale.
    await backdate(db, progressing, 31);
    expect(reportFor(await detector().runOnce(), progressing)).toMatchObject([
      { state: 'steps_in_process', threshold_minutes: 30, action: 'moved_to_error' },
    ]);
    // process was enqueued (ready after fetch): it failed with the task; fetch keeps its result.
    expect(await stepStates(db, progressing)).toEqual({
      fetch: 'complete',
      process: 'error',
      report: 'pending',
    });
  });

  it('two detectors racing over the same stale tasks: each task moved once, one DLQ entry each, no error logs', async () => {
    const ns = 'op_stale_race';
    const chain = chainIn(ns);
    const tasks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const taskUuid = await createTaskOf(db, chain, { race: i });
      await backdate(db, taskUuid, 40);
      tasks.push(taskUuid);
    }
    const poolA = getTestDb().openPool({ maxConnections: 2 });
    const poolB = getTestDb().openPool({ maxConnections: 2 });
    const errorsBefore = unexpectedErrors(logs).length;

    const [a, b] = await Promise.all([detector({ db: poolA }).runOnce(), detector({ db: poolB }).runOnce()]);
    const mine = [...a, ...b].filter((r) => tasks.includes(r.task_uuid));
    const moved = mine.filter((r) => r.action === 'moved_to_error');
    expect(moved.map((r) => r.task_uuid).sort()).toEqual([...tasks].sort());
    // Whatever one detector did not move, the other did; the rest of its rows are lost races.
    expect(mine.every((r) => r.action === 'moved_to_error' || r.action === 'lost_race')).toBe(true);

    for (const taskUuid of tasks) {
      expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
      expect(await dlqRows(db, taskUuid)).toHaveLength(1);
      const toError = (await taskTransitions(db, taskUuid)).filter((t) => t.to_state === 'error');
      expect(toError).toHaveLength(1);
      expect(await historyProblems(db, taskUuid)).toEqual([]);
    }
    expect(unexpectedErrors(logs).length).toBe(errorsBefore);
  });

  it('honours a template lifecycle override (max_steps_in_process_minutes: 5) and its max_duration_minutes', async () => {
    const ns = 'op_stale_override';
    const chain = chainIn(ns);
    const strict = strictIn(ns);
    const overridden = await createTaskOf(db, strict, { t: 'strict' });
    const defaulted = await createTaskOf(db, chain, { t: 'default' });
    await backdate(db, overridden, 10);
    await backdate(db, defaulted, 10);

    const reports = await detector().runOnce();
    expect(reportFor(reports, overridden)).toMatchObject([
      { state: 'steps_in_process', threshold_minutes: 5, action: 'moved_to_error' },
    ]);
    expect(reportFor(reports, defaulted)).toEqual([]);
    expect((await dlqRows(db, overridden))[0]?.metadata).toMatchObject({ threshold_minutes: 5 });
    expect((await taskRow(db, defaulted))?.current_state).toBe('steps_in_process');

    // Max lifetime: progressing (a transition a moment ago) but older than the template's 120 minutes.
    const old = await createTaskOf(db, strict, { t: 'old' });
    await db.query(
      `UPDATE tasker.tasks SET created_at = now() - interval '121 minutes' WHERE task_uuid = $1`,
      [old],
    );
    const oldDefault = await createTaskOf(db, chain, { t: 'old-default' });
    await db.query(
      `UPDATE tasker.tasks SET created_at = now() - interval '121 minutes' WHERE task_uuid = $1`,
      [oldDefault],
    );
    const lifetime = await detector().runOnce();
    expect(reportFor(lifetime, old)).toMatchObject([{ threshold_minutes: 120, action: 'moved_to_error' }]);
    expect((await dlqRows(db, old))[0]?.metadata).toMatchObject({
      exceeded: 'max_lifetime',
      threshold_minutes: 120,
    });
    // The default max lifetime is 24 hours.
    expect(reportFor(lifetime, oldDefault)).toEqual([]);
    await db.query(`UPDATE tasker.tasks SET created_at = now() - interval '25 hours' WHERE task_uuid = $1`, [
      oldDefault,
    ]);
    expect(reportFor(await detector().runOnce(), oldDefault)).toMatchObject([
      { threshold_minutes: 24 * 60, action: 'moved_to_error' },
    ]);
  });

  it('a dry run reports what it would move and changes nothing', async () => {
    const ns = 'op_stale_dry';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { dry: true });
    await backdate(db, taskUuid, 45);
    const before = {
      task: await taskRow(db, taskUuid),
      steps: await stepsByName(db, taskUuid),
      transitions: (await taskTransitions(db, taskUuid)).length,
      queue: await queueCounts(db, `worker_${ns}_queue`),
    };

    const reports = await detector({ dryRun: true }).runOnce();
    expect(reportFor(reports, taskUuid)).toMatchObject([
      { state: 'steps_in_process', threshold_minutes: 30, action: 'would_move' },
    ]);
    expect(await taskRow(db, taskUuid)).toEqual(before.task);
    expect(await stepsByName(db, taskUuid)).toEqual(before.steps);
    expect((await taskTransitions(db, taskUuid)).length).toBe(before.transitions);
    expect(await dlqRows(db, taskUuid)).toEqual([]);
    expect(await queueCounts(db, `worker_${ns}_queue`)).toEqual(before.queue);
    expect(
      logs.withMessage('stale task found (dry run: left as it is)').filter((e) => e.task_uuid === taskUuid),
    ).toHaveLength(1);

    // Clean up: the real sweep takes it (other tests count the queue).
    await detector().runOnce();
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
  });

  it('a retry scheduled in the future is progress; an overdue one is not, and the waiting step fails', async () => {
    const ns = 'op_stale_retry';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { retry: true });
    await drainOnly(db, ns, taskUuid, 'fetch');
    const [process] = (await claim(db, ns)).filter((s) => s.taskUuid === taskUuid);
    if (process === undefined) throw new Error('process not claimed');
    // A retryable failure asking for a 50-minute wait (the template allows backoff up to an hour).
    await finish(db, process, {
      success: false,
      message: 'down',
      retryable: true,
      retryAfterMs: 50 * 60_000,
    });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('waiting_for_retry');
    await backdate(db, taskUuid, 40);

    expect(reportFor(await detector().runOnce(), taskUuid)).toEqual([]);

    // The retry was due 35 minutes ago and nothing happened.
    await db.query(
      `UPDATE tasker.workflow_steps SET next_retry_at = now() - interval '35 minutes'
       WHERE task_uuid = $1 AND name = 'process'`,
      [taskUuid],
    );
    expect(reportFor(await detector().runOnce(), taskUuid)).toMatchObject([
      { state: 'waiting_for_retry', threshold_minutes: 30, action: 'moved_to_error' },
    ]);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.process).toMatchObject({ current_state: 'error', next_retry_at: null, attempts: 1 });
    expect(steps.process?.last_error).toMatchObject({
      error_type: 'staleness_timeout',
      previous_state: 'waiting_for_retry',
    });
    const processTransitions = await transitionsOfStep(db, taskUuid, 'process');
    expect(processTransitions.at(-1)).toMatchObject({
      from_state: 'waiting_for_retry',
      to_state: 'error',
      metadata: { event: 'staleness_timeout', previous_error: { message: 'down' } },
    });
  });

  it('a step running when its task went stale: lease archived, its late result refused, nothing corrupted', async () => {
    const ns = 'op_stale_late';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { late: true });
    const [fetch] = (await claim(db, ns)).filter((s) => s.taskUuid === taskUuid);
    if (fetch === undefined) throw new Error('fetch not claimed');
    expect((await stepsByName(db, taskUuid)).fetch?.current_state).toBe('in_progress');
    await backdate(db, taskUuid, 31);
    const queueBefore = await queueCounts(db, `worker_${ns}_queue`);

    expect(reportFor(await detector().runOnce(), taskUuid)).toMatchObject([{ action: 'moved_to_error' }]);
    expect((await stepsByName(db, taskUuid)).fetch).toMatchObject({ current_state: 'error', attempts: 1 });
    expect((await queueCounts(db, `worker_${ns}_queue`)).total).toBe(queueBefore.total - 1);

    // The hung handler returns at last: its result is stale and changes nothing.
    expect(await finish(db, fetch, succeed(fetch))).toBe('stale');
    expect(await stepStates(db, taskUuid)).toEqual({ fetch: 'error', process: 'pending', report: 'pending' });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');
    expect(await historyProblems(db, taskUuid)).toEqual([]);
  });

  it('a stale task revived by reset_for_retry runs to completion; its DLQ entry stays for the operator to close', async () => {
    const ns = 'op_stale_revive';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { revive: true });
    await drainOnly(db, ns, taskUuid, 'fetch');
    await backdate(db, taskUuid, 31);
    expect(reportFor(await detector().runOnce(), taskUuid)).toMatchObject([{ action: 'moved_to_error' }]);
    expect(await stepStates(db, taskUuid)).toEqual({
      fetch: 'complete',
      process: 'error',
      report: 'pending',
    });
    // The old message of process is archived by any claim while the task is in error.
    expect(await claim(db, ns)).toEqual([]);

    const process = (await stepsByName(db, taskUuid)).process;
    if (process === undefined) throw new Error('no process step');
    const outcome = await applyStepAction(db, taskUuid, process.workflow_step_uuid, {
      action: 'reset_for_retry',
      operator: 'oncall',
      reason: 'worker pool restored',
    });
    expect(outcome).toEqual({
      taskUuid,
      stepUuid: process.workflow_step_uuid,
      stepState: 'enqueued',
      taskState: 'steps_in_process',
    });
    expect((await stepsByName(db, taskUuid)).process).toMatchObject({ attempts: 0, last_error: null });

    const ran = await drain(db, ns, succeed);
    expect(ran.filter((s) => s.taskUuid === taskUuid).map((s) => [s.stepName, s.attempt])).toEqual([
      ['process', 1],
      ['report', 1],
    ]);
    expect((await taskRow(db, taskUuid))?.current_state).toBe('complete');
    expect((await stepsByName(db, taskUuid)).report?.results).toEqual({
      step: 'report',
      saw: ['fetch', 'process'],
    });
    expect((await taskTransitions(db, taskUuid)).map((t) => t.to_state)).toEqual([
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'error',
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'complete',
    ]);
    expect(await historyProblems(db, taskUuid)).toEqual([]);
    expect((await dlqRows(db, taskUuid)).map((e) => e.resolution_status)).toEqual(['pending']);
  });

  it('the detector loop: runs every interval, survives database errors, and stop() waits for a run', async () => {
    const ns = 'op_stale_loop';
    const chain = chainIn(ns);
    const taskUuid = await createTaskOf(db, chain, { loop: true });
    await backdate(db, taskUuid, 31);
    let calls = 0;
    // Fails its first query, then is the real pool.
    const flaky: Database = Object.create(db) as Database;
    flaky.query = async <Row>(sql: string, params?: readonly SqlParam[]): Promise<QueryResult<Row>> => {
      calls += 1;
      if (calls === 1) throw Object.assign(new Error('connection terminated'), { code: '57P01' });
      return db.query<Row>(sql, params);
    };
    const loop = new StalenessDetector({
      db: flaky,
      thresholds: THRESHOLDS,
      intervalMs: 100,
      batchSize: 100,
      processorUuid: processor,
      logger: logs.logger,
    });
    const started = Date.now();
    loop.start();
    loop.start();
    await waitFor('the detector loop to move the task', async () =>
      (await taskRow(db, taskUuid))?.current_state === 'error' ? true : undefined,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(calls).toBeGreaterThanOrEqual(2);
    // A terminated connection passes: logged as a warning, not as a failure.
    const interrupted = logs.withMessage(
      'staleness detection interrupted (database connection lost or pool exhausted); it runs again at the next interval',
    );
    expect(interrupted.map((entry) => entry.level)).toEqual([40]); // warn
    expect(logs.withMessage('staleness detection failed; it runs again at the next interval')).toEqual([]);

    const running = loop.runOnce();
    expect(loop.runOnce()).toBe(running);
    await loop.stop();
    await loop.stop();
    const callsAfterStop = calls;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls).toBe(callsAfterStop);
    expect(await dlqRows(db, taskUuid)).toHaveLength(1);
  });

  it('reads its settings from [orchestration.staleness] with the documented defaults', () => {
    const config = configSchema.parse({});
    expect(config.orchestration.staleness).toEqual({
      enabled: true,
      detection_interval_seconds: 300,
      batch_size: 100,
      waiting_for_dependencies_minutes: 60,
      waiting_for_retry_minutes: 30,
      steps_in_process_minutes: 30,
      dry_run: false,
    });
    expect(stalenessDetectorSettings(config.orchestration)).toEqual({
      thresholds: { ...THRESHOLDS, taskMaxLifetimeMinutes: 60 },
      intervalMs: 300_000,
      batchSize: 100,
      dryRun: false,
    });
  });
});

/** Runs only `stepName` of one task (claiming what is visible and leaving everything else enqueued). */
async function drainOnly(db: Database, ns: string, taskUuid: string, stepName: string): Promise<void> {
  const claimed = await claim(db, ns, 50);
  let done = false;
  for (const step of claimed) {
    if (step.taskUuid === taskUuid && step.stepName === stepName) {
      await finish(db, step, succeed(step));
      done = true;
    } else {
      throw new Error(`drainOnly claimed an unexpected step ${step.stepName} of ${step.taskUuid}`);
    }
  }
  if (!done) throw new Error(`drainOnly: ${stepName} of ${taskUuid} was not claimable`);
}
