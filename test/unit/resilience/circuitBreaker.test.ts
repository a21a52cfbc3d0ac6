import { describe, expect, it } from 'vitest';
import { CircuitError, ConflictError, DatabaseError, ValidationError } from '../../../src/domain/errors.ts';
import {
  CircuitBreaker,
  connectionFailureOutcome,
  errorLabel,
} from '../../../src/resilience/circuitBreaker.ts';
import type { CircuitBreakerOptions, CircuitTransition } from '../../../src/resilience/circuitBreaker.ts';

/** A clock the test moves by hand. */
class ManualClock {
  ms = Date.UTC(2025, 0, 1);
  readonly now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

const refused = (): Error =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const uniqueViolation = (): Error =>
  Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
const lostRace = (): Error => new ConflictError('TASKER_DUPLICATE_TASK', 'another processor got there first');

function makeBreaker(overrides: Partial<CircuitBreakerOptions> = {}) {
  const clock = new ManualClock();
  const transitions: CircuitTransition[] = [];
  const breaker = new CircuitBreaker({
    name: 'database',
    errorThreshold: 3,
    timeoutSeconds: 10,
    halfOpenTimeoutSeconds: 5,
    now: clock.now,
    onTransition: (t) => transitions.push(t),
    ...overrides,
  });
  const fail = (error: () => Error = refused) =>
    breaker
      .execute(() => Promise.reject(error()))
      .then(
        () => 'resolved',
        (caught: unknown) => caught,
      );
  const succeed = () => breaker.execute(() => Promise.resolve('ok'));
  return { breaker, clock, transitions, fail, succeed };
}

/** Opens the breaker with `threshold` connection failures. */
async function trip(kit: ReturnType<typeof makeBreaker>): Promise<void> {
  for (let i = 0; i < kit.breaker.errorThreshold; i++) await kit.fail();
  expect(kit.breaker.state).toBe('open');
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold, and a success resets the count of consecutive failures', async () => {
    const kit = makeBreaker();
    await kit.fail();
    await kit.fail();
    expect(kit.breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    expect(await kit.succeed()).toBe('ok');
    expect(kit.breaker.snapshot().consecutiveFailures).toBe(0);
    await kit.fail();
    await kit.fail();
    expect(kit.breaker.state).toBe('closed');
    expect(kit.transitions).toEqual([]);
  });

  it('opens at error_threshold consecutive connection failures and then refuses calls without running them', async () => {
    const kit = makeBreaker();
    const thrown = await kit.fail();
    // The call's own error goes back to the caller unchanged.
    expect(thrown).toMatchObject({ code: 'ECONNREFUSED' });
    await kit.fail();
    await kit.fail();
    expect(kit.breaker.state).toBe('open');
    expect(kit.transitions).toMatchObject([
      {
        breaker: 'database',
        from: 'closed',
        to: 'open',
        reason: 'error_threshold_reached',
        consecutiveFailures: 3,
      },
    ]);
    expect(kit.transitions[0]?.retryAfterSeconds).toBe(10);

    let ran = false;
    const refusal = await kit.breaker
      .execute(() => {
        ran = true;
        return Promise.resolve('ran');
      })
      .catch((error: unknown) => error);
    expect(ran).toBe(false);
    expect(refusal).toBeInstanceOf(CircuitError);
    expect(refusal).toMatchObject({
      code: 'TASKER_CIRCUIT_OPEN',
      breaker: 'database',
      retryAfterSeconds: 10,
      details: {
        breaker: 'database',
        retry_after_seconds: 10,
        consecutive_failures: 3,
        last_error: 'ECONNREFUSED',
      },
    });
    expect((refusal as Error).message).toContain('database is unavailable');
    expect(kit.breaker.snapshot().rejectedCalls).toBe(1);
  });

  it('counts down Retry-After in whole seconds, never below 1', async () => {
    const kit = makeBreaker();
    await trip(kit);
    kit.clock.advance(0.2);
    expect(kit.breaker.retryAfterSeconds()).toBe(10);
    kit.clock.advance(4);
    expect(kit.breaker.retryAfterSeconds()).toBe(6);
    kit.clock.advance(5.7);
    expect(kit.breaker.retryAfterSeconds()).toBe(1);
    const refusal = (await kit.succeed().catch((error: unknown) => error)) as CircuitError;
    expect(refusal.retryAfterSeconds).toBe(1);
  });

