import type { z } from 'zod';
import { BUNDLED_CONFIG_ROOT } from '../config/configFiles.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import type { TaskerConfig } from '../config/schema.ts';
import { validateConfig } from '../config/validateConfig.ts';
import type { Database } from '../db/database.ts';
import { assertSchemaCurrent, migrate } from '../db/migrate.ts';
import { openDatabase } from '../db/openDatabase.ts';
import type { CreatedTask } from '../db/queries/createTask.ts';
import { ConfigError } from '../domain/errors.ts';
import { createLogger } from '../observability/logger.ts';
import type { Logger, LogLevel } from '../observability/logger.ts';
import { TaskCompletionWaiter } from '../api/rest/taskCompletionWaiter.ts';
import type { TaskView } from '../api/rest/views.ts';
import { WorkflowRun } from '../domain/workflowRun.ts';
import type { RunWaitOptions, WorkflowReference } from '../domain/workflowRun.ts';
import { createTask } from '../orchestration/taskInitializer.ts';
import type { taskRequestSchema } from '../orchestration/taskInitializer.ts';
import { TemplateCache } from '../orchestration/templateCache.ts';
import type { StepHandlerDefinition } from '../worker/handlerApi.ts';
import { isWorkflow } from '../worker/workflow.ts';
import type { Workflow } from '../worker/workflow.ts';
import { databaseTaskSource } from './embeddedTaskSource.ts';
import { startOrchestrationService } from './orchestrationService.ts';
import type { OrchestrationService } from './orchestrationService.ts';
import { poolOptions } from './runtimeOptions.ts';
import { taskLimits, templateCacheOptions } from './serviceOptions.ts';
import { startWorkerService } from './workerService.ts';
import type { WorkerService } from './workerService.ts';

/** A port on 127.0.0.1 (0: any free port), or `host:port` as in the `bind_address` keys. */
export type ListenAddress = number | string;

export interface EmbeddedWorkerOptions {
  /** Namespaces to serve (`[worker] namespaces`). @defaultValue the namespaces of its templates and workflows */
  namespaces?: readonly string[];
  /** Step handlers, beside those of `workflows`. @defaultValue [] */
  handlers?: readonly StepHandlerDefinition[];
  /** Workflows defined in code: their templates are registered and their steps served. @defaultValue [] */
  workflows?: readonly Workflow<never, unknown, unknown>[];
  /** Folders or files of YAML templates (`[worker] template_paths`). @defaultValue [] */
  templates?: readonly string[];
}

export interface EmbeddedListenOptions {
  /** The REST API of orchestration (`[orchestration.web]`). @defaultValue not opened */
  rest?: ListenAddress | false;
  /** The gRPC health server of orchestration (`[orchestration.grpc]`). @defaultValue not opened */
  orchestrationGrpc?: ListenAddress | false;
  /** The worker's health and metrics endpoint (`[worker.web]`). @defaultValue not opened */
  workerHttp?: ListenAddress | false;
  /** The gRPC health server of the worker (`[worker.grpc]`). @defaultValue not opened */
  workerGrpc?: ListenAddress | false;
}

export interface StartTaskerOptions {
  /** `postgres://user@host:5432/db`, `pglite:memory` or `pglite:<folder>` (the embedded database). */
  databaseUrl: string;
  /** Run orchestration (task creation, step results, finalization, staleness, retention). @defaultValue true */
  orchestration?: boolean;
  /** Run a worker with these handlers and workflows. @defaultValue false: no worker */
  worker?: EmbeddedWorkerOptions | false;
  /** Which listeners to open. @defaultValue none: nothing listens on any port */
  listen?: EmbeddedListenOptions;
  /**
   * Bring the schema up to date at start. Without it an unmigrated database is refused
   * (TASKER_SCHEMA_NOT_MIGRATED), as the services refuse it. @defaultValue false
   */
  migrate?: boolean;
  /** A log level for JSON logs on stderr, or your own pino logger. @defaultValue 'warn' */
  logger?: LogLevel | Logger;
  /**
   * The shipped configuration environment whose settings apply, as `TASKER_ENV` selects them for
   * `tasker orchestration` and `tasker worker`. @defaultValue 'development'
   */
  environment?: 'development' | 'test' | 'production';
}

/** A task request by template name, as `POST /v1/tasks` takes it (the same schema validates both). */
export type EmbeddedTaskRequest = z.input<typeof taskRequestSchema>;

/** The fields of a task request besides the template and its context. */
export type TaskRequestOptions = Omit<EmbeddedTaskRequest, 'name' | 'namespace' | 'version' | 'context'>;

