/**
 * Concurrent creations on one pool share commits (tasker.create_tasks with several tasks): 80 createTask calls at once
 * all return their own committed task, in fewer round trips than tasks; a duplicate identity inside a batch
 * fails only its own request (the batch is retried task by task); every root step is enqueued exactly once.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { ConflictError } from '../../../src/domain/errors.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { queueCounts } from '../../helpers/engine/inspect.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** The pool, recording the batch size of every creation statement (tasker.create_tasks) that goes through it. */
function counting(db: Database): { db: Database; batches: number[] } {
  const batches: number[] = [];
  const query: Queryable['query'] = (sql, params, options) => {
    const tasks = params?.[0];
    if (/tasker\.create_tasks\(/.test(sql) && typeof tasks === 'string') {
      const parsed: unknown = JSON.parse(tasks);
      batches.push(Array.isArray(parsed) ? parsed.length : 0);
    }
    return db.query(sql, params, options);
  };
  return { db: Object.assign(Object.create(db) as Database, { query }), batches };
}

describe('concurrent task creation', () => {
  const getTestDb = useTestDatabase();
  const diamond = templateNamed('diamond_pattern');
  const strict = templateNamed('strict_order');

  beforeAll(async () => {
    const db = getTestDb().db;
    for (const template of [diamond, strict]) await registerTemplate(db, template);
  });

  it('commits many tasks together, each caller getting its own task, and enqueues every root once', async () => {
    const pool = getTestDb().openPool({ maxConnections: 4 });
    try {
      const { db, batches } = counting(pool);
      const created = await Promise.all(
        Array.from({ length: 80 }, (_, i) => createTask(db, requestFor(diamond, { n: i + 1 }))),
      );
      expect(new Set(created.map((t) => t.taskUuid)).size).toBe(80);
      for (const task of created) expect(task).toMatchObject({ state: 'steps_in_process', enqueuedSteps: 1 });
      // Fewer statements than tasks: the tasks submitted while a commit was on its way went together, in
      // batches of several; every task went in exactly one batch.
      expect(batches.some((size) => size > 1)).toBe(true);
      expect(batches.length).toBeLessThan(80);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(80);

      const { rows } = await pool.query<{ task_uuid: string; n: number; context_n: number }>(
        `SELECT t.task_uuid, (t.context ->> 'n')::int AS context_n, count(s.*)::int AS n
           FROM tasker.tasks t JOIN tasker.workflow_steps s USING (task_uuid)
          WHERE t.task_uuid = ANY($1::uuid[]) GROUP BY 1, 2`,
        [created.map((t) => t.taskUuid)],
      );
      // Each caller's uuid names the task made from its own request.
      const contextOf = new Map(rows.map((r) => [r.task_uuid, r.context_n]));
      created.forEach((task, i) => expect(contextOf.get(task.taskUuid)).toBe(i + 1));
      expect(rows.every((r) => r.n === 4)).toBe(true);
      expect((await queueCounts(pool, 'worker_math_queue')).total).toBe(80);
    } finally {
      await pool.close();
    }
  });

  it('fails only the duplicates of a batch, and creates the rest', async () => {
    const pool = getTestDb().openPool({ maxConnections: 2 });
    try {
      const requests = Array.from({ length: 30 }, (_, i) =>
        // Every third request repeats the same strict identity: one of them wins.
        i % 3 === 0 ? requestFor(strict, { order_id: 999 }) : requestFor(strict, { order_id: 1_000 + i }),
      );
      const outcomes = await Promise.allSettled(requests.map((request) => createTask(pool, request)));
      const rejected = outcomes.filter((o) => o.status === 'rejected');
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(21);
      expect(rejected).toHaveLength(9);
      for (const outcome of rejected) {
        expect(outcome.reason).toBeInstanceOf(ConflictError);
      }
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasker.tasks t JOIN tasker.named_tasks n USING (named_task_uuid)
          WHERE n.name = 'strict_order'`,
      );
      expect(rows[0]?.n).toBe(21);
      expect((await queueCounts(pool, 'worker_engine_identity_queue')).total).toBe(21);
    } finally {
      await pool.close();
    }
  });
});
