/**
 * Executor pools under a burst: 400 task requests land on orchestration_task_requests at once. The
 * task_initializer stage's pool grows from min_executors toward max_executors while the queue is above its
 * high watermark, runs that many drains in parallel, and shrinks back to min below the low watermark. Every
 * request becomes exactly one task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { Orchestrator, TASK_REQUESTS_QUEUE } from '../../../src/orchestration/orchestrator.ts';
import { templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import { createMemoryLogger, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { sleep, waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const BURST = 400;

describe('executor pools under a burst of task requests', () => {
  const getTestDb = useTestDatabase();
  const logs = createMemoryLogger('info');
  let db: Database;
  let provider: PgmqMessagingProvider;
  let orchestrator: Orchestrator;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    for (const template of templatesInNamespace('math')) await registerTemplate(db, template);
    provider = new PgmqMessagingProvider(db, { logger: logs.logger });
    orchestrator = new Orchestrator({
      db,
      provider,
      logger: logs.logger,
      // Small batches so that a burst is many full reads; polling only, so nothing but the pool decides.
      listen: false,
      pollIntervalMs: 50,
      batchSize: 10,
      poolSampleIntervalMs: 25,
      executorPools: {
        task_initializer: { minExecutors: 1, maxExecutors: 4, highWatermark: 50, lowWatermark: 5 },
      },
    });
  });

  afterAll(async () => {
    await orchestrator.stop();
    await provider.close();
    await db.close();
  });

  it('grows toward max above the high watermark, drains in parallel, and shrinks back to min', async () => {
    await provider.ensureQueue(TASK_REQUESTS_QUEUE);
    await provider.sendBatch(
      TASK_REQUESTS_QUEUE,
      Array.from({ length: BURST }, (_, i) => ({
        request_id: `burst-${i}`,
        task_request: { namespace: 'math', name: 'diamond_pattern', version: '1.0.0', context: { n: i + 1 } },
      })),
      { notify: false },
    );
    expect(orchestrator.executorSnapshots().task_initializer).toMatchObject({ limit: 1, min: 1, max: 4 });

    let peakLimit = 0;
    let peakActive = 0;
    const watching = (async () => {
      for (;;) {
        const pool = orchestrator.executorSnapshots().task_initializer;
        peakLimit = Math.max(peakLimit, pool.limit);
        peakActive = Math.max(peakActive, pool.active);
        if (pool.queue_depth === 0 && pool.limit === pool.min && pool.active === 0) return pool;
        await sleep(5);
      }
    })();
    await orchestrator.start();
    const settled = await watching;

    const { rows } = await db.query<{ n: number; distinct_requests: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT context ->> 'n')::int AS distinct_requests FROM tasker.tasks`,
    );
    expect(rows[0]).toEqual({ n: BURST, distinct_requests: BURST });
    expect(peakLimit).toBe(4);
    expect(peakActive, 'several drains ran at once').toBeGreaterThan(1);
    expect(settled.scale_ups).toBeGreaterThanOrEqual(3);
    expect(settled.scale_downs).toBeGreaterThanOrEqual(3);
    await waitFor(
      'every request archived',
      async () => (await provider.queueDepth(TASK_REQUESTS_QUEUE)).total === 0,
      5_000,
    );
    expect(unexpectedErrors(logs)).toEqual([]);
  });
});
