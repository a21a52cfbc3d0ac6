/**
 * `[orchestration.health]`: /health with hysteresis. With unhealthy_threshold 3 and recovery_threshold 2, an
 * orchestrator whose database goes away keeps answering 200 until three evaluations in a row failed, then
 * 503; with the database back it answers 503 until two evaluations in a row passed. /health/detailed shows
 * the counts. The database really goes away: the service reaches it through a TCP proxy that is cut.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthEvaluator } from '../../../src/api/rest/healthEvaluator.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { startOrchestrationService } from '../../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../../src/services/orchestrationService.ts';
import { proxiedUrl, startTcpProxy } from '../../helpers/tcpProxy.ts';
import type { TcpProxy } from '../../helpers/tcpProxy.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

type Json = Record<string, unknown>;

async function health(url: string): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${url}/health`);
  return { status: response.status, body: (await response.json()) as Json };
}

describe('HealthEvaluator', () => {
  it('turns unhealthy after unhealthy_threshold failures in a row, healthy after recovery_threshold passes', () => {
    const evaluator = new HealthEvaluator(
      { intervalMs: 60_000, unhealthyThreshold: 3, recoveryThreshold: 2 },
      () => Promise.resolve(true),
    );
    const seen = [false, false, true, false, false, false, true, false, true, true].map((passed) =>
      evaluator.record(passed),
    );
    expect(seen).toEqual([
      'healthy',
      'healthy',
      'healthy', // a pass resets the failure count
      'healthy',
      'healthy',
      'unhealthy', // third failure in a row
      'unhealthy',
      'unhealthy', // a failure resets the pass count
      'unhealthy',
      'healthy', // second pass in a row
    ]);
    expect(evaluator.snapshot()).toMatchObject({ consecutive_passes: 2, consecutive_failures: 0 });
  });
});

describe('orchestration /health with [orchestration.health] hysteresis', () => {
  const testDb = useTestDatabase();
  let proxy: TcpProxy;
  let service: OrchestrationService;

  beforeAll(async () => {
    proxy = await startTcpProxy();
    const loaded = loadConfig({
      env: { TASKER_ENV: 'test', DATABASE_URL: proxiedUrl(testDb().url, proxy) },
    });
    const health = loaded.config.orchestration.health;
    // Only requests evaluate here (the background evaluation waits an hour), so the test counts them.
    health.health_check_interval_ms = 3_600_000;
    health.unhealthy_threshold = 3;
    health.recovery_threshold = 2;
    // Breakers would turn the lost database into an open breaker; this test is about the thresholds.
    loaded.config.circuit_breakers.database.enabled = false;
    loaded.config.circuit_breakers.message_queue.enabled = false;
    loaded.config.orchestration.staleness.enabled = false;
    service = await startOrchestrationService({
      loaded,
      logger: silentLogger,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    // The evaluator runs one evaluation at start. On a loaded machine it can still be in flight when the test
    // cuts the database, and then counts as a fourth failure; each check gives up after 3 s, so after this
    // wait it has been recorded and only the test's requests evaluate.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
  }, 60_000);

  afterAll(async () => {
    await proxy?.restore();
    await service?.stop();
    await proxy?.close();
  });

  it('reports a lost database only after three failed evaluations, and recovery after two passed ones', async () => {
    const url = service.url as string;
    expect((await health(url)).status).toBe(200);

    await proxy.cut();
    const during = [await health(url), await health(url), await health(url)];
    // The live component says what is wrong at once; the status waits for the threshold.
    expect(during.map((a) => a.body.database)).toEqual(['disconnected', 'disconnected', 'disconnected']);
    expect(during.map((a) => a.status)).toEqual([200, 200, 503]);
    expect(during.map((a) => a.body.status)).toEqual(['healthy', 'healthy', 'unhealthy']);

    await proxy.restore();
    const first = await health(url);
    expect(first.body.database).toBe('connected');
    expect(first.status).toBe(503);
    const second = await health(url);
    expect(second.status).toBe(200);
    expect(second.body.status).toBe('healthy');

    const detailed = (await (await fetch(`${url}/health/detailed`)).json()) as Json;
    expect(detailed.health_evaluation).toMatchObject({
      status: 'healthy',
      consecutive_failures: 0,
      unhealthy_threshold: 3,
      recovery_threshold: 2,
    });
  }, 60_000);
});
