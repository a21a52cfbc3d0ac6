/**
 * The task state machine as documented in TypeScript: the table with its events. That its `(from, to)` pairs
 * are what the SQL enforces is checked by test/integration/stateTransitionTables.test.ts; these tests check
 * the table against reference §2.1 and its properties as a machine.
 */
import { describe, expect, it } from 'vitest';
import { stateMachineWalk } from '../../helpers/stateMachineWalk.ts';
import {
  ACTIVE_TASK_STATES,
  isTaskState,
  isTerminal,
  PROCESSABLE_TASK_STATES,
  TASK_EVENT_TYPES,
  TASK_STATES,
  TASK_TRANSITIONS,
  taskTransitionEdges,
  TERMINAL_TASK_STATES,
} from '../../../src/domain/state/taskStates.ts';
import type { TaskEventType, TaskState } from '../../../src/domain/state/taskStates.ts';

type Edge = [TaskState, TaskEventType, TaskState];

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

/**
 * The expected table, written out independently of the implementation from reference §2.1 (tasker-core's
 * `determine_target_state_internal`): every allowed (from, event, to), nothing else.
 */
const EXPECTED: Edge[] = [
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
  ...NON_TERMINAL.map((from): Edge => [from, 'cancel', 'cancelled']),
  ...NON_TERMINAL.map((from): Edge => [from, 'resolve_manually', 'resolved_manually']),
  ...NON_TERMINAL.map((from): Edge => [from, 'staleness_timeout', 'error']),
  ['error', 'reset', 'pending'],
  ['error', 'resolve_manually', 'resolved_manually'],
];

const format = ([from, event, to]: Edge): string => `${from} --${event}--> ${to}`;

const EDGES: Edge[] = taskTransitionEdges().map(({ from, event, to }): Edge => [from, event, to]);

const { eventsFrom, targetsFrom, reachableFrom, follow } = stateMachineWalk(EDGES, TASK_TRANSITIONS);

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
    expect([...TERMINAL_TASK_STATES]).toEqual(['complete', 'error', 'cancelled', 'resolved_manually']);
    expect(TASK_STATES.filter((state) => isTerminal(state))).toEqual([...TERMINAL_TASK_STATES]);
  });

  it('recognises state names from the database', () => {
    expect(isTaskState('steps_in_process')).toBe(true);
    expect(isTaskState('in_progress')).toBe(false);
    expect(isTaskState('toString')).toBe(false);
    expect(isTaskState(3)).toBe(false);
  });

  it('active and processable states are non-terminal and disjoint', () => {
    for (const state of [...ACTIVE_TASK_STATES, ...PROCESSABLE_TASK_STATES]) {
      expect(NON_TERMINAL).toContain(state);
    }
    const active = new Set<TaskState>(ACTIVE_TASK_STATES);
    expect(PROCESSABLE_TASK_STATES.filter((state) => active.has(state))).toEqual([]);
  });
});

describe('task transition table', () => {
  it('holds exactly the transitions of reference §2.1 plus resolving a failed task and staleness (45 edges)', () => {
    expect(EDGES).toHaveLength(45);
    expect(EDGES.map(format).sort()).toEqual(EXPECTED.map(format).sort());
  });

  it('lists its edges in state order, then event order', () => {
    const rank = ([from, event]: Edge): number =>
      TASK_STATES.indexOf(from) * TASK_EVENT_TYPES.length + TASK_EVENT_TYPES.indexOf(event);
    const ranks = EDGES.map(rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it('has a row for every state and only known events and states in each row', () => {
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
    for (const state of TASK_STATES) {
      expect(Object.isFrozen(TASK_TRANSITIONS[state])).toBe(true);
    }
    expect(() => {
      (TASK_TRANSITIONS.complete as Record<string, string>).reset = 'pending';
    }).toThrow(TypeError);
  });

  it('lists every event once, and every listed event fires at least one transition', () => {
    expect(new Set(TASK_EVENT_TYPES).size).toBe(TASK_EVENT_TYPES.length);
    const used = new Set(EDGES.map(([, event]) => event));
    expect(TASK_EVENT_TYPES.filter((event) => !used.has(event))).toEqual([]);
  });

  it('has no transition from a state to itself', () => {
    expect(EDGES.filter(([from, , to]) => from === to).map(format)).toEqual([]);
  });

  it('reaches every state from pending', () => {
    expect([...reachableFrom('pending')].sort()).toEqual([...TASK_STATES].sort());
  });

  it.each(NON_TERMINAL)('%s can still finish: complete and error are reachable', (state) => {
    const reachable = reachableFrom(state);
    expect(reachable.has('complete')).toBe(true);
    expect(reachable.has('error')).toBe(true);
  });
});

describe('terminal task states', () => {
  it('complete, cancelled and resolved_manually have no outgoing transition, and no other state lacks one', () => {
    expect(TASK_STATES.filter((state) => eventsFrom(state).length === 0)).toEqual([
      'complete',
      'cancelled',
      'resolved_manually',
    ]);
  });

  it('error accepts only operator events: reset back to pending, or resolve manually', () => {
    expect(eventsFrom('error')).toEqual(['resolve_manually', 'reset']);
    expect(targetsFrom('error')).toEqual(new Set(['pending', 'resolved_manually']));
  });
});

describe('operator and cancellation events on tasks', () => {
  it.each(NON_TERMINAL)(
    '%s can be cancelled, resolved manually and failed by the staleness detector',
    (state) => {
      expect(TASK_TRANSITIONS[state]).toMatchObject({
        cancel: 'cancelled',
        resolve_manually: 'resolved_manually',
        staleness_timeout: 'error',
      });
    },
  );

  it('staleness_timeout and cancel are refused by every terminal state', () => {
    const fromTerminal = EDGES.filter(
      ([from, event]) => isTerminal(from) && (event === 'staleness_timeout' || event === 'cancel'),
    );
    expect(fromTerminal.map(format)).toEqual([]);
  });

  it('reset is accepted only from error', () => {
    expect(EDGES.filter(([, event]) => event === 'reset').map(format)).toEqual(['error --reset--> pending']);
  });
});

describe('task lifecycles through the table', () => {
  it('happy path: pending to complete', () => {
    expect(
      follow('pending', [
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
    expect(follow('pending', ['start', 'no_steps_found'])).toBe('complete');
  });

  it('waits for dependencies, then carries on', () => {
    expect(
      follow('pending', [
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
    const failed = follow('pending', [
      'start',
      'ready_steps_found',
      'steps_enqueued',
      'step_completed',
      'permanent_failure',
      'give_up',
    ]);
    expect(failed).toBe('error');
    expect(follow(failed, ['reset', 'start', 'ready_steps_found'])).toBe('enqueuing_steps');
  });
});
