/**
 * A worker in its own process, for crash tests: `node --import tsx test/helpers/engine/workerProcess.ts`.
 * Serves the engine fixture templates of one namespace with handlers that block for BLOCK_MS (they never
 * finish in a test: the process is meant to be SIGKILLed mid-step). Prints one JSON line
 * `{"ready":true,"workerId":...}` on stdout once it is claiming.
 *
 * Environment: DATABASE_URL, TASKER_TEST_NAMESPACE, TASKER_TEST_LEASE_SECONDS (default 2),
 * TASKER_TEST_BLOCK_MS (default 60000).
 */
import { PostgresDatabase } from '../../../src/db/postgresDatabase.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { Worker } from '../../../src/worker/worker.ts';
import { engineFixtureTemplates } from './fixtures.ts';

const url = process.env.DATABASE_URL;
const namespace = process.env.TASKER_TEST_NAMESPACE;
if (url === undefined || namespace === undefined) {
  process.stderr.write('workerProcess: DATABASE_URL and TASKER_TEST_NAMESPACE are required\n');
  process.exit(2);
}
const leaseSeconds = Number(process.env.TASKER_TEST_LEASE_SECONDS ?? '2');
const blockMs = Number(process.env.TASKER_TEST_BLOCK_MS ?? '60000');

const templates = engineFixtureTemplates().filter((t) => t.namespace === namespace);
const callables = [...new Set(templates.flatMap((t) => t.steps.map((s) => s.handler.callable)))];
const handlers = callables.map((callable) =>
  defineHandler(callable, async () => {
    await new Promise((resolve) => setTimeout(resolve, blockMs));
    return { by: 'child' };
  }),
);

const db = new PostgresDatabase(url, { maxConnections: 3, applicationName: 'tasker-test-child-worker' });
const provider = new PgmqMessagingProvider(db);
const worker = new Worker({ db, provider, handlers, templates, leaseSeconds, pollIntervalMs: 100 });

async function shutdown(): Promise<void> {
  await worker.stop();
  await provider.close();
  await db.close();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());

await worker.start();
process.stdout.write(`${JSON.stringify({ ready: true, workerId: worker.id, pid: process.pid })}\n`);
