import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.ts';
import {
  allowedEvents,
  allowedTargets,
  isTaskState,
  isTerminal,
  TASK_EVENT_TYPES,
  TASK_STATES,
  TASK_TRANSITIONS,
  taskTransitionEdges,
  TERMINAL_TASK_STATES,
  transition,
  transitionOrThrow,
} from '../../../src/domain/state/taskStates.ts';
import type { TaskEventType, TaskState } from '../../../src/domain/state/taskStates.ts';

/**
 * The expected table, written out independently of the implementation from reference §2.1 (tasker-core's
 * `determine_target_state_internal`): every allowed (from, event, to), nothing else.
 */
const NON_TERMINAL: TaskState[] = [
  'pending',
  'initializing',
  'enqueuing_steps',
  'steps_in_process',
  'evaluating_results',
  'waiting_for_dependencies',
  'waiting_for_retry',
  'blocked_by_failures',
];

const EXPECTED: [TaskState, TaskEventType, TaskState][] = [
  ['pending', 'start', 'initializing'],
  ['initializing', 'ready_steps_found', 'enqueuing_steps'],
  ['initializing', 'no_steps_found', 'complete'],
  ['initializing', 'no_dependencies_ready', 'waiting_for_dependencies'],
  ['enqueuing_steps', 'steps_enqueued', 'steps_in_process'],
  ['enqueuing_steps', 'enqueue_failed', 'error'],
  ['steps_in_process', 'step_completed', 'evaluating_results'],
  ['steps_in_process', 'all_steps_completed', 'evaluating_results'],
  ['steps_in_process', 'step_failed', 'waiting_for_retry'],
  ['steps_in_process', 'complete', 'complete'],
  ['steps_in_process', 'fail', 'error'],
  ['evaluating_results', 'all_steps_successful', 'complete'],
  ['evaluating_results', 'ready_steps_found', 'enqueuing_steps'],
  ['evaluating_results', 'no_dependencies_ready', 'waiting_for_dependencies'],
  ['evaluating_results', 'permanent_failure', 'blocked_by_failures'],
  ['waiting_for_dependencies', 'dependencies_ready', 'evaluating_results'],
  ['waiting_for_retry', 'retry_ready', 'enqueuing_steps'],
  ['blocked_by_failures', 'give_up', 'error'],
  ['blocked_by_failures', 'manual_resolution', 'resolved_manually'],
  ...NON_TERMINAL.map((from): [TaskState, TaskEventType, TaskState] => [from, 'cancel', 'cancelled']),
  ...NON_TERMINAL.map((from): [TaskState, TaskEventType, TaskState] => [
    from,
    'resolve_manually',
    'resolved_manually',
  ]),
  ...NON_TERMINAL.map((from): [TaskState, TaskEventType, TaskState] => [from, 'staleness_timeout', 'error']),
  ['error', 'reset', 'pending'],
  ['error', 'resolve_manually', 'resolved_manually'],
];

function expectedTarget(from: TaskState, event: TaskEventType): TaskState | undefined {
  return EXPECTED.find(([f, e]) => f === from && e === event)?.[2];
}

const ALL_PAIRS = TASK_STATES.flatMap((from) => TASK_EVENT_TYPES.map((event) => [from, event] as const));

describe('task states', () => {
  it("has tasker-core's 12 states with their exact names", () => {
    expect(TASK_STATES).toEqual([
      'pending',
      'initializing',
      'enqueuing_steps',
      'steps_in_process',
      'evaluating_results',
      'waiting_for_dependencies',
      'waiting_for_retry',
      'blocked_by_failures',
      'complete',
      'error',
      'cancelled',
      'resolved_manually',
    ]);
  });

  it('calls complete, error, cancelled and resolved_manually terminal, and nothing else', () => {
    expect(TASK_STATES.filter((state) => isTerminal(state))).toEqual([
      'complete',
      'error',
      'cancelled',
      'resolved_manually',
    ]);
    expect([...TERMINAL_TASK_STATES]).toEqual(['complete', 'error', 'cancelled', 'resolved_manually']);
  });

  it('recognises state names from the database', () => {
    expect(isTaskState('steps_in_process')).toBe(true);
    expect(isTaskState('in_progress')).toBe(false);
    expect(isTaskState('toString')).toBe(false);
    expect(isTaskState(3)).toBe(false);
  });
});

