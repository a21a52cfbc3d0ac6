/**
 * What the soak checks at the end, read from the database: which accepted tasks finished and how, whether
 * every step holds the value its workflow computes, and exactly-once result application, counted rather than
 * asserted (the same queries as assertAppliedOnce in test/helpers/e2e/clusterChecks.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../../src/db/database.ts';
import { historyProblems } from '../../test/helpers/engine/inspect.ts';
import { SOAK_TAG } from './soakLoad.ts';
import type { AcceptedTask } from './soakLoad.ts';

const TERMINAL = ['complete', 'error', 'cancelled', 'resolved_manually'];

export interface Verdict {
  accepted: number;
  completed: number;
  /** Finished in a state other than complete (none of the soak's workflows fails on purpose). */
  failed: string[];
  /** Accepted, and not finished (or not there at all) when the drain ended. */
  lost: string[];
  /** Complete tasks with a step value other than the workflow's, as "task step=found (expected)". */
  wrong: string[];
  /** Steps that reached a terminal state more than once. */
  stepsTerminalTwice: number;
  /** Tasks that reached a terminal state more than once. */
  tasksTerminalTwice: number;
  /** (step, attempt) pairs with more than one stored result. */
  resultsStoredTwice: number;
  /** Task and step histories that are not a valid chain of allowed transitions (historyProblems). */
  invalidHistories: string[];
  /** Steps whose handler ran more than once (attempts > 1): at-least-once execution after a kill, not a duplicate application. */
  stepsRerun: number;
  /** Soak tasks that exist although no creation was acknowledged (a creation that gave up after its task was made). */
  unacknowledged: number;
}

/** Waits until no accepted task is unfinished, or until `timeoutMs`; the number still unfinished. */
export async function drain(db: Queryable, taskUuids: readonly string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const unfinished = await db
      .query<{ n: number }>(
        `SELECT $2::int - count(*)::int AS n FROM tasker.tasks
          WHERE task_uuid = ANY($1::uuid[]) AND current_state = ANY($3::text[])`,
        [taskUuids, taskUuids.length, TERMINAL],
      )
      .then((r) => r.rows[0]?.n ?? taskUuids.length)
      .catch(() => taskUuids.length);
    if (unfinished === 0 || Date.now() > deadline) return unfinished;
    await sleep(500);
  }
}

export async function verify(db: Queryable, accepted: readonly AcceptedTask[]): Promise<Verdict> {
  // One creation answered twice (a replay) is one task: count each uuid once.
  const byUuid = new Map(accepted.map((t) => [t.taskUuid, t]));
  const uuids = [...byUuid.keys()];
  const states = await db.query<{ task_uuid: string; current_state: string }>(
    'SELECT task_uuid, current_state FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[])',
    [uuids],
  );
  const stateOf = new Map(states.rows.map((r) => [r.task_uuid, r.current_state]));
  const lost = uuids.filter((u) => !TERMINAL.includes(stateOf.get(u) ?? 'missing'));
  const failed = uuids
    .filter((u) => TERMINAL.includes(stateOf.get(u) ?? '') && stateOf.get(u) !== 'complete')
    .map((u) => `${u} ${stateOf.get(u)}`);
  const complete = uuids.filter((u) => stateOf.get(u) === 'complete');

  const steps = await db.query<{ task_uuid: string; name: string; value: unknown }>(
    `SELECT task_uuid, name::text AS name, results -> 'value' AS value FROM tasker.workflow_steps
      WHERE task_uuid = ANY($1::uuid[])`,
    [complete],
  );
  const found = new Map<string, Map<string, unknown>>();
  for (const row of steps.rows) {
    const values = found.get(row.task_uuid) ?? new Map<string, unknown>();
    values.set(row.name, row.value);
    found.set(row.task_uuid, values);
  }
  const wrong: string[] = [];
  for (const uuid of complete) {
    const task = byUuid.get(uuid) as AcceptedTask;
    const values = found.get(uuid) ?? new Map<string, unknown>();
    for (const [step, expected] of Object.entries(task.expected)) {
      const value = values.get(step);
      if (value !== expected) wrong.push(`${uuid} ${step}=${JSON.stringify(value)} (${expected})`);
    }
    if (values.size !== Object.keys(task.expected).length)
      wrong.push(
        `${uuid} has ${values.size} steps, ${task.workflow} has ${Object.keys(task.expected).length}`,
      );
  }

  const twiceTerminal = await db.query<{ kind: string; n: number }>(
    `SELECT 'step' AS kind, count(*)::int AS n FROM (
       SELECT 1 FROM tasker.workflow_step_transitions t JOIN tasker.workflow_steps s USING (workflow_step_uuid)
        WHERE s.task_uuid = ANY($1::uuid[]) AND t.to_state = ANY($2::text[])
        GROUP BY t.workflow_step_uuid HAVING count(*) > 1) d
     UNION ALL
     SELECT 'task', count(*)::int FROM (
       SELECT 1 FROM tasker.task_transitions t
        WHERE t.task_uuid = ANY($1::uuid[]) AND t.to_state = ANY($2::text[])
        GROUP BY t.task_uuid HAVING count(*) > 1) d`,
    [uuids, TERMINAL],
  );
  const storedTwice = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       SELECT 1 FROM tasker.workflow_step_result_audit WHERE task_uuid = ANY($1::uuid[])
        GROUP BY workflow_step_uuid, attempt HAVING count(*) > 1) d`,
    [uuids],
  );
  const rerun = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM tasker.workflow_steps WHERE task_uuid = ANY($1::uuid[]) AND attempts > 1',
    [uuids],
  );
  const unacknowledged = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasker.tasks WHERE tags ? $2 AND NOT (task_uuid = ANY($1::uuid[]))`,
    [uuids, SOAK_TAG],
  );
  const invalidHistories: string[] = [];
  for (const uuid of complete) invalidHistories.push(...(await historyProblems(db, uuid)));

  const count = (kind: string): number => twiceTerminal.rows.find((r) => r.kind === kind)?.n ?? 0;
  return {
    accepted: uuids.length,
    completed: complete.length,
    failed,
    lost,
    wrong,
    stepsTerminalTwice: count('step'),
    tasksTerminalTwice: count('task'),
    resultsStoredTwice: storedTwice.rows[0]?.n ?? 0,
    invalidHistories,
    stepsRerun: rerun.rows[0]?.n ?? 0,
    unacknowledged: unacknowledged.rows[0]?.n ?? 0,
  };
}
