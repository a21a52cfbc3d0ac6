/**
 * The seed's production pattern: containers of different deployment modes side by side on one database,
 * coordinating only through atomic SQL. Here 3 EventDrivenOnly + 1 PollingOnly orchestrators and 2 Hybrid +
 * 1 PollingOnly workers, each a separate `tasker` process, with results routed through orchestration so every
 * orchestrator mode has work. Asserted: every task completes with the right data, every step's handler ran
 * exactly once, no duplicate transition, nothing logged at error level for a lost race, and the PollingOnly
 * replicas visibly pick up work the event-driven ones missed (task requests sent without a notification, and
 * steps beyond the Hybrid workers' capacity). Then the seed's migration path: a cluster switched from
 * PollingOnly to Hybrid by rolling restarts under load, and rolled back, loses and duplicates nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import type { TaskView } from '../../src/client/taskerClient.ts';
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

/** Results through orchestration_step_results, and small workers so that steps queue up. */
const CLUSTER_CONFIG = `
[worker]
apply_results_inline = false
max_concurrent_handlers = 2
`;

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tasker-mixed-')), 'tasker.toml');
  writeFileSync(file, text);
  return file;
}

interface Member {
  proc: TaskerProcess;
  mode: DeploymentMode;
}

function start(
  role: 'orchestration' | 'worker',
  testDb: TestDatabase,
  mode: DeploymentMode,
): Promise<Member> {
  const options = {
    databaseUrl: testDb.url,
    env: { TASKER_DEPLOYMENT_MODE: mode, TASKER_CONFIG_PATH: configFile(CLUSTER_CONFIG) },
  };
  const started = role === 'orchestration' ? startOrchestrationProcess(options) : startWorkerProcess(options);
  return started.then((proc) => ({ proc, mode }));
}

function processorUuid(proc: TaskerProcess): string {
  const line = proc.logs.find((l) => l.msg === 'orchestrator started');
  if (typeof line?.processor_uuid !== 'string') throw new Error(`no processor_uuid logged by ${proc.pid}`);
  return line.processor_uuid;
}

interface RequestOptions {
  tag: string;
  count: number;
  /** false: plain pgmq.send, no NOTIFY (a producer that does not signal). */
  notify: boolean;
  name?: string;
}

async function sendTaskRequests(testDb: TestDatabase, options: RequestOptions): Promise<void> {
  const fn = options.notify ? 'tasker.pgmq_send_with_notify' : 'pgmq.send';
  for (let i = 0; i < options.count; i++) {
    await testDb.db.query(`SELECT ${fn}('orchestration_task_requests', $1::jsonb)`, [
      JSON.stringify({
        request_id: `${options.tag}-${i}`,
        task_request: {
          namespace: 'math',
          name: options.name ?? 'diamond_pattern',
          version: '1.0.0',
          context: { n: i + 1 },
          tags: [options.tag],
        },
      }),
    ]);
  }
}

/** Waits until `count` tasks tagged `tag` exist and all are complete; returns their uuids. */
async function awaitTagged(
  testDb: TestDatabase,
  tag: string,
  count: number,
  timeoutMs = 90_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await testDb.db.query<{ task_uuid: string; current_state: string }>(
      `SELECT task_uuid, current_state FROM tasker.tasks WHERE tags ? $1`,
      [tag],
    );
    if (rows.length >= count && rows.every((r) => r.current_state === 'complete')) {
      expect(rows.length, `tasks tagged ${tag}`).toBe(count);
      return rows.map((r) => r.task_uuid);
    }
    if (Date.now() > deadline) {
      const states = rows.reduce<Record<string, number>>((acc, r) => {
        acc[r.current_state] = (acc[r.current_state] ?? 0) + 1;
        return acc;
      }, {});
      throw new Error(`tasks tagged ${tag}: ${rows.length} of ${count} exist, ${JSON.stringify(states)}`);
    }
    await sleep(100);
  }
}

/** Each step ran its handler once: one attempt, one stored result. */
async function assertEachHandlerRanOnce(testDb: TestDatabase, taskUuids: readonly string[]): Promise<void> {
  const { rows } = await testDb.db.query<{ name: string; attempts: number; results: number }>(
    `SELECT s.name, s.attempts,
            (SELECT count(*)::int FROM tasker.workflow_step_result_audit a WHERE a.workflow_step_uuid = s.workflow_step_uuid) AS results
       FROM tasker.workflow_steps s WHERE s.task_uuid = ANY($1::uuid[])`,
    [taskUuids],
  );
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.filter((r) => r.attempts !== 1 || r.results !== 1)).toEqual([]);
}

