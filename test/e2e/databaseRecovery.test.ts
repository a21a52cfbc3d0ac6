/**
 * Recovery in seconds: PostgreSQL crashes for 5 s under a real orchestrator and worker running the shipped
 * circuit-breaker settings (the database breaker opens for up to 60 s, the message-queue breaker for 120 s).
 * Once the server accepts connections again, readiness over HTTP and gRPC (a real gRPC client), a task created
 * through the API, and a task request queued in orchestration_task_requests must all come back within seconds:
 * the breakers probe the database and let calls through when it answers, instead of waiting out their timeout.
 *
 * The bound asserted (15 s) is generous for a shared 2-core machine and far below the 55 s the fixed timeouts
 * cost; the measured times are printed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { awaitTerminal } from '../helpers/e2e/clusterChecks.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { sleep } from '../helpers/engine/wait.ts';
import { GrpcTestScope, unary } from '../helpers/grpcClients.ts';
import { startScratchPostgres } from '../helpers/scratchPostgres.ts';
import type { ScratchPostgres } from '../helpers/scratchPostgres.ts';

const DOWN_MS = 5_000;
const RECOVERY_BOUND_MS = 15_000;

let server: ScratchPostgres;
let databaseUrl: string;
const processes: TaskerProcess[] = [];
const grpc = new GrpcTestScope();

beforeAll(async () => {
  server = await startScratchPostgres();
  const admin = new PostgresDatabase(server.url('postgres'), { applicationName: 'tasker-test' });
  await admin.query('CREATE DATABASE tasker_recovery');
  await admin.close();
  databaseUrl = server.url('tasker_recovery');
  const db = new PostgresDatabase(databaseUrl, { applicationName: 'tasker-test' });
  await migrate(db);
  await db.close();
  processes.push(
    ...(await Promise.all([
      startOrchestrationProcess({ databaseUrl }),
      startWorkerProcess({ databaseUrl }),
      // Ready only with its LISTEN connection up: it must reconnect as soon as the database is back.
      startWorkerProcess({ databaseUrl, env: { TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly' } }),
    ])),
  );
}, 120_000);

afterAll(async () => {
  await grpc.close();
  await Promise.all(processes.map((p) => stopProcess(p)));
  server?.destroy();
}, 60_000);

/** Polls `check` every 100 ms until it answers true; the milliseconds it took. */
async function timeUntil(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return Math.round(performance.now() - started);
    if (performance.now() - started > 90_000) throw new Error(`${what}: not within 90 s`);
    await sleep(100);
  }
}

describe('PostgreSQL down for 5 s under the shipped circuit-breaker settings', () => {
  it('is back to ready, running tasks and taking queued requests within seconds of the server', async () => {
    const [orchestration, worker, eventWorker] = processes as [TaskerProcess, TaskerProcess, TaskerProcess];
    const client = new TaskerClient(orchestration.url, { retry: false });
    const health = grpc.client(orchestration.grpcAddress ?? '', 'grpc.health.v1.Health');
    const workerHealth = grpc.client(worker.grpcAddress ?? '', 'grpc.health.v1.Health');
    try {
      // Warm: a task runs end to end before the crash.
      const before = await client.createTask({
        namespace: 'math',
        name: 'diamond_pattern',
        version: '1.0.0',
        context: { n: 2 },
      });
      expect((await awaitTerminal(client, before.task_uuid, 30_000)).status).toBe('complete');

      server.crash();
      // Traffic during the outage opens the breakers (each call fails on a refused connection).
      const outageEnds = Date.now() + DOWN_MS;
      while (Date.now() < outageEnds) {
        await client.getTask(before.task_uuid).catch(() => undefined);
        await fetch(`${worker.url}/health/ready`).catch(() => undefined);
        await sleep(250);
      }
      server.start(); // returns once the server accepts connections

      const ready = (url: string) => async () => (await fetch(`${url}/health/ready`)).status === 200;
      const serving = (client: typeof health, service: string) => async () =>
        (await unary<{ status: string }>(client, 'Check', { service })).status === 'SERVING';
      const queued = randomUUID();
      const sendRequest = async () => {
        const db = new PostgresDatabase(databaseUrl, { applicationName: 'tasker-test' });
        try {
          await db.query(
            `SELECT pgmq.send('orchestration_task_requests', jsonb_build_object('request_id', 'recovery-1',
               'task_request', jsonb_build_object('namespace', 'math', 'name', 'diamond_pattern',
                 'version', '1.0.0', 'context', jsonb_build_object('n', 4), 'correlation_id', $1::text)))`,
            [queued],
          );
        } finally {
          await db.close();
        }
      };
      await sendRequest();
      const [httpReady, grpcReady, workerReady, workerGrpcReady, eventWorkerReady, created, ran] =
        await Promise.all([
          timeUntil('orchestration /health/ready', ready(orchestration.url)),
          timeUntil('orchestration gRPC readiness', serving(health, 'tasker.v1.HealthService')),
          timeUntil('worker /health/ready', ready(worker.url)),
          timeUntil('worker gRPC readiness', serving(workerHealth, 'tasker.v1.HealthService')),
          timeUntil('EventDrivenOnly worker /health/ready', ready(eventWorker.url)),
          timeUntil('the queued task request became a task', async () => {
            const db = new PostgresDatabase(databaseUrl, { applicationName: 'tasker-test' });
            try {
              const { rows } = await db.query('SELECT 1 FROM tasker.tasks WHERE correlation_id = $1', [
                queued,
              ]);
              return rows.length === 1;
            } finally {
              await db.close();
            }
          }),
          timeUntil('a task created after recovery completed', async () => {
            const task = await client.createTask({
              namespace: 'math',
              name: 'diamond_pattern',
              version: '1.0.0',
              context: { n: 6 },
              idempotency_key: `after-recovery-${randomUUID()}`,
            });
            return (await awaitTerminal(client, task.task_uuid, 30_000)).status === 'complete';
          }),
        ]);
      const figures = { httpReady, grpcReady, workerReady, workerGrpcReady, eventWorkerReady, created, ran };
      console.log(
        `recovery after a ${DOWN_MS} ms crash, ms after the server accepted connections: ${JSON.stringify(figures)}`,
      );
      for (const [what, ms] of Object.entries(figures)) {
        expect(ms, `${what} (${JSON.stringify(figures)})`).toBeLessThan(RECOVERY_BOUND_MS);
      }
      // The breakers did open (the outage was felt), and came back through a probe, not their timeout. (The
      // EventDrivenOnly worker makes no call while its listener is down, so its breaker may never open.)
      for (const proc of [orchestration, worker]) {
        const metrics = await (await fetch(`${proc.url}/metrics`)).text();
        expect(metrics, `${proc.role}`).toMatch(
          /tasker_circuit_breaker_transitions_total\{[^}]*name="database"[^}]*to="open"[^}]*\} [1-9]/,
        );
        expect(metrics, `${proc.role}`).toMatch(
          /tasker_circuit_breaker_state\{[^}]*name="database"[^}]*state="closed"[^}]*\} 1/,
        );
      }
      for (const proc of processes) {
        expect(proc.child.exitCode, `${proc.role} ${proc.pid}`).toBeNull();
        expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
      }
    } finally {
      client.close();
    }
  }, 240_000);
});
