/**
 * The retry rules as the database runs them: `tasker.backoff_delay_ms` (the delay the step-result SQL waits
 * before a retry) and `retry_eligible` of `tasker.get_step_readiness_status`, which the TypeScript
 * `isRetryEligible` must equal (the task view answered at creation uses it instead of the readiness SQL).
 */
import { describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { BACKOFF_STRATEGIES, isRetryEligible } from '../../../src/domain/retry/backoff.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const INVALID_PARAMETER_VALUE = '22023';
const CHECK_VIOLATION = '23514';

/** Enough draws that each tenth of the jitter band is hit with certainty for practical purposes (0.9^500). */
const SAMPLES = 500;

interface Backoff {
  strategy: string;
  baseMs: number;
  maxMs: number;
  attempt: number;
  retryAfterMs?: number;
}

const getTestDb = useTestDatabase();

/** `SAMPLES` calls of the function in one statement: it is volatile, so random() is drawn for every row. */
async function delays(db: Database, input: Backoff): Promise<number[]> {
  const { rows } = await db.query<{ ms: number }>(
    'SELECT tasker.backoff_delay_ms($1, $2, $3, $4, $5) AS ms FROM generate_series(1, $6)',
    [input.strategy, input.baseMs, input.maxMs, input.attempt, input.retryAfterMs ?? null, SAMPLES],
  );
  return rows.map((row) => row.ms);
}

/**
 * Every sample lies in [floor(0.9 d), d] and is a whole number, and the samples cover the band (one in its
 * lowest tenth, one in its highest): the jitter multiplies by 0.9 + random() * 0.1, after the cap.
 */
function expectJitteredAround(samples: readonly number[], d: number): void {
  expect(samples).toHaveLength(SAMPLES);
  const low = Math.floor(0.9 * d);
  for (const ms of samples) {
    expect(Number.isInteger(ms), `${ms} is whole milliseconds`).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(low);
    expect(ms).toBeLessThanOrEqual(d);
  }
  const tenth = (d - low) / 10;
  expect(Math.min(...samples)).toBeLessThanOrEqual(low + tenth);
  expect(Math.max(...samples)).toBeGreaterThanOrEqual(d - tenth);
}

describe('tasker.backoff_delay_ms', () => {
  const base = { baseMs: 1000, maxMs: 30_000 };

  it.each([
    // d = 1000 * 2^(attempt-1), capped at 30 000
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [5, 16_000],
    [6, 30_000], // 32 000, capped
    [40, 30_000],
    [5000, 30_000], // the exponent is bounded, the cap still holds
  ])('exponential: attempt %i -> d = %i ms', async (attempt, d) => {
    expectJitteredAround(await delays(getTestDb().db, { strategy: 'exponential', ...base, attempt }), d);
  });

  it.each([
    // d = 1000 * attempt, capped at 30 000
    [1, 1000],
    [2, 2000],
    [3, 3000],
    [10, 10_000],
    [31, 30_000],
  ])('linear: attempt %i -> d = %i ms', async (attempt, d) => {
    expectJitteredAround(await delays(getTestDb().db, { strategy: 'linear', ...base, attempt }), d);
  });

  it.each([1, 2, 7, 100])('fixed: attempt %i -> d = the base delay', async (attempt) => {
    expectJitteredAround(await delays(getTestDb().db, { strategy: 'fixed', ...base, attempt }), 1000);
  });

  it.each(BACKOFF_STRATEGIES)(
    '%s is capped at maxMs, and retries at the cap still spread out',
    async (strategy) => {
      const samples = await delays(getTestDb().db, { strategy, baseMs: 5000, maxMs: 2000, attempt: 3 });
      expectJitteredAround(samples, 2000);
      expect(new Set(samples).size).toBeGreaterThan(1);
    },
  );

  it.each([
    ['exponential', 0],
    ['exponential', -3],
    ['linear', 0],
    ['linear', -3],
    ['fixed', 0],
  ])('%s: attempt %i counts as attempt 1 (d = the base delay)', async (strategy, attempt) => {
    expectJitteredAround(await delays(getTestDb().db, { strategy, ...base, attempt }), 1000);
  });

  it('returns 0 for a zero base or a zero cap', async () => {
    const { db } = getTestDb();
    expect(
      new Set(await delays(db, { strategy: 'exponential', baseMs: 0, maxMs: 30_000, attempt: 3 })),
    ).toEqual(new Set([0]));
    expect(new Set(await delays(db, { strategy: 'linear', baseMs: 1000, maxMs: 0, attempt: 3 }))).toEqual(
      new Set([0]),
    );
  });

  it.each([
    // strategy, attempt, hint -> exact delay: the hint wins over the computed delay and is not jittered
    ['exponential', 1, 5000, 5000],
    ['exponential', 4, 100, 100],
    ['linear', 3, 2500, 2500],
    ['fixed', 1, 0, 0],
    // ... but it is capped at maxMs
    ['exponential', 1, 120_000, 30_000],
    ['fixed', 1, 30_001, 30_000],
  ])(
    '%s attempt %i with a retry-after hint of %i ms -> exactly %i ms',
    async (strategy, attempt, hint, ms) => {
      const samples = await delays(getTestDb().db, { strategy, ...base, attempt, retryAfterMs: hint });
      expect(new Set(samples)).toEqual(new Set([ms]));
    },
  );

  it('ignores a negative retry-after hint: the computed delay applies', async () => {
    const samples = await delays(getTestDb().db, {
      strategy: 'linear',
      ...base,
      attempt: 2,
      retryAfterMs: -5,
    });
    expectJitteredAround(samples, 2000);
  });

  it.each([
    ['bogus', undefined],
    ['Linear', undefined],
    // An unknown strategy is a broken caller even when a hint would have decided the delay.
    ['bogus', 5000],
  ])(
    'refuses the unknown strategy %j (hint %s) with invalid_parameter_value, naming it and the allowed ones',
    async (strategy, retryAfterMs) => {
      const call = getTestDb().db.query('SELECT tasker.backoff_delay_ms($1, 1000, 30000, 2, $2)', [
        strategy,
        retryAfterMs ?? null,
      ]);
      const error: unknown = await call.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, 'the call must fail').toBeInstanceOf(Error);
      expect(error).toMatchObject({ code: INVALID_PARAMETER_VALUE });
      const message = (error as Error).message;
      expect(message).toContain(strategy);
      for (const known of BACKOFF_STRATEGIES) {
        expect(message).toContain(known);
      }
    },
  );
});

