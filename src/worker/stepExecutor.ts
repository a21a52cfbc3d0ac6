import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClaimedStep } from '../db/queries/claimSteps.ts';
import type { StepFailure } from '../db/queries/completeStep.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { isPermanentError, isRetryableError, PermanentError } from './handlerApi.ts';
import type { StepContext, StepHandlerDefinition } from './handlerApi.ts';

export type StepOutcome =
  | { success: true; result: unknown; executionMs: number }
  | { success: false; failure: StepFailure; executionMs: number };

class StepTimeoutError extends Error {
  constructor(seconds: number) {
    super(`step timed out after ${seconds} s`);
    this.name = 'StepTimeoutError';
  }
}

/**
 * What a handler receives for one claimed step; also what the test helpers' `runStep` hands a step. Its
 * `logger` is a child of `logger` made on first use: most handlers never log, and a child per step would cost
 * every step an allocation.
 */
export function buildContext(
  step: Omit<ClaimedStep, 'msgId' | 'handlerCallable' | 'timeoutSeconds'>,
  namespace: string,
  signal: AbortSignal,
  logger: Logger = silentLogger,
): StepContext {
  let stepLogger: Logger | undefined;
  return {
    get logger() {
      return (stepLogger ??= logger.child({
        correlation_id: step.correlationId,
        task_uuid: step.taskUuid,
        step_uuid: step.stepUuid,
        step: step.stepName,
        namespace,
        attempt: step.attempt,
        max_attempts: step.maxAttempts,
      }));
    },
    taskUuid: step.taskUuid,
    stepUuid: step.stepUuid,
    stepName: step.stepName,
    correlationId: step.correlationId,
    namespace,
    input: step.taskContext,
    config: step.handlerInitialization,
    dependencyResults: step.dependencyResults,
    attempt: step.attempt,
    maxAttempts: step.maxAttempts,
    signal,
    idempotencyKey: `tasker-step-${step.stepUuid}`,
    dependency: <T>(name: string): T => {
      if (!Object.prototype.hasOwnProperty.call(step.dependencyResults, name)) {
        const known = Object.keys(step.dependencyResults);
        throw new PermanentError(
          `step "${step.stepName}" has no dependency result "${name}"; it has: ${known.join(', ') || '(none)'}. ` +
            "Add the step to this step's dependencies in the template.",
        );
      }
      return step.dependencyResults[name] as T;
    },
  };
}

/** Fields read from an error of another copy of Tasker are checked, not trusted: it may be any object. */
const textOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;
const retryAfterOf = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.round(value)) : undefined;

/**
 * Frames in Tasker's own code (src/ of a checkout, dist/ of the package: this file's folder's parent) are the
 * step runner's, not the handler's; a user's handler module never lives there.
 */
const TASKER_CODE_DIR = `${dirname(dirname(fileURLToPath(import.meta.url)))}${sep}`;
/** Enough to find the handler's line without letting a deep stack bloat every stored failure. */
const MAX_BACKTRACE_FRAMES = 20;
const MAX_BACKTRACE_BYTES = 4096;

/**
 * The stack frames of an error (tasker-core's `backtrace`: one string per frame, `at fn (file:line:col)`),
 * without Node's internals and Tasker's own frames, at most MAX_BACKTRACE_FRAMES frames and
 * MAX_BACKTRACE_BYTES characters. Undefined when the error has no stack.
 */
function backtraceOf(error: Error): string[] | undefined {
  if (typeof error.stack !== 'string') return undefined;
  const backtrace: string[] = [];
  let bytes = 0;
  for (const line of error.stack.split('\n')) {
    const frame = line.trim();
    if (!frame.startsWith('at ') || frame.includes('node:internal') || frame.includes(TASKER_CODE_DIR))
      continue;
    if (backtrace.length === MAX_BACKTRACE_FRAMES || bytes + frame.length > MAX_BACKTRACE_BYTES) break;
    backtrace.push(frame);
    bytes += frame.length;
  }
  return backtrace.length === 0 ? undefined : backtrace;
}

/**
 * How a thrown value becomes a stored failure: permanent or retryable, with a readable message. Handler errors
 * are recognised by their marker (isPermanentError), not `instanceof`, so those of another copy of the package
 * count the same.
 */
