import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import {
  allowedEvents,
  allowedTargets,
  isStepState,
  isTerminal,
  STEP_EVENT_TYPES,
  STEP_STATES,
  STEP_TRANSITIONS,
  stepTransitionEdges,
  TERMINAL_STEP_STATES,
  transition,
  transitionOrThrow,
} from '../../../src/domain/state/stepStates.ts';
import type { StepEventType, StepState } from '../../../src/domain/state/stepStates.ts';

type Edge = [StepState, StepEventType, StepState];

const NON_TERMINAL: StepState[] = [
  'pending',
  'enqueued',
  'in_progress',
  'enqueued_for_orchestration',
  'enqueued_as_error_for_orchestration',
  'waiting_for_retry',
];

/** Accepted in every non-terminal state and in error (reference §2.2 plus our operator rule). */
const CANCEL_AND_OPERATOR: Edge[] = [...NON_TERMINAL, 'error' as const].flatMap((from): Edge[] => [
  [from, 'cancel', 'cancelled'],
  [from, 'complete_manually', 'complete'],
  [from, 'resolve_manually', 'resolved_manually'],
]);

/** Written out independently of the implementation, from reference §2.2 (legacy paths included). */
const EXPECTED: Edge[] = [
  ['pending', 'enqueue', 'enqueued'],
  ['pending', 'start', 'in_progress'],
  ['pending', 'fail', 'error'],
  ['pending', 'wait_for_retry', 'waiting_for_retry'],
  ['enqueued', 'start', 'in_progress'],
  ['enqueued', 'fail', 'error'],
  ['enqueued', 'wait_for_retry', 'waiting_for_retry'],
  ['in_progress', 'enqueue_for_orchestration', 'enqueued_for_orchestration'],
  ['in_progress', 'enqueue_as_error_for_orchestration', 'enqueued_as_error_for_orchestration'],
  ['in_progress', 'complete', 'complete'],
  ['in_progress', 'fail', 'error'],
  ['in_progress', 'wait_for_retry', 'waiting_for_retry'],
  ['in_progress', 'lease_expired', 'waiting_for_retry'],
  ['enqueued_for_orchestration', 'complete', 'complete'],
  ['enqueued_for_orchestration', 'fail', 'error'],
  ['enqueued_as_error_for_orchestration', 'wait_for_retry', 'waiting_for_retry'],
  ['enqueued_as_error_for_orchestration', 'fail', 'error'],
  ['enqueued_as_error_for_orchestration', 'complete', 'complete'],
  ['waiting_for_retry', 'retry', 'pending'],
  // Its task was failed by the staleness detector: the retry will not happen.
  ['waiting_for_retry', 'fail', 'error'],
  ['error', 'retry', 'pending'],
  ['error', 'reset_for_retry', 'pending'],
  ...CANCEL_AND_OPERATOR,
];

function expectedTarget(from: StepState, event: StepEventType): StepState | undefined {
  return EXPECTED.find(([f, e]) => f === from && e === event)?.[2];
}

const ALL_PAIRS = STEP_STATES.flatMap((from) => STEP_EVENT_TYPES.map((event) => [from, event] as const));

describe('step states', () => {
  it("has tasker-core's 10 states with their exact names", () => {
    expect(STEP_STATES).toEqual([
      'pending',
      'enqueued',
      'in_progress',
      'enqueued_for_orchestration',
      'enqueued_as_error_for_orchestration',
      'waiting_for_retry',
      'complete',
      'error',
      'cancelled',
      'resolved_manually',
    ]);
  });

  it('calls complete, error, cancelled and resolved_manually terminal, and nothing else', () => {
    expect(STEP_STATES.filter((state) => isTerminal(state))).toEqual([
      'complete',
      'error',
      'cancelled',
      'resolved_manually',
    ]);
    expect([...TERMINAL_STEP_STATES]).toEqual(['complete', 'error', 'cancelled', 'resolved_manually']);
  });

  it('recognises state names from the database', () => {
    expect(isStepState('enqueued_as_error_for_orchestration')).toBe(true);
    expect(isStepState('steps_in_process')).toBe(false);
    expect(isStepState('constructor')).toBe(false);
    expect(isStepState(null)).toBe(false);
  });
});

