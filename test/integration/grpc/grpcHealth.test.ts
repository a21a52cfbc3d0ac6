import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { reportFromChecks } from '../../../src/api/grpc/grpcServer.ts';
import type { HealthReport } from '../../../src/api/grpc/grpcServer.ts';
import { isTaskerError } from '../../../src/domain/errors.ts';
import { failureCode, GrpcTestScope, unary } from '../../helpers/grpcClients.ts';
import type { ServiceClient } from '../../helpers/grpcClients.ts';

const TASKER = 'tasker.v1.HealthService';
const STANDARD = 'grpc.health.v1.Health';

interface ReportMessage {
  status: string;
  timestamp: { seconds: string; nanos: number };
  checks: Record<string, { status: string; message: string; duration_ms: number }>;
  info: {
    version: string;
    environment: string;
    deployment_mode: string;
    role: string;
    details: { fields: Record<string, Record<string, unknown>> };
  };
}

const healthyReport: HealthReport = {
  status: 'healthy',
  checks: {
    database: { status: 'healthy', duration_ms: 1.25 },
    listener: { status: 'degraded', message: 'polling fallback only' },
  },
  info: { worker_id: 'worker-7', pool_size: 25, listening: true },
};

const unhealthyReport: HealthReport = {
  status: 'unhealthy',
  checks: { database: { status: 'unhealthy', message: 'database unreachable', duration_ms: 2000 } },
};

const scope = new GrpcTestScope();
afterEach(() => scope.close());

/** A readiness callback whose answer the test changes, counting its calls. */
function switchableReadiness(initial: HealthReport) {
  const state = { report: initial, calls: 0 };
  return {
    state,
    readiness: () => {
      state.calls += 1;
      return Promise.resolve(state.report);
    },
  };
}

const check = (client: ServiceClient, service: string) =>
  unary<{ status: string }>(client, 'Check', { service }).then((r) => r.status);

