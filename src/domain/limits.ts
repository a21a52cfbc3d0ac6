/**
 * How much one request may make the engine do: steps per task, bytes of a task's context and of a step's result.
 * `[limits]` in the configuration sets them (the defaults below are the schema's defaults); task creation, template
 * registration and the worker enforce them, each refusal naming the key to raise.
 */
import { ValidationError } from './errors.ts';

export interface TaskLimits {
  /** Most steps one template (and so one task) may have. */
  maxStepsPerTask: number;
  /** Most bytes of a task's context, as JSON text. */
  maxContextBytes: number;
  /** Most bytes of one step's result, as JSON text. */
  maxResultBytes: number;
}

export const DEFAULT_TASK_LIMITS: Readonly<TaskLimits> = Object.freeze({
  maxStepsPerTask: 2_000,
  maxContextBytes: 1_048_576,
  maxResultBytes: 1_048_576,
});

/** UTF-8 bytes of a value as JSON text (what PostgreSQL receives). */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/** Why a template has too many steps, or undefined when it fits. */
export function stepCountProblem(
  stepCount: number,
  limits: Pick<TaskLimits, 'maxStepsPerTask'>,
): string | undefined {
  return stepCount > limits.maxStepsPerTask
    ? `it has ${stepCount} steps; at most ${limits.maxStepsPerTask} are allowed per task ([limits] max_steps_per_task). ` +
        'Split the work into several tasks, or raise the limit'
    : undefined;
}

/** @throws ValidationError TASKER_LIMIT_EXCEEDED when the task's context is larger than `[limits] max_context_bytes` */
export function assertContextSize(context: unknown, limits: TaskLimits): void {
  const bytes = jsonBytes(context);
  if (bytes <= limits.maxContextBytes) return;
  throw new ValidationError(
    'TASKER_LIMIT_EXCEEDED',
    `the task's context is ${bytes} bytes of JSON; at most ${limits.maxContextBytes} are allowed ([limits] max_context_bytes). ` +
      'Pass a reference (an id, a URL) to large data instead of the data',
    { details: { limit: 'max_context_bytes', bytes, max: limits.maxContextBytes } },
  );
}
