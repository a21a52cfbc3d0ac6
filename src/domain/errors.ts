/**
 * The one error hierarchy of Tasker. Every error we raise on purpose is a `TaskerError` with a stable
 * `code` (documented in docs/errors.md), a message that says what, where and how to fix it, structured
 * `details` for programs, and the underlying `cause` when there is one.
 *
 * TaskerErrorCode, TaskerError and isTaskerError are public API (handlers and programs catch them): they carry
 * `@public`, so the dead-export check (`npm run knip`) never reports them.
 * @public
 */
export type TaskerErrorCode =
  | 'TASKER_CONFIG_INVALID'
  | 'TASKER_INVALID_TEMPLATE'
  | 'TASKER_INVALID_QUEUE_NAME'
  | 'TASKER_INVALID_ARGUMENT'
  | 'TASKER_DATABASE_URL_INVALID'
  | 'TASKER_DATABASE_UNAVAILABLE'
  | 'TASKER_DATABASE_LOCKED'
  | 'TASKER_DATABASE_POOL_EXHAUSTED'
  | 'TASKER_STATEMENT_TIMEOUT'
  | 'TASKER_CIRCUIT_OPEN'
  | 'TASKER_SCHEMA_TOO_NEW'
  | 'TASKER_SCHEMA_NOT_MIGRATED'
  | 'TASKER_SCHEMA_LEGACY'
  | 'TASKER_MIGRATION_CHANGED'
  | 'TASKER_MIGRATION_FAILED'
  | 'TASKER_QUEUE_NOT_FOUND'
  | 'TASKER_LISTENER_FAILED'
  | 'TASKER_CLOSED'
  | 'TASKER_TEMPLATE_NOT_FOUND'
  | 'TASKER_INVALID_TASK_REQUEST'
  | 'TASKER_INVALID_CONTEXT'
  | 'TASKER_LIMIT_EXCEEDED'
  | 'TASKER_DUPLICATE_TASK'
  | 'TASKER_TASK_NOT_FOUND'
  | 'TASKER_TASK_TERMINAL'
  | 'TASKER_UNKNOWN_HANDLER'
  | 'TASKER_INVALID_TRANSITION'
  | 'TASKER_IDEMPOTENCY_KEY_REQUIRED'
  | 'TASKER_STEP_NOT_FOUND'
  | 'TASKER_STEP_ACTION_NOT_ALLOWED'
  | 'TASKER_DLQ_ENTRY_NOT_FOUND'
  | 'TASKER_DLQ_ENTRY_RESOLVED'
  | 'TASKER_HANDLERS_MODULE_INVALID'
  | 'TASKER_INVALID_WORKFLOW'
  | 'TASKER_LISTEN_FAILED'
  | 'TASKER_SERVER_UNREACHABLE'
  | 'TASKER_CLIENT_TIMEOUT'
  | 'TASKER_API_ERROR'
  | 'TASKER_TASK_FAILED'
  | 'TASKER_TASK_CANCELLED'
  | 'TASKER_TASK_NO_OUTPUT'
  | 'TASKER_WAIT_TIMEOUT'
  | HttpLayerErrorCode;

/** The REST layer's own codes (src/api/rest/apiError.ts raises them). */
export type HttpLayerErrorCode =
  | 'TASKER_INVALID_REQUEST'
  | 'TASKER_INVALID_UUID'
  | 'TASKER_MALFORMED_JSON'
  | 'TASKER_JSON_TOO_DEEP'
  | 'TASKER_BAD_REQUEST'
  | 'TASKER_UNSUPPORTED_MEDIA_TYPE'
  | 'TASKER_BODY_TOO_LARGE'
  | 'TASKER_ROUTE_NOT_FOUND'
  | 'TASKER_METHOD_NOT_ALLOWED'
  | 'TASKER_SERVICE_OVERLOADED'
  | 'TASKER_REQUEST_TIMEOUT'
  | 'TASKER_UNAUTHENTICATED'
  | 'TASKER_FORBIDDEN'
  | 'TASKER_AUTH_UNAVAILABLE'
  | 'TASKER_REQUEST_INCOMPLETE'
  | 'TASKER_HEADERS_TOO_LARGE'
  | 'TASKER_EXPECTATION_FAILED'
  | 'TASKER_INTERNAL';

/** @public */
export class TaskerError extends Error {
  readonly code: TaskerErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: TaskerErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }

  toJSON(): { code: TaskerErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** A caller passed a value we cannot use; the message names the value and the accepted form. */
export class ValidationError extends TaskerError {}

/** Database connection, schema and migration problems. */
export class DatabaseError extends TaskerError {}

/** A request names something that does not exist (template, task). */
export class NotFoundError extends TaskerError {}

/** A request conflicts with what exists (duplicate task identity, a terminal task). */
export class ConflictError extends TaskerError {}

/** Queue and notification problems. */
export class MessagingError extends TaskerError {}

/**
 * A circuit breaker refused a call (code TASKER_CIRCUIT_OPEN): its dependency (the database, the message
 * queue) failed `error_threshold` times in a row, so calls fail at once instead of waiting on it until
 * `retryAfterSeconds` have passed and trial calls are let through again (src/resilience/circuitBreaker.ts).
 */
export class CircuitError extends TaskerError {
  /** The breaker's name: `database` or `message_queue`. */
  readonly breaker: string;
  /** Whole seconds (at least 1) until the breaker lets trial calls through. */
  readonly retryAfterSeconds: number;

  constructor(
    message: string,
    options: { breaker: string; retryAfterSeconds: number; details?: Record<string, unknown> },
  ) {
    super('TASKER_CIRCUIT_OPEN', message, {
      details: {
        breaker: options.breaker,
        retry_after_seconds: options.retryAfterSeconds,
        ...options.details,
      },
    });
    this.breaker = options.breaker;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** One configuration mistake: where it is (file, key path) and what is wrong with it. */
export interface ConfigProblem {
  /** A file relative to the config root (`environments/production/orchestration.toml`), or `environment variable X`. */
  source: string;
  /** Dotted key path, e.g. `orchestration.polling.batch_size`; empty for whole-file problems. */
  path: string;
  message: string;
}

export function formatConfigProblem(problem: ConfigProblem): string {
  return problem.path === ''
    ? `${problem.source}: ${problem.message}`
    : `${problem.source}: ${problem.path}: ${problem.message}`;
}

/** Every problem found in the configuration at once, not only the first. */
export class ConfigError extends TaskerError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(
      'TASKER_CONFIG_INVALID',
      `configuration has ${count}:\n${problems.map((p) => `  ${formatConfigProblem(p)}`).join('\n')}`,
      {
        details: { problems },
      },
    );
    this.problems = problems;
  }
}

/** @public */
export function isTaskerError(error: unknown): error is TaskerError {
  return error instanceof TaskerError;
}
