/**
 * One worker instance for the engine benchmark, in a process of its own: serves the no-op `bench`
 * templates (registering them at start). Started by bench/engine/engineBench.ts; configured through the
 * environment:
 *
 *   BENCH_CHILD_DATABASE_URL           the bench database (required)
 *   BENCH_CHILD_APPLY_INLINE           1: results applied in the worker's commit; 0: by the orchestrator
 *   BENCH_CHILD_MAX_CONCURRENT_HANDLERS handlers running at once (default 10)
 *   BENCH_CHILD_POOL_SIZE              connections in its pool (default 10)
 *   BENCH_CHILD_LOG_LEVEL              pino level of its stderr log (default warn)
 *
 * Prints `ready` on stdout once it listens and has drained once; stops cleanly on SIGTERM.
 */
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Worker } from '../../src/worker/worker.ts';
import { benchHandlers, benchTemplates } from './benchTemplates.ts';
import { childEnv, childEnvInteger, childLogLevel, runChild } from './processes.ts';

runChild('worker', async () => {
  const logger = createLogger({ level: childLogLevel(), name: 'bench-worker' });
  const db = new PostgresDatabase(childEnv('BENCH_CHILD_DATABASE_URL'), {
    maxConnections: childEnvInteger('BENCH_CHILD_POOL_SIZE', 10),
    applicationName: 'tasker-bench-worker',
    logger,
  });
  const provider = new PgmqMessagingProvider(db, { logger });
  const worker = new Worker({
    db,
    provider,
    handlers: benchHandlers,
    templates: benchTemplates(),
    applyResultsInline: childEnv('BENCH_CHILD_APPLY_INLINE') === '1',
    maxConcurrentHandlers: childEnvInteger('BENCH_CHILD_MAX_CONCURRENT_HANDLERS', 10),
    logger,
  });
  await worker.start();
  return async () => {
    await worker.stop();
    await provider.close();
    await db.close();
    logger.flush();
  };
});