export interface EmbeddedTasker {
  /** The database both roles use; closed by `stop()`. */
  readonly database: Database;
  /** The configuration in effect, resolved through the services' schema. */
  readonly config: Readonly<TaskerConfig>;
  /** Where the REST API listens, when `listen.rest` opened it. */
  readonly restUrl: string | undefined;
  /** Where the worker's HTTP endpoint listens, when `listen.workerHttp` opened it. */
  readonly workerUrl: string | undefined;
  /**
   * Creates a task of a workflow defined in code, its context typed by the workflow's input, or from a request
   * naming a template. Idempotent under the template's identity strategy (a repeat is a TASKER_DUPLICATE_TASK).
   * @throws ValidationError TASKER_INVALID_CONTEXT, NotFoundError TASKER_TEMPLATE_NOT_FOUND, ConflictError
   *   TASKER_DUPLICATE_TASK
   */
  createTask<Submitted>(
    workflow: WorkflowReference<Submitted, unknown>,
    context: NoInfer<Submitted>,
    request?: TaskRequestOptions,
  ): Promise<CreatedTask>;
  createTask(request: EmbeddedTaskRequest): Promise<CreatedTask>;
  /**
   * Creates a task of a workflow and follows it: `result()` waits for its output, typed by the workflow's
   * `returns`. Errors as createTask.
   */
  start<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request?: TaskRequestOptions,
  ): Promise<WorkflowRun<Output, TaskView>>;
  /**
   * Creates a task of a workflow and answers its output once complete: `start(...)` then `result()`.
   * @throws WorkflowRunError TASKER_TASK_FAILED, TASKER_TASK_CANCELLED, TASKER_TASK_NO_OUTPUT, TASKER_WAIT_TIMEOUT
   */
  run<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request?: TaskRequestOptions,
    options?: RunWaitOptions,
  ): Promise<Output>;
  /** Follows a task created earlier, typed by its workflow. */
  runOf<Output>(
    workflow: WorkflowReference<unknown, Output>,
    taskUuid: string,
  ): WorkflowRun<Output, TaskView>;
  /** A task with its steps, as `GET /v1/tasks/{uuid}` answers it. @throws NotFoundError TASKER_TASK_NOT_FOUND */
  getTask(taskUuid: string): Promise<TaskView>;
  /**
   * Stops orchestration and the worker (running handlers get `[worker] shutdown_timeout_ms` to finish, then
   * their steps are handed back), then closes the database. Safe to call twice.
   */
  stop(): Promise<void>;
}

const EMBEDDED_LOG_LEVEL: LogLevel = 'warn';

/** A workflow (or a reference to one) rather than a request naming a template: it has no `context`. */
function isWorkflowReference(
  value: WorkflowReference<unknown, unknown> | EmbeddedTaskRequest,
): value is WorkflowReference<unknown, unknown> {
  // A task request never has `outputShape` (its schema refuses unknown fields); a workflow reference always does.
  return isWorkflow(value) || 'outputShape' in value;
}

function bindAddress(address: ListenAddress): string {
  return typeof address === 'number' ? `127.0.0.1:${address}` : address;
}

/**
 * The configuration the services would load for `environment` from the configuration shipped with Tasker
 * (schema defaults, base files, the environment's files), with the plain options over it, validated again
 * through the same schema. The process environment is not read: an embedding is configured by its options.
 * @throws ConfigError for an option the schema refuses (a namespace, a template path, a bind address)
 */
export function resolveEmbeddedConfig(options: StartTaskerOptions): LoadedConfig {
  const loaded = loadConfig({
    env: {
      TASKER_ENV: options.environment ?? 'development',
      TASKER_CONFIG_ROOT: BUNDLED_CONFIG_ROOT,
      DATABASE_URL: options.databaseUrl,
    },
  });
  const config = structuredClone(loaded.config);
  const provenance = new Map(loaded.provenance);
  const set = (path: string, apply: () => void): void => {
    apply();
    provenance.set(path, `startTasker option for ${path}`);
  };
  const listen = options.listen ?? {};
  const listener = (
    path: string,
    address: ListenAddress | false | undefined,
    server: { enabled: boolean; bind_address: string },
  ): void => {
    set(`${path}.enabled`, () => (server.enabled = address !== undefined && address !== false));
    if (address !== undefined && address !== false)
      set(`${path}.bind_address`, () => (server.bind_address = bindAddress(address)));
  };
  listener('orchestration.web', listen.rest, config.orchestration.web);
  listener('orchestration.grpc', listen.orchestrationGrpc, config.orchestration.grpc);
  listener('worker.web', listen.workerHttp, config.worker.web);
  listener('worker.grpc', listen.workerGrpc, config.worker.grpc);
  const worker = options.worker === false ? undefined : options.worker;
  // Handlers come from the options, never from a module the configuration names.
  set('worker.handlers_module', () => (config.worker.handlers_module = ''));
  set('worker.template_paths', () => (config.worker.template_paths = [...(worker?.templates ?? [])]));
  if (worker?.namespaces !== undefined) {
    const namespaces = [...worker.namespaces];
    set('worker.namespaces', () => (config.worker.namespaces = namespaces));
  }
  const validation = validateConfig(config, provenance);
  if (validation.config === undefined) throw new ConfigError(validation.problems);
  return { ...loaded, config: validation.config, provenance };
}

