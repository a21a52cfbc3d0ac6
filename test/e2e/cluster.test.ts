/**
 * Tasker as users run it: two orchestration and two worker processes (`node bin/tasker.js ...`), separate OS
 * processes that share nothing but PostgreSQL, driven over HTTP. Workflows run to completion with the right
 * data; a worker and an orchestrator killed with SIGKILL mid-run, and every database connection terminated
 * mid-run, lose no task and apply no step result twice.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import type { TaskRequest, TaskView } from '../../src/client/taskerClient.ts';
import type { Database } from '../../src/db/database.ts';
import { HAPPY_PATHS } from '../helpers/engine/exampleExpectations.ts';
import { assertAppliedOnce, awaitTerminal, stepValues } from '../helpers/e2e/clusterChecks.ts';
import { sleep } from '../helpers/engine/wait.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { HOSTILE_CASES, TASK } from '../helpers/hostileRequests.ts';
import { GrpcTestScope, unary } from '../helpers/grpcClients.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

const WORKFLOWS = [
  ...HAPPY_PATHS.map((path) => ({
    name: path.template,
    context: path.context,
    status: 'complete',
    values: path.values,
  })),
  {
    name: 'slow_sequence',
    context: { n: 5, ms: 50 },
    status: 'complete',
    values: { slow_fetch: 6, slow_transform: 7, slow_store: 8 },
  },
  { name: 'retry_then_succeed', namespace: 'resilience', context: {}, status: 'complete', values: {} },
  { name: 'always_fails', namespace: 'resilience', context: {}, status: 'error', values: {} },
  { name: 'permanent_error', namespace: 'resilience', context: {}, status: 'error', values: {} },
  { name: 'mixed_outcomes', namespace: 'resilience', context: {}, status: 'error', values: {} },
];

/**
 * Results applied by the workers in their own commit (the default), or handed to orchestration through
 * orchestration_step_results (then killing an orchestrator interrupts result application itself). The second
 * variant runs from one TOML file (TASKER_CONFIG_PATH) with the test environment's fast settings.
 */
const RESULT_PATHS = [
  { results: 'applied by workers', env: {} },
  {
    results: 'applied by orchestration',
    config: `
[worker]
apply_results_inline = false
shutdown_timeout_ms = 5000
[worker.hybrid]
polling_interval_ms = 200
[orchestration.hybrid]
polling_interval_ms = 200
[pgmq]
visibility_timeout_seconds = 3
heartbeat_interval_ms = 2000
heartbeat_timeout_ms = 1000
reconnect_max_ms = 2000
`,
  },
] as const;

