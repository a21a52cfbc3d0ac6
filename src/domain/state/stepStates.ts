/**
 * The workflow step state machine: tasker-core's 10 states and its transition table (reference §2.2), kept as
 * data, plus `lease_expired` for steps whose worker died (DESIGN §3: leases, not early acks).
 *
 * What runs is SQL: `tasker._record_step_transition` compare-and-sets a step and refuses any
 * `(from_state, to_state)` that is not a row of `tasker.step_state_transitions`. `STEP_TRANSITIONS` documents
 * the same machine with the event behind each edge; test/integration/stateTransitionTables.test.ts checks
 * that its `(from, to)` pairs are exactly that table's rows, so neither can change alone. (The event names
 * the SQL writes into transition metadata are not part of that check.)
 *
 * Guards that need data, such as whether a step may run again, belong to the SQL that fires each event.
 */
import { edgesOf, freezeTable } from './transitionTable.ts';
import type { TransitionEdge } from './transitionTable.ts';

export const STEP_STATES = [
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
] as const;
export type StepState = (typeof STEP_STATES)[number];

/** `error` is terminal for the engine (permanent failure) but operators can still act on it. */
export const TERMINAL_STEP_STATES = ['complete', 'error', 'cancelled', 'resolved_manually'] as const;
export type TerminalStepState = (typeof TERMINAL_STEP_STATES)[number];

/** Parents in these states satisfy a child's dependency (reference §3.1). */
export const DEPENDENCY_SATISFYING_STEP_STATES = ['complete', 'resolved_manually'] as const;

/** A worker has stored the step's result and orchestration has not applied it yet. */
export const AWAITING_ORCHESTRATION_STEP_STATES = [
  'enqueued_for_orchestration',
  'enqueued_as_error_for_orchestration',
] as const;

/**
 * Every step event, in the order of the transition table. `StepEvent` documents each one with the payload
 * its transition's metadata may carry for the audit trail.
 */
export const STEP_EVENT_TYPES = [
  'enqueue',
  'start',
  'enqueue_for_orchestration',
  'enqueue_as_error_for_orchestration',
  'complete',
  'fail',
  'wait_for_retry',
  'lease_expired',
  'retry',
  'reset_for_retry',
  'cancel',
  'complete_manually',
  'resolve_manually',
] as const;
export type StepEventType = (typeof STEP_EVENT_TYPES)[number];

type StepEvent =
  /** Orchestration committed the step as enqueued before sending its message ("state before queue"). */
  | { readonly type: 'enqueue' }
  /** A worker claims the step; `pending -> in_progress` is tasker-core's legacy direct path. */
  | { readonly type: 'start'; readonly workerId?: string }
  /** The worker stored a successful result for orchestration to apply. */
  | { readonly type: 'enqueue_for_orchestration'; readonly result?: unknown }
  /** The worker stored a failed result for orchestration to apply. */
  | { readonly type: 'enqueue_as_error_for_orchestration'; readonly result?: unknown }
  | { readonly type: 'complete'; readonly results?: unknown }
  /** Permanent failure. */
  | { readonly type: 'fail'; readonly error?: string }
  /** Retryable failure: the step waits out its backoff. */
  | { readonly type: 'wait_for_retry'; readonly error?: string }
  /** The worker's lease ran out (crash, lost connection) and the step may run again. */
  | { readonly type: 'lease_expired'; readonly workerId?: string }
  /** The backoff is over; the enqueuer takes the step again (attempts are kept). */
  | { readonly type: 'retry' }
  /** Operator action: a failed step runs again from scratch (attempts reset to 0 by the caller). */
  | { readonly type: 'reset_for_retry'; readonly resolvedBy?: string; readonly reason?: string }
  | { readonly type: 'cancel'; readonly reason?: string }
  /** Operator action: the step counts as complete with operator-supplied results visible to dependents. */
  | {
      readonly type: 'complete_manually';
      readonly results?: unknown;
      readonly resolvedBy?: string;
      readonly reason?: string;
    }
  /** Operator action: the step counts as done without results; dependents may run. */
  | { readonly type: 'resolve_manually'; readonly resolvedBy?: string; readonly reason?: string };

// Compile-time check that STEP_EVENT_TYPES and the StepEvent union name the same events.
type _SameStepEvents = [StepEventType] extends [StepEvent['type']]
  ? [StepEvent['type']] extends [StepEventType]
    ? true
    : never
  : never;
const _stepEventsMatch: _SameStepEvents = true;

/** Accepted in every non-terminal state and in `error`: cancellation and the operator's fixes. */
const cancelOrOperator = {
  cancel: 'cancelled',
  complete_manually: 'complete',
  resolve_manually: 'resolved_manually',
} as const;

/**
 * tasker-core's step table (reference §2.2), legacy/direct paths included, plus `lease_expired`.
 * Terminal `complete`, `cancelled` and `resolved_manually` accept nothing; `error` accepts the operator's
 * fixes (`reset_for_retry`, `complete_manually`, `resolve_manually`), the guarded `retry` and `cancel`.
 */
export const STEP_TRANSITIONS = freezeTable<StepState, StepEventType>({
  pending: {
    enqueue: 'enqueued',
    start: 'in_progress',
    fail: 'error',
    wait_for_retry: 'waiting_for_retry',
    ...cancelOrOperator,
  },
  enqueued: {
    start: 'in_progress',
    fail: 'error',
    wait_for_retry: 'waiting_for_retry',
    ...cancelOrOperator,
  },
  in_progress: {
    enqueue_for_orchestration: 'enqueued_for_orchestration',
    enqueue_as_error_for_orchestration: 'enqueued_as_error_for_orchestration',
    complete: 'complete',
    fail: 'error',
    wait_for_retry: 'waiting_for_retry',
    lease_expired: 'waiting_for_retry',
    ...cancelOrOperator,
  },
  enqueued_for_orchestration: { complete: 'complete', fail: 'error', ...cancelOrOperator },
  enqueued_as_error_for_orchestration: {
    complete: 'complete',
    fail: 'error',
    wait_for_retry: 'waiting_for_retry',
    ...cancelOrOperator,
  },
  // `fail`: the retry will not happen because the task was failed (the staleness detector).
  waiting_for_retry: { retry: 'pending', fail: 'error', ...cancelOrOperator },
  complete: {},
  error: { retry: 'pending', reset_for_retry: 'pending', ...cancelOrOperator },
  cancelled: {},
  resolved_manually: {},
});

export function isStepState(value: unknown): value is StepState {
  return typeof value === 'string' && (STEP_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: StepState): state is TerminalStepState {
  return (TERMINAL_STEP_STATES as readonly string[]).includes(state);
}

/** Every allowed `(from, event, to)`, in `STEP_STATES` then `STEP_EVENT_TYPES` order. */
export function stepTransitionEdges(): TransitionEdge<StepState, StepEventType>[] {
  return edgesOf(STEP_STATES, STEP_EVENT_TYPES, STEP_TRANSITIONS);
}

export type { TransitionEdge } from './transitionTable.ts';