  it('goes half-open after timeout_seconds; a successful trial closes it', async () => {
    const kit = makeBreaker();
    await trip(kit);
    kit.clock.advance(9.999);
    expect(kit.breaker.state).toBe('open');
    kit.clock.advance(0.001);
    expect(kit.breaker.state).toBe('half_open');
    const snapshot = kit.breaker.snapshot();
    expect(snapshot).toMatchObject({ state: 'half_open', retryAfterSeconds: null, openedAt: null });
    expect(snapshot.trialEndsAt?.getTime()).toBe(kit.clock.ms + 5000);
    expect(await kit.succeed()).toBe('ok');
    expect(kit.breaker.snapshot()).toMatchObject({
      state: 'closed',
      consecutiveFailures: 0,
      transitions: { open: 1, half_open: 1, closed: 1 },
    });
    expect(kit.transitions.map((t) => [t.from, t.to, t.reason])).toEqual([
      ['closed', 'open', 'error_threshold_reached'],
      ['open', 'half_open', 'open_timeout_elapsed'],
      ['half_open', 'closed', 'trial_succeeded'],
    ]);
    // Closed again: it takes the whole threshold to open it once more.
    await kit.fail();
    await kit.fail();
    expect(kit.breaker.state).toBe('closed');
  });

  it('a failed trial opens it again for another timeout_seconds', async () => {
    const kit = makeBreaker();
    await trip(kit);
    kit.clock.advance(10);
    expect(await kit.fail()).toMatchObject({ code: 'ECONNREFUSED' });
    expect(kit.breaker.state).toBe('open');
    expect(kit.transitions.at(-1)).toMatchObject({ from: 'half_open', to: 'open', reason: 'trial_failed' });
    expect(kit.breaker.retryAfterSeconds()).toBe(10);
    expect(kit.breaker.snapshot().consecutiveFailures).toBe(4);
  });

  it('opens again when half_open_timeout_seconds pass without a successful trial', async () => {
    const kit = makeBreaker();
    await trip(kit);
    kit.clock.advance(10 + 5);
    expect(kit.breaker.state).toBe('open');
    expect(kit.transitions.at(-1)).toMatchObject({
      from: 'half_open',
      to: 'open',
      reason: 'trial_window_ended',
    });
    // Open from the end of the trial window: half-open again 10 s after it.
    expect(kit.breaker.retryAfterSeconds()).toBe(10);
    kit.clock.advance(10);
    expect(kit.breaker.state).toBe('half_open');
  });

  it('a breaker left alone for many cycles lands in the right phase without replaying each one', async () => {
    const kit = makeBreaker();
    await trip(kit);
    // Cycles of 15 s (10 open + 5 half-open) start at the first open: 1000 cycles and 12 s later is 2 s into
    // a trial window.
    kit.clock.advance(1000 * 15 + 12);
    expect(kit.breaker.state).toBe('half_open');
    expect(kit.breaker.snapshot().trialEndsAt?.getTime()).toBe(kit.clock.ms + 3000);
    expect(kit.transitions.length).toBeLessThan(6);
    expect(await kit.succeed()).toBe('ok');
    expect(kit.breaker.state).toBe('closed');
  });

