/**
 * The task state machine: tasker-core's 12 states and its transition table (reference §2.1), kept as data.
 *
 * A task's current state is the latest row of its append-only transitions table, written by compare-and-set
 * (DESIGN §3) in SQL: `tasker._record_task_transition` refuses any `(from_state, to_state)` that is not a row
 * of `tasker.task_state_transitions`. `TASK_TRANSITIONS` documents the same machine with the event behind each
 * edge; test/integration/stateTransitionTables.test.ts checks that its `(from, to)` pairs are exactly that
 * table's rows, so neither can change alone. Whether an event should fire (for example, whether any step is
 * ready) is decided by the SQL that fires it.
 */
import { edgesOf, freezeTable } from './transitionTable.ts';
import type { TransitionEdge } from './transitionTable.ts';

export const TASK_STATES = [
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
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TERMINAL_TASK_STATES = ['complete', 'error', 'cancelled', 'resolved_manually'] as const;
export type TerminalTaskState = (typeof TERMINAL_TASK_STATES)[number];

/** States in which an orchestrator is working on the task right now (tasker-core's "active"). */
export const ACTIVE_TASK_STATES = [
  'initializing',
  'enqueuing_steps',
  'steps_in_process',
  'evaluating_results',
] as const;

/** States task discovery picks tasks up from (tasker-core's "processable"). */
export const PROCESSABLE_TASK_STATES = ['pending', 'waiting_for_dependencies', 'waiting_for_retry'] as const;

/**
 * Every task event, in the order of the transition table. `TaskEvent` documents each one with the payload
 * its transition's metadata may carry for the audit trail.
 */
export const TASK_EVENT_TYPES = [
  'start',
  'ready_steps_found',
  'no_steps_found',
  'no_dependencies_ready',
  'steps_enqueued',
  'enqueue_failed',
  'step_completed',
  'all_steps_completed',
  'step_failed',
  'complete',
  'fail',
  'all_steps_successful',
  'permanent_failure',
  'dependencies_ready',
  'retry_ready',
  'give_up',
  'manual_resolution',
  'cancel',
  'resolve_manually',
  'reset',
  'staleness_timeout',
] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

type TaskEvent =
  /** The task was created; the initializer takes it. */
  | { readonly type: 'start' }
  | { readonly type: 'ready_steps_found'; readonly readyStepCount?: number }
  /** A task without steps is complete at once. */
  | { readonly type: 'no_steps_found' }
  | { readonly type: 'no_dependencies_ready' }
  | { readonly type: 'steps_enqueued'; readonly stepUuids?: readonly string[] }
  | { readonly type: 'enqueue_failed'; readonly error?: string }
  /** Fired for every step result, success or failure: the finalizer then decides. */
  | { readonly type: 'step_completed'; readonly stepUuid?: string }
  | { readonly type: 'all_steps_completed' }
  /** Kept from tasker-core's table; its orchestrator never fires it (reference §2.1). */
  | { readonly type: 'step_failed'; readonly stepUuid?: string; readonly error?: string }
  /** Legacy direct path steps_in_process -> complete. */
  | { readonly type: 'complete' }
  /** Legacy direct path steps_in_process -> error. */
  | { readonly type: 'fail'; readonly error?: string }
  | { readonly type: 'all_steps_successful' }
  | { readonly type: 'permanent_failure'; readonly error?: string }
  | { readonly type: 'dependencies_ready' }
  | { readonly type: 'retry_ready' }
  | { readonly type: 'give_up'; readonly error?: string }
  | { readonly type: 'manual_resolution'; readonly resolvedBy?: string; readonly reason?: string }
  | { readonly type: 'cancel'; readonly reason?: string }
  /** Operator action from any non-terminal state. */
  | { readonly type: 'resolve_manually'; readonly resolvedBy?: string; readonly reason?: string }
  /** Operator action: a task in `error` starts over from `pending` (steps keep their states). */
  | { readonly type: 'reset'; readonly reason?: string }
  /**
   * The staleness detector found the task without progress past its threshold (or past its max lifetime):
   * it fails from whatever non-terminal state it is stuck in, with a DLQ entry for an operator to look at.
   */
  | { readonly type: 'staleness_timeout'; readonly thresholdMinutes?: number };

// Compile-time check that TASK_EVENT_TYPES and the TaskEvent union name the same events.
type _SameTaskEvents = [TaskEventType] extends [TaskEvent['type']]
  ? [TaskEvent['type']] extends [TaskEventType]
    ? true
    : never
  : never;
const _taskEventsMatch: _SameTaskEvents = true;

const anyNonTerminal = {
  cancel: 'cancelled',
  resolve_manually: 'resolved_manually',
  staleness_timeout: 'error',
} as const;

/**
 * tasker-core's task table (reference §2.1, `determine_target_state_internal`), legacy paths included.
 * `cancel`, `resolve_manually` and `staleness_timeout` are accepted in every non-terminal state; of the terminal states only
 * `error` accepts anything: `reset` (an operator brings a failed task back to life) or `resolve_manually`.
 */
export const TASK_TRANSITIONS = freezeTable<TaskState, TaskEventType>({
  pending: { start: 'initializing', ...anyNonTerminal },
  initializing: {
    ready_steps_found: 'enqueuing_steps',
    no_steps_found: 'complete',
    no_dependencies_ready: 'waiting_for_dependencies',
    ...anyNonTerminal,
  },
  enqueuing_steps: { steps_enqueued: 'steps_in_process', enqueue_failed: 'error', ...anyNonTerminal },
  steps_in_process: {
    step_completed: 'evaluating_results',
    all_steps_completed: 'evaluating_results',
    step_failed: 'waiting_for_retry',
    complete: 'complete',
    fail: 'error',
    ...anyNonTerminal,
  },
  evaluating_results: {
    all_steps_successful: 'complete',
    ready_steps_found: 'enqueuing_steps',
    no_dependencies_ready: 'waiting_for_dependencies',
    permanent_failure: 'blocked_by_failures',
    ...anyNonTerminal,
  },
  waiting_for_dependencies: { dependencies_ready: 'evaluating_results', ...anyNonTerminal },
  waiting_for_retry: { retry_ready: 'enqueuing_steps', ...anyNonTerminal },
  blocked_by_failures: { give_up: 'error', manual_resolution: 'resolved_manually', ...anyNonTerminal },
  complete: {},
  error: { reset: 'pending', resolve_manually: 'resolved_manually' },
  cancelled: {},
  resolved_manually: {},
});

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && (TASK_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: TaskState): state is TerminalTaskState {
  return (TERMINAL_TASK_STATES as readonly string[]).includes(state);
}

/** Every allowed `(from, event, to)`, in `TASK_STATES` then `TASK_EVENT_TYPES` order. */
export function taskTransitionEdges(): TransitionEdge<TaskState, TaskEventType>[] {
  return edgesOf(TASK_STATES, TASK_EVENT_TYPES, TASK_TRANSITIONS);
}

export type { TransitionEdge } from './transitionTable.ts';