describe('task transition table', () => {
  it('holds exactly the transitions of reference §2.1 plus resolving a failed task and staleness (45 edges)', () => {
    const actual = taskTransitionEdges().map(({ from, event, to }) => `${from} --${event}--> ${to}`);
    const expected = EXPECTED.map(([from, event, to]) => `${from} --${event}--> ${to}`);
    expect(actual).toHaveLength(45);
    expect([...actual].sort()).toEqual([...expected].sort());
  });

  it('has a row for every state and only known events in each row', () => {
    expect(Object.keys(TASK_TRANSITIONS).sort()).toEqual([...TASK_STATES].sort());
    for (const state of TASK_STATES) {
      for (const [event, to] of Object.entries(TASK_TRANSITIONS[state])) {
        expect(TASK_EVENT_TYPES).toContain(event);
        expect(TASK_STATES).toContain(to);
      }
    }
  });

  it('is frozen, so nobody can add a transition at runtime', () => {
    expect(Object.isFrozen(TASK_TRANSITIONS)).toBe(true);
    expect(Object.isFrozen(TASK_TRANSITIONS.complete)).toBe(true);
    expect(() => {
      (TASK_TRANSITIONS.complete as Record<string, string>).reset = 'pending';
    }).toThrow(TypeError);
  });

  it.each(EXPECTED)('allows %s --%s--> %s', (from, event, to) => {
    expect(transition(from, { type: event })).toEqual({ ok: true, to });
    expect(transitionOrThrow(from, { type: event })).toBe(to);
  });

  const forbidden = ALL_PAIRS.filter(([from, event]) => expectedTarget(from, event) === undefined);

  it(`rejects every other (state, event) pair (${forbidden.length} of them) with a reason`, () => {
    expect(forbidden.length).toBe(TASK_STATES.length * TASK_EVENT_TYPES.length - EXPECTED.length);
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
    ['pending', 'all_steps_successful'],
    ['initializing', 'start'],
    ['steps_in_process', 'ready_steps_found'],
    ['evaluating_results', 'steps_enqueued'],
    ['waiting_for_dependencies', 'retry_ready'],
    ['waiting_for_retry', 'dependencies_ready'],
    ['blocked_by_failures', 'reset'],
    ['complete', 'cancel'],
    ['cancelled', 'reset'],
  ] as const)('rejects %s --%s--> and names the events that state accepts', (from, event) => {
    const result = transition(from, { type: event });
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) {
      const accepted = allowedEvents(from);
      expect(result.reason).toContain(accepted.length === 0 ? 'none' : accepted.join(', '));
    }
  });

  it('throws TASKER_INVALID_TRANSITION from transitionOrThrow', () => {
    let caught: unknown;
    try {
      transitionOrThrow('complete', { type: 'start' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({
      code: 'TASKER_INVALID_TRANSITION',
      details: { machine: 'task', from: 'complete', event: 'start' },
    });
    expect((caught as Error).message).toBe(
      "task in state 'complete' (terminal) does not accept event 'start'; events accepted in 'complete': none",
    );
  });

  it('rejects unknown states and events that reach it from untyped code', () => {
    const badState = transition('running' as TaskState, { type: 'start' });
    expect(badState).toMatchObject({ ok: false });
    if (!badState.ok) {
      expect(badState.reason).toContain("unknown task state 'running'");
    }
    const badEvent = transition('pending', { type: 'toString' as TaskEventType });
    expect(badEvent).toMatchObject({ ok: false });
    if (!badEvent.ok) {
      expect(badEvent.reason).toContain("unknown task event 'toString'");
    }
    expect(allowedTargets('hasOwnProperty' as TaskState)).toEqual([]);
  });
});

describe('terminal task states', () => {
  it.each(['complete', 'cancelled', 'resolved_manually'] as const)('%s accepts no event at all', (state) => {
    expect(allowedEvents(state)).toEqual([]);
    expect(allowedTargets(state)).toEqual([]);
    for (const event of TASK_EVENT_TYPES) {
      expect(transition(state, { type: event }).ok).toBe(false);
    }
  });

  it('error accepts only operator events: reset back to pending, or resolve manually', () => {
    expect([...allowedEvents('error')].sort()).toEqual(['reset', 'resolve_manually']);
    expect(allowedTargets('error')).toEqual(['pending', 'resolved_manually']);
  });
});

describe('operator and cancellation events on tasks', () => {
  it.each(NON_TERMINAL)('%s can be cancelled and resolved manually', (state) => {
    expect(transition(state, { type: 'cancel', reason: 'customer asked' })).toEqual({
      ok: true,
      to: 'cancelled',
    });
    expect(transition(state, { type: 'resolve_manually', resolvedBy: 'ops' })).toEqual({
      ok: true,
      to: 'resolved_manually',
    });
  });

  it.each(NON_TERMINAL)('%s moves to error on staleness_timeout (the staleness detector)', (state) => {
    expect(transition(state, { type: 'staleness_timeout', thresholdMinutes: 30 })).toEqual({
      ok: true,
      to: 'error',
    });
  });

  it('staleness_timeout is refused by every terminal state', () => {
    expect(
      TASK_STATES.filter((state) => isTerminal(state) && transition(state, { type: 'staleness_timeout' }).ok),
    ).toEqual([]);
  });

  it('reset is accepted only from error', () => {
    expect(TASK_STATES.filter((state) => transition(state, { type: 'reset' }).ok)).toEqual(['error']);
  });
});

describe('allowed targets', () => {
  it.each([
    ['pending', ['initializing', 'error', 'cancelled', 'resolved_manually']],
    [
      'initializing',
      ['enqueuing_steps', 'waiting_for_dependencies', 'complete', 'error', 'cancelled', 'resolved_manually'],
    ],
    [
      'steps_in_process',
      ['evaluating_results', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually'],
    ],
    ['blocked_by_failures', ['error', 'cancelled', 'resolved_manually']],
    ['error', ['pending', 'resolved_manually']],
    ['complete', []],
  ] as const)('from %s: %j', (from, targets) => {
    expect(allowedTargets(from)).toEqual(targets);
  });

  it('agrees with the table for every state', () => {
    for (const from of TASK_STATES) {
      const fromTable = new Set(Object.values(TASK_TRANSITIONS[from]));
      expect(new Set(allowedTargets(from))).toEqual(fromTable);
    }
  });
});

describe('task lifecycles through the machine', () => {
  function run(start: TaskState, events: TaskEventType[]): TaskState {
    return events.reduce<TaskState>((state, type) => transitionOrThrow(state, { type }), start);
  }

  it('happy path: pending to complete', () => {
    expect(
      run('pending', [
        'start',
        'ready_steps_found',
        'steps_enqueued',
        'step_completed',
        'ready_steps_found',
        'steps_enqueued',
        'step_completed',
        'all_steps_successful',
      ]),
    ).toBe('complete');
  });

  it('a task without steps completes during initialization', () => {
    expect(run('pending', ['start', 'no_steps_found'])).toBe('complete');
  });

  it('waits for dependencies, then carries on', () => {
    expect(
      run('pending', [
        'start',
        'ready_steps_found',
        'steps_enqueued',
        'step_completed',
        'no_dependencies_ready',
        'dependencies_ready',
        'all_steps_successful',
      ]),
    ).toBe('complete');
  });

  it('fails through blocked_by_failures, and an operator reset brings it back', () => {
    const failed = run('pending', [
      'start',
      'ready_steps_found',
      'steps_enqueued',
      'step_completed',
      'permanent_failure',
      'give_up',
    ]);
    expect(failed).toBe('error');
    expect(run(failed, ['reset', 'start', 'ready_steps_found'])).toBe('enqueuing_steps');
  });
});