describe.each(RESULT_PATHS)(
  'a cluster of real tasker processes: 2 orchestrators, 2 workers, results $results',
  (variant) => {
    let env: Record<string, string> = {};
    let testDb: TestDatabase;
    let db: Database;
    const orchestrators: TaskerProcess[] = [];
    const workers: TaskerProcess[] = [];
    const retired: TaskerProcess[] = [];
    let clients: TaskerClient[] = [];

    beforeAll(async () => {
      testDb = await createTestDatabase();
      db = testDb.db;
      if ('config' in variant) {
        const file = join(mkdtempSync(join(tmpdir(), 'tasker-e2e-')), 'tasker.toml');
        writeFileSync(file, variant.config);
        env = { TASKER_CONFIG_PATH: file };
      }
      const started = await Promise.all([
        startOrchestrationProcess({ databaseUrl: testDb.url, env }),
        startOrchestrationProcess({ databaseUrl: testDb.url, env }),
        startWorkerProcess({ databaseUrl: testDb.url, env }),
        startWorkerProcess({ databaseUrl: testDb.url, env }),
      ]);
      orchestrators.push(started[0], started[1]);
      workers.push(started[2], started[3]);
      clients = orchestrators.map((o) => new TaskerClient(o.url));
    }, 90_000);

    afterAll(async () => {
      const all = [...orchestrators, ...workers];
      const codes = await Promise.all(all.map((p) => stopProcess(p)));
      await testDb?.drop();
      all.forEach((proc, i) => {
        if (codes[i] !== 0)
          console.error(
            `${proc.role} ${proc.pid} exited ${codes[i]}; last log lines:`,
            proc.logs.slice(-8),
            proc.otherOutput,
          );
      });
      // Graceful shutdown: every process still running at the end exits 0 on SIGTERM.
      expect(codes).toEqual(all.map(() => 0));
      for (const proc of [...all, ...retired])
        expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
    }, 60_000);

    it('serves its health endpoints over HTTP and gRPC', async () => {
      const grpcScope = new GrpcTestScope();
      try {
        for (const proc of [...orchestrators, ...workers]) {
          expect(proc.grpcAddress, proc.role).toBeDefined();
          const standard = grpcScope.client(proc.grpcAddress ?? '', 'grpc.health.v1.Health');
          for (const service of ['', 'tasker.v1.HealthService'])
            expect(await unary<{ status: string }>(standard, 'Check', { service })).toEqual({
              status: 'SERVING',
            });
          const tasker = grpcScope.client(proc.grpcAddress ?? '', 'tasker.v1.HealthService');
          const ready = await unary<{ status: string }>(tasker, 'CheckReadiness');
          expect(ready.status, proc.role).toBe('HEALTH_STATUS_HEALTHY');
        }
      } finally {
        await grpcScope.close();
      }
      for (const proc of [...orchestrators, ...workers]) {
        const ready = await fetch(`${proc.url}/health/ready`);
        expect(ready.status, proc.url).toBe(200);
        const live = (await (await fetch(`${proc.url}/health/live`)).json()) as { status: string };
        expect(live.status).toBe('healthy');
      }
    });

    it('runs every example workflow created over HTTP to its expected end, with the data along the edges', async () => {
      const created = await Promise.all(
        WORKFLOWS.map((w, i) =>
          (clients[i % 2] as TaskerClient).createTask({
            namespace: 'namespace' in w ? w.namespace : 'math',
            name: w.name,
            version: '1.0.0',
            context: w.context,
          }),
        ),
      );
      for (const task of created) expect(task.task_uuid).toMatch(/^[0-9a-f-]{36}$/);
      const finished = await Promise.all(
        created.map((t, i) => awaitTerminal(clients[(i + 1) % 2] as TaskerClient, t.task_uuid)),
      );
      WORKFLOWS.forEach((w, i) => {
        const task = finished[i] as TaskView;
        expect(task.status, w.name).toBe(w.status);
        if (Object.keys(w.values).length > 0) expect(stepValues(task), w.name).toEqual(w.values);
      });
      await assertAppliedOnce(
        db,
        finished.map((t) => t.task_uuid),
      );
    });

    it(`answers ${HOSTILE_CASES.length} malformed and hostile requests with the right 4xx, never a 5xx`, async () => {
      const api = (orchestrators[0] as TaskerProcess).url;
      const task = await (clients[0] as TaskerClient).createTask(JSON.parse(TASK) as TaskRequest);
      const stepUuid = task.steps?.[0]?.step_uuid ?? '';
      const wrong: string[] = [];
      for (const testCase of HOSTILE_CASES) {
        const path = testCase.path.replace(':task', task.task_uuid).replace(':step', stepUuid);
        const response = await fetch(`${api}${path}`, {
          method: testCase.method,
          headers:
            testCase.headers ?? (testCase.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(testCase.body !== undefined && { body: testCase.body }),
        });
        const text = await response.text();
        let code: string;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
        } catch {
          code = `(not JSON: ${text.slice(0, 60)})`;
        }
        if (response.status !== testCase.status || code !== testCase.code)
          wrong.push(
            `${testCase.name}: ${response.status} ${code}, expected ${testCase.status} ${testCase.code}`,
          );
      }
      expect(wrong).toEqual([]);
      const health = await fetch(`${api}/health/ready`);
      expect(health.status).toBe(200);
    });

    it('loses no task when a worker is killed with SIGKILL mid-step', async () => {
      const client = clients[0] as TaskerClient;
      const tasks = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          client.createTask({
            namespace: 'math',
            name: 'slow_sequence',
            version: '1.0.0',
            context: { n: i, ms: 300 },
          }),
        ),
      );
      await sleep(450);
      const victim = workers.shift() as TaskerProcess;
      victim.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      retired.push(victim);
      // A replacement joins; leases of the killed worker's steps expire (3 s in the test environment).
      workers.push(await startWorkerProcess({ databaseUrl: testDb.url, env }));
      const finished = await Promise.all(tasks.map((t) => awaitTerminal(client, t.task_uuid)));
      finished.forEach((task, i) => {
        expect(task.status).toBe('complete');
        expect(stepValues(task)).toEqual({ slow_fetch: i + 1, slow_transform: i + 2, slow_store: i + 3 });
      });
      await assertAppliedOnce(
        db,
        finished.map((t) => t.task_uuid),
      );
    }, 90_000);

    it('loses no task when an orchestrator is killed with SIGKILL mid-run', async () => {
      const tasks = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (clients[i % 2] as TaskerClient).createTask({
            namespace: 'math',
            name: i % 3 === 0 ? 'slow_sequence' : 'diamond_pattern',
            version: '1.0.0',
            context: i % 3 === 0 ? { n: i, ms: 100 } : { n: i },
          }),
        ),
      );
      const victim = orchestrators.shift() as TaskerProcess;
      victim.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      retired.push(victim);
      clients.shift();
      const survivor = clients[0] as TaskerClient;
      const finished = await Promise.all(tasks.map((t) => awaitTerminal(survivor, t.task_uuid)));
      for (const task of finished) expect(task.status).toBe('complete');
      await assertAppliedOnce(
        db,
        finished.map((t) => t.task_uuid),
      );
      const replacement = await startOrchestrationProcess({ databaseUrl: testDb.url, env });
      orchestrators.push(replacement);
      clients.push(new TaskerClient(replacement.url));
    }, 90_000);

    it('recovers when every database connection of the cluster is terminated mid-run', async () => {
      const client = clients[0] as TaskerClient;
      const tasks = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          client.createTask({
            namespace: 'math',
            name: 'slow_sequence',
            version: '1.0.0',
            context: { n: i, ms: 150 },
          }),
        ),
      );
      await sleep(200);
      const { rows } = await db.query<{ terminated: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      expect(rows[0]?.terminated).toBeGreaterThan(4);
      const finished = await Promise.all(tasks.map((t) => awaitTerminal(client, t.task_uuid, 90_000)));
      for (const task of finished) expect(task.status).toBe('complete');
      await assertAppliedOnce(
        db,
        finished.map((t) => t.task_uuid),
      );
      for (const proc of [...orchestrators, ...workers]) expect(proc.child.exitCode, proc.role).toBeNull();
    }, 120_000);
  },
);
