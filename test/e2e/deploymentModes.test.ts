/**
 * Each deployment mode as users run it: an orchestration and a worker process (`node bin/tasker.js ...`) in
 * EventDrivenOnly, Hybrid or PollingOnly, driven over HTTP and by task requests sent through the queue from
 * SQL. Asserted per mode: workflows complete with the right data and every result applied once; what the mode
 * does and does not do (LISTEN connections in pg_stat_activity, polling cycles, notifications in /metrics,
 * /health/detailed); and the fault the seed names — the listener backends terminated mid-run — handled as the
 * mode promises: Hybrid falls back to polling and hands back, EventDrivenOnly reconnects and catches up,
 * PollingOnly has nothing to lose.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import type { TaskView } from '../../src/client/taskerClient.ts';
import { modeLabel } from '../../src/observability/modeLabel.ts';
import type { DeploymentMode } from '../../src/config/schema.ts';
import { HAPPY_PATHS } from '../helpers/engine/exampleExpectations.ts';
import { sleep } from '../helpers/engine/wait.ts';
import { assertAppliedOnce, awaitTerminal, stepValues } from '../helpers/e2e/clusterChecks.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { scrape, total } from '../helpers/prometheus.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

type Json = Record<string, unknown>;

/**
 * On top of the test environment: Hybrid falls back after 100 ms without a listener, and a lost listener
 * waits 0.5–1 s before reconnecting, so terminating it makes Hybrid switch to fallback and back.
 */
const FAULT_CONFIG = `
[orchestration.hybrid]
fallback_activation_threshold_ms = 100
listener_reconnect_interval_ms = 1000
[worker.hybrid]
fallback_activation_threshold_ms = 100
listener_reconnect_interval_ms = 1000
[orchestration.event_driven]
listener_reconnect_interval_ms = 1000
[worker.event_driven]
listener_reconnect_interval_ms = 1000
`;

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tasker-modes-')), 'tasker.toml');
  writeFileSync(file, text);
  return file;
}

async function getJson(url: string): Promise<{ status: number; body: Json }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Json };
}

/** Polls `url` until `accept` holds; returns the last answer. */
async function waitForJson(
  url: string,
  accept: (answer: { status: number; body: Json }) => boolean,
  timeoutMs = 15_000,
): Promise<{ status: number; body: Json }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await getJson(url);
    if (accept(answer) || Date.now() > deadline) return answer;
    await sleep(50);
  }
}

/** LISTEN connections of the database's Tasker processes (application_name tasker-listener). */
async function listenerBackends(testDb: TestDatabase): Promise<number[]> {
  const { rows } = await testDb.db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%-listener'`,
  );
  return rows.map((r) => r.pid);
}

/** A task request as any producer sends it: a message on orchestration_task_requests, with its NOTIFY. */
async function sendTaskRequests(testDb: TestDatabase, tag: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await testDb.db.query(`SELECT tasker.pgmq_send_with_notify('orchestration_task_requests', $1::jsonb)`, [
      JSON.stringify({
        request_id: `${tag}-${i}`,
        task_request: {
          namespace: 'math',
          name: 'diamond_pattern',
          version: '1.0.0',
          context: { n: i + 1 },
          tags: [tag],
          source_system: 'sql-producer',
        },
      }),
    ]);
  }
}

/** Waits until `count` tasks tagged `tag` exist and all of them are complete; returns their uuids. */
async function awaitTaggedComplete(testDb: TestDatabase, tag: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await testDb.db.query<{ task_uuid: string; current_state: string }>(
      `SELECT task_uuid, current_state FROM tasker.tasks WHERE tags ? $1`,
      [tag],
    );
    if (rows.length === count && rows.every((r) => r.current_state === 'complete')) {
      return rows.map((r) => r.task_uuid);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `tasks tagged ${tag}: ${rows.length} of ${count} exist, states ${rows.map((r) => r.current_state).join(',')}`,
      );
    }
    await sleep(50);
  }
}

interface Pair {
  testDb: TestDatabase;
  orchestrator: TaskerProcess;
  worker: TaskerProcess;
  client: TaskerClient;
}

