/**
 * `[orchestration] shutdown_timeout_ms` bounds a stop: with a request stuck on a database lock (as a scrape of a
 * never-analysed database or a blocked statement would be), the service stops within the deadline plus a
 * short grace, cancelling the stuck statement on the server, instead of waiting for it.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loadConfig.ts';
import { startOrchestrationService } from '../../src/services/orchestrationService.ts';
import { createMemoryLogger } from '../helpers/engine/memoryLogger.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

describe('an orchestration stop with a statement that would hang', () => {
  const testDb = useTestDatabase();

  it('finishes within shutdown_timeout_ms and a short grace, and cancels the statement', async () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    loaded.config.orchestration.staleness.enabled = false;
    loaded.config.orchestration.shutdown_timeout_ms = 500;
    const logs = createMemoryLogger('info');
    const db = testDb().openPool({ maxConnections: 4, applicationName: 'tasker-deadline-test' });
    const service = await startOrchestrationService({
      loaded,
      db,
      logger: logs.logger,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    const locker = testDb().openPool({ maxConnections: 1 });
    let release: () => void = () => undefined;
    const holding = locker.transaction(async (tx) => {
      await tx.query('LOCK TABLE tasker.tasks IN ACCESS EXCLUSIVE MODE');
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Listing tasks reads tasker.tasks: it waits for the lock.
      const stuck = fetch(`${service.url}/v1/tasks`).then(
        (response) => response.status,
        () => 'connection closed',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const waiting = await testDb().db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tasker-deadline-test' AND wait_event_type = 'Lock'",
      );
      expect(waiting.rows).toEqual([{ n: 1 }]);

      const started = performance.now();
      await service.stop();
      const took = performance.now() - started;
      // 500 ms of deadline, then the cancellation and at most 2 s of grace.
      expect(took).toBeLessThan(3_000);
      expect(
        logs.entries.some(
          (e) => e.msg === 'shutdown deadline passed: cancelling the database statements still running',
        ),
      ).toBe(true);
      const after = await testDb().db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tasker-deadline-test' AND state = 'active'",
      );
      expect(after.rows).toEqual([{ n: 0 }]);
      expect(await stuck).not.toBe(200);
    } finally {
      release();
      await holding;
      await locker.close();
      await db.close();
    }
  }, 30_000);
});
