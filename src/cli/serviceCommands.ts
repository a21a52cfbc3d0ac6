import type { Command } from 'commander';
import { loadConfig } from '../config/loadConfig.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import { createLogger, resolveLogFormat } from '../observability/logger.ts';
import type { Logger } from '../observability/logger.ts';
import { exitOnShutdownSignals } from '../resilience/gracefulShutdown.ts';

/**
 * Past its shutdown deadline a service cancels what still runs and stops within seconds; this much later the
 * process exits whatever it is waiting for.
 */
const HARD_DEADLINE_MARGIN_MS = 10_000;

interface ServiceFlags {
  databaseUrl?: string;
  handlers?: string;
  templates?: string;
  namespaces?: string;
  bind?: string;
  grpcBind?: string;
}

/**
 * Flags are applied as the environment variables they stand for, so they go through the same validation and
 * show up in `config show --sources` alike: --database-url is DATABASE_URL, --handlers TASKER_HANDLERS_MODULE,
 * --templates TASKER_TEMPLATE_PATH, --namespaces WORKER_NAMESPACES.
 */
export function loadServiceConfig(flags: ServiceFlags): LoadedConfig {
  const env: Record<string, string | undefined> = { ...process.env };
  if (flags.databaseUrl !== undefined) {
    env.DATABASE_URL = flags.databaseUrl;
    delete env.DATABASE_URL_FILE;
  }
  if (flags.handlers !== undefined) env.TASKER_HANDLERS_MODULE = flags.handlers;
  if (flags.templates !== undefined) env.TASKER_TEMPLATE_PATH = flags.templates;
  if (flags.namespaces !== undefined) env.WORKER_NAMESPACES = flags.namespaces;
  return loadConfig({ env });
}

export function serviceLogger(loaded: LoadedConfig, role: string): Logger {
  return createLogger({
    level: loaded.config.telemetry.log_level,
    name: `tasker-${role}`,
    format: resolveLogFormat(
      loaded.config.telemetry.log_format,
      loaded.environment,
      process.stderr.isTTY === true,
    ),
  });
}

/**
 * The services (fastify, gRPC, metrics, tracing) are imported when a service command runs, not when the CLI
 * starts: they take about 1.3 s to load, which every other command (`task get`, `migrate`, `config show`)
 * would otherwise pay.
 */
export function registerServiceCommands(program: Command): { worker: Command } {
  program
    .command('orchestration')
    .description(
      'run the orchestration service: task requests, step results, finalization, staleness, REST API (:8080)',
    )
    .option('-d, --database-url <url>', 'PostgreSQL URL (default: DATABASE_URL, else database.url)')
    .option('--bind <host:port>', 'REST API address (default: [orchestration.web] bind_address)')
    .option('--grpc-bind <host:port>', 'gRPC health address (default: [orchestration.grpc] bind_address)')
    .action(async (flags: ServiceFlags) => {
      const loaded = loadServiceConfig(flags);
      const logger = serviceLogger(loaded, 'orchestration');
      const { startOrchestrationService } = await import('../services/orchestrationService.ts');
      const service = await startOrchestrationService({
        loaded,
        logger,
        ...(flags.bind !== undefined && { bindAddress: flags.bind }),
        ...(flags.grpcBind !== undefined && { grpcBindAddress: flags.grpcBind }),
      });
      exitOnShutdownSignals({
        logger,
        stop: () => service.stop(),
        hardDeadlineMs: loaded.config.orchestration.shutdown_timeout_ms + HARD_DEADLINE_MARGIN_MS,
      });
    });

  const worker = program
    .command('worker')
    .description(
      'run a worker: claim steps of its namespaces and run their TypeScript handlers (health on :8081)',
    )
    .option('-d, --database-url <url>', 'PostgreSQL URL (default: DATABASE_URL, else database.url)')
    .option('--handlers <module>', 'module exporting the step handlers, .ts or .js (TASKER_HANDLERS_MODULE)')
    .option('--templates <paths>', 'template folders or files, ":"-separated (TASKER_TEMPLATE_PATH)')
    .option('--namespaces <list>', 'comma-separated namespaces to serve (WORKER_NAMESPACES)')
    .option('--bind <host:port>', 'health endpoint address (default: [worker.web] bind_address)')
    .option('--grpc-bind <host:port>', 'gRPC health address (default: [worker.grpc] bind_address)')
    .action(async (flags: ServiceFlags) => {
      const loaded = loadServiceConfig(flags);
      const logger = serviceLogger(loaded, 'worker');
      const { startWorkerService } = await import('../services/workerService.ts');
      const service = await startWorkerService({
        loaded,
        logger,
        ...(flags.bind !== undefined && { bindAddress: flags.bind }),
        ...(flags.grpcBind !== undefined && { grpcBindAddress: flags.grpcBind }),
      });
      exitOnShutdownSignals({
        logger,
        stop: () => service.stop(),
        hardDeadlineMs: loaded.config.worker.shutdown_timeout_ms + HARD_DEADLINE_MARGIN_MS,
      });
    });
  return { worker };
}
