/**
 * The database made unreachable under real `tasker` processes and brought back. An orchestration and a worker
 * process reach PostgreSQL only through a TCP proxy; cutting it makes every connection fail. Their circuit
 * breakers open: the REST API answers 503 with Retry-After and the standard error body at once instead of
 * queueing requests for connections, /health and /health/detailed report the open breakers, /metrics shows
 * them. Restoring the proxy, the breakers go half-open, a trial succeeds, they close, and a task created
 * afterwards runs to completion.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import { waitFor } from '../helpers/engine/wait.ts';
import { GrpcTestScope, unary } from '../helpers/grpcClients.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { proxiedUrl, startTcpProxy } from '../helpers/tcpProxy.ts';
import type { TcpProxy } from '../helpers/tcpProxy.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

/** Small thresholds and periods, so the test sees every state within seconds. */
const CONFIG = `
[circuit_breakers.database]
error_threshold = 3
timeout_seconds = 3
half_open_timeout_seconds = 5

[circuit_breakers.message_queue]
error_threshold = 3
timeout_seconds = 3
half_open_timeout_seconds = 5

[orchestration.staleness]
enabled = false

# /health answers its checks as they are here (its hysteresis has a test of its own).
[orchestration.health]
health_check_interval_ms = 200
unhealthy_threshold = 1
recovery_threshold = 1

[orchestration.hybrid]
polling_interval_ms = 200

[worker]
shutdown_timeout_ms = 5000

[worker.hybrid]
polling_interval_ms = 200

[pgmq]
visibility_timeout_seconds = 3
heartbeat_interval_ms = 2000
heartbeat_timeout_ms = 1000
reconnect_max_ms = 1000
`;

/**
 * In the URL the services get. The server trusts local connections and never asks for it, so it must
 * show up nowhere: not in logs, health answers or error bodies.
 */
const PASSWORD = 'breaker-s3cret-pw';

/** A request that hangs fails the test instead of waiting for the test timeout. */
const REQUEST_BOUND_MS = 5_000;

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: Json;
  text: string;
}

async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_BOUND_MS) });
  const text = await response.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // /metrics is text.
  }
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body, text };
}

/** `name{labels} value` lines of a Prometheus exposition, for one metric name. */
function samples(exposition: string, metric: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== metric) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    out.push({ labels, value: Number(match[3]) });
  }
  return out;
}

function breakerStates(exposition: string, name: string): Record<string, number> {
  return Object.fromEntries(
    samples(exposition, 'tasker_circuit_breaker_state')
      .filter((s) => s.labels.name === name)
      .map((s) => [s.labels.state ?? '', s.value]),
  );
}

function counterValue(exposition: string, metric: string, labels: Record<string, string>): number {
  const found = samples(exposition, metric).find((s) =>
    Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  );
  return found?.value ?? Number.NaN;
}

const breakersOf = (body: Json) => body.circuit_breaker_details as Record<string, Json>;

