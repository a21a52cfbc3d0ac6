/**
 * Task creation against the database: identity strategies and idempotency keys (one task per identity, even
 * under 50 concurrent requests), input_schema validation with field details, unknown templates.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { ConflictError, NotFoundError, TaskerError, ValidationError } from '../../../src/domain/errors.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { queueCounts } from '../../helpers/engine/inspect.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** The TaskerError a promise rejects with; fails the test if it resolves or rejects with something else. */
async function rejection(promise: Promise<unknown>): Promise<TaskerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TaskerError) return error;
    throw error;
  }
  throw new Error('expected a TaskerError, but the call succeeded');
}

async function taskCount(db: Database, templateName: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasker.tasks t JOIN tasker.named_tasks n USING (named_task_uuid)
     WHERE n.name = $1`,
    [templateName],
  );
  return rows[0]?.n ?? 0;
}

describe('task creation', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  const strict = templateNamed('strict_order');
  const keyed = templateNamed('keyed_order');
  const linear = templateNamed('mathematical_sequence');
  const diamond = templateNamed('diamond_pattern');

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    for (const template of [strict, keyed, linear, diamond]) await registerTemplate(db, template);
    await registerTemplate(db, { ...linear, version: '2.0.0' });
  });

  it('strict identity: the same context (keys in any order) is a duplicate; another context is a new task', async () => {
    const first = await createTask(db, requestFor(strict, { order_id: 1, note: { a: 1, b: 2 } }));
    expect(first).toMatchObject({ state: 'steps_in_process', enqueuedSteps: 1 });
    const duplicate = await rejection(
      createTask(db, requestFor(strict, { note: { b: 2, a: 1 }, order_id: 1 })),
    );
    expect(duplicate).toBeInstanceOf(ConflictError);
    expect(duplicate.code).toBe('TASKER_DUPLICATE_TASK');
    expect(duplicate.details).toEqual({ namespace: 'engine_identity', name: 'strict_order' });
    expect(duplicate.message).toContain('identity strategy "strict", same context');
    // The existing task's id is not given away.
    expect(duplicate.message).not.toContain(first.taskUuid);
    expect(await taskCount(db, 'strict_order')).toBe(1);

    await createTask(db, requestFor(strict, { order_id: 2, note: { a: 1, b: 2 } }));
    expect(await taskCount(db, 'strict_order')).toBe(2);
    // The refused request left nothing behind: one root-step message per created task.
    expect((await queueCounts(db, 'worker_engine_identity_queue')).total).toBe(2);
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasker.workflow_steps s JOIN tasker.tasks t USING (task_uuid)
       JOIN tasker.named_tasks n USING (named_task_uuid) WHERE n.name = 'strict_order'`,
    );
    expect(rows[0]?.n).toBe(2);
  });

  it('an idempotency_key overrides the strategy: same key conflicts even with another context', async () => {
    await createTask(db, { ...requestFor(strict, { order_id: 100 }), idempotency_key: 'order-100' });
    const sameKey = await rejection(
      createTask(db, { ...requestFor(strict, { order_id: 101 }), idempotency_key: 'order-100' }),
    );
    expect(sameKey).toBeInstanceOf(ConflictError);
    expect(sameKey.code).toBe('TASKER_DUPLICATE_TASK');
    expect(sameKey.message).toContain('same idempotency_key');
    // With a key, the context no longer decides: the same context under a new key is a new task.
    await createTask(db, { ...requestFor(strict, { order_id: 100 }), idempotency_key: 'order-100-again' });
    const { rows } = await db.query<{ order_id: number }>(
      `SELECT (context ->> 'order_id')::int AS order_id FROM tasker.tasks t JOIN tasker.named_tasks n
       USING (named_task_uuid) WHERE n.name = 'strict_order' AND (context ->> 'order_id')::int >= 100 ORDER BY 1`,
    );
    expect(rows.map((r) => r.order_id)).toEqual([100, 100]);
  });

  it('always_unique: identical requests make new tasks, but the same idempotency_key conflicts', async () => {
    const before = await taskCount(db, 'diamond_pattern');
    const a = await createTask(db, requestFor(diamond, { n: 3 }));
    const b = await createTask(db, requestFor(diamond, { n: 3 }));
    expect(a.taskUuid).not.toBe(b.taskUuid);
    await createTask(db, { ...requestFor(diamond, { n: 1 }), idempotency_key: 'diamond-key' });
    const conflict = await rejection(
      createTask(db, { ...requestFor(diamond, { n: 2 }), idempotency_key: 'diamond-key' }),
    );
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict.code).toBe('TASKER_DUPLICATE_TASK');
    expect(await taskCount(db, 'diamond_pattern')).toBe(before + 3);
  });

  it('caller_provided: a request without an idempotency_key is refused; with one it is deduplicated', async () => {
    const missing = await rejection(createTask(db, requestFor(keyed, { order_id: 7 })));
    expect(missing).toBeInstanceOf(ValidationError);
    expect(missing.code).toBe('TASKER_IDEMPOTENCY_KEY_REQUIRED');
    expect(missing.message).toContain('idempotency_key');
    expect(await taskCount(db, 'keyed_order')).toBe(0);

    await createTask(db, { ...requestFor(keyed, { order_id: 7 }), idempotency_key: 'k-7' });
    const again = await rejection(
      createTask(db, { ...requestFor(keyed, { order_id: 7 }), idempotency_key: 'k-7' }),
    );
    expect(again.code).toBe('TASKER_DUPLICATE_TASK');
    await createTask(db, { ...requestFor(keyed, { order_id: 7 }), idempotency_key: 'k-7b' });
    expect(await taskCount(db, 'keyed_order')).toBe(2);
  });

  it.each([
    {
      case: 'an odd number',
      context: { even_number: 3 },
      field: { path: '/even_number', message: 'must be multiple of 2' },
    },
    {
      case: 'a number below the minimum',
      context: { even_number: 0 },
      field: { path: '/even_number', message: 'must be >= 2' },
    },
    {
      case: 'a string',
      context: { even_number: 'four' },
      field: { path: '/even_number', message: 'must be integer' },
    },
    {
      case: 'a missing field',
      context: { odd_number: 3 },
      // Ajv reports a missing property at its parent; the message names it.
      field: { path: '(root)', message: "must have required property 'even_number'" },
    },
  ])('input_schema rejects $case with the field in the details', async ({ context, field }) => {
    const before = await taskCount(db, 'mathematical_sequence');
    const error = await rejection(createTask(db, requestFor(linear, context)));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe('TASKER_INVALID_CONTEXT');
    expect(error.details.fields).toContainEqual(field);
    expect(error.message).toContain('math/mathematical_sequence');
    expect(error.message).toContain(field.message);
    expect(await taskCount(db, 'mathematical_sequence')).toBe(before);
  });

  it('a valid context passes the input_schema', async () => {
    const created = await createTask(db, requestFor(linear, { even_number: 4 }));
    expect(created.enqueuedSteps).toBe(1);
  });

  it('an unknown version is NotFound and lists the registered versions, newest first', async () => {
    const error = await rejection(
      createTask(db, { ...requestFor(linear, { even_number: 2 }), version: '9.9.9' }),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('TASKER_TEMPLATE_NOT_FOUND');
    expect(error.details).toEqual({
      namespace: 'math',
      name: 'mathematical_sequence',
      version: '9.9.9',
      versions: ['2.0.0', '1.0.0'],
    });
    expect(error.message).toContain('registered versions: 2.0.0, 1.0.0');
  });

  it('an unknown name is NotFound with no versions and a hint to start a worker', async () => {
    const error = await rejection(
      createTask(db, { namespace: 'math', name: 'no_such_workflow', version: '1.0.0' }),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('TASKER_TEMPLATE_NOT_FOUND');
    expect(error.details.versions).toEqual([]);
    expect(error.message).toMatch(/start a worker/);
  });

  it('a request with an unknown field is refused naming the field', async () => {
    const error = await rejection(createTask(db, { ...requestFor(diamond, { n: 1 }), contxt: { n: 1 } }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe('TASKER_INVALID_TASK_REQUEST');
    expect(error.details.fields).toContainEqual({ field: 'contxt', message: 'unknown field' });
  });

  it('50 concurrent identical strict requests create exactly one task; 49 get TASKER_DUPLICATE_TASK', async () => {
    const request = requestFor(strict, { order_id: 5000 });
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => createTask(db, request)));
    const created = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(49);
    for (const reason of refused) {
      expect(reason).toBeInstanceOf(ConflictError);
      expect((reason as ConflictError).code).toBe('TASKER_DUPLICATE_TASK');
    }
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasker.tasks WHERE context = '{"order_id": 5000}'::jsonb`,
    );
    expect(rows[0]?.n).toBe(1);
  });

  // An expected refusal (unique violation) must not cost the pool its connection.
  it('a refused duplicate keeps its pooled database connection', async () => {
    const single = getTestDb().openPool({ maxConnections: 1 });
    const backendPid = async (): Promise<number | undefined> =>
      (await single.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    await createTask(single, requestFor(strict, { order_id: 777 }));
    const before = await backendPid();
    expect((await rejection(createTask(single, requestFor(strict, { order_id: 777 })))).code).toBe(
      'TASKER_DUPLICATE_TASK',
    );
    expect(await backendPid()).toBe(before);
  });
});