function classifyFailure(error: unknown): StepFailure {
  if (isPermanentError(error)) {
    const code = textOf(error.code);
    return {
      message: String(error.message),
      error_type: 'permanent_error',
      retryable: false,
      ...(code !== undefined && { code }),
    };
  }
  if (isRetryableError(error)) {
    const code = textOf(error.code);
    const retryAfterMs = retryAfterOf(error.retryAfterMs);
    return {
      message: String(error.message),
      error_type: 'retryable_error',
      retryable: true,
      ...(retryAfterMs !== undefined && { retry_after_ms: retryAfterMs }),
      ...(code !== undefined && { code }),
    };
  }
  if (error instanceof StepTimeoutError)
    return { message: error.message, error_type: 'timeout', retryable: true };
  // A Tasker error says what went wrong on purpose; any other error is a bug to find, so its stack is kept.
  if (error instanceof Error) {
    const backtrace = backtraceOf(error);
    return {
      message: error.message,
      error_type: error.name || 'Error',
      retryable: true,
      ...(backtrace !== undefined && { backtrace }),
    };
  }
  return { message: String(error), error_type: 'thrown_value', retryable: true };
}

/** JSON round trip: what is stored is what dependents will see. Undefined becomes null. */
/**
 * A handler's result as it will be stored (through JSON, so `undefined` becomes null and a Date a string), and
 * its size. The JSON text is made once: the size check costs no second serialisation.
 * @throws when the result cannot be written as JSON (a cycle, a BigInt)
 */
function toStorable(result: unknown): { value: unknown; bytes: number } {
  if (result === undefined) return { value: null, bytes: 4 };
  const text = JSON.stringify(result) ?? 'null';
  return { value: JSON.parse(text) as unknown, bytes: Buffer.byteLength(text, 'utf8') };
}

/** A result larger than `[limits] max_result_bytes` fails its step for good: a retry would return as much. */
function resultTooLarge(bytes: number, maxBytes: number): StepFailure {
  return {
    message:
      `the handler's result is ${bytes} bytes of JSON; at most ${maxBytes} are stored ([limits] max_result_bytes). ` +
      'Store large data elsewhere and return a reference to it',
    error_type: 'result_too_large',
    retryable: false,
  };
}

/**
 * Runs one claimed step's handler under its timeout. Never throws: every way a handler can end becomes a
 * StepOutcome. On timeout the handler's signal is aborted and its eventual result is ignored.
 */
export async function executeStep(
  step: ClaimedStep,
  handler: StepHandlerDefinition | undefined,
  options: {
    namespace: string;
    defaultTimeoutMs: number;
    shutdownSignal: AbortSignal;
    maxResultBytes?: number;
    /** Parent of the handler's `ctx.logger`. @defaultValue silent */
    logger?: Logger;
  },
): Promise<StepOutcome> {
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  if (handler === undefined) {
    return {
      success: false,
      failure: {
        message: `no handler "${step.handlerCallable}" is registered on this worker`,
        error_type: 'handler_not_found',
        retryable: false,
      },
      executionMs: 0,
    };
  }
  const timeoutMs = step.timeoutSeconds !== null ? step.timeoutSeconds * 1000 : options.defaultTimeoutMs;
  const controller = new AbortController();
  const onShutdown = (): void => controller.abort(options.shutdownSignal.reason);
  options.shutdownSignal.addEventListener('abort', onShutdown, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StepTimeoutError(timeoutMs / 1000);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([
      Promise.resolve().then(() =>
        handler.run(buildContext(step, options.namespace, controller.signal, options.logger)),
      ),
      timeout,
    ]);
    try {
      const storable = toStorable(result);
      if (options.maxResultBytes !== undefined && storable.bytes > options.maxResultBytes) {
        return {
          success: false,
          failure: resultTooLarge(storable.bytes, options.maxResultBytes),
          executionMs: elapsed(),
        };
      }
      return { success: true, result: storable.value, executionMs: elapsed() };
    } catch (error) {
      return {
        success: false,
        failure: {
          message: `the handler's result cannot be stored as JSON: ${(error as Error).message}`,
          error_type: 'invalid_result',
          retryable: false,
        },
        executionMs: elapsed(),
      };
    }
  } catch (error) {
    return { success: false, failure: classifyFailure(error), executionMs: elapsed() };
  } finally {
    clearTimeout(timer);
    options.shutdownSignal.removeEventListener('abort', onShutdown);
  }
}
