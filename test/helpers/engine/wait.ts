/** Waiting for the engine: tight polling with timeouts that explain what state things were left in. */
import type { Queryable } from '../../../src/db/database.ts';
import { stepsByName, taskRow } from './inspect.ts';
import type { TaskRow } from './inspect.ts';

const TERMINAL_TASK_STATES = ['complete', 'error', 'cancelled', 'resolved_manually'] as const;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Steps of a task as "name=state(attempts)" for error messages. */
async function describeSteps(db: Queryable, taskUuid: string): Promise<string> {
  const steps = await stepsByName(db, taskUuid);
  return Object.values(steps)
    .map((s) => {
      const error = typeof s.last_error?.message === 'string' ? ` "${s.last_error.message}"` : '';
      return `${s.name}=${s.current_state}(attempts ${s.attempts})${error}`;
    })
    .join(', ');
}

/**
 * Polls every 10 ms until the task is in one of `states`; returns its row. On timeout throws an error naming
 * the task's state and every step's state and attempts.
 */
export async function waitForTask(
  db: Queryable,
  taskUuid: string,
  states: string | readonly string[],
  timeoutMs = 10_000,
): Promise<TaskRow> {
  const wanted: readonly string[] = typeof states === 'string' ? [states] : states;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await taskRow(db, taskUuid);
    if (task !== undefined && wanted.includes(task.current_state)) return task;
    if (Date.now() > deadline) {
      throw new Error(
        `task ${taskUuid} did not reach ${wanted.join(' or ')} within ${timeoutMs} ms: ` +
          (task === undefined
            ? 'it does not exist'
            : `it is ${task.current_state}; steps: ${await describeSteps(db, taskUuid)}`),
      );
    }
    await sleep(10);
  }
}

/** waitForTask for many tasks at once (all must get there within the one timeout). */
export async function waitForTasks(
  db: Queryable,
  taskUuids: readonly string[],
  states: string | readonly string[],
  timeoutMs = 20_000,
): Promise<TaskRow[]> {
  const deadline = Date.now() + timeoutMs;
  const rows: TaskRow[] = [];
  for (const uuid of taskUuids)
    rows.push(await waitForTask(db, uuid, states, Math.max(0, deadline - Date.now())));
  return rows;
}

/**
 * Polls `check` every 10 ms until it returns something other than undefined/false; returns that. On timeout
 * throws `${what} within N ms` plus whatever `explain` says about the current situation.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  explain?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const detail = explain === undefined ? '' : `: ${await explain()}`;
      throw new Error(`timed out waiting for ${what} within ${timeoutMs} ms${detail}`);
    }
    await sleep(10);
  }
}

/** Step states in which a step's run or its result is still on its way. */
const IN_FLIGHT_STEP_STATES = [
  'in_progress',
  'enqueued_for_orchestration',
  'enqueued_as_error_for_orchestration',
];

/**
 * Waits until the task is terminal and none of its steps is running or has a result not yet applied: after
 * a fail-fast error, results of steps that were still running keep arriving for a moment.
 */
export async function waitForSettledTask(
  db: Queryable,
  taskUuid: string,
  timeoutMs = 10_000,
): Promise<TaskRow> {
  const deadline = Date.now() + timeoutMs;
  const task = await waitForTask(db, taskUuid, TERMINAL_TASK_STATES, timeoutMs);
  await waitFor(
    `the steps of task ${taskUuid} to settle`,
    async () =>
      Object.values(await stepsByName(db, taskUuid)).every(
        (s) => !IN_FLIGHT_STEP_STATES.includes(s.current_state),
      ),
    Math.max(0, deadline - Date.now()),
    () => describeSteps(db, taskUuid),
  );
  return task;
}
