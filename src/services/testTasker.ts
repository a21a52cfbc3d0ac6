/**
 * Test helpers for users (`tasker-workflows/testing`): run their workflows in their own test suite, end to end
 * on a fresh embedded database (or a database they name) with orchestration and a worker in the test's process,
 * and unit-run one step's code with the context a worker would give it. The anchor is Temporal's test
 * environment; a task here goes through exactly the SQL, queues and worker code of production.
 */
import { randomUUID } from 'node:crypto';
import type { TaskView } from '../api/rest/views.ts';
import { NotFoundError, TaskerError } from '../domain/errors.ts';
import { assertFinished } from '../domain/workflowRun.ts';
import type { WorkflowReference, WorkflowRun } from '../domain/workflowRun.ts';
import type { Logger, LogLevel } from '../observability/logger.ts';
import type { StepHandlerDefinition } from '../worker/handlerApi.ts';
import { buildContext } from '../worker/stepExecutor.ts';
import type { StepResult, Workflow, WorkflowStep } from '../worker/workflow.ts';
import { startTasker } from './embeddedTasker.ts';
import type { EmbeddedTasker, TaskRequestOptions } from './embeddedTasker.ts';

export interface TestTaskerOptions {
  /** Workflows defined in code: their templates are registered and their steps served. @defaultValue [] */
  workflows?: readonly Workflow<never, unknown, unknown>[];
  /** Step handlers for YAML templates. @defaultValue [] */
  handlers?: readonly StepHandlerDefinition[];
  /** Folders or files of YAML templates. @defaultValue [] */
  templates?: readonly string[];
  /** Namespaces the worker serves. @defaultValue those of the templates and workflows */
  namespaces?: readonly string[];
  /**
   * `pglite:memory` (a fresh in-memory database for this environment), `pglite:<folder>`, or a PostgreSQL URL
   * (migrated at start; give each test file its own database to keep tests apart). @defaultValue 'pglite:memory'
   */
  databaseUrl?: string;
  /** How long `run` and `execute` wait for a task to finish before failing the test. @defaultValue 30000 */
  waitMs?: number;
  /** A log level for JSON logs on stderr, or your own pino logger. @defaultValue 'error' */
  logger?: LogLevel | Logger;
}

/** A step of a finished task, as the REST API shows it. */
type StepViewOf = NonNullable<TaskView['steps']>[number];

export interface TestTasker {
  /** The embedded orchestration and worker, for anything the helpers below do not cover. */
  readonly tasker: EmbeddedTasker;
  /**
   * Runs a task of the workflow to its end and answers its output, typed by the workflow's `returns`.
   * @throws WorkflowRunError when the task failed (the failed steps' errors in the message), was cancelled, or
   *   did not finish within `waitMs`
   */
  run<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request?: TaskRequestOptions,
  ): Promise<Output>;
  /**
   * Runs a task of the workflow to its end, whatever the end, and answers the task with every step (status,
   * attempts, result, error): for tests of failures and retries.
   * @throws WorkflowRunError TASKER_WAIT_TIMEOUT when it did not finish within `waitMs`
   */
  execute<Input>(
    workflow: WorkflowReference<Input, unknown>,
    input: NoInfer<Input>,
    request?: TaskRequestOptions,
  ): Promise<TaskView>;
  /** Creates a task of the workflow and answers its run, to follow, inspect or cancel it yourself. */
  start<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request?: TaskRequestOptions,
  ): Promise<WorkflowRun<Output, TaskView>>;
  /** The task with its steps, as it is now. */
  getTask(taskUuid: string): Promise<TaskView>;
  /**
   * One step of a task by name (or by its reference, for workflows defined in code).
   * @throws NotFoundError TASKER_STEP_NOT_FOUND naming the steps the task has
   */
  step(task: TaskView, step: string | WorkflowStep): StepViewOf;
  /** Stops orchestration and the worker and closes the database. Safe to call twice. */
  stop(): Promise<void>;
}

const DEFAULT_WAIT_MS = 30_000;

