/**
 * Following a task of a workflow to its output, the same way whether the task is reached over REST (the client),
 * in-process (embedding) or in a user's tests: a workflow reference says which template to run and how the
 * finished task's output is read from its step results; a WorkflowRun waits for the task and reads it.
 *
 * The exports marked `@public` are public API (docs/sdk.md).
 */
import { TaskerError } from './errors.ts';
import { TERMINAL_TASK_STATES } from './state/taskStates.ts';

/**
 * How a finished task's output is read: the result of one step (its name), or a record whose values name steps.
 * Left out, the output is every step's result by step name.
 */
export type WorkflowOutputShape = string | Readonly<Record<string, string>>;

/**
 * What is needed to run a workflow and read its output, without its handlers: a `Workflow` is one, and
 * `workflowReference` makes one where the definition's code is not at hand (an app that only starts tasks).
 * @public
 */
export interface WorkflowReference<Input = Record<string, unknown>, Output = Record<string, unknown>> {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly outputShape?: WorkflowOutputShape | undefined;
  /** Type-only: what callers submit and what a finished task answers. Never set at runtime. */
  readonly '~types'?: { readonly input: Input; readonly output: Output } | undefined;
}

/** The input type a workflow reference carries. @public */
export type WorkflowInput<Reference> =
  Reference extends WorkflowReference<infer Input, unknown> ? Input : never;
/** The output type a workflow reference carries. @public */
export type WorkflowOutput<Reference> =
  Reference extends WorkflowReference<unknown, infer Output> ? Output : never;

/**
 * A typed reference to a workflow registered elsewhere (by a worker's code or a YAML template), for programs
 * that start its tasks without importing its handlers:
 * `workflowReference<{ orderId: string }, { refunded: number }>('payments/refund@1.0.0', 'refund')`.
 * @param label `namespace/name@version`
 * @param output which step's result is the output, or a record naming steps; left out, every step's result by name
 * @public
 */
export function workflowReference<Input = Record<string, unknown>, Output = Record<string, unknown>>(
  label: string,
  output?: WorkflowOutputShape,
): WorkflowReference<Input, Output> {
  const match = /^([^/@\s]+)\/([^/@\s]+)@([^/@\s]+)$/.exec(label);
  if (match === null) {
    throw new TaskerError(
      'TASKER_INVALID_ARGUMENT',
      `workflow reference "${label}" is not namespace/name@version (e.g. payments/refund@1.0.0)`,
      { details: { label } },
    );
  }
  const [, namespace = '', name = '', version = ''] = match;
  return Object.freeze({ namespace, name, version, outputShape: output });
}

/** A step as a task view lists it; only what reading an output needs. */
interface StepOutcome {
  readonly name: string;
  readonly status: string;
  readonly result?: unknown;
  readonly error?: unknown;
  readonly attempts?: number;
}

/** A task as a view shows it; only what following a run needs. */
export interface TaskOutcome {
  readonly task_uuid: string;
  readonly status: string;
  readonly steps?: readonly StepOutcome[] | undefined;
}

const TERMINAL = new Set<string>(TERMINAL_TASK_STATES);

/** Whether a task's status is final (complete, error, cancelled, resolved_manually). */
export function isFinished(task: TaskOutcome): boolean {
  return TERMINAL.has(task.status);
}

/**
 * A task of a workflow that did not end with an output: it failed, was cancelled, was resolved by an operator
 * without the results the output needs, or was still running when the wait ended.
 * `code` is TASKER_TASK_FAILED, TASKER_TASK_CANCELLED, TASKER_TASK_NO_OUTPUT or TASKER_WAIT_TIMEOUT.
 * @public
 */
export class WorkflowRunError extends TaskerError {
  readonly taskUuid: string;
  /** The task's status when the run ended. */
  readonly status: string;
  /** The steps that failed, each with its latest error (message, error_type, ...). */
  readonly failedSteps: readonly FailedStep[];

  constructor(code: WorkflowRunErrorCode, message: string, task: TaskOutcome) {
    const failed = failedSteps(task);
    super(code, message, {
      details: { task_uuid: task.task_uuid, status: task.status, failed_steps: failed },
    });
    this.taskUuid = task.task_uuid;
    this.status = task.status;
    this.failedSteps = failed;
  }
}

type WorkflowRunErrorCode =
  'TASKER_TASK_FAILED' | 'TASKER_TASK_CANCELLED' | 'TASKER_TASK_NO_OUTPUT' | 'TASKER_WAIT_TIMEOUT';

interface FailedStep {
  name: string;
  status: string;
  error: unknown;
}

/** Where a WorkflowRun reads its task: REST for the client, the database for embedding and tests. */
export interface TaskSource<View extends TaskOutcome> {
  get(taskUuid: string, options: { signal?: AbortSignal | undefined }): Promise<View>;
  /** The task once finished, or as it is when `waitMs` has passed. */
  wait(taskUuid: string, options: { waitMs: number; signal?: AbortSignal | undefined }): Promise<View>;
  cancel(taskUuid: string, options: { signal?: AbortSignal | undefined }): Promise<View>;
}

