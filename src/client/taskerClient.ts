import { randomUUID } from 'node:crypto';
import { TaskerError } from '../domain/errors.ts';
import { TERMINAL_TASK_STATES } from '../domain/state/taskStates.ts';
import { WorkflowRun } from '../domain/workflowRun.ts';
import type { RunWaitOptions, TaskSource, WorkflowReference } from '../domain/workflowRun.ts';
import { DuplicateTaskError, ServerAnswerError, ServerUnreachableError } from './clientErrors.ts';
import type {
  JsonObject,
  ListTasksQuery,
  StepActionRequest,
  StepResults,
  StepView,
  TaskList,
  TaskRequest,
  TaskView,
} from './clientTypes.ts';
import { abortReason, HttpTransport, TransportFailure } from './httpTransport.ts';
import type { AgentOptions, HttpAnswer } from './httpTransport.ts';
import {
  isRepeatable,
  parseRetryAfter,
  resolveRetryOptions,
  retryDelayMs,
  shouldRetry,
} from './retryPolicy.ts';
import type { AttemptOutcome, ResolvedRetryOptions, RetryOptions } from './retryPolicy.ts';

// The client is public API for programs that talk to a Tasker server: its exports carry `@public`, so the
// dead-export check (`npm run knip`) never reports them, even where the CLI does not use them. This module
// is the client's one import: it re-exports the errors and types.
export { DuplicateTaskError, ServerAnswerError, ServerUnreachableError } from './clientErrors.ts';
export type * from './clientTypes.ts';
export type { AgentOptions } from './httpTransport.ts';
export type { RetryOptions } from './retryPolicy.ts';
export { WorkflowRun, WorkflowRunError, workflowReference } from '../domain/workflowRun.ts';
export type {
  RunWaitOptions,
  WorkflowReference,
  WorkflowInput,
  WorkflowOutput,
  WorkflowOutputShape,
} from '../domain/workflowRun.ts';

/**
 * The fields of a task request besides the workflow and its input: who and why, tags, priority, correlation,
 * idempotency key.
 * @public
 */
export type WorkflowTaskOptions = Omit<TaskRequest, 'name' | 'namespace' | 'version' | 'context'>;

/** @public */
export interface RunOptions extends RunWaitOptions {
  /** One attempt's bound for the creating call. @defaultValue the client's `timeoutMs` */
  timeoutMs?: number;
}

/** @public */
export type JsonBody = Record<string, unknown>;

/** @public */
export interface TaskerClientOptions {
  /**
   * One attempt's bound: waiting for a connection, sending, and reading the whole answer. A long poll
   * (`waitSeconds`) adds its wait to it.
   * @defaultValue 30000
   */
  timeoutMs?: number;
  /** Retries of 429, 503 and failed connections (see RetryOptions); `false` turns them off. */
  retry?: RetryOptions | false;
  /** The keep-alive connections. */
  agent?: AgentOptions;
  /**
   * Credentials sent with every request: a JWT (`Authorization: Bearer`) or an API key (`X-API-Key`), for
   * a server with `[orchestration.web.auth] enabled`. A 401 or 403 answer is a ServerAnswerError with code
   * TASKER_UNAUTHENTICATED or TASKER_FORBIDDEN. @defaultValue none
   */
  auth?: ClientAuth;
}

/**
 * One credential; the client never logs it or puts it in an error.
 * @public
 */
export type ClientAuth = { token: string } | { apiKey: string };

/** @public */
export interface CallOptions {
  /** Aborts the call, retry waits included; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** This call's per-attempt timeout. @defaultValue the client's `timeoutMs` */
  timeoutMs?: number;
}

/** @public */
export interface LongPollOptions extends CallOptions {
  /**
   * Seconds the server holds the answer until the task is finished (`?wait=`, 0..60; the server may cap it
   * lower, just below its request timeout). @defaultValue 0: answer at once
   */
  waitSeconds?: number;
}

/** @public */
export interface CreateTaskOptions extends LongPollOptions {
  /**
   * The `Idempotency-Key` header, the same on every retry of this call. With it, a retry after a lost answer
   * gets the task the first attempt created (200 with `Idempotent-Replayed: true`) instead of a second task,
   * for `always_unique` templates too (the other strategies recognise a repeat by their identity). `false` sends
   * none. @defaultValue a fresh UUID per call
   */
  requestKey?: string | false;
}

