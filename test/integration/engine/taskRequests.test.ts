/**
 * Task requests arriving on orchestration_task_requests (from any producer): each becomes exactly one task,
 * even with two orchestrators reading the queue; a request that can never become a task is archived with a
 * warning and creates nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mathHandlers } from '../../../examples/handlers/index.ts';
import type { Database } from '../../../src/db/database.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { TASK_REQUESTS_QUEUE } from '../../../src/orchestration/orchestrator.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import { archivedMessages, countTasks, queueCounts, stepValues } from '../../helpers/engine/inspect.ts';
import { createMemoryLogger, LOG_LEVEL, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { waitFor, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

interface RequestMessage {
  request_id: string;
  task_request: unknown;
}

const diamondRequest = (n: number, correlationId: string): Record<string, unknown> => ({
  namespace: 'math',
  name: 'diamond_pattern',
  version: '1.0.0',
  context: { n },
  correlation_id: correlationId,
});

async function tasksWithCorrelation(db: Database, correlationId: string): Promise<string[]> {
  const { rows } = await db.query<{ task_uuid: string }>(
    'SELECT task_uuid FROM tasker.tasks WHERE correlation_id = $1',
    [correlationId],
  );
  return rows.map((row) => row.task_uuid);
}

describe('task requests through orchestration_task_requests (2 orchestrators, 1 worker)', () => {
  const getTestDb = useTestDatabase();
  const logs = createMemoryLogger('debug');
  let db: Database;
  let cluster: Cluster;
  let producer: PgmqMessagingProvider;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    producer = new PgmqMessagingProvider(db);
    cluster = await startCluster({
      db,
      orchestrators: 2,
      workers: 1,
      inline: false,
      handlers: mathHandlers,
      templates: templatesInNamespace('math'),
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    await cluster.stop();
    await producer.close();
  });

  it('a request sent with the provider becomes exactly one task, which completes', async () => {
    const correlationId = randomUUID();
    const msgId = await producer.send<RequestMessage>(TASK_REQUESTS_QUEUE, {
      request_id: 'req-provider-1',
      task_request: diamondRequest(3, correlationId),
    });
    const [taskUuid] = await waitFor('the requested task', async () => {
      const tasks = await tasksWithCorrelation(db, correlationId);
      return tasks.length > 0 ? tasks : undefined;
    });
    if (taskUuid === undefined) throw new Error('unreachable');
    await waitForTask(db, taskUuid, 'complete');
    expect(await stepValues(db, taskUuid)).toEqual({
      diamond_start: 9,
      diamond_branch_b: 18,
      diamond_branch_c: 27,
      diamond_end: 45,
    });
    // Archived in the commit that created the task: not in the queue, exactly once in the archive.
    const archived = (await archivedMessages<RequestMessage>(db, TASK_REQUESTS_QUEUE)).filter(
      (m) => m.message.request_id === 'req-provider-1',
    );
    expect(archived.map((m) => m.msg_id)).toEqual([msgId]);
    expect(await tasksWithCorrelation(db, correlationId)).toEqual([taskUuid]);
  });

  it('20 requests sent with plain SQL (no notification) become 20 tasks, each exactly once', async () => {
    const correlations = Array.from({ length: 20 }, () => randomUUID());
    const before = await countTasks(db);
    await db.query(
      `SELECT pgmq.send('orchestration_task_requests', jsonb_build_object('request_id', 'req-sql-' || i,
                        'task_request', jsonb_build_object('namespace', 'math', 'name', 'diamond_pattern',
                          'version', '1.0.0', 'context', jsonb_build_object('n', i), 'correlation_id', c)))
       FROM unnest($1::uuid[]) WITH ORDINALITY AS r(c, i)`,
      [correlations],
    );
    await waitFor('20 tasks', async () => (await countTasks(db)) === before + 20, 10_000);
    const tasks: string[] = [];
    for (const correlationId of correlations) {
      const found = await tasksWithCorrelation(db, correlationId);
      expect(found, correlationId).toHaveLength(1);
      tasks.push(...found);
    }
    for (const [index, taskUuid] of tasks.entries()) {
      await waitForTask(db, taskUuid, 'complete');
      const n = index + 1;
      expect((await stepValues(db, taskUuid)).diamond_end).toBe(n * n * 5);
    }
    expect(await queueCounts(db, TASK_REQUESTS_QUEUE)).toEqual({ total: 0, visible: 0 });
    // Both orchestrators polled; still no task was created twice.
    expect(await countTasks(db)).toBe(before + 20);
  });

  it.each([
    {
      case: 'an unknown template',
      request: { namespace: 'math', name: 'no_such_workflow', version: '1.0.0', context: {} },
      code: 'TASKER_TEMPLATE_NOT_FOUND',
    },
    {
      case: 'a context failing the input_schema',
      request: { namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: 'three' } },
      code: 'TASKER_INVALID_CONTEXT',
    },
    {
      case: 'an unknown field',
      request: {
        namespace: 'math',
        name: 'diamond_pattern',
        version: '1.0.0',
        context: { n: 1 },
        colour: 'red',
      },
      code: 'TASKER_INVALID_TASK_REQUEST',
    },
    {
      case: 'a request that is not an object',
      request: 'please run diamond',
      code: 'TASKER_INVALID_TASK_REQUEST',
    },
  ])(
    'a request with $case is archived, logged as rejected, and creates nothing',
    async ({ request, code }) => {
      const before = await countTasks(db);
      const requestId = `bad-${randomUUID()}`;
      const msgId = await producer.send<RequestMessage>(TASK_REQUESTS_QUEUE, {
        request_id: requestId,
        task_request: request,
      });
      await waitFor('the request to be archived', async () =>
        (await archivedMessages(db, TASK_REQUESTS_QUEUE)).some((m) => m.msg_id === msgId),
      );
      expect(await countTasks(db)).toBe(before);
      expect(await queueCounts(db, TASK_REQUESTS_QUEUE)).toEqual({ total: 0, visible: 0 });
      const rejected = logs.withMessage('task request rejected').filter((e) => e.request_id === requestId);
      expect(rejected).toHaveLength(1);
      expect(rejected[0]).toMatchObject({ level: LOG_LEVEL.warn, code, msg_id: msgId });
    },
  );

  it('logged nothing at error level while handling all of the above', () => {
    expect(unexpectedErrors(logs)).toEqual([]);
  });

  // A JSON null payload is a rejected request, archived like any other, not a poison message.
  it('a JSON null request is archived and does not hold up the request after it', async () => {
    const correlationId = randomUUID();
    const { rows } = await db.query<{ poison: string; good: string }>(
      `SELECT pgmq.send('orchestration_task_requests', 'null'::jsonb)::text AS poison,
              pgmq.send('orchestration_task_requests', $1::jsonb)::text AS good`,
      [JSON.stringify({ request_id: 'after-null', task_request: diamondRequest(2, correlationId) })],
    );
    const poison = rows[0]?.poison;
    await waitFor(
      'the request after the null one to become a task',
      async () => ((await tasksWithCorrelation(db, correlationId)).length === 1 ? true : undefined),
      3_000,
    );
    await waitFor(
      'the null request to be archived',
      async () => (await archivedMessages(db, TASK_REQUESTS_QUEUE)).some((m) => m.msg_id === poison),
      1_000,
    );
  });
});
