import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import { evaluateExecutionContext } from '../../../src/domain/state/executionContext.ts';
import type { StepStateCounts } from '../../../src/domain/state/executionContext.ts';

/** Counts with every state 0 unless given; `total` defaults to the sum of the state counts. */
function counts(partial: Partial<StepStateCounts>): StepStateCounts {
  const byState = {
    pending: 0,
    enqueued: 0,
    inProgress: 0,
    awaitingOrchestration: 0,
    waitingForRetry: 0,
    complete: 0,
    error: 0,
    cancelled: 0,
    resolvedManually: 0,
    ready: 0,
    ...partial,
  };
  const sum =
    byState.pending +
    byState.enqueued +
    byState.inProgress +
    byState.awaitingOrchestration +
    byState.waitingForRetry +
    byState.complete +
    byState.error +
    byState.cancelled +
    byState.resolvedManually;
  return { ...byState, total: partial.total ?? sum };
}

describe('execution context decision order (reference §3.2)', () => {
  it.each([
    // [case, counts, executionStatus, recommendedAction]
    [
      'RCA: a failed step AND ready steps -> blocked, not has_ready_steps',
      counts({ error: 1, pending: 2, ready: 2, complete: 1 }),
      'blocked_by_failures',
      'handle_failures',
    ],
    [
      'a failed step while others still run',
      counts({ error: 1, inProgress: 2, enqueued: 1, awaitingOrchestration: 1 }),
      'blocked_by_failures',
      'handle_failures',
    ],
    [
      'a failed step while others wait for a retry',
      counts({ error: 1, waitingForRetry: 1, ready: 1 }),
      'blocked_by_failures',
      'handle_failures',
    ],
    [
      'one failed step among completed ones',
      counts({ error: 1, complete: 9 }),
      'blocked_by_failures',
      'handle_failures',
    ],
    [
      'ready steps beat steps in progress',
      counts({ pending: 1, ready: 1, inProgress: 3 }),
      'has_ready_steps',
      'execute_ready_steps',
    ],
    [
      'a retry whose backoff is over is ready',
      counts({ waitingForRetry: 1, ready: 1, complete: 1 }),
      'has_ready_steps',
      'execute_ready_steps',
    ],
    ['steps in progress', counts({ inProgress: 1, pending: 2 }), 'processing', 'wait_for_completion'],
    ['steps enqueued', counts({ enqueued: 1, complete: 1 }), 'processing', 'wait_for_completion'],
    [
      'results awaiting orchestration',
      counts({ awaitingOrchestration: 2, complete: 1 }),
      'processing',
      'wait_for_completion',
    ],
    ['every step complete', counts({ complete: 4 }), 'all_complete', 'finalize_task'],
    [
      'complete and resolved manually both count as done',
      counts({ complete: 2, resolvedManually: 1 }),
      'all_complete',
      'finalize_task',
    ],
    [
      'children waiting on unmet dependencies',
      counts({ pending: 2, complete: 1 }),
      'waiting_for_dependencies',
      'wait_for_dependencies',
    ],
    [
      'a step still in its retry backoff',
      counts({ waitingForRetry: 1, complete: 2 }),
      'waiting_for_dependencies',
      'wait_for_dependencies',
    ],
    [
      'cancelled steps are not done',
      counts({ cancelled: 1, complete: 2 }),
      'waiting_for_dependencies',
      'wait_for_dependencies',
    ],
    ['a task without steps', counts({}), 'waiting_for_dependencies', 'wait_for_dependencies'],
  ] as const)('%s', (_name, input, executionStatus, recommendedAction) => {
    expect(evaluateExecutionContext(input)).toMatchObject({ executionStatus, recommendedAction });
  });
});

describe('health status', () => {
  it.each([
    ['blocked when any step failed permanently', counts({ error: 1, pending: 1, ready: 1 }), 'blocked'],
    ['blocked wins over inconsistent counts', counts({ error: 1, total: 7 }), 'blocked'],
    ['recovering while steps wait out a retry', counts({ waitingForRetry: 2, complete: 1 }), 'recovering'],
    ['healthy otherwise', counts({ inProgress: 1, complete: 1 }), 'healthy'],
    ['healthy for a task without steps', counts({}), 'healthy'],
    ['unknown when states do not add up to the total', counts({ complete: 2, total: 3 }), 'unknown'],
    ['unknown when more steps are ready than can be', counts({ inProgress: 1, ready: 1 }), 'unknown'],
  ] as const)('%s', (_name, input, healthStatus) => {
    expect(evaluateExecutionContext(input).healthStatus).toBe(healthStatus);
  });
});

describe('completion percentage', () => {
  it.each([
    [0, 0, 0],
    [0, 5, 0],
    [1, 3, 33.33],
    [2, 3, 66.67],
    [1, 8, 12.5],
    [5, 5, 100],
    [1, 20_000, 0.01], // exactly 0.005: rounds half up like SQL ROUND(x, 2)
    [1, 40_000, 0], // 0.0025
    [3, 40_000, 0.01], // 0.0075
  ])('%i of %i steps done -> %d%', (done, total, percentage) => {
    const input = counts({ complete: done, pending: total - done });
    expect(evaluateExecutionContext(input).completionPercentage).toBe(percentage);
  });

  it('counts resolved_manually as done and error/cancelled as not done', () => {
    const input = counts({ complete: 1, resolvedManually: 1, error: 1, cancelled: 1 });
    expect(evaluateExecutionContext(input).completionPercentage).toBe(50);
  });
});

describe('input checks', () => {
  it.each([
    ['error', -1],
    ['ready', 1.5],
    ['total', Number.NaN],
    ['complete', Number.POSITIVE_INFINITY],
  ] as const)('rejects %s = %d, naming the field', (field, value) => {
    const input = { ...counts({ complete: 1 }), [field]: value };
    let caught: unknown;
    try {
      evaluateExecutionContext(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT', details: { field } });
    expect((caught as Error).message).toContain(`'${field}'`);
  });
});
