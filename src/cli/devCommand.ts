import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { NotFoundError } from '../domain/errors.ts';
import type { TaskTemplate } from '../domain/template/taskTemplate.ts';
import type { StepFailureReport } from '../worker/worker.ts';
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

/**
 * The task run at start: `--task` when given (it must be one of the loaded templates, or the worker of this
 * process would never run it), else the examples' sample when the loaded templates include it, else none.
 * @throws NotFoundError TASKER_TEMPLATE_NOT_FOUND when `--task` names a template the worker does not serve
 */
function chooseSampleTask(
  chosen: { namespace: string; name: string; version?: string; context: Record<string, unknown> } | undefined,
  context: Record<string, unknown> | undefined,
  templates: readonly TaskTemplate[],
): { namespace: string; name: string; version?: string; context: Record<string, unknown> } | undefined {
  const serves = (task: { namespace: string; name: string; version?: string }): boolean =>
    templates.some(
      (template) =>
        template.namespace === task.namespace &&
        template.name === task.name &&
        (task.version === undefined || template.version === task.version),
    );
  if (chosen !== undefined) {
    if (serves(chosen)) return chosen;
    throw new NotFoundError(
      'TASKER_TEMPLATE_NOT_FOUND',
      `--task ${chosen.namespace}/${chosen.name}${chosen.version === undefined ? '' : `@${chosen.version}`} is not one of the templates this dev worker serves (${templateList(templates)}); pass one of those, or load the template with --templates`,
      { details: { served: templates.map(templateRef) } },
    );
  }
  return serves(SAMPLE_TASK) ? { ...SAMPLE_TASK, ...(context !== undefined && { context }) } : undefined;
}

const templateRef = (template: TaskTemplate): string =>
  `${template.namespace}/${template.name}@${template.version}`;

function templateList(templates: readonly TaskTemplate[]): string {
  if (templates.length === 0) return 'none';
  const shown = templates.slice(0, 8).map(templateRef).join(', ');
  return templates.length > 8 ? `${shown}, and ${templates.length - 8} more` : shown;
}

function noSampleLine(templates: readonly TaskTemplate[]): string {
  const sample = `${SAMPLE_TASK.namespace}/${SAMPLE_TASK.name}`;
  if (templates.length === 0)
    return `No task run at start: no templates are loaded. Write one (docs/templates.md) and pass its folder with --templates.`;
  const first = templates[0] as TaskTemplate;
  return (
    `No task run at start: the loaded templates (${templateList(templates)}) do not include the sample ${sample}. ` +
    `Run one of yours with --task, e.g. --task ${first.namespace}/${first.name} --context '{}'.`
  );
}

/** A request for the "Try it" hint: the examples' diamond when served, else the first template served. */
function exampleTemplate(
  templates: readonly TaskTemplate[],
): { namespace: string; name: string; version: string; context: Record<string, unknown> } | undefined {
  const diamond = templates.find((t) => t.namespace === 'math' && t.name === 'diamond_pattern');
  const template = diamond ?? templates[0];
  if (template === undefined) return undefined;
  return {
    namespace: template.namespace,
    name: template.name,
    version: template.version,
    context: diamond !== undefined ? { n: 3 } : {},
  };
}

/** Frames of a failure shown on the dev screen; the stored error keeps more (`task get`). */
const SHOWN_FRAMES = 5;

function formatFailure(report: StepFailureReport): string {
  const { failure } = report;
  const lines = [
    `  ✗ ${report.namespace} task ${report.taskUuid}: step ${report.stepName} failed ` +
      `(attempt ${report.attempt}/${report.maxAttempts}, ${report.willRetry ? 'will retry' : 'no retry'}): ` +
      `${failure.error_type}: ${failure.message}`,
    ...(failure.backtrace ?? []).slice(0, SHOWN_FRAMES).map((frame) => `      ${frame}`),
  ];
  return lines.join('\n');
}

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
      const context =
        flags.context === undefined
          ? undefined
          : (parseJsonOption(flags.context, '--context') as Record<string, unknown>);
      const chosenTask =
        flags.task === undefined ? undefined : { ...parseTemplateRef(flags.task), context: context ?? {} };
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

      // What has started, stopped in reverse order. A start-up failure stops all of it before the error is
      // reported: an open database or a running worker would otherwise keep the process alive, and `tasker
      // dev` would print the error and then hang.
      const started: (() => Promise<void>)[] = [];
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> =>
        (stopping ??= (async () => {
          for (const stopOne of started.reverse()) {
            await stopOne().catch((error: unknown) =>
              logger.warn({ err: error }, 'stopping tasker dev failed'),
            );
          }
        })());
      let api: string;
      let served: readonly TaskTemplate[];
      let sampleOk = true;
      try {
        const { db } = await openCreatingDatabase(databaseUrl, {
          maxConnections: loaded.config.database.max_connections,
        });
        started.push(() => db.close());
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
        const worker = await startWorkerService({
          loaded,
          logger,
          db,
          // Every task this process serves, not only the one it started: a failing handler is the first thing
          // a developer needs to see, with the file and line it threw at.
          onStepFailure: (report) => out(formatFailure(report)),
        });
        started.push(() => worker.stop());
        served = worker.templates;
        out(
          `✓ Worker serving ${worker.worker.namespaces.join(', ') || 'no namespace'}: ${worker.templates.length} templates, ${worker.handlers.length} handlers`,
        );
        const orchestration = await startOrchestrationService({
          loaded,
          logger,
          db,
          bindAddress: `127.0.0.1:${port}`,
        });
        started.push(() => orchestration.stop());
        api = orchestration.url ?? `http://127.0.0.1:${port}`;
        out(`✓ Orchestration running; REST API at ${api} (OpenAPI UI at ${api}/api-docs)`);
        exitOnShutdownSignals({ logger, stop: () => stop() });

        const chosen = flags.sample ? chooseSampleTask(chosenTask, context, worker.templates) : undefined;
        // Every run creates a task, even one whose template identifies tasks by their context (strict, the
        // default): rerunning after fixing a handler must not be refused as a duplicate of the failed task.
        const sampleTask =
          chosen === undefined ? undefined : { ...chosen, idempotency_key: `tasker-dev-run-${Date.now()}` };
        if (sampleTask !== undefined) {
          out('');
          out(`→ POST ${api}/v1/tasks ${JSON.stringify(sampleTask)}`);
          const final = await watchTask(api, sampleTask, (step) => out(formatStepLine(step)));
          sampleOk = final.status === 'complete';
          out(
            `${sampleOk ? '✓' : '✗'} task ${final.task_uuid} ${final.status} in ${final.elapsedMs} ms` +
              (sampleOk ? '' : ` (see GET ${api}/v1/tasks/${final.task_uuid})`),
          );
        } else if (flags.sample) {
          out('');
          out(noSampleLine(worker.templates));
        }
      } catch (error) {
        await stop();
        throw error;
      }
      if (flags.once) {
        await stop();
        process.exit(sampleOk ? 0 : 1);
      }
      out('');
      out('Try it:');
      const example = exampleTemplate(served);
      if (example !== undefined) {
        out(`  curl -s -X POST ${api}/v1/tasks -H 'content-type: application/json' \\`);
        out(`    -d '${JSON.stringify(example)}'`);
      }
      out(`  TASKER_URL=${api} npx tasker task list`);
      out('Ctrl-C stops (in-flight steps finish first).');
    });
}