/**
 * A fresh database with an orchestration and a worker process on it, stopped (exit 0 expected, nothing
 * logged at error level) and dropped after the describe block. Call in a describe block; the getter works
 * from beforeAll on.
 */
function usePair(env: () => Record<string, string>): () => Pair {
  let pair: Partial<Pair> = {};
  beforeAll(async () => {
    const testDb = await createTestDatabase();
    pair.testDb = testDb;
    const [orchestrator, worker] = await Promise.all([
      startOrchestrationProcess({ databaseUrl: testDb.url, env: env() }),
      startWorkerProcess({ databaseUrl: testDb.url, env: env() }),
    ]);
    pair = { testDb, orchestrator, worker, client: new TaskerClient(orchestrator.url) };
  }, 90_000);
  afterAll(async () => {
    const procs = [pair.orchestrator, pair.worker].filter((p): p is TaskerProcess => p !== undefined);
    const codes = await Promise.all(procs.map((p) => stopProcess(p)));
    await pair.testDb?.drop();
    expect(codes).toEqual(procs.map(() => 0));
    for (const proc of procs) expect(errorLogs(proc), proc.role).toEqual([]);
  }, 60_000);
  return () => pair as Pair;
}

/** Creates every happy-path example over HTTP. */
function createHappyPaths(client: TaskerClient): Promise<TaskView[]> {
  return Promise.all(
    HAPPY_PATHS.map((path) =>
      client.createTask({ namespace: 'math', name: path.template, version: '1.0.0', context: path.context }),
    ),
  );
}

const MODES: readonly DeploymentMode[] = ['EventDrivenOnly', 'Hybrid', 'PollingOnly'];