/** @public */
export interface RunWaitOptions {
  /** How long to wait for the task to finish, in all. @defaultValue 300000 */
  waitMs?: number;
  /** Ends the wait early; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

const DEFAULT_WAIT_MS = 300_000;

/**
 * A task started from a workflow: `result()` waits for it and answers its output, typed by the workflow.
 * @public
 */
export class WorkflowRun<Output = Record<string, unknown>, View extends TaskOutcome = TaskOutcome> {
  readonly taskUuid: string;
  readonly workflow: WorkflowReference<unknown, Output>;
  private readonly source: TaskSource<View>;

  constructor(workflow: WorkflowReference<unknown, Output>, taskUuid: string, source: TaskSource<View>) {
    this.workflow = workflow;
    this.taskUuid = taskUuid;
    this.source = source;
  }

  /** The task with its steps, as it is now. */
  get(options: { signal?: AbortSignal } = {}): Promise<View> {
    return this.source.get(this.taskUuid, options);
  }

  /** The task once finished (any final status), or as it is when `waitMs` has passed: check `status`. */
  wait(options: RunWaitOptions = {}): Promise<View> {
    return this.source.wait(this.taskUuid, {
      waitMs: options.waitMs ?? DEFAULT_WAIT_MS,
      signal: options.signal,
    });
  }

  /**
   * Waits for the task and answers its output.
   * @throws WorkflowRunError when it failed (TASKER_TASK_FAILED), was cancelled (TASKER_TASK_CANCELLED), was
   *   resolved without the results its output needs (TASKER_TASK_NO_OUTPUT), or is still running after `waitMs`
   *   (TASKER_WAIT_TIMEOUT; the task goes on)
   */
  async result(options: RunWaitOptions = {}): Promise<Output> {
    const task = await this.wait(options);
    return taskOutput(this.workflow, task, options.waitMs ?? DEFAULT_WAIT_MS);
  }

  /** Cancels the task and its unfinished steps; a finished task is a TASKER_TASK_TERMINAL error. */
  cancel(options: { signal?: AbortSignal } = {}): Promise<View> {
    return this.source.cancel(this.taskUuid, options);
  }
}

/**
 * @throws WorkflowRunError TASKER_WAIT_TIMEOUT, naming each step's state, when the task is not finished after a
 *   wait of `waitedMs` (it goes on)
 */
export function assertFinished(
  workflow: WorkflowReference<unknown, unknown>,
  task: TaskOutcome,
  waitedMs: number,
): void {
  if (isFinished(task)) return;
  const steps = (task.steps ?? [])
    .map(
      (step) =>
        `${step.name} ${step.status}${step.attempts === undefined ? '' : ` (attempt ${step.attempts})`}`,
    )
    .join(', ');
  throw new WorkflowRunError(
    'TASKER_WAIT_TIMEOUT',
    `task ${task.task_uuid} of ${workflow.namespace}/${workflow.name}@${workflow.version} is still ${task.status} ` +
      `after ${waitedMs} ms${steps === '' ? '' : ` (steps: ${steps})`}; it goes on: wait longer (waitMs) or ` +
      'follow it by its task_uuid',
    task,
  );
}

/**
 * The output of a finished task, read by the workflow's output shape.
 * @throws WorkflowRunError as WorkflowRun.result describes
 */
function taskOutput<Output>(
  workflow: WorkflowReference<unknown, Output>,
  task: TaskOutcome,
  waitedMs: number,
): Output {
  assertFinished(workflow, task, waitedMs);
  const steps = task.steps ?? [];
  const label = `${workflow.namespace}/${workflow.name}@${workflow.version}`;
  const fail = (code: WorkflowRunErrorCode, message: string): never => {
    throw new WorkflowRunError(code, message, task);
  };
  if (task.status === 'error') {
    const failed = failedSteps(task);
    fail(
      'TASKER_TASK_FAILED',
      `task ${task.task_uuid} of ${label} failed` +
        (failed.length === 0
          ? ''
          : `: ${failed.map((step) => `step "${step.name}": ${errorMessage(step.error)}`).join('; ')}`),
    );
  }
  if (task.status === 'cancelled')
    fail('TASKER_TASK_CANCELLED', `task ${task.task_uuid} of ${label} was cancelled`);
  const byName = new Map(steps.map((step) => [step.name, step]));
  const resultOf = (stepName: string): unknown => {
    const step = byName.get(stepName);
    if (
      step === undefined ||
      step.result === undefined ||
      (step.result === null && step.status !== 'complete')
    ) {
      return fail(
        'TASKER_TASK_NO_OUTPUT',
        `task ${task.task_uuid} of ${label} ended ${task.status} without a result for step "${stepName}", ` +
          'which its output reads',
      );
    }
    return step.result;
  };
  const shape = workflow.outputShape;
  if (shape === undefined)
    return Object.fromEntries(steps.map((step) => [step.name, step.result ?? null])) as Output;
  if (typeof shape === 'string') return resultOf(shape) as Output;
  return Object.fromEntries(
    Object.entries(shape).map(([key, stepName]) => [key, resultOf(stepName)]),
  ) as Output;
}

function failedSteps(task: TaskOutcome): FailedStep[] {
  return (task.steps ?? [])
    .filter(
      (step) =>
        step.status === 'error' ||
        (step.error !== undefined && step.error !== null && step.status !== 'complete'),
    )
    .map((step) => ({ name: step.name, status: step.status, error: step.error ?? null }));
}

function errorMessage(error: unknown): string {
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  ) {
    return (error as { message: string }).message;
  }
  return 'failed';
}
