/**
 * One orchestration instance for the engine benchmark, in a process of its own. Started by
 * bench/engine/engineBench.ts; configured through the environment:
 *
 *   BENCH_CHILD_DATABASE_URL   the bench database (required)
 *   BENCH_CHILD_POOL_SIZE      connections in its pool (default 4)
 *   BENCH_CHILD_LOG_LEVEL      pino level of its stderr log (default warn)
 *
 * Prints `ready` on stdout once it listens and has drained once; stops cleanly on SIGTERM.
 */
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Orchestrator } from '../../src/orchestration/orchestrator.ts';
import { childEnv, childEnvInteger, childLogLevel, runChild } from './processes.ts';

runChild('orchestrator', async () => {
  const logger = createLogger({ level: childLogLevel(), name: 'bench-orchestrator' });
  const db = new PostgresDatabase(childEnv('BENCH_CHILD_DATABASE_URL'), {
    maxConnections: childEnvInteger('BENCH_CHILD_POOL_SIZE', 4),
    applicationName: 'tasker-bench-orchestrator',
    logger,
  });
  const provider = new PgmqMessagingProvider(db, { logger });
  const orchestrator = new Orchestrator({ db, provider, logger });
  await orchestrator.start();
  return async () => {
    await orchestrator.stop();
    await provider.close();
    await db.close();
    logger.flush();
  };
});