describe.each(MODES)('deployment mode %s: an orchestration and a worker process', (mode) => {
  const pair = usePair(() => ({
    TASKER_DEPLOYMENT_MODE: mode,
    TASKER_CONFIG_PATH: configFile(FAULT_CONFIG),
  }));
  const label = modeLabel(mode);

  it('runs the example workflows and queued task requests, and does what the mode says', async () => {
    const { testDb, orchestrator, worker, client } = pair();
    const created = await createHappyPaths(client);
    await sendTaskRequests(testDb, 'queued-1', 5);
    const finished = await Promise.all(created.map((t) => awaitTerminal(client, t.task_uuid)));
    HAPPY_PATHS.forEach((path, i) => {
      const task = finished[i] as TaskView;
      expect(task.status, path.template).toBe('complete');
      expect(stepValues(task), path.template).toEqual(path.values);
    });
    const queued = await awaitTaggedComplete(testDb, 'queued-1', 5);
    await assertAppliedOnce(testDb.db, [...finished.map((t) => t.task_uuid), ...queued]);

    const [orchestration, work] = await Promise.all([scrape(orchestrator.url), scrape(worker.url)]);
    const listeners = await listenerBackends(testDb);
    for (const [role, scraped] of [
      ['orchestration', orchestration],
      ['worker', work],
    ] as const) {
      const cycles = total(scraped, 'tasker_polling_cycles_total');
      const active = total(scraped, 'tasker_event_listener_active', { mode: label });
      const notified = total(scraped, 'tasker_event_notifications_received_total');
      if (mode === 'EventDrivenOnly') {
        expect(cycles, `${role}: EventDrivenOnly never polls`).toBe(0);
        expect(active, role).toBe(1);
        expect(notified, role).toBeGreaterThan(0);
      } else if (mode === 'PollingOnly') {
        expect(cycles, `${role}: PollingOnly polls`).toBeGreaterThan(0);
        expect(active, role).toBe(0);
        expect(notified, `${role}: PollingOnly listens to nothing`).toBe(0);
      } else {
        expect(active, role).toBe(1);
        expect(total(scraped, 'tasker_polling_fallback_active', { mode: label }), role).toBe(0);
        expect(notified, role).toBeGreaterThan(0);
      }
    }
    if (mode === 'PollingOnly') {
      // No LISTEN at all: not one listen connection in the database, and polling found the work.
      expect(listeners).toEqual([]);
      expect(total(work, 'tasker_polling_messages_found_total')).toBeGreaterThan(0);
      expect(
        total(orchestration, 'tasker_polling_messages_found_total', { queue: 'orchestration_task_requests' }),
      ).toBeGreaterThanOrEqual(5);
    } else {
      expect(listeners).toHaveLength(2);
    }

    for (const proc of [orchestrator, worker]) {
      const { status, body } = await getJson(`${proc.url}/health/detailed`);
      expect(status, proc.role).toBe(200);
      expect(body.deployment_mode, proc.role).toBe(mode);
      expect(body.event_listeners, proc.role).toMatchObject({
        enabled: mode !== 'PollingOnly',
        active: mode !== 'PollingOnly',
      });
      expect(body.polling, proc.role).toMatchObject({
        enabled: mode !== 'EventDrivenOnly',
        active: mode === 'PollingOnly',
        fallback_triggered: false,
      });
    }
  });

  it('loses nothing when its listener backends are terminated mid-run', async () => {
    const { testDb, orchestrator, worker, client } = pair();
    const before = await Promise.all([scrape(orchestrator.url), scrape(worker.url)]);
    const slow = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        client.createTask({
          namespace: 'math',
          name: 'slow_sequence',
          version: '1.0.0',
          context: { n: i, ms: 150 },
        }),
      ),
    );
    await sleep(100);
    const terminated = await testDb.db.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name LIKE '%-listener'`,
    );
    expect(terminated.rows[0]?.n).toBe(mode === 'PollingOnly' ? 0 : 2);
    // Work that arrives while the listeners are gone: notifications sent now reach nobody.
    const during = await createHappyPaths(client);
    await sendTaskRequests(testDb, 'queued-2', 3);

    const finished = await Promise.all([...slow, ...during].map((t) => awaitTerminal(client, t.task_uuid)));
    for (const task of finished) expect(task.status, task.name).toBe('complete');
    const queued = await awaitTaggedComplete(testDb, 'queued-2', 3);
    await assertAppliedOnce(testDb.db, [...finished.map((t) => t.task_uuid), ...queued]);

    if (mode === 'PollingOnly') return;
    // The listeners are back, with new backends.
    for (const proc of [orchestrator, worker]) {
      const back = await waitForJson(
        `${proc.url}/health/detailed`,
        (a) => (a.body.event_listeners as Json).active === true && (a.body.polling as Json).active === false,
      );
      expect(back.body.event_listeners, proc.role).toMatchObject({ active: true });
    }
    const after = await Promise.all([scrape(orchestrator.url), scrape(worker.url)]);
    after.forEach((scraped, i) => {
      const earlier = before[i];
      if (earlier === undefined) throw new Error('missing scrape');
      expect(total(scraped, 'tasker_listener_reconnections_total')).toBeGreaterThan(
        total(earlier, 'tasker_listener_reconnections_total'),
      );
      if (mode === 'Hybrid') {
        // Down longer than fallback_activation_threshold_ms: polling took over, then handed back.
        expect(total(scraped, 'tasker_mode_switches_total', { to: 'polling_fallback' })).toBeGreaterThan(
          total(earlier, 'tasker_mode_switches_total', { to: 'polling_fallback' }),
        );
        expect(total(scraped, 'tasker_mode_switches_total', { to: 'events' })).toBeGreaterThan(
          total(earlier, 'tasker_mode_switches_total', { to: 'events' }),
        );
      } else {
        expect(total(scraped, 'tasker_polling_cycles_total'), 'EventDrivenOnly never polls').toBe(0);
      }
    });
    expect(await listenerBackends(testDb)).toHaveLength(2);
    for (const proc of [orchestrator, worker]) {
      const switches = proc.logs.filter((l) => l.msg.startsWith('polling fallback activated'));
      // At least the one the termination caused (a loaded machine may add lag-triggered ones).
      if (mode === 'Hybrid') expect(switches.length, proc.role).toBeGreaterThanOrEqual(1);
      else expect(switches, proc.role).toEqual([]);
    }
  }, 90_000);
});

describe('Hybrid with notifications suppressed (LISTEN on a database nobody notifies, like a transaction pooler)', () => {
  // The listen connection goes to another database: every NOTIFY of this one is lost to it.
  const pair = usePair(() => ({
    TASKER_DEPLOYMENT_MODE: 'Hybrid',
    TASKER_CONFIG_PATH: configFile('[database]\nlisten_url = "postgres://root@127.0.0.1:5432/postgres"\n'),
  }));

  it('reports the failed LISTEN self-test, falls back to polling and still completes every task', async () => {
    const { testDb, orchestrator, worker, client } = pair();
    for (const proc of [orchestrator, worker]) {
      const { status, body } = await waitForJson(
        `${proc.url}/health/detailed`,
        (a) => (a.body.polling as Json | undefined)?.fallback_triggered === true,
      );
      // Degraded, not down: polling delivers the work, and the body says why.
      expect(status, proc.role).toBe(200);
      expect(body.event_listeners, proc.role).toMatchObject({ active: true, notifications_verified: false });
      expect(body.polling, proc.role).toMatchObject({ active: true, fallback_triggered: true });
      expect(String(body.message), proc.role).toMatch(/transaction pooler/);
      expect(
        proc.logs.some((l) => l.msg.startsWith('LISTEN self-test failed')),
        proc.role,
      ).toBe(true);
    }
    const started = Date.now();
    const created = await createHappyPaths(client);
    await sendTaskRequests(testDb, 'suppressed', 3);
    const finished = await Promise.all(created.map((t) => awaitTerminal(client, t.task_uuid)));
    for (const [i, task] of finished.entries()) expect(stepValues(task)).toEqual(HAPPY_PATHS[i]?.values);
    const queued = await awaitTaggedComplete(testDb, 'suppressed', 3);
    await assertAppliedOnce(testDb.db, [...finished.map((t) => t.task_uuid), ...queued]);
    // Every step was found by a poll (200 ms in the test environment): the deepest workflow has 5 levels, so
    // well under the lease or staleness paths, which take seconds to minutes.
    console.info(`suppressed notifications: ${finished.length} workflows done in ${Date.now() - started} ms`);
    const work = await scrape(worker.url);
    expect(total(work, 'tasker_polling_messages_found_total')).toBeGreaterThan(0);
    expect(total(work, 'tasker_event_notifications_received_total')).toBe(0);
    expect(total(work, 'tasker_polling_fallback_active', { mode: 'hybrid' })).toBe(1);
  });
});

describe('EventDrivenOnly whose listener cannot connect', () => {
  let testDb: TestDatabase;
  let worker: TaskerProcess;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    worker = await startWorkerProcess({
      databaseUrl: testDb.url,
      env: {
        TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly',
        // Nothing listens on port 1: every attempt is refused at once.
        TASKER_CONFIG_PATH: configFile(`
[database]
listen_url = "postgres://root@127.0.0.1:1/nowhere"
[worker.event_driven]
max_reconnect_attempts = 2
listener_reconnect_interval_ms = 50
`),
      },
    });
  }, 90_000);

  afterAll(async () => {
    const code = worker === undefined ? 0 : await stopProcess(worker);
    await testDb?.drop();
    expect(code).toBe(0);
  }, 60_000);

  it('gives up after max_reconnect_attempts and says it is unhealthy, and why', async () => {
    const detailed = await waitForJson(
      `${worker.url}/health/detailed`,
      (a) => (a.body.event_listeners as Json | undefined)?.status === 'failed',
    );
    expect(detailed.status).toBe(503);
    expect((await getJson(`${worker.url}/health`)).status).toBe(503);
    expect(detailed.body.event_listeners).toMatchObject({ enabled: true, active: false, status: 'failed' });
    expect(detailed.body.work_intake).toMatchObject({
      status: 'unhealthy',
      message: expect.stringMatching(/LISTEN connection failed after 2 reconnect attempts/) as unknown,
    });
    const ready = await getJson(`${worker.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(
      worker.logs.some(
        (l) =>
          l.level === 'error' && l.msg.startsWith('listen connection failed max reconnect attempts in a row'),
      ),
    ).toBe(true);
  });
});
