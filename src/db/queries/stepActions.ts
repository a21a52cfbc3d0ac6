import { ConflictError, NotFoundError, ValidationError } from '../../domain/errors.ts';
import type { Queryable } from '../database.ts';
import { SqlState, sqlStateOf } from '../sqlState.ts';

/**
 * An operator's fix of one step (reference §5.2). `complete_manually`'s `result` becomes the step's results,
 * which dependents read exactly like a handler's return value (`ctx.dependency(name)`); `metadata`,
 * `operator` and `reason` are recorded on the step's transition.
 */
export type StepAction =
  | { action: 'reset_for_retry'; operator?: string; reason?: string }
  | { action: 'resolve_manually'; operator?: string; reason?: string }
  | {
      action: 'complete_manually';
      result: unknown;
      metadata?: Record<string, unknown>;
      operator?: string;
      reason?: string;
    };

type StepActionName = StepAction['action'];

const STEP_ACTIONS: readonly StepActionName[] = ['reset_for_retry', 'resolve_manually', 'complete_manually'];

export interface StepActionOutcome {
  taskUuid: string;
  stepUuid: string;
  /** The step's state after the action: pending, resolved_manually or complete. */
  stepState: string;
  /**
   * The task's state after the action and the evaluation that follows it: running again (steps_in_process,
   * waiting_for_retry), already complete, or still error while other steps of it are in error.
   */
  taskState: string;
}

type Outcome = 'applied' | 'task_not_found' | 'step_not_found' | 'task_finished' | 'not_allowed';

interface ActionRow {
  outcome: Outcome;
  task_state: string | null;
  step_state: string | null;
  allowed_from: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A deadlock with a claim (which locks step before task on an expired lease) is rolled back whole: retry it. */
const MAX_ATTEMPTS = 3;

function checkUuid(value: string, what: string): void {
  if (!UUID.test(value)) {
    throw new ValidationError('TASKER_INVALID_ARGUMENT', `${what} must be a UUID, found "${value}"`, {
      details: { [what.replace(' ', '_')]: value },
    });
  }
}

function actionParams(action: StepAction): { result: string | null; metadata: string | null } {
  if (!STEP_ACTIONS.includes(action.action)) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `unknown step action "${String(action.action)}"; use one of ${STEP_ACTIONS.join(', ')}`,
      { details: { action: action.action, allowed: STEP_ACTIONS } },
    );
  }
  if (action.action !== 'complete_manually') return { result: null, metadata: null };
  if (!('result' in action) || action.result === undefined) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      "complete_manually needs a result: the value dependents will see as this step's result (null is allowed)",
      { details: { action: action.action } },
    );
  }
  try {
    return {
      result: JSON.stringify(action.result),
      metadata: action.metadata === undefined ? null : JSON.stringify(action.metadata),
    };
  } catch (error) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `complete_manually's result and metadata must be JSON: ${(error as Error).message}`,
      { details: { action: action.action }, cause: error },
    );
  }
}

/**
 * Applies an operator's step action in one commit (tasker.apply_step_action): the step's compare-and-set, then,
 * under the task row lock, the task carries on: ready steps are enqueued and the task evaluated, and a task in
 * `error` whose steps are no longer in error is brought back to life (and finalized at once if nothing is left).
 *
 * Accepted from: reset_for_retry `error`; resolve_manually and complete_manually `pending`,
 * `waiting_for_retry`, `error` (never while a handler may be running it: enqueued, in_progress, or a result
 * waiting to be applied). Refused for tasks that are complete, cancelled or resolved_manually. Two operators
 * acting on one failed step at once: the first moves it out of error, the second gets the conflict.
 *
 * @throws NotFoundError TASKER_TASK_NOT_FOUND, TASKER_STEP_NOT_FOUND (no such step in that task);
 *   ConflictError TASKER_STEP_ACTION_NOT_ALLOWED (details: current_state, allowed_from, task_state);
 *   ValidationError TASKER_INVALID_ARGUMENT (a malformed uuid, an unknown action, complete_manually without
 *   a result)
 */
export async function applyStepAction(
  db: Queryable,
  taskUuid: string,
  stepUuid: string,
  action: StepAction,
  processorUuid?: string,
): Promise<StepActionOutcome> {
  checkUuid(taskUuid, 'task uuid');
  checkUuid(stepUuid, 'step uuid');
  const { result, metadata } = actionParams(action);
  const params = [
    taskUuid,
    stepUuid,
    action.action,
    result,
    metadata,
    action.operator ?? null,
    action.reason ?? null,
    processorUuid ?? null,
  ];
  let row: ActionRow | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await db.query<ActionRow>(
        `SELECT outcome, task_state, step_state, allowed_from
         FROM tasker.apply_step_action($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)`,
        params,
      );
      row = rows[0];
      break;
    } catch (error) {
      const state = sqlStateOf(error);
      const retryable = state === SqlState.deadlockDetected || state === SqlState.serializationFailure;
      if (!retryable || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
  if (row === undefined) throw new Error('tasker.apply_step_action returned no row');
  const allowedFrom = row.allowed_from;
  switch (row.outcome) {
    case 'applied':
      return {
        taskUuid,
        stepUuid,
        stepState: row.step_state ?? 'unknown',
        taskState: row.task_state ?? 'unknown',
      };
    case 'task_not_found':
      throw new NotFoundError('TASKER_TASK_NOT_FOUND', `no task ${taskUuid} exists`, {
        details: { task_uuid: taskUuid },
      });
    case 'step_not_found':
      throw new NotFoundError(
        'TASKER_STEP_NOT_FOUND',
        `task ${taskUuid} has no step ${stepUuid}; list the task's steps to find the right step uuid`,
        { details: { task_uuid: taskUuid, step_uuid: stepUuid } },
      );
    case 'task_finished':
      throw new ConflictError(
        'TASKER_STEP_ACTION_NOT_ALLOWED',
        `${action.action} is not allowed: task ${taskUuid} is ${row.task_state ?? '?'} and its steps can no longer change`,
        {
          details: {
            current_state: row.step_state,
            allowed_from: allowedFrom,
            task_state: row.task_state,
            task_uuid: taskUuid,
            step_uuid: stepUuid,
          },
        },
      );
    case 'not_allowed':
      throw new ConflictError(
        'TASKER_STEP_ACTION_NOT_ALLOWED',
        `${action.action} is not allowed on step ${stepUuid} in state ${row.step_state ?? '?'}; ` +
          `it is accepted from ${allowedFrom.join(', ')}` +
          (row.step_state === 'in_progress'
            ? ' (a handler is running it now: wait for its result, or cancel the task)'
            : ''),
        {
          details: {
            current_state: row.step_state,
            allowed_from: allowedFrom,
            task_state: row.task_state,
            task_uuid: taskUuid,
            step_uuid: stepUuid,
          },
        },
      );
  }
}
