/**
 * `isRetryEligible`, the one retry rule kept in TypeScript. The backoff delay and the retry decision run only
 * in SQL: test/integration/engine/backoffRule.test.ts tests them there, and checks `isRetryEligible` against
 * the readiness SQL's `retry_eligible`.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import { BACKOFF_STRATEGIES, isRetryEligible } from '../../../src/domain/retry/backoff.ts';
import { BACKOFF_STRATEGIES as TEMPLATE_BACKOFF_STRATEGIES } from '../../../src/domain/template/taskTemplate.ts';

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

describe('isRetryEligible (readiness retry_eligible)', () => {
  it.each([
    // retryable, attempts, maxAttempts -> eligible
    // The first run is always allowed: attempts 0 means the step has not run yet.
    [true, 0, 3, true],
    [false, 0, 3, true],
    [false, 0, 0, true],
    [true, 0, 0, true],
    // After that, only a retryable step with attempts left.
    [true, 1, 3, true],
    [true, 2, 3, true],
    [true, 3, 3, false],
    [true, 4, 3, false],
    [true, 1, 1, false],
    [false, 1, 3, false],
    [false, 2, 5, false],
  ] as const)(
    'retryable=%s attempts=%i maxAttempts=%i -> %s',
    (retryable, attempts, maxAttempts, eligible) => {
      expect(isRetryEligible({ retryable, attempts, maxAttempts })).toBe(eligible);
    },
  );

  it('a step whose last failure was permanent is not eligible, whatever attempts are left', () => {
    const step = { retryable: true, attempts: 1, maxAttempts: 3 };
    expect(isRetryEligible({ ...step, lastErrorRetryable: false })).toBe(false);
    expect(isRetryEligible({ ...step, lastErrorRetryable: true })).toBe(true);
    expect(isRetryEligible({ ...step, lastErrorRetryable: null })).toBe(true);
    // Reset by an operator: attempts 0 and the error cleared; a never-run step is always eligible.
    expect(isRetryEligible({ ...step, attempts: 0, lastErrorRetryable: false })).toBe(true);
  });

  it('max_attempts counts every run: maxAttempts 3 lets an always-failing step run exactly 3 times', () => {
    let attempts = 0;
    while (isRetryEligible({ retryable: true, attempts, maxAttempts: 3 })) {
      attempts += 1; // the worker's claim; the run then fails
      expect(attempts).toBeLessThan(10);
    }
    expect(attempts).toBe(3);
  });

  it('a step that is not retryable runs once', () => {
    let attempts = 0;
    while (isRetryEligible({ retryable: false, attempts, maxAttempts: 5 })) {
      attempts += 1;
      expect(attempts).toBeLessThan(10);
    }
    expect(attempts).toBe(1);
  });

  it.each([
    [{ attempts: -1, maxAttempts: 3 }, 'attempts must be a non-negative integer, got -1'],
    [{ attempts: 1.5, maxAttempts: 3 }, 'attempts must be a non-negative integer, got 1.5'],
    [{ attempts: 1, maxAttempts: 2.5 }, 'maxAttempts must be a non-negative integer, got 2.5'],
    [{ attempts: 1, maxAttempts: Number.NaN }, 'maxAttempts must be a non-negative integer, got NaN'],
    [{ attempts: 0, maxAttempts: -1 }, 'maxAttempts must be a non-negative integer, got -1'],
  ])('rejects %j', (counts, message) => {
    expectInvalidArgument(() => isRetryEligible({ retryable: true, ...counts }), message);
  });
});

describe('backoff strategies', () => {
  it('are the template schema list itself, not a copy of it', () => {
    expect(BACKOFF_STRATEGIES).toBe(TEMPLATE_BACKOFF_STRATEGIES);
    expect([...BACKOFF_STRATEGIES]).toEqual(['exponential', 'linear', 'fixed']);
  });
});
