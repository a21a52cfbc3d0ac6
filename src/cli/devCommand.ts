import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { isPgliteUrl } from '../db/connectionString.ts';
import { migrate } from '../db/migrate.ts';
import { schemaReportLine } from './schemaReport.ts';
import { exitOnShutdownSignals } from '../resilience/gracefulShutdown.ts';
import { openCreatingDatabase } from './databaseOption.ts';
import { loadServiceConfig, serviceLogger } from './serviceCommands.ts';
import { formatStepLine, watchTask } from './taskProgress.ts';
import { parseJsonOption, parseTemplateRef } from './clientCommands.ts';

const EMBEDDED_DEV_URL = 'pglite:./.tasker/dev';
const EXAMPLE_TEMPLATES = fileURLToPath(new URL('../../examples/templates/', import.meta.url));
const EXAMPLE_HANDLERS = fileURLToPath(new URL('../../examples/handlers/index.ts', import.meta.url));
const SAMPLE_TASK = { namespace: 'math', name: 'complex_dag', version: '1.0.0', context: { n: 2 } };

interface DevFlags {
  databaseUrl?: string;
  port: string;
  handlers?: string;
  templates?: string;
  sample: boolean;
  once: boolean;
  task?: string;
  context?: string;
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/**
 * Everything in one process for trying Tasker out: the embedded database (or DATABASE_URL), migrations,
 * orchestration with its REST API, a worker with the example templates and handlers, and one sample task
 * whose steps are shown as they progress.
 */
export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description(
      `orchestration + worker + REST API in one process, with the example workflows (embedded database ${EMBEDDED_DEV_URL} unless DATABASE_URL is set)`,
    )
    .option('-d, --database-url <url>', `database (default: DATABASE_URL when set, else ${EMBEDDED_DEV_URL})`)
    .option('-p, --port <port>', 'REST API port on 127.0.0.1', '8080')
    .option('--handlers <module>', 'your handlers module instead of the examples')
    .option('--templates <paths>', 'your template folders instead of the examples (":"-separated)')
    .option(
      '--task <template>',
      `the task to run at start, namespace/name[@version] of your templates (default ${SAMPLE_TASK.namespace}/${SAMPLE_TASK.name}@${SAMPLE_TASK.version} of the examples)`,
    )
    .option('--context <json>', 'context of the --task task as JSON, or @file.json (default {})')
    .option('--no-sample', 'do not run a task at start')
    .option('--once', 'exit after the task run at start has finished (exit 1 if it did not complete)', false)
    .action(async (flags: DevFlags) => {
      // Checked before anything starts, so a typo costs no database start-up. The server checks that the
      // context is a JSON object (400 TASKER_INVALID_TASK_REQUEST).
      const sampleTask =
        flags.task === undefined
          ? flags.context === undefined
            ? SAMPLE_TASK
            : {
                ...SAMPLE_TASK,
                context: parseJsonOption(flags.context, '--context') as Record<string, unknown>,
              }
          : {
              ...parseTemplateRef(flags.task),
              context:
                flags.context === undefined
                  ? {}
                  : (parseJsonOption(flags.context, '--context') as Record<string, unknown>),
            };
      const databaseUrl =
        flags.databaseUrl ??
        (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL.trim() !== ''
          ? process.env.DATABASE_URL
          : EMBEDDED_DEV_URL);
      const loaded = loadServiceConfig({
        databaseUrl,
        handlers: flags.handlers ?? EXAMPLE_HANDLERS,
        // Your own handlers module brings its own templates (or workflows): the examples' would lack handlers.
        templates: flags.templates ?? (flags.handlers === undefined ? EXAMPLE_TEMPLATES : undefined),
      });
      // One process: REST on one local port is all it serves (no worker HTTP, no gRPC); quieter logs unless asked for.
      loaded.config.worker.web.enabled = false;
      loaded.config.worker.grpc.enabled = false;
      loaded.config.orchestration.grpc.enabled = false;
      if (process.env.LOG_LEVEL === undefined && process.env.RUST_LOG === undefined)
        loaded.config.telemetry.log_level = 'warn';
      const logger = serviceLogger(loaded, 'dev');
      const port = Number(flags.port);

      const { db } = await openCreatingDatabase(databaseUrl, {
        maxConnections: loaded.config.database.max_connections,
      });
      out(
        `Database: ${db.displayName} (${isPgliteUrl(databaseUrl) ? 'embedded PGlite, no server needed' : 'PostgreSQL'})`,
      );
      const report = await migrate(db);
      out(schemaReportLine(report));
      // The service loads the handlers and templates the flags (or the examples) name. Services are imported
      // here, not at CLI start-up (see registerServiceCommands).
      const [{ startWorkerService }, { startOrchestrationService }] = await Promise.all([
        import('../services/workerService.ts'),
        import('../services/orchestrationService.ts'),
      ]);
      const worker = await startWorkerService({ loaded, logger, db });
      out(
        `✓ Worker serving ${worker.worker.namespaces.join(', ')}: ${worker.templates.length} templates, ${worker.handlers.length} handlers`,
      );
      const orchestration = await startOrchestrationService({
        loaded,
        logger,
        db,
        bindAddress: `127.0.0.1:${port}`,
      });
      const api = orchestration.url ?? `http://127.0.0.1:${port}`;
      out(`✓ Orchestration running; REST API at ${api} (OpenAPI UI at ${api}/api-docs)`);

      const stop = async (): Promise<void> => {
        await orchestration.stop();
        await worker.stop();
        await db.close();
      };
      exitOnShutdownSignals({ logger, stop: () => stop() });

      let sampleOk = true;
      if (flags.sample) {
        out('');
        out(`→ POST ${api}/v1/tasks ${JSON.stringify(sampleTask)}`);
        const final = await watchTask(api, sampleTask, (step) => out(formatStepLine(step)));
        sampleOk = final.status === 'complete';
        out(
          `${sampleOk ? '✓' : '✗'} task ${final.task_uuid} ${final.status} in ${final.elapsedMs} ms` +
            (sampleOk ? '' : ` (see GET ${api}/v1/tasks/${final.task_uuid})`),
        );
      }
      if (flags.once) {
        await stop();
        process.exit(sampleOk ? 0 : 1);
      }
      out('');
      out('Try it:');
      out(`  curl -s -X POST ${api}/v1/tasks -H 'content-type: application/json' \\`);
      out(`    -d '{"namespace":"math","name":"diamond_pattern","version":"1.0.0","context":{"n":3}}'`);
      out(`  TASKER_URL=${api} npx tasker task list`);
      out('Ctrl-C stops (in-flight steps finish first).');
    });
}
