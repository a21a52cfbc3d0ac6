/**
 * What the REST API v1 takes and answers, as the client sees it. The request types mirror the server's
 * schemas (the zod `taskRequestSchema` of src/orchestration/taskInitializer.ts, `StepActionBody` of
 * src/api/rest/schemas/stepActionSchemas.ts): the client may import only domain/, so they are copies, and
 * test/unit/client/requestTypes.test.ts fails when a copy and its source differ.
 *
 * The type parameters are for a typed-workflow layer: `Input` types the task context, `Output` maps step
 * names to their result types. Both default to plain JSON, which is all the REST API itself promises.
 */

/** @public */
export type JsonObject = Record<string, unknown>;

/**
 * Step name → result type of that step. The default says nothing about names or results.
 * @public
 */
export type StepResults = Record<string, unknown>;

/**
 * The body of `POST /v1/tasks`: a request to run a registered template. Unknown fields are refused by the
 * server (400 `TASKER_INVALID_TASK_REQUEST`).
 * @public
 */
export interface TaskRequest<Input extends JsonObject = JsonObject> {
  /** Template name, 1..64 characters. */
  name: string;
  /** Template namespace. @defaultValue 'default' (server side) */
  namespace?: string | undefined;
  /** Template version. @defaultValue the highest registered version of the template (semantic version order, chosen by the server) */
  version?: string | undefined;
  /** The task input, checked against the template's `input_schema`. @defaultValue {} (server side) */
  context?: Input | undefined;
  /** Who asked, up to 128 characters. */
  initiator?: string | null | undefined;
  /** Which system asked, up to 128 characters. */
  source_system?: string | null | undefined;
  /** Why, up to 128 characters. */
  reason?: string | null | undefined;
  /** Up to 50 tags of up to 128 characters. @defaultValue [] (server side) */
  tags?: string[] | undefined;
  /** -100..100, higher first. @defaultValue 0 (server side) */
  priority?: number | undefined;
  /** A UUID tying the task to a trace or business transaction. @defaultValue a fresh UUID (server side) */
  correlation_id?: string | null | undefined;
  /** The correlation id of the task that asked for this one. */
  parent_correlation_id?: string | null | undefined;
  /**
   * The identity of this request, 1..255 characters: with it, a second request with the same key is refused
   * with 409 `TASKER_DUPLICATE_TASK`, whatever the template's identity strategy. Required by templates whose
   * strategy is `caller_provided`.
   */
  idempotency_key?: string | null | undefined;
  /** ISO-8601 date-time with offset, recorded as when the task was asked for. */
  requested_at?: string | null | undefined;
  /** Free-form options kept with the request. */
  options?: JsonObject | null | undefined;
}

/** @public */
export type StepActionType = 'reset_for_retry' | 'resolve_manually' | 'complete_manually';

/**
 * The body of `PATCH /v1/tasks/{task}/workflow_steps/{step}`: an operator action on one step.
 * @public
 */
export interface StepActionRequest {
  action_type: StepActionType;
  /** Why, 1..500 characters (kept in the step history). */
  reason?: string;
  /** Who, 1..128 characters (kept in the step history). */
  resolved_by?: string;
  /** Required for `complete_manually`, refused otherwise: the result dependents will see. */
  completion_data?: { result: unknown; metadata?: Record<string, unknown> };
}

/**
 * A workflow step with its readiness (`GET /v1/tasks/{uuid}` lists them in `steps`).
 * @public
 */
export interface StepView<Result = unknown> {
  step_uuid: string;
  task_uuid?: string;
  name: string;
  status: string;
  handler?: string;
  dependencies?: string[];
  attempts: number;
  max_attempts: number;
  /** What the handler returned (or the operator supplied); null until the step succeeds. */
  result?: Result | null;
  /** The latest failure `{message, error_type, retryable, attempt, ...}`; null if none. */
  error?: unknown;
  [key: string]: unknown;
}

/**
 * One step view per step name of `Output`, each with its own result type: with a typed `Output`,
 * `step.name === 'total'` narrows `step.result` to the result type of `total`.
 * @public
 */
export type StepViewOf<Output extends StepResults> = {
  [Name in keyof Output & string]: StepView<Output[Name]> & { name: Name };
}[keyof Output & string];

/**
 * A task with its execution context and steps (`GET /v1/tasks/{uuid}`, the answer of `POST /v1/tasks`).
 * @public
 */
export interface TaskView<Input extends JsonObject = JsonObject, Output extends StepResults = StepResults> {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  created_at?: string;
  completed_at?: string | null;
  context?: Input;
  completion_percentage?: number;
  steps?: StepViewOf<Output>[];
  /**
   * Only in `getTask` of an unfinished task, when something keeps it from making progress: `no_live_worker`
   * when no worker has sent a heartbeat for its namespace in the last 30 s.
   */
  warnings?: TaskWarning[];
  [key: string]: unknown;
}

/**
 * Why an unfinished task may not make progress.
 * @public
 */
export interface TaskWarning {
  code: 'no_live_worker';
  message: string;
  namespace?: string;
}

/**
 * A task in a list (`GET /v1/tasks`): the task without context and steps.
 * @public
 */
export interface TaskSummary {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  created_at: string;
  /** completed_steps of total_steps, 0..100 with 2 decimals. */
  completion_percentage?: number;
  [key: string]: unknown;
}

/**
 * Filters and page of `GET /v1/tasks`. Page numbers may be given as text (the CLI passes its flags through);
 * the server checks them.
 * @public
 */
export interface ListTasksQuery {
  namespace?: string | undefined;
  name?: string | undefined;
  /** One state, several, or several separated by commas. */
  status?: string | readonly string[] | undefined;
  /** ISO-8601: created at or after. */
  created_after?: string | undefined;
  /** ISO-8601: created before. */
  created_before?: string | undefined;
  /** 1-based. @defaultValue 1 (server side) */
  page?: number | string | undefined;
  /** 1..100. @defaultValue 25 (server side) */
  per_page?: number | string | undefined;
}

/** @public */
export interface TaskList {
  tasks: TaskSummary[];
  pagination: {
    page: number;
    per_page: number;
    total_count: number;
    total_pages: number;
    has_next: boolean;
    has_previous: boolean;
  };
}
