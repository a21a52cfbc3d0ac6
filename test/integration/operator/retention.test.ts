/**
 * Retention (src/db/sql/retention.sql, RetentionSweeper): tasks that finished before the cutoff go with everything that
 * belongs to them; running tasks, tasks with a pending DLQ entry and tasks that finished after the cutoff stay;
 * archived queue messages go after theirs while live messages stay; concurrent sweepers delete each task once.
 *
 * No worker runs here: the tests claim and complete steps themselves (operatorHelpers), so every state is exact.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.ts';
import type { Database } from '../../../src/db/database.ts';
import { cancelTask } from '../../../src/db/queries/orchestrationQueues.ts';
import { purgeFinishedTasks, purgeQueueArchives } from '../../../src/db/queries/retention.ts';
import { TaskerMetrics } from '../../../src/observability/metrics.ts';
import { RetentionSweeper, retentionSweeperSettings } from '../../../src/orchestration/retentionSweeper.ts';
import { createMemoryLogger, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { sleep } from '../../helpers/engine/wait.ts';
import { useBackendDatabase, useTestDatabase } from '../../helpers/testDatabase.ts';
import { claim, createTaskOf, drain, finish, inlineTemplate } from './operatorHelpers.ts';

/** fetch -> store: two steps and an edge, so every kind of row a task owns exists. */
const pairIn = (ns: string) =>
  inlineTemplate(`
name: kept_or_not
namespace_name: ${ns}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: fetch
    handler: { callable: Retention.Fetch }
  - name: store
    handler: { callable: Retention.Store }
    dependencies: [fetch]
    retry: { retryable: false, max_attempts: 1 }
`);

const succeed = () => ({ success: true as const, result: { ok: true } });

/** Every row anywhere that belongs to the task, by table. */
async function rowsOf(db: Database, taskUuid: string): Promise<Record<string, number>> {
  const { rows } = await db.query<Record<string, string>>(
    `WITH s AS (SELECT workflow_step_uuid AS id FROM tasker.workflow_steps WHERE task_uuid = $1)
     SELECT (SELECT count(*) FROM tasker.tasks WHERE task_uuid = $1) AS tasks,
            (SELECT count(*) FROM s) AS steps,
            (SELECT count(*) FROM tasker.workflow_step_edges e WHERE e.from_step_uuid IN (SELECT id FROM s)
                                                                  OR e.to_step_uuid IN (SELECT id FROM s)) AS edges,
            (SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1) AS task_transitions,
            (SELECT count(*) FROM tasker.workflow_step_transitions WHERE workflow_step_uuid IN (SELECT id FROM s)) AS step_transitions,
            (SELECT count(*) FROM tasker.workflow_step_result_audit WHERE task_uuid = $1) AS audit,
            (SELECT count(*) FROM tasker.tasks_dlq WHERE task_uuid = $1) AS dlq`,
    [taskUuid],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([key, value]) => [key, Number(value)]));
}

const NOTHING = { tasks: 0, steps: 0, edges: 0, task_transitions: 0, step_transitions: 0, audit: 0, dlq: 0 };

async function dbNow(db: Database): Promise<string> {
  const { rows } = await db.query<{ now: string }>('SELECT clock_timestamp()::text AS now');
  return rows[0]?.now ?? '';
}

async function purgeBefore(db: Database, cutoff: string, limit = 100): Promise<number> {
  const { rows } = await db.query<{ deleted: number }>(
    'SELECT tasker.purge_finished_tasks($1::timestamptz, $2) AS deleted',
    [cutoff, limit],
  );
  return rows[0]?.deleted ?? -1;
}

/** The file shares one database: tasks the tests before finished would count (and go first, being older). */
async function purgeEarlierTests(db: Database): Promise<void> {
  await purgeBefore(db, await dbNow(db), 1000);
}

/** A task of `ns` run to complete. */
async function completedTask(db: Database, ns: string): Promise<string> {
  const task = await createTaskOf(db, pairIn(ns));
  await drain(db, ns, succeed);
  return task;
}

