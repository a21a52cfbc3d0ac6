/**
 * The step state machine as documented in TypeScript: the table with its events. That its `(from, to)` pairs
 * are what the SQL enforces is checked by test/integration/stateTransitionTables.test.ts; these tests check
 * the table against reference §2.2 and its properties as a machine.
 */
import { describe, expect, it } from 'vitest';
import { stateMachineWalk } from '../../helpers/stateMachineWalk.ts';
import {
  AWAITING_ORCHESTRATION_STEP_STATES,
  DEPENDENCY_SATISFYING_STEP_STATES,
  isStepState,
  isTerminal,
  STEP_EVENT_TYPES,
  STEP_STATES,
  STEP_TRANSITIONS,
  stepTransitionEdges,
  TERMINAL_STEP_STATES,
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

const format = ([from, event, to]: Edge): string => `${from} --${event}--> ${to}`;

const EDGES: Edge[] = stepTransitionEdges().map(({ from, event, to }): Edge => [from, event, to]);

const { eventsFrom, targetsFrom, reachableFrom, follow } = stateMachineWalk(EDGES, STEP_TRANSITIONS);

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
    expect([...TERMINAL_STEP_STATES]).toEqual(['complete', 'error', 'cancelled', 'resolved_manually']);
    expect(STEP_STATES.filter((state) => isTerminal(state))).toEqual([...TERMINAL_STEP_STATES]);
  });

  it('recognises state names from the database', () => {
    expect(isStepState('enqueued_as_error_for_orchestration')).toBe(true);
    expect(isStepState('steps_in_process')).toBe(false);
    expect(isStepState('constructor')).toBe(false);
    expect(isStepState(null)).toBe(false);
  });

  it('dependencies are satisfied only by terminal successes', () => {
    expect([...DEPENDENCY_SATISFYING_STEP_STATES]).toEqual(['complete', 'resolved_manually']);
    for (const state of DEPENDENCY_SATISFYING_STEP_STATES) {
      expect(TERMINAL_STEP_STATES).toContain(state);
    }
  });

  it('awaiting orchestration means: a worker stored a result (the targets of its two result events)', () => {
    expect(new Set(AWAITING_ORCHESTRATION_STEP_STATES)).toEqual(
      new Set([
        STEP_TRANSITIONS.in_progress.enqueue_for_orchestration,
        STEP_TRANSITIONS.in_progress.enqueue_as_error_for_orchestration,
      ]),
    );
  });
});

describe('step transition table', () => {
  it('holds exactly the transitions of reference §2.2 plus lease_expired, operator fixes and staleness (43 edges)', () => {
    expect(EDGES).toHaveLength(43);
    expect(EDGES.map(format).sort()).toEqual(EXPECTED.map(format).sort());
  });

  it('lists its edges in state order, then event order', () => {
    const rank = ([from, event]: Edge): number =>
      STEP_STATES.indexOf(from) * STEP_EVENT_TYPES.length + STEP_EVENT_TYPES.indexOf(event);
    const ranks = EDGES.map(rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it('has a row for every state, only known events and states in it, and is frozen', () => {
    expect(Object.keys(STEP_TRANSITIONS).sort()).toEqual([...STEP_STATES].sort());
    expect(Object.isFrozen(STEP_TRANSITIONS)).toBe(true);
    for (const state of STEP_STATES) {
      expect(Object.isFrozen(STEP_TRANSITIONS[state])).toBe(true);
      for (const [event, to] of Object.entries(STEP_TRANSITIONS[state])) {
        expect(STEP_EVENT_TYPES).toContain(event);
        expect(STEP_STATES).toContain(to);
      }
    }
    expect(() => {
      (STEP_TRANSITIONS.complete as Record<string, string>).retry = 'pending';
    }).toThrow(TypeError);
  });

  it('lists every event once, and every listed event fires at least one transition', () => {
    expect(new Set(STEP_EVENT_TYPES).size).toBe(STEP_EVENT_TYPES.length);
    const used = new Set(EDGES.map(([, event]) => event));
    expect(STEP_EVENT_TYPES.filter((event) => !used.has(event))).toEqual([]);
  });

  it('has no transition from a state to itself', () => {
    expect(EDGES.filter(([from, , to]) => from === to).map(format)).toEqual([]);
  });

  it('reaches every state from pending', () => {
    expect([...reachableFrom('pending')].sort()).toEqual([...STEP_STATES].sort());
  });

  it.each(NON_TERMINAL)('%s can still finish: complete and error are reachable', (state) => {
    const reachable = reachableFrom(state);
    expect(reachable.has('complete')).toBe(true);
    expect(reachable.has('error')).toBe(true);
  });
});

describe('terminal step states', () => {
  it('complete, cancelled and resolved_manually have no outgoing transition, and no other state lacks one', () => {
    expect(STEP_STATES.filter((state) => eventsFrom(state).length === 0)).toEqual([
      'complete',
      'cancelled',
      'resolved_manually',
    ]);
  });

  it('error accepts only the operator fixes, the guarded retry and cancel', () => {
    expect(eventsFrom('error')).toEqual([
      'retry',
      'reset_for_retry',
      'cancel',
      'complete_manually',
      'resolve_manually',
    ]);
    expect(targetsFrom('error')).toEqual(new Set(['pending', 'complete', 'cancelled', 'resolved_manually']));
  });
});

describe('operators can fix steps', () => {
  it.each([...NON_TERMINAL, 'error' as const])(
    '%s can be completed manually, resolved manually and cancelled',
    (state) => {
      expect(STEP_TRANSITIONS[state]).toMatchObject({
        complete_manually: 'complete',
        resolve_manually: 'resolved_manually',
        cancel: 'cancelled',
      });
    },
  );

  it('reset_for_retry is accepted only from error', () => {
    expect(EDGES.filter(([, event]) => event === 'reset_for_retry').map(format)).toEqual([
      'error --reset_for_retry--> pending',
    ]);
  });

  it('lease_expired is accepted only from in_progress, into waiting_for_retry', () => {
    expect(EDGES.filter(([, event]) => event === 'lease_expired').map(format)).toEqual([
      'in_progress --lease_expired--> waiting_for_retry',
    ]);
  });
});

describe('step lifecycles through the table', () => {
  it('success: enqueue, claim, result, complete', () => {
    expect(follow('pending', ['enqueue', 'start', 'enqueue_for_orchestration', 'complete'])).toBe('complete');
  });

  it('retryable failure: waits, is retried, then succeeds', () => {
    expect(
      follow('pending', [
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
    expect(follow('pending', ['enqueue', 'start', 'lease_expired', 'retry', 'enqueue', 'start'])).toBe(
      'in_progress',
    );
  });

  it('permanent failure, then an operator reset runs it again', () => {
    const failed = follow('pending', ['enqueue', 'start', 'enqueue_as_error_for_orchestration', 'fail']);
    expect(failed).toBe('error');
    expect(follow(failed, ['reset_for_retry', 'enqueue', 'start'])).toBe('in_progress');
  });
});
