/**
 * The task view answered to POST /v1/tasks, built without the readiness SQL: task creation is a hot path
 * and that SQL costs more than the rest of the answer. Dependency names come from the template the task
 * was just planned from (passed in by the route, not read again); readiness and the execution context follow the same rules as
 * tasker.get_step_readiness_status / get_task_execution_context (reference §3.1, §3.2), through the domain
 * functions that mirror them.
 */
import type { TaskSnapshotRow } from '../../db/queries/taskViews.ts';
import type { StepViewRow } from '../../db/queries/stepViews.ts';
import { evaluateExecutionContext } from '../../domain/state/executionContext.ts';
import { isRetryEligible } from '../../domain/retry/backoff.ts';
import type { TaskTemplate } from '../../domain/template/taskTemplate.ts';
import { taskView } from './views.ts';
import type { TaskView } from './views.ts';

const SATISFIES_DEPENDENCY = new Set(['complete', 'resolved_manually']);
/**
 * Steps listed in the answer to a creation: a small request must not answer megabytes (a 2,000-step task's
 * steps are about 1 MB of JSON). The counters cover every step; the step routes list them all.
 */
export const CREATION_ANSWER_MAX_STEPS = 100;
const RUNNABLE = new Set(['pending', 'waiting_for_retry']);
const AWAITING_ORCHESTRATION = new Set(['enqueued_for_orchestration', 'enqueued_as_error_for_orchestration']);

/** `retryable` of a stored last_error, as the readiness SQL reads it (`last_error ->> 'retryable'`). */
function lastErrorRetryable(error: unknown): boolean | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const retryable = (error as { retryable?: unknown }).retryable;
  return typeof retryable === 'boolean' ? retryable : undefined;
}

export function createdTaskView(
  snapshot: TaskSnapshotRow,
  template: TaskTemplate,
  now = Date.now(),
): TaskView & { steps_omitted?: number } {
  const dependenciesOf = new Map(template.steps.map((step) => [step.name, [...step.dependencies].sort()]));
  const stateOf = new Map(snapshot.steps.map((step) => [step.name, step.status]));
  const steps: StepViewRow[] = snapshot.steps.map((step) => {
    const dependencies = dependenciesOf.get(step.name) ?? [];
    const dependenciesSatisfied = dependencies.every((name) =>
      SATISFIES_DEPENDENCY.has(stateOf.get(name) ?? ''),
    );
    const retryEligible = isRetryEligible({
      attempts: step.attempts,
      maxAttempts: step.max_attempts,
      retryable: step.retryable,
      lastErrorRetryable: lastErrorRetryable(step.error),
    });
    const due = step.next_retry_at === null || Date.parse(step.next_retry_at) <= now;
    return {
      ...step,
      dependencies,
      ready: RUNNABLE.has(step.status) && dependenciesSatisfied && retryEligible && due,
      dependencies_satisfied: dependenciesSatisfied,
      retry_eligible: retryEligible,
    };
  });

  const count = (predicate: (status: string) => boolean): number =>
    steps.filter((step) => predicate(step.status)).length;
  const counts = {
    total: steps.length,
    pending: count((s) => s === 'pending'),
    enqueued: count((s) => s === 'enqueued'),
    inProgress: count((s) => s === 'in_progress'),
    awaitingOrchestration: count((s) => AWAITING_ORCHESTRATION.has(s)),
    waitingForRetry: count((s) => s === 'waiting_for_retry'),
    complete: count((s) => s === 'complete'),
    error: count((s) => s === 'error'),
    cancelled: count((s) => s === 'cancelled'),
    resolvedManually: count((s) => s === 'resolved_manually'),
    ready: steps.filter((step) => step.ready).length,
  };
  const context = evaluateExecutionContext(counts);
  const view = taskView({
    ...snapshot,
    total_steps: counts.total,
    pending_steps: counts.pending,
    in_progress_steps: counts.enqueued + counts.inProgress + counts.awaitingOrchestration,
    completed_steps: counts.complete + counts.resolvedManually,
    failed_steps: counts.error,
    ready_steps: counts.ready,
    execution_status: context.executionStatus,
    recommended_action: context.recommendedAction,
    completion_percentage: context.completionPercentage,
    health_status: context.healthStatus,
    steps: steps.slice(0, CREATION_ANSWER_MAX_STEPS),
  });
  return steps.length > CREATION_ANSWER_MAX_STEPS
    ? { ...view, steps_omitted: steps.length - CREATION_ANSWER_MAX_STEPS }
    : view;
}