describe('retention of finished tasks', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  beforeAll(() => {
    db = getTestDb().db;
  });

  it('deletes finished tasks with every row they own, and keeps running and dead-lettered ones', async () => {
    const ns = 'ret_kinds';
    const complete = await completedTask(db, ns);

    // error: fetch succeeds, store fails permanently.
    const failed = await createTaskOf(db, pairIn(ns));
    await drain(db, ns, (step) =>
      step.stepName === 'fetch' ? succeed() : { success: false, message: 'no', retryable: false },
    );
    const cancelled = await createTaskOf(db, pairIn(ns));
    expect(await cancelTask(db, cancelled, null)).toBe('cancelled');

    // In error with a pending DLQ entry (an operator still has to decide), and one whose entry is resolved.
    const pendingDlq = await createTaskOf(db, pairIn(ns));
    const resolvedDlq = await createTaskOf(db, pairIn(ns));
    await drain(db, ns, (step) =>
      step.stepName === 'fetch' ? succeed() : { success: false, message: 'no', retryable: false },
    );
    await db.query(
      `INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, resolution_status)
       VALUES ($1, 'error', 'manual_dlq', 'pending'), ($2, 'error', 'manual_dlq', 'manually_resolved')`,
      [pendingDlq, resolvedDlq],
    );

    // Running: its first step is claimed and has no result yet.
    const running = await createTaskOf(db, pairIn(ns));
    const [inFlight] = await claim(db, ns);
    expect(inFlight?.taskUuid).toBe(running);

    const states = await db.query<{ task_uuid: string; current_state: string }>(
      'SELECT task_uuid, current_state FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[])',
      [[complete, failed, cancelled, pendingDlq, resolvedDlq, running]],
    );
    expect(Object.fromEntries(states.rows.map((r) => [r.task_uuid, r.current_state]))).toEqual({
      [complete]: 'complete',
      [failed]: 'error',
      [cancelled]: 'cancelled',
      [pendingDlq]: 'error',
      [resolvedDlq]: 'error',
      [running]: 'steps_in_process',
    });
    const keptBefore = { pendingDlq: await rowsOf(db, pendingDlq), running: await rowsOf(db, running) };
    expect((await rowsOf(db, complete)).audit).toBe(2);

    await sleep(20);
    expect(await purgeFinishedTasks(db, 0.005, 100)).toBe(4);

    for (const gone of [complete, failed, cancelled, resolvedDlq])
      expect(await rowsOf(db, gone)).toEqual(NOTHING);
    expect(await rowsOf(db, pendingDlq)).toEqual(keptBefore.pendingDlq);
    expect(await rowsOf(db, running)).toEqual(keptBefore.running);

    // The running task still finishes: nothing of it was touched.
    if (inFlight === undefined) throw new Error('unreachable');
    expect(await finish(db, inFlight, succeed())).toBe('complete');
    await drain(db, ns, succeed);
    expect(
      (
        await db.query('SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 AND current_state = $2', [
          running,
          'complete',
        ])
      ).rows,
    ).toHaveLength(1);
  });

  it('keeps a task that finished after the cutoff, and deletes one that finished before it', async () => {
    const ns = 'ret_cutoff';
    await purgeEarlierTests(db);
    const older = await completedTask(db, ns);
    await sleep(5);
    const cutoff = await dbNow(db);
    await sleep(5);
    const newer = await completedTask(db, ns);

    expect(await purgeFinishedTasks(db, 3600, 100)).toBe(0);
    expect(await purgeBefore(db, cutoff)).toBe(1);
    expect((await rowsOf(db, older)).tasks).toBe(0);
    expect((await rowsOf(db, newer)).tasks).toBe(1);
  });

  it('takes at most the limit per call, oldest first', async () => {
    const ns = 'ret_limit';
    await purgeEarlierTests(db);
    const tasks: string[] = [];
    for (let i = 0; i < 5; i++) tasks.push(await completedTask(db, ns));
    await sleep(10);
    const cutoff = await dbNow(db);
    expect(await purgeBefore(db, cutoff, 2)).toBe(2);
    const left = await db.query<{ task_uuid: string }>(
      'SELECT task_uuid FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[]) ORDER BY task_uuid',
      [tasks],
    );
    expect(left.rows.map((r) => r.task_uuid)).toEqual(tasks.slice(2));
    expect(await purgeBefore(db, cutoff, 0)).toBe(0);
    expect(await purgeBefore(db, cutoff, 100)).toBe(3);
  });

  it('lets a finished task identity be used again once the task is gone', async () => {
    const ns = 'ret_identity';
    const template = inlineTemplate(`
name: strict_one
namespace_name: ${ns}
version: 1.0.0
identity_strategy: strict
steps:
  - name: only
    handler: { callable: Retention.Only }
`);
    const first = await createTaskOf(db, template, { order: 7 });
    await expect(createTaskOf(db, template, { order: 7 })).rejects.toMatchObject({
      code: 'TASKER_DUPLICATE_TASK',
    });
    await drain(db, ns, succeed);
    await sleep(20);
    expect(await purgeFinishedTasks(db, 0.005, 100)).toBeGreaterThanOrEqual(1);
    expect((await rowsOf(db, first)).tasks).toBe(0);
    const second = await createTaskOf(db, template, { order: 7 });
    expect(second).not.toBe(first);
  });

  it('concurrent sweepers delete every finished task once, batch by batch, and count what they deleted', async () => {
    const ns = 'ret_race';
    await purgeEarlierTests(db);
    const tasks: string[] = [];
    for (let i = 0; i < 24; i++) tasks.push(await createTaskOf(db, pairIn(ns)));
    await drain(db, ns, succeed);
    await sleep(20);
    const logs = createMemoryLogger('debug');
    const metrics = new TaskerMetrics();
    const sweepers = [1, 2, 3].map(
      () =>
        new RetentionSweeper({
          db,
          // 18 ms: everything finished above is older; tasks other tests finish later are not.
          finishedTaskHours: 0.005 / 3600,
          queueArchiveHours: 1000,
          intervalMs: 60_000,
          batchSize: 3,
          logger: logs.logger,
          metrics,
        }),
    );
    const reports = await Promise.all(sweepers.map((sweeper) => sweeper.runOnce()));
    expect(reports.reduce((sum, report) => sum + report.tasks, 0)).toBe(24);
    const left = await db.query('SELECT 1 FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[])', [tasks]);
    expect(left.rows).toHaveLength(0);
    const counted = await metrics.registry.getSingleMetric('tasker_retention_deleted_total')?.get();
    expect(counted?.values.find((v) => v.labels.kind === 'task')?.value).toBe(24);
    const runs = await metrics.registry.getSingleMetric('tasker_retention_runs_total')?.get();
    expect(runs?.values.find((v) => v.labels.outcome === 'success')?.value).toBe(3);
    expect(unexpectedErrors(logs)).toEqual([]);
  });
});