describe('tasker.v1.HealthService', () => {
  it('answers liveness and basic health with HEALTHY, a current timestamp and the process info', async () => {
    const server = await scope.start({
      role: 'worker',
      environment: 'production',
      deploymentMode: 'PollingOnly',
      readiness: () => Promise.resolve(unhealthyReport),
    });
    const client = scope.client(server.address, TASKER);
    const before = Math.floor(Date.now() / 1000);

    const live = await unary<ReportMessage>(client, 'CheckLiveness');
    expect(live.status).toBe('HEALTH_STATUS_HEALTHY');
    expect(Number(live.timestamp.seconds)).toBeGreaterThanOrEqual(before);
    expect(Number(live.timestamp.seconds)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));

    const basic = await unary<ReportMessage>(client, 'CheckHealth');
    expect(basic.status).toBe('HEALTH_STATUS_HEALTHY');
    expect(basic.info).toMatchObject({
      version: '9.9.9',
      environment: 'production',
      deployment_mode: 'PollingOnly',
      role: 'worker',
    });
  });

  it('reports the readiness callback: checks, messages, durations and info details', async () => {
    const { state, readiness } = switchableReadiness(healthyReport);
    const server = await scope.start({ readiness });
    const client = scope.client(server.address, TASKER);

    const ready = await unary<ReportMessage>(client, 'CheckReadiness');
    expect(ready.status).toBe('HEALTH_STATUS_HEALTHY');
    expect(ready.checks).toEqual({
      database: { status: 'HEALTH_STATUS_HEALTHY', message: '', duration_ms: 1.25 },
      listener: { status: 'HEALTH_STATUS_DEGRADED', message: 'polling fallback only', duration_ms: 0 },
    });
    expect(ready.info).toMatchObject({ version: '9.9.9', role: 'orchestration' });
    expect(ready.info.details.fields).toEqual({
      worker_id: expect.objectContaining({ stringValue: 'worker-7' }) as unknown,
      pool_size: expect.objectContaining({ numberValue: 25 }) as unknown,
      listening: expect.objectContaining({ boolValue: true }) as unknown,
    });

    state.report = unhealthyReport;
    const notReady = await unary<ReportMessage>(client, 'CheckReadiness');
    expect(notReady.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(notReady.checks).toEqual({
      database: { status: 'HEALTH_STATUS_UNHEALTHY', message: 'database unreachable', duration_ms: 2000 },
    });
    expect(notReady.info.details.fields).toEqual({});
  });

  it('calls readiness for each request', async () => {
    const { state, readiness } = switchableReadiness(healthyReport);
    const server = await scope.start({ readiness, refreshIntervalMs: 60_000 });
    const client = scope.client(server.address, TASKER);
    await unary(client, 'CheckReadiness');
    const after = state.calls;
    await unary(client, 'CheckReadiness');
    await unary(client, 'CheckReadiness');
    expect(state.calls).toBe(after + 2);
  });

  it('answers detailed health from the detailed callback, or from readiness when there is none', async () => {
    const withDetailed = await scope.start({
      readiness: () => Promise.resolve(healthyReport),
      detailed: () =>
        Promise.resolve({
          status: 'degraded',
          checks: {
            ...healthyReport.checks,
            pool_utilization: { status: 'degraded', message: '92% of connections in use', duration_ms: 0.5 },
          },
          info: { pool_in_use: 23 },
        }),
    });
    const detailed = await unary<ReportMessage>(
      scope.client(withDetailed.address, TASKER),
      'CheckDetailedHealth',
    );
    expect(detailed.status).toBe('HEALTH_STATUS_DEGRADED');
    expect(Object.keys(detailed.checks).sort()).toEqual(['database', 'listener', 'pool_utilization']);
    expect(detailed.checks.pool_utilization).toEqual({
      status: 'HEALTH_STATUS_DEGRADED',
      message: '92% of connections in use',
      duration_ms: 0.5,
    });
    expect(detailed.info.details.fields.pool_in_use).toMatchObject({ numberValue: 23 });

    const readinessOnly = await scope.start({ readiness: () => Promise.resolve(unhealthyReport) });
    const fallback = await unary<ReportMessage>(
      scope.client(readinessOnly.address, TASKER),
      'CheckDetailedHealth',
    );
    expect(fallback.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(Object.keys(fallback.checks)).toEqual(['database']);
  });

  it('combines named checks with reportFromChecks: timed, worst status wins, a throwing check is unhealthy', async () => {
    let brokerUp = true;
    const server = await scope.start({
      readiness: () =>
        reportFromChecks(
          {
            database: async () => {
              await new Promise((resolve) => setTimeout(resolve, 20));
              return { status: 'healthy' };
            },
            listener: () => Promise.resolve({ status: 'degraded', message: 'polling only' }),
            broker: () =>
              brokerUp
                ? Promise.resolve({ status: 'healthy' })
                : Promise.reject(new Error('password authentication failed for user "tasker"')),
          },
          { info: { processor_uuid: 'p-1' } },
        ),
    });
    const client = scope.client(server.address, TASKER);

    const degraded = await unary<ReportMessage>(client, 'CheckReadiness');
    expect(degraded.status).toBe('HEALTH_STATUS_DEGRADED');
    expect(degraded.checks.database?.duration_ms).toBeGreaterThanOrEqual(15);
    expect(degraded.checks.listener).toMatchObject({
      status: 'HEALTH_STATUS_DEGRADED',
      message: 'polling only',
    });
    expect(degraded.info.details.fields.processor_uuid).toMatchObject({ stringValue: 'p-1' });

    brokerUp = false;
    const failed = await unary<ReportMessage>(client, 'CheckReadiness');
    expect(failed.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(failed.checks.broker).toMatchObject({
      status: 'HEALTH_STATUS_UNHEALTHY',
      message: 'check failed; see the service log',
    });
    expect(JSON.stringify(failed)).not.toContain('password');
  });

  it('reports a readiness callback that throws or hangs as unhealthy, without its error text', async () => {
    const throwing = await scope.start({
      readiness: () => Promise.reject(new Error('connect ECONNREFUSED postgres://app:secret@db')),
    });
    const failed = await unary<ReportMessage>(scope.client(throwing.address, TASKER), 'CheckReadiness');
    expect(failed.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(failed.checks.health_provider?.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(JSON.stringify(failed)).not.toContain('secret');

    const hanging = await scope.start({
      readiness: () => new Promise<HealthReport>(() => undefined),
      healthTimeoutMs: 200,
    });
    const started = Date.now();
    const slow = await unary<ReportMessage>(scope.client(hanging.address, TASKER), 'CheckReadiness');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(slow.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(slow.checks.health_provider?.message).toMatch(/did not answer within 200 ms/);
    expect(await check(scope.client(hanging.address, STANDARD), '')).toBe('NOT_SERVING');
  });
});

describe('grpc.health.v1.Health', () => {
  it('follows readiness for "" and tasker.v1.HealthService: healthy and degraded serve, unhealthy does not', async () => {
    const { state, readiness } = switchableReadiness(healthyReport);
    const server = await scope.start({ readiness, refreshIntervalMs: 60_000 });
    const health = scope.client(server.address, STANDARD);

    expect(await check(health, '')).toBe('SERVING');
    expect(await check(health, TASKER)).toBe('SERVING');

    state.report = unhealthyReport;
    expect(await check(health, '')).toBe('NOT_SERVING');
    expect(await check(health, TASKER)).toBe('NOT_SERVING');
    // The liveness name does not follow readiness: a database outage must not restart the pod.
    expect(await check(health, 'liveness')).toBe('SERVING');

    state.report = { status: 'degraded', checks: { database: { status: 'degraded' } } };
    expect(await check(health, '')).toBe('SERVING');
    expect(await check(health, TASKER)).toBe('SERVING');
  });

  it('says NOT_SERVING after setServing(false) whatever readiness says, while liveness stays healthy', async () => {
    const server = await scope.start({ readiness: () => Promise.resolve(healthyReport) });
    const health = scope.client(server.address, STANDARD);
    const tasker = scope.client(server.address, TASKER);
    expect(await check(health, '')).toBe('SERVING');

    server.setServing(false);
    expect(await check(health, '')).toBe('NOT_SERVING');
    expect(await check(health, TASKER)).toBe('NOT_SERVING');
    expect(await check(health, 'liveness')).toBe('SERVING');
    const ready = await unary<ReportMessage>(tasker, 'CheckReadiness');
    expect(ready.status).toBe('HEALTH_STATUS_UNHEALTHY');
    expect(ready.checks.serving?.message).toMatch(/shutting down/);
    expect((await unary<ReportMessage>(tasker, 'CheckLiveness')).status).toBe('HEALTH_STATUS_HEALTHY');

    server.setServing(true);
    expect(await check(health, TASKER)).toBe('SERVING');
  });

  it('answers NOT_FOUND for a service it does not know', async () => {
    const server = await scope.start({ readiness: () => Promise.resolve(healthyReport) });
    const health = scope.client(server.address, STANDARD);
    expect(await failureCode(check(health, 'tasker.v1.NoSuchService'))).toBe(grpc.status.NOT_FOUND);
  });

  it('pushes changes to Watch streams and ends them at stop, so stop does not wait out the grace period', async () => {
    const { state, readiness } = switchableReadiness(healthyReport);
    const server = await scope.start({ readiness, refreshIntervalMs: 50 });
    const health = scope.client(server.address, STANDARD);
    const watch = (health.Watch as (request: object) => grpc.ClientReadableStream<{ status: string }>).call(
      health,
      { service: TASKER },
    );
    const seen: string[] = [];
    const next = (status: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${status} in ${seen.join(', ')}`)), 5_000);
        const onData = () => {
          if (seen.at(-1) === status) {
            clearTimeout(timer);
            watch.off('data', onData);
            resolve();
          }
        };
        watch.on('data', onData);
        onData();
      });
    const ended = new Promise<void>((resolve) => {
      watch.on('status', () => resolve());
      watch.on('error', () => resolve());
    });
    watch.on('data', (message: { status: string }) => seen.push(message.status));

    await next('SERVING');
    state.report = unhealthyReport;
    await next('NOT_SERVING');
    state.report = healthyReport;
    await next('SERVING');

    const started = Date.now();
    await server.stop(10_000);
    await ended;
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(seen.at(-1)).toBe('NOT_SERVING');
  });
});

describe('server lifecycle', () => {
  it('refuses a port in use with TASKER_LISTEN_FAILED naming the address and the config key', async () => {
    const first = await scope.start({ readiness: () => Promise.resolve(healthyReport) });
    const error: unknown = await scope
      .start({
        role: 'worker',
        bindAddress: `127.0.0.1:${first.port}`,
        readiness: () => Promise.resolve(healthyReport),
      })
      .catch((e: unknown) => e);
    expect(isTaskerError(error) && error.code).toBe('TASKER_LISTEN_FAILED');
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${first.port}`);
    expect(message).toContain('in use');
    expect(message).toContain('[worker.grpc] bind_address');
    expect(message).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['not host:port', 'localhost'],
    ['a port above 65535', '127.0.0.1:70000'],
    ['a host that does not resolve', 'no-such-host.invalid:0'],
  ])('refuses %s with TASKER_LISTEN_FAILED', async (_what, bindAddress) => {
    const error: unknown = await scope
      .start({ bindAddress, readiness: () => Promise.resolve(healthyReport) })
      .catch((e: unknown) => e);
    expect(isTaskerError(error) && error.code).toBe('TASKER_LISTEN_FAILED');
    expect((error as Error).message).toContain(bindAddress);
    expect((error as Error).message).toContain('[orchestration.grpc] bind_address');
  });

  it('stop is safe twice, frees the port, and cancels calls still running after the grace period', async () => {
    const server = await scope.start({
      readiness: () => new Promise<HealthReport>(() => undefined),
      healthTimeoutMs: 60_000,
    });
    const client = scope.client(server.address, TASKER);
    const pending = failureCode(unary(client, 'CheckReadiness'));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const started = Date.now();
    await Promise.all([server.stop(200), server.stop(200)]);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await pending).not.toBe('succeeded');

    const again = await scope.start({
      bindAddress: `127.0.0.1:${server.port}`,
      readiness: () => Promise.resolve(healthyReport),
    });
    expect(again.port).toBe(server.port);
  });
});
