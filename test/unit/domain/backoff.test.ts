import { describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import {
  BACKOFF_JITTER_FRACTION,
  backoffDelayMs,
  isRetryEligible,
  retryDecision,
} from '../../../src/domain/retry/backoff.ts';
import type { BackoffInput, BackoffStrategy } from '../../../src/domain/retry/backoff.ts';

/** random() = 0.5: every delay is multiplied by exactly 0.95. */
const halfJitter = (): number => 0.5;

function expectInvalidArgument(run: () => unknown, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ValidationError);
  expect(caught).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
  expect((caught as Error).message).toContain(messagePart);
}

describe('retryDecision', () => {
  it.each([
    // retryable, attempts, maxAttempts, errorRetryable -> decision
    [true, 1, 3, true, { retry: true }],
    [true, 2, 3, true, { retry: true }],
    [true, 3, 3, true, { retry: false, reason: 'attempts_exhausted' }],
    [true, 4, 3, true, { retry: false, reason: 'attempts_exhausted' }],
    [true, 1, 1, true, { retry: false, reason: 'attempts_exhausted' }],
    [true, 1, 3, false, { retry: false, reason: 'permanent_error' }],
    [false, 1, 3, false, { retry: false, reason: 'permanent_error' }],
    [false, 1, 3, true, { retry: false, reason: 'step_not_retryable' }],
    // The first run is always allowed: attempts 0 means the step has not run yet.
    [false, 0, 0, true, { retry: true }],
    [true, 0, 0, true, { retry: true }],
    [true, 0, 3, false, { retry: false, reason: 'permanent_error' }],
  ] as const)(
    'retryable=%s attempts=%i maxAttempts=%i errorRetryable=%s -> %j',
    (retryable, attempts, maxAttempts, errorRetryable, expected) => {
      expect(retryDecision({ retryable, attempts, maxAttempts, errorRetryable })).toEqual(expected);
    },
  );

  it('max_attempts counts every run: maxAttempts 3 means 3 runs of an always-failing step', () => {
    let runs = 0;
    let attempts = 0;
    for (;;) {
      attempts += 1; // the worker's claim
      runs += 1;
      if (!retryDecision({ retryable: true, attempts, maxAttempts: 3, errorRetryable: true }).retry) {
        break;
      }
      expect(runs).toBeLessThan(10);
    }
    expect(runs).toBe(3);
  });

  it('rejects negative or fractional counts', () => {
    expectInvalidArgument(
      () => retryDecision({ retryable: true, attempts: -1, maxAttempts: 3, errorRetryable: true }),
      'attempts must be a non-negative integer',
    );
    expectInvalidArgument(
      () => retryDecision({ retryable: true, attempts: 1, maxAttempts: 2.5, errorRetryable: true }),
      'maxAttempts must be a non-negative integer',
    );
  });
});

describe('isRetryEligible (readiness retry_eligible)', () => {
  it.each([
    [true, 0, 3, true],
    [false, 0, 0, true],
    [true, 2, 3, true],
    [true, 3, 3, false],
    [false, 1, 3, false],
  ] as const)(
    'retryable=%s attempts=%i maxAttempts=%i -> %s',
    (retryable, attempts, maxAttempts, eligible) => {
      expect(isRetryEligible({ retryable, attempts, maxAttempts })).toBe(eligible);
    },
  );
});