describe('a mixed-mode cluster: 3 EventDrivenOnly + 1 PollingOnly orchestrators, 2 Hybrid + 1 PollingOnly workers', () => {
  let testDb: TestDatabase;
  let orchestrators: Member[] = [];
  let workers: Member[] = [];
  let clients: TaskerClient[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    orchestrators = await Promise.all([
      start('orchestration', testDb, 'EventDrivenOnly'),
      start('orchestration', testDb, 'EventDrivenOnly'),
      start('orchestration', testDb, 'EventDrivenOnly'),
      start('orchestration', testDb, 'PollingOnly'),
    ]);
    workers = await Promise.all([
      start('worker', testDb, 'Hybrid'),
      start('worker', testDb, 'Hybrid'),
      start('worker', testDb, 'PollingOnly'),
    ]);
    clients = orchestrators.map((o) => new TaskerClient(o.proc.url));
  }, 120_000);

  afterAll(async () => {
    const all = [...orchestrators, ...workers].map((m) => m.proc);
    const codes = await Promise.all(all.map((p) => stopProcess(p)));
    await testDb?.drop();
    expect(codes).toEqual(all.map(() => 0));
    // A lost race (another replica took the message or applied the result first) is a normal no-op.
    for (const proc of all) expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
  }, 60_000);

  it('completes every task with the right data, each handler running exactly once', async () => {
    const requests = HAPPY_PATHS.flatMap((path) => [path, path, path]);
    const created = await Promise.all(
      requests.map((path, i) =>
        (clients[i % clients.length] as TaskerClient).createTask({
          namespace: 'math',
          name: path.template,
          version: '1.0.0',
          context: path.context,
        }),
      ),
    );
    await sendTaskRequests(testDb, { tag: 'notified', count: 10, notify: true });
    const finished = await Promise.all(
      created.map((t, i) => awaitTerminal(clients[(i + 1) % clients.length] as TaskerClient, t.task_uuid)),
    );
    requests.forEach((path, i) => {
      const task = finished[i] as TaskView;
      expect(task.status, path.template).toBe('complete');
      expect(stepValues(task), path.template).toEqual(path.values);
    });
    const queued = await awaitTagged(testDb, 'notified', 10);
    const all = [...finished.map((t) => t.task_uuid), ...queued];
    await assertAppliedOnce(testDb.db, all);
    await assertEachHandlerRanOnce(testDb, all);
  }, 120_000);

  it('PollingOnly replicas pick up work the event-driven ones missed', async () => {
    // Requests sent without a notification: the EventDrivenOnly orchestrators are never told about them.
    await sendTaskRequests(testDb, { tag: 'silent', count: 6, notify: false });
    // More steps at once than the Hybrid workers' 2 × 2 slots: the rest wait in the queue for whoever looks.
    // Each step holds its slot for 300 ms, longer than the PollingOnly worker's 200 ms poll, so that poll
    // finds steps still waiting however the machine's load shifts the timing (at 100 ms the Hybrid workers'
    // refills sometimes took them all first).
    const client = clients[0] as TaskerClient;
    const slow = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        client.createTask({
          namespace: 'math',
          name: 'slow_sequence',
          version: '1.0.0',
          context: { n: i, ms: 300 },
        }),
      ),
    );
    const silent = await awaitTagged(testDb, 'silent', 6);
    const finished = await Promise.all(slow.map((t) => awaitTerminal(client, t.task_uuid)));
    for (const task of finished) expect(task.status).toBe('complete');
    await assertAppliedOnce(testDb.db, [...silent, ...finished.map((t) => t.task_uuid)]);
    await assertEachHandlerRanOnce(testDb, [...silent, ...finished.map((t) => t.task_uuid)]);

    const poller = orchestrators.find((m) => m.mode === 'PollingOnly') as Member;
    const { rows } = await testDb.db.query<{ processor_uuid: string; n: number }>(
      `SELECT tt.processor_uuid::text, count(*)::int AS n FROM tasker.task_transitions tt
        WHERE tt.task_uuid = ANY($1::uuid[]) AND tt.sort_key = 1 GROUP BY 1`,
      [silent],
    );
    // Every silent request was created by the PollingOnly orchestrator.
    expect(rows).toEqual([{ processor_uuid: processorUuid(poller.proc), n: 6 }]);
    const pollerMetrics = await scrape(poller.proc.url);
    expect(
      total(pollerMetrics, 'tasker_polling_messages_found_total', { queue: 'orchestration_task_requests' }),
    ).toBeGreaterThanOrEqual(6);

    const pollingWorker = workers.find((m) => m.mode === 'PollingOnly') as Member;
    const workerMetrics = await scrape(pollingWorker.proc.url);
    expect(total(workerMetrics, 'tasker_polling_messages_found_total')).toBeGreaterThan(0);
    expect(total(workerMetrics, 'tasker_steps_completed_total', { outcome: 'success' })).toBeGreaterThan(0);
    for (const member of orchestrators.filter((m) => m.mode === 'EventDrivenOnly')) {
      const scraped = await scrape(member.proc.url);
      expect(total(scraped, 'tasker_polling_cycles_total'), 'EventDrivenOnly never polls').toBe(0);
    }
  }, 120_000);
});

