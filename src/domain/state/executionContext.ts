/**
 * What a task should do next, from the counts of its steps by state: the TypeScript form of tasker-core's
 * `get_task_execution_context` (reference §3.2). The finalizer acts on `executionStatus`; discovery and the
 * API show the rest.
 */
import { ValidationError } from '../errors.ts';

export interface StepStateCounts {
  /** All steps of the task. */
  readonly total: number;
  readonly pending: number;
  readonly enqueued: number;
  readonly inProgress: number;
  /** `enqueued_for_orchestration` + `enqueued_as_error_for_orchestration`: results not yet applied. */
  readonly awaitingOrchestration: number;
  readonly waitingForRetry: number;
  readonly complete: number;
  readonly error: number;
  readonly cancelled: number;
  readonly resolvedManually: number;
  /** Steps ready to run now (readiness, reference §3.1): a subset of `pending` + `waitingForRetry`. */
  readonly ready: number;
}

type ExecutionStatus =
  'blocked_by_failures' | 'has_ready_steps' | 'processing' | 'all_complete' | 'waiting_for_dependencies';

type RecommendedAction =
  | 'handle_failures'
  | 'execute_ready_steps'
  | 'wait_for_completion'
  | 'finalize_task'
  | 'wait_for_dependencies';

type HealthStatus = 'healthy' | 'recovering' | 'blocked' | 'unknown';

export interface ExecutionContext {
  readonly executionStatus: ExecutionStatus;
  readonly recommendedAction: RecommendedAction;
  readonly healthStatus: HealthStatus;
  /** (complete + resolved_manually) / total * 100, rounded half up to 2 decimals; 0 for a task without steps. */
  readonly completionPercentage: number;
}

const COUNT_FIELDS = [
  'total',
  'pending',
  'enqueued',
  'inProgress',
  'awaitingOrchestration',
  'waitingForRetry',
  'complete',
  'error',
  'cancelled',
  'resolvedManually',
  'ready',
] as const satisfies readonly (keyof StepStateCounts)[];

function assertCounts(counts: StepStateCounts): void {
  for (const field of COUNT_FIELDS) {
    const value = counts[field];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ValidationError(
        'TASKER_INVALID_ARGUMENT',
        `step count '${field}' must be a non-negative integer, got ${String(value)}`,
        { details: { field, value } },
      );
    }
  }
}

/** The counts describe one consistent picture: the states add up to the total, ready steps are runnable ones. */
function countsAreConsistent(c: StepStateCounts): boolean {
  const byState =
    c.pending +
    c.enqueued +
    c.inProgress +
    c.awaitingOrchestration +
    c.waitingForRetry +
    c.complete +
    c.error +
    c.cancelled +
    c.resolvedManually;
  return byState === c.total && c.ready <= c.pending + c.waitingForRetry;
}

function healthOf(counts: StepStateCounts): HealthStatus {
  if (counts.error > 0) {
    return 'blocked';
  }
  if (!countsAreConsistent(counts)) {
    return 'unknown';
  }
  return counts.waitingForRetry > 0 ? 'recovering' : 'healthy';
}

function completionPercentage(completed: number, total: number): number {
  if (total === 0) {
    return 0;
  }
  // Basis points first: a quotient of two integers lands exactly on .5 only when the true value does, so
  // Math.round matches SQL ROUND(x, 2) (half away from zero) for these non-negative values.
  return Math.round((completed * 10_000) / total) / 100;
}

/**
 * Decides in EXACTLY tasker-core's order; the order is the behaviour (an RCA fixed a bug where ready steps
 * hid a permanent failure):
 * 1. any step in `error` -> `blocked_by_failures` (fail-fast: one permanent failure fails the task, even if
 *    other branches could still run)
 * 2. any ready step -> `has_ready_steps`
 * 3. any step enqueued, in progress or awaiting orchestration -> `processing`
 * 4. every step complete or resolved manually (and at least one step) -> `all_complete`
 * 5. otherwise -> `waiting_for_dependencies` (e.g. steps in backoff, or a task without steps)
 *
 * Health: tasker-core's CASE reduces to "blocked if any error, else healthy" since retryable failures moved
 * to `waiting_for_retry` (TAS-42). We keep its four values and give the other two a meaning: `recovering`
 * when steps wait out a retry backoff, `unknown` when the counts contradict each other.
 */
export function evaluateExecutionContext(counts: StepStateCounts): ExecutionContext {
  assertCounts(counts);
  const completed = counts.complete + counts.resolvedManually;
  const healthStatus = healthOf(counts);
  const percentage = completionPercentage(completed, counts.total);

  if (counts.error > 0) {
    return decision('blocked_by_failures', 'handle_failures', healthStatus, percentage);
  }
  if (counts.ready > 0) {
    return decision('has_ready_steps', 'execute_ready_steps', healthStatus, percentage);
  }
  if (counts.inProgress > 0 || counts.enqueued > 0 || counts.awaitingOrchestration > 0) {
    return decision('processing', 'wait_for_completion', healthStatus, percentage);
  }
  if (counts.total > 0 && completed === counts.total) {
    return decision('all_complete', 'finalize_task', healthStatus, percentage);
  }
  return decision('waiting_for_dependencies', 'wait_for_dependencies', healthStatus, percentage);
}

function decision(
  executionStatus: ExecutionStatus,
  recommendedAction: RecommendedAction,
  healthStatus: HealthStatus,
  completionPercentage: number,
): ExecutionContext {
  return { executionStatus, recommendedAction, healthStatus, completionPercentage };
}
