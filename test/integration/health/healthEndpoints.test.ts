/**
 * /health and /health/detailed of both services, in process over real HTTP and PostgreSQL: the JSON shapes
 * with real values (pool size, a running slow step), a worker that cannot receive work (LISTEN connection
 * killed, polling off) answering 503 until the listener is back, and an orchestrator whose database is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import type { LoadedConfig } from '../../../src/config/loadConfig.ts';
import type { Database } from '../../../src/db/database.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { openServiceDatabase } from '../../../src/services/openServiceDatabase.ts';
import { startOrchestrationService } from '../../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../../src/services/orchestrationService.ts';
import { startWorkerService } from '../../../src/services/workerService.ts';
import type { WorkerService } from '../../../src/services/workerService.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

type Json = Record<string, unknown>;

// Typed as unknown so that matchers do not spread `any` into the expected objects.
const anyString: unknown = expect.any(String);
const anyNumber: unknown = expect.any(Number);

async function get(url: string): Promise<{ status: number; body: Json }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Json };
}

/** Polls `url` until `accept` holds; returns the last answer. */
async function waitFor(
  url: string,
  accept: (answer: { status: number; body: Json }) => boolean,
  timeoutMs = 20_000,
): Promise<{ status: number; body: Json }> {
  const deadline = Date.now() + timeoutMs;
  let answer = await get(url);
  while (!accept(answer)) {
    if (Date.now() > deadline) throw new Error(`${url} never matched; last: ${JSON.stringify(answer)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await get(url);
  }
  return answer;
}

const startWorker = (loaded: LoadedConfig) =>
  startWorkerService({
    loaded,
    logger: silentLogger,
    handlers,
    templates: exampleTemplates(),
    bindAddress: '127.0.0.1:0',
    grpcBindAddress: '127.0.0.1:0',
  });

describe('health endpoints', () => {
  const testDb = useTestDatabase();
  let loaded: LoadedConfig;
  let orchestration: OrchestrationService;
  let worker: WorkerService;
  let orchestrationUrl: string;
  let workerUrl: string;

  beforeAll(async () => {
    loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    orchestration = await startOrchestrationService({
      loaded,
      logger: silentLogger,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    worker = await startWorker(loaded);
    orchestrationUrl = orchestration.url as string;
    workerUrl = worker.url as string;
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await orchestration?.stop();
  });

  it('orchestration /health: database and message queue healthy, 200', async () => {
    const { status, body } = await get(`${orchestrationUrl}/health`);
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'healthy',
      timestamp: anyString,
      // The seed's words (docs/deployment-patterns "Health Check Endpoints").
      database: 'connected',
      message_queue: 'operational',
      circuit_breakers: { database: 'closed', message_queue: 'closed' },
    });
    expect(Math.abs(Date.parse(body.timestamp as string) - Date.now())).toBeLessThan(60_000);
    expect((await get(`${orchestrationUrl}/health/live`)).status).toBe(200);
  });

  it('orchestration /health/detailed: mode, listener, polling, pool, executors', async () => {
    const { config } = loaded;
    const { status, body } = await waitFor(
      `${orchestrationUrl}/health/detailed`,
      (a) => (a.body.event_listeners as Json | undefined)?.active === true,
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'healthy',
      deployment_mode: config.orchestration.deployment_mode,
      version: anyString,
      uptime_seconds: anyNumber,
      message_queue: 'operational',
      event_listeners: { enabled: true, active: true, status: 'connected', notifications_verified: true },
      // Hybrid with working listeners: polling is the safety net, not the active path.
      polling: {
        enabled: config.orchestration.hybrid.enable_polling_fallback,
        active: false,
        fallback_triggered: false,
        mode_switches: 0,
      },
      database: {
        status: 'connected',
        pool_size: config.database.max_connections,
        active_connections: anyNumber,
        idle: anyNumber,
        waiting: anyNumber,
      },
      // As the seed shows it, with the details beside it.
      circuit_breakers: { database: 'closed', message_queue: 'closed' },
      circuit_breaker_details: {
        database: {
          state: 'closed',
          enabled: config.circuit_breakers.database.enabled,
          consecutive_failures: 0,
          error_threshold: config.circuit_breakers.database.error_threshold,
          timeout_seconds: config.circuit_breakers.database.timeout_seconds,
          half_open_timeout_seconds: config.circuit_breakers.database.half_open_timeout_seconds,
          opened_at: null,
          retry_after_seconds: null,
          rejected_calls: 0,
          transitions: { closed: 0, open: 0, half_open: 0 },
          recent_transitions: [],
        },
        message_queue: {
          state: 'closed',
          error_threshold: config.circuit_breakers.message_queue.error_threshold,
          rejected_calls: 0,
        },
      },
      executors: {
        task_initializer: {
          active: anyNumber,
          min: config.executor_pools.task_initializer.min_executors,
          max: Math.min(
            config.executor_pools.task_initializer.max_executors,
            config.database.max_connections / 2,
          ),
        },
        result_processor: { active: anyNumber, limit: anyNumber },
        step_enqueuer: { active: anyNumber, limit: anyNumber },
      },
    });
    expect((body.event_listeners as Json).channels).toBeGreaterThan(0);
    // The self-test's NOTIFY came back through PostgreSQL: its trip time is the listener lag.
    expect((body.event_listeners as Json).lag_ms).toBeGreaterThanOrEqual(0);
  });

  it('worker /health and /health/detailed report a running slow step', async () => {
    const response = await fetch(`${orchestrationUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        namespace: 'math',
        name: 'slow_sequence',
        version: '1.0.0',
        context: { n: 1, ms: 2000 },
      }),
    });
    expect(response.status).toBe(201);

    const { status, body } = await waitFor(`${workerUrl}/health`, (a) => a.body.active_executions === 1);
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'healthy',
      timestamp: anyString,
      namespaces: worker.worker.namespaces,
      active_executions: 1,
      claimed_steps: 1,
      capacity: loaded.config.worker.max_concurrent_handlers,
    });
    expect(body.namespaces).toContain('math');

    const detailed = await get(`${workerUrl}/health/detailed`);
    expect(detailed.status).toBe(200);
    expect(detailed.body).toMatchObject({
      status: 'healthy',
      deployment_mode: loaded.config.worker.deployment_mode,
      event_listeners: { active: true },
      polling: { enabled: loaded.config.worker.hybrid.enable_polling_fallback, active: false },
      database: { status: 'connected', pool_size: loaded.config.database.max_connections },
      worker: {
        id: worker.worker.id,
        namespaces: worker.worker.namespaces,
        capacity: loaded.config.worker.max_concurrent_handlers,
        active_executions: anyNumber,
      },
    });
  }, 30_000);
});