describe('retention of queue archives', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  beforeAll(() => {
    db = getTestDb().db;
  });

  const count = async (table: string): Promise<number> =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM pgmq.${table}`)).rows[0]?.n);

  it('deletes archived messages past their retention, in batches, and never a live message', async () => {
    await db.query(`SELECT pgmq.create('ret_archive')`);
    const { rows } = await db.query<{ id: string }>(
      `SELECT pgmq.send('ret_archive', jsonb_build_object('i', g)) AS id FROM generate_series(1, 8) AS g`,
    );
    const ids = rows.map((r) => r.id);
    await db.query(`SELECT pgmq.archive('ret_archive', $1::bigint[])`, [ids.slice(0, 5)]);
    expect([await count('q_ret_archive'), await count('a_ret_archive')]).toEqual([3, 5]);

    expect((await purgeQueueArchives(db, 3600, 100)).get('ret_archive')).toBeUndefined();
    await sleep(20);
    expect((await purgeQueueArchives(db, 0.005, 2)).get('ret_archive')).toBe(2);
    expect([await count('q_ret_archive'), await count('a_ret_archive')]).toEqual([3, 3]);

    const sweeper = new RetentionSweeper({
      db,
      finishedTaskHours: 1000,
      queueArchiveHours: 0.005 / 3600,
      intervalMs: 60_000,
      batchSize: 2,
    });
    expect((await sweeper.runOnce()).archivedMessages).toEqual({ ret_archive: 3 });
    expect([await count('q_ret_archive'), await count('a_ret_archive')]).toEqual([3, 0]);
  });
});

describe('retention settings', () => {
  it('defaults: finished tasks 30 days, archived messages 7 days, a sweep every 5 minutes, 1,000 per commit', () => {
    const config = configSchema.parse({});
    expect(config.orchestration.retention.enabled).toBe(true);
    expect(retentionSweeperSettings(config.orchestration)).toEqual({
      finishedTaskHours: 720,
      queueArchiveHours: 168,
      intervalMs: 300_000,
      batchSize: 1000,
    });
  });
});

describe('retention on the embedded database (PGlite)', () => {
  const getDb = useBackendDatabase('pglite');

  it('runs both sweeps', async () => {
    const db = getDb();
    const ns = 'ret_pglite';
    const task = await completedTask(db, ns);
    await sleep(20);
    const sweeper = new RetentionSweeper({
      db,
      finishedTaskHours: 0.005 / 3600,
      queueArchiveHours: 0.005 / 3600,
      intervalMs: 60_000,
      batchSize: 100,
    });
    const report = await sweeper.runOnce();
    expect(report.tasks).toBe(1);
    expect(report.archivedMessages).toEqual({ worker_ret_pglite_queue: 2 });
    expect((await rowsOf(db, task)).tasks).toBe(0);
  });
});