/**
 * Starts orchestration, a worker or both in this process, over one database. Nothing listens unless `listen`
 * asks, no signal handler is installed and the process environment is not read: the caller owns the process
 * and calls `stop()`.
 * @throws ConfigError, DatabaseError (TASKER_SCHEMA_NOT_MIGRATED without `migrate: true`, TASKER_SCHEMA_TOO_NEW,
 *   TASKER_DATABASE_UNAVAILABLE), TemplateError, ValidationError from the worker's handlers and templates
 */
export async function startTasker(options: StartTaskerOptions): Promise<EmbeddedTasker> {
  const loaded = resolveEmbeddedConfig(options);
  const { config } = loaded;
  const ownsLogger = typeof options.logger !== 'object';
  const logger =
    typeof options.logger === 'object'
      ? options.logger
      : createLogger({ level: options.logger ?? EMBEDDED_LOG_LEVEL, name: 'tasker-embedded' });
  const database = await openDatabase(config.database.url, poolOptions(config));
  let orchestration: OrchestrationService | undefined;
  let worker: WorkerService | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      // Orchestration first, like tasker dev: the worker then hands back what it still holds, and the database
      // goes last because both use it.
      try {
        await orchestration?.stop();
      } finally {
        try {
          await worker?.stop();
        } finally {
          await database.close();
          if (ownsLogger) logger.flush();
        }
      }
    })());
  try {
    if (options.migrate === true) await migrate(database);
    else await assertSchemaCurrent(database);
    // The worker first: it registers its templates, so a task created right after start finds them.
    if (options.worker !== undefined && options.worker !== false) {
      worker = await startWorkerService({
        loaded,
        logger,
        db: database,
        handlers: options.worker.handlers ?? [],
        ...(options.worker.workflows !== undefined && {
          workflows: options.worker.workflows,
        }),
      });
    }
    if (options.orchestration !== false) {
      orchestration = await startOrchestrationService({ loaded, logger, db: database });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  // Tasks created here go through orchestration's own cache when it runs, so a template is cached once.
  const templates = orchestration?.templates ?? new TemplateCache(templateCacheOptions(config));
  const create = (
    target: WorkflowReference<unknown, unknown> | EmbeddedTaskRequest,
    context?: unknown,
    request?: TaskRequestOptions,
  ): Promise<CreatedTask> => {
    const body = isWorkflowReference(target)
      ? {
          ...request,
          namespace: target.namespace,
          name: target.name,
          version: target.version,
          context,
        }
      : target;
    return createTask(database, body, {
      templates,
      limits: taskLimits(config),
      ...(orchestration !== undefined && { processorUuid: orchestration.orchestrator.processorUuid }),
    });
  };
  // Without orchestration here, nothing in this process hears the task-finished notification: re-read often.
  const completions = orchestration?.completions ?? new TaskCompletionWaiter(null, logger, { recheckMs: 50 });
  const source = databaseTaskSource(database, completions, orchestration?.orchestrator.processorUuid ?? null);
  const runOf = <Output>(workflow: WorkflowReference<unknown, Output>, taskUuid: string) =>
    new WorkflowRun(workflow, taskUuid, source);
  const start = async <Output>(
    workflow: WorkflowReference<unknown, Output>,
    input: unknown,
    request?: TaskRequestOptions,
  ) => runOf(workflow, (await create(workflow, input, request)).taskUuid);
  return {
    database,
    config,
    restUrl: orchestration?.url,
    workerUrl: worker?.url,
    createTask: create,
    start,
    run: async (workflow, input, request, options) => (await start(workflow, input, request)).result(options),
    runOf,
    getTask: (taskUuid) => source.get(taskUuid, {}),
    stop,
  };
}