describe('rolling restart from PollingOnly to Hybrid under load, and the rollback', () => {
  let testDb: TestDatabase;
  const orchestrators: Member[] = [];
  const workers: Member[] = [];
  const retired: TaskerProcess[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    orchestrators.push(
      ...(await Promise.all([
        start('orchestration', testDb, 'PollingOnly'),
        start('orchestration', testDb, 'PollingOnly'),
      ])),
    );
    workers.push(
      ...(await Promise.all([
        start('worker', testDb, 'PollingOnly'),
        start('worker', testDb, 'PollingOnly'),
      ])),
    );
  }, 120_000);

  afterAll(async () => {
    const running = [...orchestrators, ...workers].map((m) => m.proc);
    const codes = await Promise.all(running.map((p) => stopProcess(p)));
    await testDb?.drop();
    expect(codes).toEqual(running.map(() => 0));
    for (const proc of [...running, ...retired])
      expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
  }, 60_000);

  /** Replaces every member, one at a time: the new one is up before the old one is stopped (SIGTERM). */
  async function roll(to: DeploymentMode): Promise<void> {
    for (const [role, members] of [
      ['orchestration', orchestrators],
      ['worker', workers],
    ] as const) {
      for (let i = 0; i < members.length; i++) {
        const old = members[i] as Member;
        members[i] = await start(role, testDb, to);
        expect(await stopProcess(old.proc), `${role} ${old.proc.pid} stopped`).toBe(0);
        retired.push(old.proc);
      }
    }
  }

  it('loses and duplicates no task while every process is replaced, both ways', async () => {
    let sent = 0;
    let producing = true;
    // A steady producer: task requests through the queue, as another service would send them.
    const producer = (async () => {
      while (producing) {
        await testDb.db.query(
          `SELECT tasker.pgmq_send_with_notify('orchestration_task_requests', $1::jsonb)`,
          [
            JSON.stringify({
              request_id: `rolling-${sent}`,
              task_request: {
                namespace: 'math',
                name: 'mathematical_sequence',
                version: '1.0.0',
                context: { even_number: 2 },
                tags: ['rolling'],
              },
            }),
          ],
        );
        sent += 1;
        await sleep(40);
      }
    })();
    try {
      await sleep(500);
      await roll('Hybrid');
      for (const member of [...orchestrators, ...workers]) {
        const detailed = (await (await fetch(`${member.proc.url}/health/detailed`)).json()) as {
          deployment_mode: string;
        };
        expect(detailed.deployment_mode).toBe('Hybrid');
      }
      await sleep(500);
      await roll('PollingOnly');
      await sleep(500);
    } finally {
      // Also when a roll fails: a producer left running would query the database afterAll drops.
      producing = false;
      await producer;
    }

    const tasks = await awaitTagged(testDb, 'rolling', sent, 120_000);
    expect(sent).toBeGreaterThan(50);
    await assertAppliedOnce(testDb.db, tasks);
    // Every value along the chain is right: 2 → 4 → 16 → 256 → 65536.
    const { rows } = await testDb.db.query<{ wrong: number }>(
      `SELECT count(*)::int AS wrong FROM tasker.workflow_steps s
        WHERE s.task_uuid = ANY($1::uuid[]) AND s.name = 'linear_step_4' AND (s.results ->> 'value')::bigint <> 65536`,
      [tasks],
    );
    expect(rows[0]?.wrong).toBe(0);
  }, 240_000);
});
