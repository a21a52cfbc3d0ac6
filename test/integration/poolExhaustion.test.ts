/**
 * `[database]` pool settings honoured, and an exhausted pool reported, never hung: a query that finds every
 * connection checked out waits `connection_timeout_ms`, then fails with TASKER_DATABASE_POOL_EXHAUSTED (which
 * says what to raise); the REST API answers 503 with Retry-After instead of a 500 or a hang, and answers
 * normally again once connections are free.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loadConfig.ts';
import type { Database } from '../../src/db/database.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startOrchestrationService } from '../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../src/services/orchestrationService.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

describe('an exhausted database pool', () => {
  const testDb = useTestDatabase();

  it('fails a waiting query after connection_timeout_ms with TASKER_DATABASE_POOL_EXHAUSTED', async () => {
    const db = testDb().openPool({ maxConnections: 2, connectionTimeoutMs: 300 });
    try {
      const holders = [db.query('SELECT pg_sleep(1.5)'), db.query('SELECT pg_sleep(1.5)')];
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      const error = await db.query('SELECT 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      const waited = performance.now() - started;
      expect(error).toMatchObject({
        code: 'TASKER_DATABASE_POOL_EXHAUSTED',
        details: { max_connections: 2, waited_ms: 300 },
      });
      expect((error as Error).message).toMatch(/all 2 connections .* stayed busy for 300 ms/);
      expect((error as Error).message).toMatch(/raise \[database\] max_connections/);
      // It waited for a connection (the timeout), not for the holders to finish.
      expect(waited).toBeLessThan(1_400);
      expect(db.poolStats()).toMatchObject({ max: 2, total: 2 });
      await Promise.all(holders);
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});

describe('the REST API on an exhausted pool', () => {
  const testDb = useTestDatabase();
  let service: OrchestrationService;
  let db: Database;

  beforeAll(async () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    loaded.config.orchestration.staleness.enabled = false;
    // The pool the service runs on: 4 connections, 300 ms to wait for one.
    db = testDb().openPool({ maxConnections: 4, connectionTimeoutMs: 300 });
    service = await startOrchestrationService({
      loaded,
      db,
      logger: silentLogger,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await db?.close();
  });

  it('answers 503 with Retry-After while every connection is busy, and 200 again after', async () => {
    const holders = Array.from({ length: 4 }, () => db.query('SELECT pg_sleep(2)'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const response = await fetch(`${service.url}/v1/tasks`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('TASKER_DATABASE_POOL_EXHAUSTED');
    expect(body.error.message).not.toMatch(/postgres:\/\//);
    await Promise.all(holders);
    expect((await fetch(`${service.url}/v1/tasks`)).status).toBe(200);
  });
});