describe('step transition table', () => {
  it('holds exactly the transitions of reference §2.2 plus lease_expired, operator fixes and staleness (43 edges)', () => {
    const actual = stepTransitionEdges().map(({ from, event, to }) => `${from} --${event}--> ${to}`);
    const expected = EXPECTED.map(([from, event, to]) => `${from} --${event}--> ${to}`);
    expect(actual).toHaveLength(43);
    expect([...actual].sort()).toEqual([...expected].sort());
  });

  it('has a row for every state and is frozen', () => {
    expect(Object.keys(STEP_TRANSITIONS).sort()).toEqual([...STEP_STATES].sort());
    expect(Object.isFrozen(STEP_TRANSITIONS)).toBe(true);
    for (const state of STEP_STATES) {
      expect(Object.isFrozen(STEP_TRANSITIONS[state])).toBe(true);
    }
  });

  it.each(EXPECTED)('allows %s --%s--> %s', (from, event, to) => {
    expect(transition(from, { type: event })).toEqual({ ok: true, to });
    expect(transitionOrThrow(from, { type: event })).toBe(to);
  });

  const forbidden = ALL_PAIRS.filter(([from, event]) => expectedTarget(from, event) === undefined);

  it(`rejects every other (state, event) pair (${forbidden.length} of them) with a reason`, () => {
    expect(forbidden.length).toBe(STEP_STATES.length * STEP_EVENT_TYPES.length - EXPECTED.length);
    for (const [from, event] of forbidden) {
      const result = transition(from, { type: event });
      expect(result.ok, `${from} --${event}-->`).toBe(false);
      if (!result.ok) {
        expect(result.reason).toContain(`'${from}'`);
        expect(result.reason).toContain(`'${event}'`);
      }
    }
  });

  it.each([
    ['pending', 'enqueue_for_orchestration'],
    ['enqueued', 'enqueue'],
    ['enqueued', 'lease_expired'],
    ['in_progress', 'start'],
    ['in_progress', 'retry'],
    ['enqueued_for_orchestration', 'wait_for_retry'],
    ['enqueued_for_orchestration', 'lease_expired'],
    ['waiting_for_retry', 'start'],
    ['waiting_for_retry', 'reset_for_retry'],
    ['error', 'start'],
    ['error', 'fail'],
    ['complete', 'reset_for_retry'],
    ['resolved_manually', 'retry'],
  ] as const)('rejects %s --%s-->', (from, event) => {
    expect(transition(from, { type: event })).toMatchObject({ ok: false });
  });

  it('throws TASKER_INVALID_TRANSITION from transitionOrThrow, naming what is accepted', () => {
    let caught: unknown;
    try {
      transitionOrThrow('waiting_for_retry', { type: 'start' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({
      code: 'TASKER_INVALID_TRANSITION',
      details: { machine: 'step', from: 'waiting_for_retry', event: 'start' },
    });
    expect((caught as Error).message).toBe(
      "step in state 'waiting_for_retry' does not accept event 'start'; " +
        "events accepted in 'waiting_for_retry': fail, retry, cancel, complete_manually, resolve_manually",
    );
  });

  it('rejects an unknown state from untyped code', () => {
    const result = transition('running' as StepState, { type: 'start' });
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) {
      expect(result.reason).toContain("unknown step state 'running'");
    }
  });
});

describe('terminal step states', () => {
  it.each(['complete', 'cancelled', 'resolved_manually'] as const)('%s accepts no event at all', (state) => {
    expect(allowedEvents(state)).toEqual([]);
    expect(allowedTargets(state)).toEqual([]);
    for (const event of STEP_EVENT_TYPES) {
      expect(transition(state, { type: event }).ok).toBe(false);
    }
  });

  it('error accepts only the operator fixes, the guarded retry and cancel', () => {
    expect(allowedEvents('error')).toEqual([
      'retry',
      'reset_for_retry',
      'cancel',
      'complete_manually',
      'resolve_manually',
    ]);
    expect(allowedTargets('error')).toEqual(['pending', 'complete', 'cancelled', 'resolved_manually']);
  });
});

describe('operators can fix steps', () => {
  it.each([...NON_TERMINAL, 'error' as const])(
    '%s can be completed manually, resolved manually and cancelled',
    (state) => {
      expect(transition(state, { type: 'complete_manually', results: { ok: 1 }, resolvedBy: 'ops' })).toEqual(
        {
          ok: true,
          to: 'complete',
        },
      );
      expect(transition(state, { type: 'resolve_manually', reason: 'done by hand' })).toEqual({
        ok: true,
        to: 'resolved_manually',
      });
      expect(transition(state, { type: 'cancel' })).toEqual({ ok: true, to: 'cancelled' });
    },
  );

  it('reset_for_retry is accepted only from error', () => {
    expect(STEP_STATES.filter((state) => transition(state, { type: 'reset_for_retry' }).ok)).toEqual([
      'error',
    ]);
  });

  it('lease_expired is accepted only from in_progress, into waiting_for_retry', () => {
    expect(STEP_STATES.filter((state) => transition(state, { type: 'lease_expired' }).ok)).toEqual([
      'in_progress',
    ]);
    expect(transition('in_progress', { type: 'lease_expired', workerId: 'w-1' })).toEqual({
      ok: true,
      to: 'waiting_for_retry',
    });
  });
});

describe('allowed targets', () => {
  it.each([
    [
      'pending',
      ['enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually'],
    ],
    [
      'in_progress',
      [
        'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration',
        'waiting_for_retry',
        'complete',
        'error',
        'cancelled',
        'resolved_manually',
      ],
    ],
    ['waiting_for_retry', ['pending', 'complete', 'error', 'cancelled', 'resolved_manually']],
    ['enqueued_for_orchestration', ['complete', 'error', 'cancelled', 'resolved_manually']],
  ] as const)('from %s: %j', (from, targets) => {
    expect(allowedTargets(from)).toEqual(targets);
  });

  it('agrees with the table for every state', () => {
    for (const from of STEP_STATES) {
      expect(new Set(allowedTargets(from))).toEqual(new Set(Object.values(STEP_TRANSITIONS[from])));
    }
  });
});

describe('step lifecycles through the machine', () => {
  function run(start: StepState, events: StepEventType[]): StepState {
    return events.reduce<StepState>((state, type) => transitionOrThrow(state, { type }), start);
  }

  it('success: enqueue, claim, result, complete', () => {
    expect(run('pending', ['enqueue', 'start', 'enqueue_for_orchestration', 'complete'])).toBe('complete');
  });

  it('retryable failure: waits, is retried, then succeeds', () => {
    expect(
      run('pending', [
        'enqueue',
        'start',
        'enqueue_as_error_for_orchestration',
        'wait_for_retry',
        'retry',
        'enqueue',
        'start',
        'enqueue_for_orchestration',
        'complete',
      ]),
    ).toBe('complete');
  });

  it('a crashed worker: the lease expires and the step runs again', () => {
    expect(run('pending', ['enqueue', 'start', 'lease_expired', 'retry', 'enqueue', 'start'])).toBe(
      'in_progress',
    );
  });

  it('permanent failure, then an operator reset runs it again', () => {
    const failed = run('pending', ['enqueue', 'start', 'enqueue_as_error_for_orchestration', 'fail']);
    expect(failed).toBe('error');
    expect(run(failed, ['reset_for_retry', 'enqueue', 'start'])).toBe('in_progress');
  });
});
