/**
 * PostgreSQL itself crashes mid-run (pg_ctl stop -m immediate: no checkpoint; WAL not yet written is gone, as
 * after a power cut of the server process) and comes back through crash recovery. Real orchestration and
 * worker processes keep running through it. Every task whose creation was acknowledged before the crash
 * completes with the right values, no step result is applied twice, nobody logs at error level, and a request
 * made while the server is down gets a clear 503 instead of a hang or a 500. A worker whose handler finished
 * during the outage keeps trying to store the result while the step's lease lasts (it gave up after 2.6 s and
 * logged an error).
 *
 * Claims commit without waiting for the disk (src/db/sql/claim_steps.sql): a claim lost in the crash means the step's
 * message is delivered again, which this test goes through. It runs on a server of its own (the shared one
 * serves every other test file at the same time).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerAnswerError, TaskerClient } from '../../src/client/taskerClient.ts';
import type { TaskView } from '../../src/client/taskerClient.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { assertAppliedOnce, awaitTerminal, stepValues } from '../helpers/e2e/clusterChecks.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { sleep } from '../helpers/engine/wait.ts';
import { startScratchPostgres } from '../helpers/scratchPostgres.ts';
import type { ScratchPostgres } from '../helpers/scratchPostgres.ts';

const TASKS = 12;
/** How long the server stays down: longer than a worker used to keep trying to store a result (2.6 s). */
const DOWN_MS = 3_500;
/**
 * The database breakers open after the crash's connection failures and stay open for timeout_seconds (60 in
 * production, as the deployment guide sets them): 2 here, so the test does not wait a minute for the API.
 * Leases of 10 s outlast the outage: results of steps that finished meanwhile are stored once it is back.
 */
const CONFIG = `
[circuit_breakers.database]
timeout_seconds = 2
half_open_timeout_seconds = 2
[pgmq]
visibility_timeout_seconds = 10
`;

/** Results applied by the workers in their own commit (the default), or by orchestration. */
const RESULT_PATHS = [
  { results: 'applied by workers', config: '' },
  { results: 'applied by orchestration', config: '[worker]\napply_results_inline = false\n' },
] as const;
/** Each step of slow_sequence sleeps this long: steps are in flight (claimed, running, storing) at the crash. */
const STEP_MS = 120;

/** One server for both variants (initdb costs seconds of CPU on a machine that runs four test files at once). */
let server: ScratchPostgres;
beforeAll(async () => {
  server = await startScratchPostgres();
}, 90_000);
afterAll(() => server?.destroy());

describe.each(RESULT_PATHS)(
  'PostgreSQL crashes and recovers under a running cluster (1 orchestrator, 1 worker), results $results',
  (variant) => {
    let databaseUrl: string;
    const processes: TaskerProcess[] = [];
    let client: TaskerClient;

    beforeAll(async () => {
      const database = `tasker_crash_${RESULT_PATHS.indexOf(variant)}`;
      const admin = new PostgresDatabase(server.url('postgres'), { applicationName: 'tasker-test' });
      await admin.query(`CREATE DATABASE ${database}`);
      await admin.close();
      databaseUrl = server.url(database);
      const configFile = join(mkdtempSync(join(tmpdir(), 'tasker-e2e-')), 'tasker.toml');
      writeFileSync(configFile, CONFIG + variant.config);
      const env = { TASKER_CONFIG_PATH: configFile };
      const db = new PostgresDatabase(databaseUrl, { applicationName: 'tasker-test' });
      await migrate(db);
      await db.close();
      processes.push(
        ...(await Promise.all([
          startOrchestrationProcess({ databaseUrl, env }),
          startWorkerProcess({ databaseUrl, env }),
        ])),
      );
      client = new TaskerClient((processes[0] as TaskerProcess).url);
    }, 90_000);

    afterAll(async () => {
      const codes = await Promise.all(processes.map((p) => stopProcess(p)));
      expect(codes).toEqual(processes.map(() => 0));
    }, 60_000);

    it('loses no acknowledged task, applies no result twice, and answers 503 while the server is down', async () => {
      const created = await Promise.all(
        Array.from({ length: TASKS }, (_, i) =>
          client.createTask({
            namespace: 'math',
            name: 'slow_sequence',
            version: '1.0.0',
            context: { n: i, ms: STEP_MS },
          }),
        ),
      );
      // Mid-run: first steps running or stored, later ones not yet claimed.
      await sleep(STEP_MS + 60);
      server.crash();

      const whileDown = await client
        .createTask({ namespace: 'math', name: 'slow_sequence', version: '1.0.0', context: { n: 99 } })
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(whileDown).toBeInstanceOf(ServerAnswerError);
      expect((whileDown as ServerAnswerError).status).toBe(503);
      expect((whileDown as ServerAnswerError).code).toMatch(/^TASKER_(DATABASE_UNAVAILABLE|CIRCUIT_OPEN)$/);

      await sleep(DOWN_MS);
      server.start();

      // Until the orchestrator's breaker lets calls through again, the API answers 503 with Retry-After.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await client.getTask(created[0]?.task_uuid ?? '');
          break;
        } catch (error) {
          if (!(error instanceof ServerAnswerError) || error.status !== 503 || Date.now() > deadline)
            throw error;
          await sleep(200);
        }
      }
      const finished: TaskView[] = await Promise.all(
        created.map((task) => awaitTerminal(client, task.task_uuid, 90_000)),
      );
      finished.forEach((task, i) => {
        expect(task.status, task.task_uuid).toBe('complete');
        expect(stepValues(task)).toEqual({ slow_fetch: i + 1, slow_transform: i + 2, slow_store: i + 3 });
      });
      const db = new PostgresDatabase(databaseUrl, { applicationName: 'tasker-test' });
      try {
        await assertAppliedOnce(
          db,
          finished.map((t) => t.task_uuid),
        );
      } finally {
        await db.close();
      }
      for (const proc of processes) {
        expect(proc.child.exitCode, `${proc.role} ${proc.pid}`).toBeNull();
        expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
      }
    }, 150_000);
  },
);