describe('retry eligibility: isRetryEligible equals the readiness SQL', () => {
  it('max_attempts below 1 cannot be stored, so the grid starts at 1', async () => {
    const { db } = getTestDb();
    await expect(db.query('SELECT 0::tasker.step_max_attempts')).rejects.toMatchObject({
      code: CHECK_VIOLATION,
    });
  });

  it('agrees with retry_eligible for every attempts 0..4 x max_attempts 1..4 x retryable x last error', async () => {
    const { db } = getTestDb();
    const template = { ...templateNamed('diamond_pattern'), namespace: 'backoff_rule_eligibility' };
    await registerTemplate(db, template);
    const { taskUuid } = await createTask(db, requestFor(template, { n: 1 }));
    const step = await db.query<{ uuid: string }>(
      'SELECT workflow_step_uuid AS uuid FROM tasker.workflow_steps WHERE task_uuid = $1 ORDER BY name LIMIT 1',
      [taskUuid],
    );
    const stepUuid = step.rows[0]?.uuid;
    if (stepUuid === undefined) throw new Error('the task has no steps');

    const mismatches: string[] = [];
    const answers = new Set<boolean>();
    let checked = 0;
    // The last error as the step-result SQL stores it: none, a retryable failure, a permanent one (PermanentError).
    const lastErrors = [null, { message: 'x', retryable: true }, { message: 'x', retryable: false }] as const;
    for (const lastError of lastErrors)
      for (const retryable of [true, false]) {
        for (let maxAttempts = 1; maxAttempts <= 4; maxAttempts++) {
          for (let attempts = 0; attempts <= 4; attempts++) {
            await db.query(
              `UPDATE tasker.workflow_steps SET attempts = $2, max_attempts = $3, retryable = $4, last_error = $5
             WHERE workflow_step_uuid = $1`,
              [
                stepUuid,
                attempts,
                maxAttempts,
                retryable,
                lastError === null ? null : JSON.stringify(lastError),
              ],
            );
            const { rows } = await db.query<{
              retry_eligible: boolean;
              attempts: number;
              max_attempts: number;
            }>(
              `SELECT retry_eligible, attempts, max_attempts FROM tasker.get_step_readiness_status($1)
             WHERE workflow_step_uuid = $2`,
              [taskUuid, stepUuid],
            );
            const row = rows[0];
            if (row === undefined) throw new Error('the readiness SQL lost the step');
            // The readiness row must describe the values just written, or the comparison proves nothing.
            expect([row.attempts, row.max_attempts]).toEqual([attempts, maxAttempts]);
            const inTypeScript = isRetryEligible({
              attempts,
              maxAttempts,
              retryable,
              lastErrorRetryable: lastError?.retryable,
            });
            answers.add(row.retry_eligible);
            if (row.retry_eligible !== inTypeScript) {
              mismatches.push(
                `attempts=${attempts} max_attempts=${maxAttempts} retryable=${String(retryable)} ` +
                  `last_error=${JSON.stringify(lastError)}: ` +
                  `SQL ${String(row.retry_eligible)}, isRetryEligible ${String(inTypeScript)}`,
              );
            }
            checked++;
          }
        }
      }
    expect(checked).toBe(5 * 4 * 2 * 3);
    expect(answers, 'the grid reaches both answers').toEqual(new Set([true, false]));
    expect(mismatches).toEqual([]);
  });
});