  it('a constraint violation is the server answering: not a failure, and it closes a half-open breaker', async () => {
    const kit = makeBreaker();
    for (let i = 0; i < 10; i++) expect(await kit.fail(uniqueViolation)).toMatchObject({ code: '23505' });
    expect(kit.breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    await kit.fail();
    await kit.fail();
    await kit.fail(uniqueViolation);
    await kit.fail();
    expect(kit.breaker.state).toBe('closed');

    await trip(kit);
    kit.clock.advance(10);
    await kit.fail(uniqueViolation);
    expect(kit.breaker.state).toBe('closed');
  });

  it('a lost race or any other error without a SQLSTATE changes nothing', async () => {
    const kit = makeBreaker();
    await kit.fail();
    await kit.fail();
    for (let i = 0; i < 5; i++) expect(await kit.fail(lostRace)).toBeInstanceOf(ConflictError);
    await kit.fail(() => new Error('timeout exceeded when trying to connect'));
    expect(kit.breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    await kit.fail();
    expect(kit.breaker.state).toBe('open');
    kit.clock.advance(10);
    await kit.fail(lostRace);
    expect(kit.breaker.state).toBe('half_open');
  });

  it('counts wrapped connection failures (TASKER_DATABASE_UNAVAILABLE) and reports their code, not their message', async () => {
    const kit = makeBreaker();
    const wrapped = () =>
      new DatabaseError(
        'TASKER_DATABASE_UNAVAILABLE',
        'cannot reach the database at postgres://root:***@db/x',
        {
          cause: refused(),
        },
      );
    await trip({ ...kit, fail: () => kit.fail(wrapped) });
    expect(kit.breaker.snapshot().lastError).toBe('TASKER_DATABASE_UNAVAILABLE (ECONNREFUSED)');
    expect(kit.transitions[0]?.lastError).toBe('TASKER_DATABASE_UNAVAILABLE (ECONNREFUSED)');
  });

  it('ignores the outcome of a call admitted before the breaker changed state', async () => {
    const kit = makeBreaker();
    let finishSlow: (value: string) => void = () => undefined;
    let failSlow: (error: Error) => void = () => undefined;
    // Two calls start while closed and finish after the breaker opened and went half-open.
    const slowSuccess = kit.breaker.execute(
      () =>
        new Promise<string>((resolve) => {
          finishSlow = resolve;
        }),
    );
    const slowFailure = kit.breaker
      .execute(
        () =>
          new Promise<string>((_resolve, reject) => {
            failSlow = reject;
          }),
      )
      .catch((error: unknown) => error);
    await trip(kit);
    kit.clock.advance(10);
    expect(kit.breaker.state).toBe('half_open');
    failSlow(refused());
    await slowFailure;
    expect(kit.breaker.state).toBe('half_open');
    finishSlow('late');
    expect(await slowSuccess).toBe('late');
    expect(kit.breaker.state).toBe('half_open');
  });

  it('calls in flight together when a failure is counted count once: one event, not error_threshold of them', async () => {
    const kit = makeBreaker();
    // Ten statements running when every backend is terminated at once all fail together.
    const rejects: ((error: Error) => void)[] = [];
    const inFlight = Array.from({ length: 10 }, () =>
      kit.breaker
        .execute(
          () =>
            new Promise<string>((_resolve, reject) => {
              rejects.push(reject);
            }),
        )
        .catch((error: unknown) => error),
    );
    for (const reject of rejects) reject(refused());
    for (const outcome of await Promise.all(inFlight))
      expect(outcome).toMatchObject({ code: 'ECONNREFUSED' });
    expect(kit.breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    // The next connection works: the blip is over.
    expect(await kit.succeed()).toBe('ok');
    expect(kit.breaker.snapshot().consecutiveFailures).toBe(0);
    // A database that stays down fails the retries, each admitted after the last counted failure.
    await kit.fail();
    await kit.fail();
    expect(kit.breaker.state).toBe('closed');
    await kit.fail();
    expect(kit.breaker.state).toBe('open');
  });

  it('disabled: counts failures but never opens', async () => {
    const kit = makeBreaker({ enabled: false });
    for (let i = 0; i < 20; i++) await kit.fail();
    expect(kit.breaker.snapshot()).toMatchObject({
      enabled: false,
      state: 'closed',
      consecutiveFailures: 20,
      rejectedCalls: 0,
    });
    expect(await kit.succeed()).toBe('ok');
    expect(kit.transitions).toEqual([]);
  });

  it('keeps the last ten transitions, oldest first', async () => {
    const kit = makeBreaker({ errorThreshold: 1 });
    await kit.fail();
    for (let i = 0; i < 6; i++) {
      kit.clock.advance(10);
      await kit.fail();
    }
    const recent = kit.breaker.snapshot().recentTransitions;
    expect(recent).toHaveLength(10);
    expect(recent.at(-1)).toMatchObject({ from: 'half_open', to: 'open', reason: 'trial_failed' });
    expect(kit.breaker.snapshot().transitions).toEqual({ closed: 0, open: 7, half_open: 6 });
  });

  it.each([
    [{ errorThreshold: 0 }, 'errorThreshold must be a whole number of 1 or more, got 0'],
    [{ errorThreshold: 2.5 }, 'errorThreshold must be a whole number of 1 or more, got 2.5'],
    [{ timeoutSeconds: 0 }, 'timeoutSeconds must be a number of seconds above 0, got 0'],
    [
      { halfOpenTimeoutSeconds: Number.NaN },
      'halfOpenTimeoutSeconds must be a number of seconds above 0, got NaN',
    ],
    [{ name: 'Data Base' }, 'name must be 1-64 lowercase letters'],
  ])('refuses bad settings %o with a clear message', (overrides, message) => {
    let caught: unknown;
    try {
      makeBreaker(overrides);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({ code: 'TASKER_INVALID_ARGUMENT' });
    expect((caught as Error).message).toContain(message);
  });
});

describe('connectionFailureOutcome', () => {
  it.each([
    ['ECONNREFUSED', refused(), 'failure'],
    [
      'admin shutdown 57P01',
      Object.assign(new Error('terminating connection'), { code: '57P01' }),
      'failure',
    ],
    ['connection exception 08006', Object.assign(new Error('x'), { code: '08006' }), 'failure'],
    ['pg connection lost without a code', new Error('Connection terminated unexpectedly'), 'failure'],
    [
      'an open breaker downstream',
      new CircuitError('open', { breaker: 'database', retryAfterSeconds: 3 }),
      'failure',
    ],
    ['unique violation 23505', uniqueViolation(), 'success'],
    ['serialization failure 40001', Object.assign(new Error('x'), { code: '40001' }), 'success'],
    ['a lost race', lostRace(), 'neutral'],
    ['pool exhausted', new Error('timeout exceeded when trying to connect'), 'neutral'],
    ['not an Error', 'boom', 'neutral'],
  ])('%s → %s', (_name, error, outcome) => {
    expect(connectionFailureOutcome(error)).toBe(outcome);
  });

  it('errorLabel gives codes or class names, never messages', () => {
    expect(errorLabel(refused())).toBe('ECONNREFUSED');
    expect(errorLabel(new Error('password=hunter2'))).toBe('Error');
    expect(errorLabel(new TypeError('x'))).toBe('TypeError');
    expect(errorLabel('text')).toBe('string');
  });
});