describe('worker without polling whose LISTEN connection dies', () => {
  const testDb = useTestDatabase();
  let worker: WorkerService | undefined;

  afterAll(async () => {
    await worker?.stop();
  });

  it('answers 503 on /health and /health/ready until the listener reconnects', async () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    loaded.config.worker.hybrid.enable_polling_fallback = false;
    worker = await startWorker(loaded);
    const url = worker.url as string;

    const before = await waitFor(
      `${url}/health/detailed`,
      (a) => (a.body.event_listeners as Json | undefined)?.active === true,
    );
    expect(before.status).toBe(200);
    expect(before.body.polling).toEqual({
      enabled: false,
      active: false,
      fallback_triggered: false,
      mode_switches: 0,
    });
    const backendPid = (before.body.event_listeners as Json).backend_pid as number;
    expect(backendPid).toBeGreaterThan(0);
    expect((await get(`${url}/health`)).status).toBe(200);

    await testDb().db.query('SELECT pg_terminate_backend($1)', [backendPid]);

    const down = await waitFor(`${url}/health`, (a) => a.status === 503, 10_000);
    expect(down.body.status).toBe('unhealthy');
    const ready = await get(`${url}/health/ready`);
    expect(ready.status).toBe(503);
    expect((ready.body.checks as Json).work_intake).toMatchObject({ status: 'unhealthy' });

    const up = await waitFor(`${url}/health`, (a) => a.status === 200, 30_000);
    expect(up.body.status).toBe('healthy');
    const detailed = await get(`${url}/health/detailed`);
    expect((detailed.body.event_listeners as Json).backend_pid).not.toBe(backendPid);
    expect((await get(`${url}/health/ready`)).status).toBe(200);
  }, 60_000);
});

describe('orchestration whose database is gone', () => {
  const testDb = useTestDatabase();
  let orchestration: OrchestrationService | undefined;
  let db: Database | undefined;

  afterAll(async () => {
    await orchestration?.stop();
  });

  it('answers 503 on /health and /health/detailed, 200 on /health/live', async () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    db = await openServiceDatabase(loaded);
    orchestration = await startOrchestrationService({
      loaded,
      logger: silentLogger,
      db,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    const url = orchestration.url as string;
    expect((await get(`${url}/health`)).status).toBe(200);

    await db.close();

    const health = await get(`${url}/health`);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({
      status: 'unhealthy',
      database: 'disconnected',
      message_queue: 'unavailable',
    });
    const detailed = await get(`${url}/health/detailed`);
    expect(detailed.status).toBe(503);
    expect(detailed.body.database).toMatchObject({ status: 'disconnected' });
    expect((await get(`${url}/health/live`)).status).toBe(200);
  }, 30_000);
});
