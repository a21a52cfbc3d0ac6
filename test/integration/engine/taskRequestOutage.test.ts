/**
 * A task request read while the database fails (an outage, a timeout) is not a rejected request: it goes back to
 * orchestration_task_requests and becomes its task once the database answers again, exactly once. Only requests
 * that can never become a task (bad input, unknown template, duplicate) are archived as rejected.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, QueryOptions, SqlParam } from '../../../src/db/database.ts';
import { DatabaseError } from '../../../src/domain/errors.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { Orchestrator, TASK_REQUESTS_QUEUE } from '../../../src/orchestration/orchestrator.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { archivedMessages } from '../../helpers/engine/inspect.ts';
import { createMemoryLogger } from '../../helpers/engine/memoryLogger.ts';
import { waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** The database, except that the first `failures` task creations fail as an unreachable server would. */
function failingCreations(db: Database, failures: number): Database & { failed: () => number } {
  let failed = 0;
  return Object.assign(Object.create(db) as Database, {
    query: <Row>(sql: string, params?: readonly SqlParam[], options?: QueryOptions) => {
      if (sql.includes('tasker.create_tasks') && failed < failures) {
        failed += 1;
        return Promise.reject(
          new DatabaseError('TASKER_DATABASE_UNAVAILABLE', 'cannot reach the database (test)'),
        );
      }
      return db.query<Row>(sql, params, options);
    },
    failed: () => failed,
  });
}

describe('a task request during a database failure', () => {
  const getTestDb = useTestDatabase();
  const logs = createMemoryLogger('debug');
  let orchestrator: Orchestrator;
  let flaky: ReturnType<typeof failingCreations>;

  beforeAll(async () => {
    const db = getTestDb().db;
    await registerTemplate(db, templateNamed('diamond_pattern'));
    flaky = failingCreations(db, 2);
    orchestrator = new Orchestrator({
      db: flaky,
      provider: new PgmqMessagingProvider(db),
      logger: logs.logger,
      pollIntervalMs: 200,
    });
    await orchestrator.start();
  });
  afterAll(() => orchestrator.stop());

  it('is handed back and becomes its task once the database answers, never archived as rejected', async () => {
    const correlationId = randomUUID();
    const producer = new PgmqMessagingProvider(getTestDb().db);
    const msgId = await producer.send(TASK_REQUESTS_QUEUE, {
      request_id: 'req-outage-1',
      task_request: {
        namespace: 'math',
        name: 'diamond_pattern',
        version: '1.0.0',
        context: { n: 2 },
        correlation_id: correlationId,
      },
    });
    const tasks = await waitFor(
      'the requested task',
      async () => {
        const { rows } = await getTestDb().db.query<{ task_uuid: string }>(
          'SELECT task_uuid FROM tasker.tasks WHERE correlation_id = $1',
          [correlationId],
        );
        return rows.length > 0 ? rows : undefined;
      },
      20_000,
    );
    expect(flaky.failed()).toBe(2);
    expect(tasks).toHaveLength(1);
    expect(logs.entries.filter((e) => e.msg === 'task request rejected')).toEqual([]);
    // Archived once: by the commit that created the task.
    const archived = (
      await archivedMessages<{ request_id: string }>(getTestDb().db, TASK_REQUESTS_QUEUE)
    ).filter((m) => m.message.request_id === 'req-outage-1');
    expect(archived.map((m) => m.msg_id)).toEqual([msgId]);
  }, 30_000);
});
