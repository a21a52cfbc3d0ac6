/**
 * What step handler authors write against. A handler receives a StepContext and returns the step's result
 * (any JSON value); throwing fails the step: PermanentError never retries, RetryableError (or any other
 * error) retries per the step's retry policy.
 *
 * Every export here is public API (README, docs/services.md) and carries `@public`, so the dead-export check
 * (`npm run knip`) never reports it, even where no code of this repository uses it.
 *
 * The worker recognises these errors and handler classes by registry symbols (`Symbol.for`), never with
 * `instanceof`: a handler module may load another copy of this file (the package's dist beside a checkout's
 * src, two installed versions), and its errors must be classified the same. The symbol names are a contract
 * between copies: never rename them.
 */

const PERMANENT_ERROR_MARKER = Symbol.for('tasker.permanent_error');
const RETRYABLE_ERROR_MARKER = Symbol.for('tasker.retryable_error');
const STEP_HANDLER_CLASS_MARKER = Symbol.for('tasker.step_handler_class');

const hasMarker = (value: unknown, marker: symbol): boolean =>
  (typeof value === 'object' || typeof value === 'function') &&
  value !== null &&
  (value as Record<symbol, unknown>)[marker] === true;

/**
 * A log call: a message, or structured fields and a message (pino's argument order).
 * @public
 */
export interface StepLogFunction {
  (message: string): void;
  (fields: Record<string, unknown>, message?: string): void;
}

/**
 * The handler's logger: the worker's log (JSON, or pretty in development), every line tagged with the task,
 * step and attempt. A minimal interface, so handler code does not depend on the logging library.
 * @public
 */
export interface StepLogger {
  debug: StepLogFunction;
  info: StepLogFunction;
  warn: StepLogFunction;
  error: StepLogFunction;
}

/** @public */
export interface StepContext<Input = Record<string, unknown>> {
  readonly taskUuid: string;
  readonly stepUuid: string;
  readonly stepName: string;
  readonly correlationId: string;
  readonly namespace: string;
  /** The task's context (its input), as submitted. */
  readonly input: Input;
  /** The step's `handler.initialization` from the template. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Results of every step this one depends on, directly or transitively, by step name. */
  readonly dependencyResults: Readonly<Record<string, unknown>>;
  /** 1 on the first run, 2 on the first retry, ... */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted when the step's timeout passes or the worker shuts down: stop work and throw. */
  readonly signal: AbortSignal;
  /**
   * Stable across every attempt of this step: use it as the idempotency key of side effects (payments,
   * emails) so a retried or re-delivered step does not repeat them.
   */
  readonly idempotencyKey: string;
  /**
   * Logs with `task_uuid`, `step_uuid`, `step`, `namespace`, `attempt`, `max_attempts` and `correlation_id`
   * on every line: `ctx.logger.info({ order_id }, 'charging')`. Lines below the worker's `log_level` are dropped.
   */
  readonly logger: StepLogger;
  /** The result of one dependency; throws a PermanentError naming the step if it has none. */
  dependency<T = unknown>(stepName: string): T;
}

/** @public */
export type HandlerFunction<Input = Record<string, unknown>, Result = unknown> = (
  context: StepContext<Input>,
) => Result | Promise<Result>;

/** @public */
export interface StepHandlerDefinition {
  readonly name: string;
  run(context: StepContext): unknown;
}

/**
 * A handler as a function: `defineHandler('Payments.Charge', async (ctx) => ({ charged: true }))`.
 * @public
 */
export function defineHandler<Input = Record<string, unknown>, Result = unknown>(
  name: string,
  fn: HandlerFunction<Input, Result>,
): StepHandlerDefinition {
  return { name, run: (context) => fn(context as StepContext<Input>) };
}

/**
 * A handler as a class: extend it, set `static handlerName`, implement `call`.
 * @public
 */
export abstract class StepHandler<
  Input = Record<string, unknown>,
  Result = unknown,
> implements StepHandlerDefinition {
  static handlerName: string | undefined;
  static readonly [STEP_HANDLER_CLASS_MARKER] = true;

  get name(): string {
    const name = (this.constructor as typeof StepHandler).handlerName;
    return name ?? this.constructor.name;
  }

  abstract call(context: StepContext<Input>): Result | Promise<Result>;

  run(context: StepContext): unknown {
    return this.call(context as StepContext<Input>);
  }
}

/**
 * The step failed for good: no retry, whatever attempts remain.
 * @public
 */
export class PermanentError extends Error {
  readonly [PERMANENT_ERROR_MARKER] = true;
  readonly code: string | undefined;
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PermanentError';
    this.code = options.code;
  }
}

/**
 * The step failed but may succeed later; `retryAfterMs` asks for a specific delay (capped by the template).
 * @public
 */
export class RetryableError extends Error {
  readonly [RETRYABLE_ERROR_MARKER] = true;
  readonly retryAfterMs: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, options: { retryAfterMs?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RetryableError';
    this.retryAfterMs = options.retryAfterMs;
    this.code = options.code;
  }
}

/**
 * True for a PermanentError from any copy of Tasker (it carries `Symbol.for('tasker.permanent_error')`), which
 * `instanceof PermanentError` misses when the error comes from another copy of the package.
 * @public
 */
export function isPermanentError(value: unknown): value is PermanentError {
  return hasMarker(value, PERMANENT_ERROR_MARKER);
}

/**
 * True for a RetryableError from any copy of Tasker (it carries `Symbol.for('tasker.retryable_error')`).
 * @public
 */
export function isRetryableError(value: unknown): value is RetryableError {
  return hasMarker(value, RETRYABLE_ERROR_MARKER);
}

/** A StepHandler subclass from any copy of Tasker (the class, not an instance), with its `call` implemented. */
export function isStepHandlerClass(value: unknown): value is new () => StepHandler {
  return (
    typeof value === 'function' &&
    hasMarker(value, STEP_HANDLER_CLASS_MARKER) &&
    typeof (value.prototype as { call?: unknown } | undefined)?.call === 'function'
  );
}