/** @public */
export interface WaitForTaskOptions extends CallOptions {
  /**
   * How long to wait in all; the answer is the task as it is then, finished or not (check `status`).
   * @defaultValue 300000
   */
  waitMs?: number;
}

const MAX_WAIT_SECONDS = 60;
/** Per long poll in waitForTask: short enough that no proxy idle timeout cuts it. */
const POLL_WAIT_SECONDS = 25;
const TERMINAL = new Set<string>(TERMINAL_TASK_STATES);

/**
 * A client of the orchestration REST API v1, used by the CLI and usable from programs. One keep-alive
 * agent per client (`close()` releases it); 429 and 503 are retried as their `Retry-After` asks, within
 * bounds (RetryOptions, docs/api.md "The TypeScript client"). Every failure is a TaskerError:
 * ServerAnswerError (the server's status, code and message), DuplicateTaskError (409 to createTask),
 * ServerUnreachableError (no answer: `TASKER_SERVER_UNREACHABLE`, `TASKER_CLIENT_TIMEOUT`), or
 * `TASKER_CLOSED` after close(). A caller's abort rejects with the signal's reason.
 * @public
 */
export class TaskerClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly retry: ResolvedRetryOptions;
  private readonly transport: HttpTransport;
  private closed = false;

  constructor(baseUrl: string, options: TaskerClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = resolveRetryOptions(options.retry);
    this.transport = new HttpTransport(this.baseUrl, options.agent, authHeaders(options.auth));
  }

  /**
   * Creates a task (`POST /v1/tasks`). With `waitSeconds`, the answer comes once the task is finished (or
   * after that long, with the task as it is then). A 409 is a DuplicateTaskError.
   */
  createTask<Input extends JsonObject = JsonObject, Output extends StepResults = StepResults>(
    request: TaskRequest<Input>,
    options: CreateTaskOptions = {},
  ): Promise<TaskView<Input, Output>> {
    const { requestKey, ...call } = options;
    // One key for every attempt of this call: a retry after a lost answer is then recognised by the server.
    const key = requestKey === false ? undefined : (requestKey ?? randomUUID());
    return this.request('POST', `/v1/tasks${waitQuery(call.waitSeconds)}`, request, {
      ...call,
      timeoutMs: longPollTimeout(call, this.timeoutMs),
      ...(key !== undefined && { headers: { 'idempotency-key': key } }),
    });
  }

  /** A task with its steps. With `waitSeconds`, answers as soon as it is finished, or after that long. */
  getTask<Input extends JsonObject = JsonObject, Output extends StepResults = StepResults>(
    taskUuid: string,
    options: LongPollOptions = {},
  ): Promise<TaskView<Input, Output>> {
    return this.request(
      'GET',
      `/v1/tasks/${encodeURIComponent(taskUuid)}${waitQuery(options.waitSeconds)}`,
      undefined,
      {
        ...options,
        timeoutMs: longPollTimeout(options, this.timeoutMs),
      },
    );
  }

  /**
   * Waits until the task is finished (complete, error, cancelled, resolved_manually) with long polls of at
   * most 25 s each, or until `waitMs` has passed; answers the task as it is then.
   */
  async waitForTask<Input extends JsonObject = JsonObject, Output extends StepResults = StepResults>(
    taskUuid: string,
    options: WaitForTaskOptions = {},
  ): Promise<TaskView<Input, Output>> {
    const deadline = Date.now() + (options.waitMs ?? 300_000);
    for (;;) {
      const left = Math.floor((deadline - Date.now()) / 1000);
      const task = await this.getTask<Input, Output>(taskUuid, {
        ...options,
        waitSeconds: Math.max(0, Math.min(POLL_WAIT_SECONDS, left)),
      });
      if (TERMINAL.has(task.status) || Date.now() >= deadline - 1000) return task;
    }
  }

  /**
   * Starts a task of a workflow, its input typed by the workflow (a `Workflow` defined in code, or a
   * `workflowReference`); `result()` of the answer waits for the output, typed by the workflow's `returns`.
   * Creation is idempotent under the template's identity strategy, which is what makes retrying it safe.
   * @throws DuplicateTaskError when a task with the same identity exists; ServerAnswerError as createTask
   */
  async start<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request: WorkflowTaskOptions = {},
    options: CallOptions = {},
  ): Promise<WorkflowRun<Output, TaskView>> {
    const task = await this.createTask(
      {
        ...request,
        namespace: workflow.namespace,
        name: workflow.name,
        version: workflow.version,
        context: input as JsonObject,
      },
      options,
    );
    return this.runOf(workflow, task.task_uuid);
  }

  /**
   * Starts a task of a workflow and answers its output once it is complete: `start(...)` then `result()`.
   * @throws WorkflowRunError TASKER_TASK_FAILED (with the failed steps' errors), TASKER_TASK_CANCELLED,
   *   TASKER_TASK_NO_OUTPUT, or TASKER_WAIT_TIMEOUT after `waitMs` (the task goes on); errors of `start`
   */
  async run<Input, Output>(
    workflow: WorkflowReference<Input, Output>,
    input: NoInfer<Input>,
    request: WorkflowTaskOptions = {},
    options: RunOptions = {},
  ): Promise<Output> {
    const { waitMs, ...call } = options;
    const run = await this.start(workflow, input, request, call);
    return run.result({
      ...(waitMs !== undefined && { waitMs }),
      ...(call.signal !== undefined && { signal: call.signal }),
    });
  }

  /** Follows a task of a workflow started earlier (by its `task_uuid`), typed by that workflow. */
  runOf<Output>(
    workflow: WorkflowReference<unknown, Output>,
    taskUuid: string,
  ): WorkflowRun<Output, TaskView> {
    return new WorkflowRun(workflow, taskUuid, this.taskSource);
  }

  private readonly taskSource: TaskSource<TaskView> = {
    get: (taskUuid, options) => this.getTask(taskUuid, withSignal(options.signal)),
    wait: (taskUuid, options) =>
      this.waitForTask(taskUuid, { waitMs: options.waitMs, ...withSignal(options.signal) }),
    cancel: (taskUuid, options) => this.cancelTask(taskUuid, withSignal(options.signal)),
  };

  /** Tasks, newest first. */
  listTasks(query: ListTasksQuery = {}, options: CallOptions = {}): Promise<TaskList> {
    return this.request('GET', `/v1/tasks${queryString(query)}`, undefined, options);
  }

  /** Cancels a task and its unfinished steps; a finished task is 409 `TASKER_TASK_TERMINAL`. */
  cancelTask<Input extends JsonObject = JsonObject, Output extends StepResults = StepResults>(
    taskUuid: string,
    options: CallOptions = {},
  ): Promise<TaskView<Input, Output>> {
    return this.request('DELETE', `/v1/tasks/${encodeURIComponent(taskUuid)}`, undefined, options);
  }

  listSteps(taskUuid: string, options: CallOptions = {}): Promise<{ steps: StepView[] }> {
    return this.request(
      'GET',
      `/v1/tasks/${encodeURIComponent(taskUuid)}/workflow_steps`,
      undefined,
      options,
    );
  }

  getStep(taskUuid: string, stepUuid: string, options: CallOptions = {}): Promise<StepView> {
    return this.request('GET', stepPath(taskUuid, stepUuid), undefined, options);
  }

  /** An operator action on one step: reset_for_retry, resolve_manually or complete_manually. */
  stepAction(
    taskUuid: string,
    stepUuid: string,
    action: StepActionRequest,
    options: CallOptions = {},
  ): Promise<StepView> {
    return this.request('PATCH', stepPath(taskUuid, stepUuid), action, options);
  }

  /** Closes the client's connections; later calls fail with `TASKER_CLOSED`. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  /** One API call, retried per the client's RetryOptions; the answer body parsed as JSON. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: CallOptions & { headers?: Readonly<Record<string, string>> } = {},
  ): Promise<T> {
    if (this.closed) {
      throw new TaskerError(
        'TASKER_CLOSED',
        `this TaskerClient for ${this.baseUrl} was closed; create another`,
      );
    }
    const text = body === undefined ? undefined : JSON.stringify(body);
    const repeatable = isRepeatable(method, path);
    const started = Date.now();
    // An earlier attempt of this call that may have done its work on the server without saying so.
    let uncertain = false;
    for (let attempt = 1; ; attempt++) {
      let failure: TaskerError;
      let outcome: AttemptOutcome;
      try {
        const answer = await this.transport.exchange(
          method,
          path,
          text,
          options.timeoutMs ?? this.timeoutMs,
          options.signal,
          options.headers,
        );
        if (answer.status < 400) return parseJson(answer.body) as T;
        const error = answerError(answer, { method, path, attempts: attempt });
        failure =
          error.status === 409 && error.code === 'TASKER_DUPLICATE_TASK'
            ? new DuplicateTaskError(error, uncertain)
            : error;
        outcome = { kind: 'status', status: answer.status, retryAfterMs: parseRetryAfterHeader(answer) };
        if (answer.status === 503) uncertain = true;
      } catch (error) {
        if (!(error instanceof TransportFailure)) throw error; // the caller's abort
        failure = this.unreachable(error, { method, path, attempts: attempt });
        outcome =
          error.kind === 'refused' || error.kind === 'broken' ? { kind: error.kind } : { kind: 'final' };
        if (error.kind !== 'refused' && error.kind !== 'other') uncertain = true;
      }
      if (!shouldRetry(outcome, repeatable) || attempt >= this.retry.maxAttempts) throw failure;
      const delay = retryDelayMs(
        this.retry,
        attempt,
        outcome.kind === 'status' ? outcome.retryAfterMs : undefined,
      );
      if (Date.now() + delay - started > this.retry.maxElapsedMs) throw failure;
      await sleep(delay, options.signal);
    }
  }

  private unreachable(
    failure: TransportFailure,
    call: { method: string; path: string; attempts: number },
  ): ServerUnreachableError {
    const tries = call.attempts > 1 ? `, ${call.attempts} attempts` : '';
    if (failure.kind === 'timeout') {
      return new ServerUnreachableError(
        'TASKER_CLIENT_TIMEOUT',
        `${call.method} ${call.path} to the Tasker server at ${this.baseUrl} got no answer in time (${failure.reason}${tries}); the server may still have done it. Read the state before repeating a change, or raise timeoutMs`,
        { url: this.baseUrl, reason: 'timeout', call, cause: failure },
      );
    }
    return new ServerUnreachableError(
      'TASKER_SERVER_UNREACHABLE',
      `cannot reach the Tasker server at ${this.baseUrl} (${failure.reason}${tries}); start it (npx tasker orchestration, or npx tasker dev) or pass --url / set TASKER_URL`,
      { url: this.baseUrl, reason: failure.reason, call, cause: failure.cause },
    );
  }
}

function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

function parseRetryAfterHeader(answer: HttpAnswer): number | undefined {
  return parseRetryAfter(answer.headers['retry-after']);
}

function answerError(
  answer: HttpAnswer,
  call: { method: string; path: string; attempts: number },
): ServerAnswerError {
  const parsed = parseJson(answer.body) as
    { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  const error = typeof parsed === 'object' && parsed !== null ? parsed.error : undefined;
  const code = typeof error?.code === 'string' ? error.code : 'TASKER_API_ERROR';
  const message =
    typeof error?.message === 'string'
      ? error.message
      : `${call.method} ${call.path} answered HTTP ${answer.status}${answer.body === '' ? '' : `: ${answer.body.slice(0, 200)}`}`;
  const details =
    typeof error?.details === 'object' && error.details !== null && !Array.isArray(error.details)
      ? (error.details as Record<string, unknown>)
      : {};
  const retryAfterMs = parseRetryAfterHeader(answer);
  const requestId = answer.headers['x-request-id'];
  return new ServerAnswerError(answer.status, code, message, {
    details,
    retryAfterSeconds: retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000),
    requestId: typeof requestId === 'string' ? requestId : undefined,
    call,
  });
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function waitQuery(waitSeconds: number | undefined): string {
  if (waitSeconds === undefined || waitSeconds <= 0) return '';
  return `?wait=${Math.min(MAX_WAIT_SECONDS, Math.ceil(waitSeconds))}`;
}

function longPollTimeout(options: LongPollOptions, clientTimeoutMs: number): number {
  const wait = Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil(options.waitSeconds ?? 0)));
  return (options.timeoutMs ?? clientTimeoutMs) + wait * 1000;
}

function stepPath(taskUuid: string, stepUuid: string): string {
  return `/v1/tasks/${encodeURIComponent(taskUuid)}/workflow_steps/${encodeURIComponent(stepUuid)}`;
}

function queryString(query: ListTasksQuery): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query) as [string, ListTasksQuery[keyof ListTasksQuery]][]) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item));
    else params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      if (signal !== undefined) reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function authHeaders(auth: ClientAuth | undefined): Record<string, string> {
  if (auth === undefined) return {};
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` };
  return { 'x-api-key': auth.apiKey };
}