describe('circuit breakers of real tasker processes when the database goes away and comes back', () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let orchestration: TaskerProcess;
  let worker: TaskerProcess;
  let api: string;
  /** Every body the services answered, checked for the password at the end. */
  const answered: string[] = [];

  const get = async (url: string): Promise<Answer> => {
    const answer = await request(url);
    answered.push(answer.text);
    return answer;
  };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    proxy = await startTcpProxy();
    const url = new URL(proxiedUrl(testDb.url, proxy));
    url.password = PASSWORD;
    const configFile = join(mkdtempSync(join(tmpdir(), 'tasker-breakers-')), 'tasker.toml');
    writeFileSync(configFile, CONFIG);
    const env = { TASKER_CONFIG_PATH: configFile };
    [orchestration, worker] = await Promise.all([
      startOrchestrationProcess({ databaseUrl: url.toString(), env }),
      startWorkerProcess({ databaseUrl: url.toString(), env }),
    ]);
    api = orchestration.url;
  }, 60_000);

  afterAll(async () => {
    await proxy?.restore();
    const all = [orchestration, worker].filter((p) => p !== undefined);
    const codes = await Promise.all(all.map((p) => stopProcess(p)));
    await proxy?.close();
    await testDb?.drop();
    all.forEach((proc, i) => {
      if (codes[i] !== 0)
        console.error(`${proc.role} exited ${codes[i]}:`, proc.logs.slice(-10), proc.otherOutput);
    });
    expect(codes).toEqual(all.map(() => 0));
    for (const proc of all) {
      expect(errorLogs(proc), proc.role).toEqual([]);
      const output = JSON.stringify(proc.logs) + proc.otherOutput.join('');
      expect(output.includes(PASSWORD), `${proc.role} output holds the password`).toBe(false);
    }
    expect(answered.some((text) => text.includes(PASSWORD))).toBe(false);
  }, 60_000);

  it('while the database answers, both breakers are closed everywhere', async () => {
    for (const url of [api, worker.url]) {
      const detailed = await get(`${url}/health/detailed`);
      expect(detailed.status, url).toBe(200);
      for (const name of ['database', 'message_queue']) {
        expect(breakersOf(detailed.body)[name], `${url} ${name}`).toMatchObject({
          state: 'closed',
          enabled: true,
          consecutive_failures: 0,
          error_threshold: 3,
          timeout_seconds: 3,
          half_open_timeout_seconds: 5,
          opened_at: null,
          retry_after_seconds: null,
          rejected_calls: 0,
        });
      }
      const metrics = await get(`${url}/metrics`);
      expect(metrics.status).toBe(200);
      for (const name of ['database', 'message_queue']) {
        expect(breakerStates(metrics.text, name)).toEqual({ closed: 1, open: 0, half_open: 0 });
        expect(
          counterValue(metrics.text, 'tasker_circuit_breaker_transitions_total', { name, to: 'open' }),
        ).toBe(0);
      }
    }
    const health = await get(`${api}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'healthy',
      database: 'connected',
      circuit_breakers: { database: 'closed', message_queue: 'closed' },
    });
  });

  it('with the database unreachable: breakers open, the API answers 503 + Retry-After at once, health and metrics say so', async () => {
    await proxy.cut();
    // The services' own polling finds the database gone; nobody has to send a request for the breakers to open.
    const opened = await waitFor(
      'the orchestration breakers to open',
      async () => {
        const detailed = await get(`${api}/health/detailed`);
        const breakers = breakersOf(detailed.body);
        return breakers.database?.state === 'open' && breakers.message_queue?.state === 'open' && detailed;
      },
      20_000,
    );
    expect(opened.status).toBe(503);
    expect(opened.body.status).toBe('unhealthy');
    const database = breakersOf(opened.body).database as Json;
    expect(database).toMatchObject({ enabled: true, error_threshold: 3 });
    expect(database.consecutive_failures).toBeGreaterThanOrEqual(3);
    expect(database.retry_after_seconds).toBeGreaterThanOrEqual(1);
    expect(database.retry_after_seconds).toBeLessThanOrEqual(3);
    expect(typeof database.opened_at).toBe('string');
    expect(String(database.last_error)).toMatch(/TASKER_DATABASE_UNAVAILABLE|ECONNREFUSED|Error/);
    expect((database.transitions as Json).open).toBeGreaterThanOrEqual(1);

    // A burst of API requests: each is refused at once with the standard error body, none waits for a
    // connection.
    const burst = await Promise.all([
      ...Array.from({ length: 20 }, () => request(`${api}/v1/tasks`)),
      request(`${api}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          namespace: 'math',
          name: 'diamond_pattern',
          version: '1.0.0',
          context: { n: 1 },
        }),
      }),
    ]);
    answered.push(...burst.map((a) => a.text));
    for (const answer of burst) {
      expect(answer.status, answer.text).toBe(503);
      expect(answer.retryAfter, answer.text).toMatch(/^[1-9][0-9]*$/);
      expect(Object.keys(answer.body)).toEqual(['error']);
      const error = answer.body.error as Json;
      expect(['TASKER_CIRCUIT_OPEN', 'TASKER_DATABASE_UNAVAILABLE']).toContain(error.code);
      expect(typeof error.message).toBe('string');
    }
    const refused = burst.filter((a) => (a.body.error as Json).code === 'TASKER_CIRCUIT_OPEN');
    // Outside the few milliseconds of a failing trial, every request is refused by the breaker.
    expect(refused.length).toBeGreaterThan(burst.length / 2);
    for (const answer of refused) {
      const error = answer.body.error as Json;
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(3);
      expect(error.details).toMatchObject({
        breaker: 'database',
        retry_after_seconds: Number(answer.retryAfter),
      });
      expect(String(error.message)).toContain('database is unavailable');
    }

    const detailed = await get(`${api}/health/detailed`);
    expect(detailed.status).toBe(503);
    expect((detailed.body.database as Json).waiting).toBe(0);
    expect(breakersOf(detailed.body).database?.rejected_calls).toBeGreaterThan(0);

    const health = await get(`${api}/health`);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', database: 'disconnected' });

    // gRPC readiness names the open breaker too (what a Kubernetes gRPC probe sees as NOT_SERVING).
    const grpcScope = new GrpcTestScope();
    try {
      const tasker = grpcScope.client(orchestration.grpcAddress ?? '', 'tasker.v1.HealthService');
      const ready = await unary<{
        status: string;
        checks: Record<string, { status: string; message?: string }>;
      }>(tasker, 'CheckReadiness');
      expect(ready.status).toBe('HEALTH_STATUS_UNHEALTHY');
      expect(ready.checks.circuit_breaker_database?.status).toMatch(/HEALTH_STATUS_(UNHEALTHY|DEGRADED)/);
    } finally {
      await grpcScope.close();
    }
    expect(['open', 'half_open']).toContain((health.body.circuit_breakers as Json).database);

    // /metrics still answers (its database-backed sources fail fast) and shows the open breakers.
    await waitFor('the open breaker in /metrics', async () => {
      const metrics = await get(`${api}/metrics`);
      return metrics.status === 200 && breakerStates(metrics.text, 'database').open === 1 && metrics;
    });
    const metrics = await get(`${api}/metrics`);
    expect(metrics.status).toBe(200);
    for (const name of ['database', 'message_queue']) {
      const states = breakerStates(metrics.text, name);
      expect(
        Object.values(states).reduce((a, b) => a + b, 0),
        name,
      ).toBe(1);
      expect(
        counterValue(metrics.text, 'tasker_circuit_breaker_transitions_total', { name, to: 'open' }),
      ).toBeGreaterThanOrEqual(1);
    }
    expect(
      counterValue(metrics.text, 'tasker_circuit_breaker_rejected_calls_total', { name: 'database' }),
    ).toBeGreaterThan(0);

    // The worker's claims fail the same way: its breaker opens and it reports unhealthy.
    const workerDetailed = await waitFor(
      'the worker database breaker to open',
      async () => {
        const answer = await get(`${worker.url}/health/detailed`);
        return breakersOf(answer.body).database?.state === 'open' && answer;
      },
      20_000,
    );
    expect(workerDetailed.status).toBe(503);
    expect(workerDetailed.body.status).toBe('unhealthy');
    expect((await get(`${worker.url}/health`)).status).toBe(503);
    expect(breakerStates((await get(`${worker.url}/metrics`)).text, 'database').closed).toBe(0);

    const opening = orchestration.logs.find(
      (line) => line.msg.startsWith('circuit breaker opened') && line.breaker === 'database',
    );
    expect(opening).toMatchObject({ level: 'warn', to: 'open', reason: 'error_threshold_reached' });
  }, 60_000);

  it('with the database back: half-open, a successful trial closes the breakers, and new work completes', async () => {
    await proxy.restore();
    // The orchestrator polls its queues through the provider, so both of its breakers opened; the worker
    // claims with SQL and uses the provider only for lease heartbeats and signals, so only its database
    // breaker did.
    const tripped = [
      { url: api, names: ['database', 'message_queue'] },
      { url: worker.url, names: ['database'] },
    ];
    for (const { url, names } of tripped) {
      const detailed = await waitFor(
        `${url} breakers to close`,
        async () => {
          const answer = await get(`${url}/health/detailed`);
          const breakers = breakersOf(answer.body);
          // The orchestrator's /health counts recovery_threshold passed evaluations before it says healthy.
          return (
            breakers.database?.state === 'closed' &&
            breakers.message_queue?.state === 'closed' &&
            answer.status === 200 &&
            answer
          );
        },
        20_000,
      );
      expect(detailed.status, url).toBe(200);
      for (const name of names) {
        const breaker = breakersOf(detailed.body)[name] as Json;
        expect(breaker, `${url} ${name}`).toMatchObject({ consecutive_failures: 0, opened_at: null });
        const recent = breaker.recent_transitions as { from: string; to: string; reason: string }[];
        // The way back: open → half_open when a probe found the database back (or, whichever came first,
        // timeout_seconds passed), half_open → closed on a good trial.
        expect(recent.slice(-2), `${url} ${name}`).toMatchObject([
          {
            from: 'open',
            to: 'half_open',
            reason: expect.stringMatching(/^(probe_succeeded|open_timeout_elapsed)$/) as unknown,
          },
          { from: 'half_open', to: 'closed', reason: 'trial_succeeded' },
        ]);
      }
      const metrics = await get(`${url}/metrics`);
      for (const name of ['database', 'message_queue']) {
        expect(breakerStates(metrics.text, name)).toEqual({ closed: 1, open: 0, half_open: 0 });
      }
      for (const name of names) {
        for (const to of ['open', 'half_open', 'closed']) {
          expect(
            counterValue(metrics.text, 'tasker_circuit_breaker_transitions_total', { name, to }),
            `${url} ${name} ${to}`,
          ).toBeGreaterThanOrEqual(1);
        }
      }
    }
    const messages = orchestration.logs
      .filter((line) => line.breaker === 'database' && line.msg.startsWith('circuit breaker'))
      .map((line) => line.to);
    expect(messages.slice(-2)).toEqual(['half_open', 'closed']);

    const health = await get(`${api}/health`);
    expect(health.status).toBe(200);
    expect(health.body.circuit_breakers).toEqual({ database: 'closed', message_queue: 'closed' });

    const client = new TaskerClient(api);
    const created = await client.createTask({
      namespace: 'math',
      name: 'diamond_pattern',
      version: '1.0.0',
      context: { n: 3 },
    });
    const finished = await waitFor(
      'the task created after recovery to complete',
      async () => {
        const task = await client.getTask(created.task_uuid);
        return ['complete', 'error', 'cancelled'].includes(task.status) && task;
      },
      30_000,
    );
    expect(finished.status).toBe('complete');
    const values = Object.fromEntries(
      (finished.steps ?? []).map((s) => [s.name, (s.result as { value?: unknown } | null)?.value]),
    );
    expect(values).toEqual({ diamond_start: 9, diamond_branch_b: 18, diamond_branch_c: 27, diamond_end: 45 });
    // Nothing else piled up meanwhile: the refused requests created no task.
    const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasker.tasks');
    expect(rows[0]?.n).toBe(1);
  }, 60_000);
});