/**
 * Starts orchestration and a worker for the given workflows, handlers and templates in this process, on a fresh
 * in-memory database unless `databaseUrl` names one. Nothing listens on any port. Call `stop()` after the tests.
 * @throws as startTasker: TemplateError for an invalid workflow or template, ConfigError, DatabaseError
 */
export async function createTestTasker(options: TestTaskerOptions = {}): Promise<TestTasker> {
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const embedded = await startTasker({
    databaseUrl: options.databaseUrl ?? 'pglite:memory',
    migrate: true,
    environment: 'test',
    logger: options.logger ?? 'error',
    worker: {
      workflows: options.workflows ?? [],
      handlers: options.handlers ?? [],
      templates: options.templates ?? [],
      ...(options.namespaces !== undefined && { namespaces: options.namespaces }),
    },
  });
  const execute = async <Input>(
    workflow: WorkflowReference<Input, unknown>,
    input: Input,
    request?: TaskRequestOptions,
  ): Promise<TaskView> => {
    const run = await embedded.start(workflow, input, request);
    const task = await run.wait({ waitMs });
    assertFinished(workflow, task, waitMs);
    return task;
  };
  return {
    tasker: embedded,
    run: async (workflow, input, request) =>
      (await embedded.start(workflow, input, request)).result({ waitMs }),
    execute,
    start: (workflow, input, request) => embedded.start(workflow, input, request),
    getTask: (taskUuid) => embedded.getTask(taskUuid),
    step: (task, step) => {
      const name = typeof step === 'string' ? step : step.name;
      const found = task.steps.find((candidate) => candidate.name === name);
      if (found === undefined) {
        throw new NotFoundError(
          'TASKER_STEP_NOT_FOUND',
          `task ${task.task_uuid} has no step "${name}"; its steps: ${task.steps.map((s) => s.name).join(', ')}`,
          { details: { task_uuid: task.task_uuid, step: name } },
        );
      }
      return found;
    },
    stop: () => embedded.stop(),
  };
}

export interface RunStepOptions<Input> {
  /** The task context, as a caller would submit it (it is parsed by the workflow's input schema). */
  input: Input;
  /** Results of the step's parents (and their ancestors) by step name. @defaultValue {} */
  results?: Readonly<Record<string, unknown>>;
  /** The attempt number the step sees. @defaultValue 1 */
  attempt?: number;
  /** Aborts the step's signal, as a timeout or a worker shutdown would. */
  signal?: AbortSignal;
}

/**
 * Runs one step of a workflow defined in code, without a database: its `run` gets the context a worker would
 * build (input parsed by the workflow's schema, `ctx.parent` over `results`, the step's config and retry
 * settings). For unit tests of a step's logic.
 * @throws whatever the step throws; TaskerError TASKER_INVALID_ARGUMENT for a step of another workflow
 */
export async function runStep<Input, Step extends WorkflowStep>(
  workflow: Workflow<never, Input, unknown>,
  step: Step,
  options: RunStepOptions<NoInfer<Input>>,
): Promise<StepResult<Step>> {
  const template = workflow.template();
  const declared = template.steps.find((candidate) => candidate.name === step.name);
  const handler = workflow.handlers().find((candidate) => candidate.name === step.callable);
  if (declared === undefined || handler === undefined || step.workflow !== workflow.label) {
    throw new TaskerError(
      'TASKER_INVALID_ARGUMENT',
      `runStep: step "${String(step.name)}" of ${String(step.workflow)} is not a step of workflow ${workflow.label}`,
      { details: { workflow: workflow.label, step: step.name } },
    );
  }
  const taskUuid = randomUUID();
  const context = buildContext(
    {
      taskUuid,
      stepUuid: randomUUID(),
      stepName: declared.name,
      handlerInitialization: declared.handler.initialization,
      taskContext: options.input as Record<string, unknown>,
      attempt: options.attempt ?? 1,
      maxAttempts: declared.retry.maxAttempts,
      correlationId: taskUuid,
      dependencyResults: { ...options.results },
    },
    template.namespace,
    options.signal ?? new AbortController().signal,
  );
  return (await handler.run(context)) as StepResult<Step>;
}
