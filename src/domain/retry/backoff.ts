/**
 * Retry eligibility (reference §3.1, DESIGN §3 "Retries"): may a step run (again)?
 *
 * The retry rules that run live in SQL, in one place each: the readiness SQL
 * `tasker.get_step_readiness_status` computes `retry_eligible`, the step-result SQL decides between retry
 * and `error`, and `tasker.backoff_delay_ms` computes the delay before a retry (its contract is tested in
 * test/integration/engine/backoffRule.test.ts). `isRetryEligible` is the one rule TypeScript needs too,
 * for the task view answered at creation without a round trip to the readiness SQL; the test
 * test/integration/engine/backoffRule.test.ts checks it against `retry_eligible` over a grid of inputs.
 */
import { ValidationError } from '../errors.ts';

/**
 * The backoff strategies a template may name. The template's list is the one source; it is re-exported here
 * for code about retries. The SQL domain `tasker.backoff_strategy` is checked against it by
 * test/integration/valueDomains.test.ts.
 */
export { BACKOFF_STRATEGIES } from '../template/taskTemplate.ts';

export interface RetryEligibilityInput {
  /** The step's `retryable` flag (from its template's `retry` block). */
  readonly retryable: boolean;
  /** Runs started so far, the current one included (incremented when a worker claims the step). */
  readonly attempts: number;
  /** Runs allowed in total, the first one included. */
  readonly maxAttempts: number;
  /**
   * `retryable` of the step's last error: false when the handler failed it permanently (a PermanentError),
   * which ends the step whatever attempts are left. Absent or null when the error does not say, or there is none.
   */
  readonly lastErrorRetryable?: boolean | null | undefined;
}

function assertCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${name} must be a non-negative integer, got ${String(value)}`,
      {
        details: { [name]: value },
      },
    );
  }
}

/**
 * May the step run (again)? The first run is always allowed, even with `maxAttempts` 0 or `retryable`
 * false; after that only a retryable step with attempts left whose last failure was not permanent. Equal to
 * `retry_eligible` of `tasker.get_step_readiness_status`: `attempts = 0 OR (retryable AND attempts <
 * max_attempts AND coalesce(last_error.retryable, true))`.
 */
export function isRetryEligible(input: RetryEligibilityInput): boolean {
  assertCount('attempts', input.attempts);
  assertCount('maxAttempts', input.maxAttempts);
  return (
    input.attempts === 0 ||
    (input.retryable && input.attempts < input.maxAttempts && input.lastErrorRetryable !== false)
  );
}