describe('backoffDelayMs', () => {
  function delay(strategy: BackoffStrategy, attempt: number, extra: Partial<BackoffInput> = {}): number {
    return backoffDelayMs({ strategy, baseMs: 1000, maxMs: 30_000, attempt, random: halfJitter, ...extra });
  }

  it.each([
    // d = 1000 * 2^(attempt-1), capped at 30 000, times 0.95
    [1, 950],
    [2, 1900],
    [3, 3800],
    [4, 7600],
    [5, 15_200],
    [6, 28_500], // 32 000 capped to 30 000
    [40, 28_500],
    [5000, 28_500], // 2^4999 overflows to Infinity; the cap still holds
  ])('exponential: attempt %i -> %i ms', (attempt, expected) => {
    expect(delay('exponential', attempt)).toBe(expected);
  });

  it.each([
    // d = 1000 * attempt, capped at 30 000, times 0.95
    [1, 950],
    [2, 1900],
    [3, 2850],
    [10, 9500],
    [31, 28_500],
  ])('linear: attempt %i -> %i ms', (attempt, expected) => {
    expect(delay('linear', attempt)).toBe(expected);
  });

  it.each([1, 2, 7, 100])('fixed: attempt %i -> the base delay (times 0.95)', (attempt) => {
    expect(delay('fixed', attempt)).toBe(950);
  });

  it('fixed is capped too', () => {
    expect(
      backoffDelayMs({ strategy: 'fixed', baseMs: 5000, maxMs: 2000, attempt: 1, random: halfJitter }),
    ).toBe(1900);
  });

  it('jitter: factor 0.9 + random() * 0.1, floored, applied after the cap (as the SQL does)', () => {
    expect(BACKOFF_JITTER_FRACTION).toBe(0.1);
    expect(delay('exponential', 2, { random: () => 0 })).toBe(1800);
    expect(delay('exponential', 3, { random: () => 0.25 })).toBe(3700);
    expect(delay('linear', 3, { random: () => 0.999_999 })).toBe(2999);
    expect(delay('exponential', 20, { random: () => 0 })).toBe(27_000);
    expect(delay('exponential', 20, { random: () => 0.75 })).toBe(29_250);
  });

  it('stays within [0.9 d, d] for any random value, including Math.random by default', () => {
    const samples = [0, 0.1, 0.33, 0.5, 0.77, 0.9, 0.999_999_9];
    for (const r of samples) {
      const value = delay('exponential', 4, { random: () => r });
      expect(value).toBeGreaterThanOrEqual(7200);
      expect(value).toBeLessThanOrEqual(8000);
    }
    for (let i = 0; i < 200; i += 1) {
      const value = backoffDelayMs({ strategy: 'linear', baseMs: 1000, maxMs: 60_000, attempt: 2 });
      expect(Number.isInteger(value)).toBe(true);
      expect(value).toBeGreaterThanOrEqual(1800);
      expect(value).toBeLessThanOrEqual(2000);
    }
  });

  it('a retry-after hint wins over the computed delay, without jitter', () => {
    const random = vi.fn(() => 0.5);
    expect(delay('exponential', 1, { retryAfterMs: 5000, random })).toBe(5000);
    expect(delay('exponential', 4, { retryAfterMs: 100, random })).toBe(100);
    expect(delay('fixed', 1, { retryAfterMs: 0, random })).toBe(0);
    expect(random).not.toHaveBeenCalled();
  });

  it('a retry-after hint is capped at maxMs and rounded up to whole milliseconds', () => {
    expect(delay('exponential', 1, { retryAfterMs: 120_000 })).toBe(30_000);
    expect(delay('exponential', 1, { retryAfterMs: 1500.2 })).toBe(1501);
  });

  it('returns 0 for a zero base or a zero cap', () => {
    expect(delay('exponential', 3, { baseMs: 0 })).toBe(0);
    expect(delay('linear', 3, { maxMs: 0 })).toBe(0);
  });

  it.each([
    [{ attempt: 0 }, 'attempt must be an integer >= 1'],
    [{ attempt: 1.5 }, 'attempt must be an integer >= 1'],
    [{ baseMs: -1 }, 'baseMs must be a finite number'],
    [{ maxMs: Number.NaN }, 'maxMs must be a finite number'],
    [{ maxMs: Number.POSITIVE_INFINITY }, 'maxMs must be a finite number'],
    [{ retryAfterMs: -5 }, 'retryAfterMs must be a finite number'],
    [{ random: (): number => 1 }, 'random() must return a number in [0, 1)'],
    [{ random: (): number => -0.1 }, 'random() must return a number in [0, 1)'],
    [
      { strategy: 'fibonacci' as BackoffStrategy },
      'backoff strategy must be one of exponential, linear, fixed',
    ],
  ] as const)('rejects %j', (override, message) => {
    expectInvalidArgument(() => delay('exponential', 2, override), message);
  });
});
