/**
 * Retry and backoff rules (reference §5.1, DESIGN §3 "Retries"): whether a failed step runs again, and how
 * long it waits first.
 *
 * KEEP IN SYNC: the SQL function `tasker.apply_step_result` applies step results inside the database and
 * mirrors `retryDecision` and, through `tasker.backoff_delay_ms`, `backoffDelayMs` exactly (same checks,
 * same formula, same rounding).
 * A change to either side must change the other, and the tests of both.
 */
import { ValidationError } from '../errors.ts';

export const BACKOFF_STRATEGIES = ['exponential', 'linear', 'fixed'] as const;
export type BackoffStrategy = (typeof BACKOFF_STRATEGIES)[number];

/** The computed delay is multiplied by a factor in [1 - this, 1): up to 10% shorter, never longer. */
export const BACKOFF_JITTER_FRACTION = 0.1;

export interface RetryEligibilityInput {
  /** The step's `retryable` flag (from its template's `retry` block). */
  readonly retryable: boolean;
  /** Runs started so far, the current one included (incremented when a worker claims the step). */
  readonly attempts: number;
  /** Runs allowed in total, the first one included. */
  readonly maxAttempts: number;
}

export interface RetryDecisionInput extends RetryEligibilityInput {
  /** Whether the failure is worth retrying: false for a handler's PermanentError or a missing handler. */
  readonly errorRetryable: boolean;
}

export type GiveUpReason = 'permanent_error' | 'step_not_retryable' | 'attempts_exhausted';

export type RetryDecision =
  { readonly retry: true } | { readonly retry: false; readonly reason: GiveUpReason };

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
 * false; after that only a retryable step with attempts left. This is the readiness SQL's `retry_eligible`
 * (reference §3.1).
 */
export function isRetryEligible(input: RetryEligibilityInput): boolean {
  assertCount('attempts', input.attempts);
  assertCount('maxAttempts', input.maxAttempts);
  return input.attempts === 0 || (input.retryable && input.attempts < input.maxAttempts);
}

/**
 * After a failure: retry (step -> `waiting_for_retry`) or give up (step -> `error`). A permanent error gives
 * up at once; otherwise the step retries while `isRetryEligible` holds, so `maxAttempts: 3` means one run
 * plus two retries. Checks run in the order of `GiveUpReason` so the reported reason is the first that applies.
 */
export function retryDecision(input: RetryDecisionInput): RetryDecision {
  const eligible = isRetryEligible(input);
  if (!input.errorRetryable) {
    return { retry: false, reason: 'permanent_error' };
  }
  if (eligible) {
    return { retry: true };
  }
  return { retry: false, reason: input.retryable ? 'attempts_exhausted' : 'step_not_retryable' };
}

export interface BackoffInput {
  readonly strategy: BackoffStrategy;
  /** Delay of the first retry. */
  readonly baseMs: number;
  /** Upper bound for every delay, Retry-After hints included. */
  readonly maxMs: number;
  /** 1-based number of the attempt that just failed. */
  readonly attempt: number;
  /** A handler's or server's "retry after" hint; wins over the computed delay (still capped, not jittered). */
  readonly retryAfterMs?: number | undefined;
  /**
   * Source of jitter, returning a number in [0, 1): 0 gives the shortest delay (0.9 d), values near 1 the
   * full one. @defaultValue Math.random
   */
  readonly random?: (() => number) | undefined;
}

function assertMs(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${name} must be a finite number of milliseconds >= 0, got ${String(value)}`,
      { details: { [name]: value } },
    );
  }
}

function computedDelayMs(strategy: BackoffStrategy, baseMs: number, attempt: number): number {
  switch (strategy) {
    case 'exponential':
      // Overflows to Infinity for huge attempts, which the cap then turns into maxMs.
      return baseMs * 2 ** (attempt - 1);
    case 'linear':
      return baseMs * attempt;
    case 'fixed':
      return baseMs;
  }
}

/**
 * The delay before the next attempt, in whole milliseconds:
 * - `retryAfterMs` given: `min(ceil(retryAfterMs), maxMs)`, rounded up so we never come back before the
 *   hinted time (unless the cap says so), and not jittered.
 * - otherwise: `floor(min(d, maxMs) * (0.9 + random() * 0.1))` with `d` = `baseMs * 2^(attempt-1)`
 *   (exponential), `baseMs * attempt` (linear) or `baseMs` (fixed). The jitter applies after the cap, so
 *   the result never exceeds `maxMs` and retries that all hit the cap still spread out.
 * Mirrored by SQL `tasker.backoff_delay_ms`, called from `tasker.apply_step_result`, with the same
 * double-precision operations in the same order, so one `random()` value gives the same delay on both
 * sides; keep them in sync.
 */
export function backoffDelayMs(input: BackoffInput): number {
  const { strategy, baseMs, maxMs, attempt, retryAfterMs } = input;
  if (!(BACKOFF_STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `backoff strategy must be one of ${BACKOFF_STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}`,
      { details: { strategy } },
    );
  }
  assertMs('baseMs', baseMs);
  assertMs('maxMs', maxMs);
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `attempt must be an integer >= 1 (the 1-based attempt that just failed), got ${String(attempt)}`,
      { details: { attempt } },
    );
  }
  if (retryAfterMs !== undefined) {
    assertMs('retryAfterMs', retryAfterMs);
    return Math.round(Math.min(Math.ceil(retryAfterMs), maxMs));
  }
  const capped = Math.min(computedDelayMs(strategy, baseMs, attempt), maxMs);
  const random = (input.random ?? Math.random)();
  if (!(random >= 0 && random < 1)) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `random() must return a number in [0, 1), got ${String(random)}`,
      { details: { random } },
    );
  }
  return Math.floor(capped * (1 - BACKOFF_JITTER_FRACTION + random * BACKOFF_JITTER_FRACTION));
}
