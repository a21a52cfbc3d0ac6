/**
 * Checks shared by the end-to-end cluster tests: waiting for tasks to finish over HTTP, the values that flowed
 * along the edges, and exactly-once result application read from the database.
 */
import { expect } from 'vitest';
import type { TaskerClient, TaskView } from '../../../src/client/taskerClient.ts';
import type { Database } from '../../../src/db/database.ts';
import { historyProblems } from '../engine/inspect.ts';
import { sleep } from '../engine/wait.ts';

const TERMINAL = ['complete', 'error', 'cancelled', 'resolved_manually'];

export function stepValues(task: TaskView): Record<string, unknown> {
  return Object.fromEntries(
    (task.steps ?? [])
      .filter((s) => s.status === 'complete')
      .map((s) => [s.name, (s.result as { value?: unknown } | null)?.value]),
  );
}

export async function awaitTerminal(
  client: TaskerClient,
  taskUuid: string,
  timeoutMs = 60_000,
): Promise<TaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await client.getTask(taskUuid);
    if (TERMINAL.includes(task.status)) return task;
    if (Date.now() > deadline) {
      throw new Error(
        `task ${taskUuid} is still ${task.status} after ${timeoutMs} ms: ` +
          (task.steps ?? []).map((s) => `${s.name}=${s.status}(${s.attempts})`).join(', '),
      );
    }
    await sleep(50);
  }
}

/**
 * Exactly-once result application: every history is a valid chain of allowed transitions, no step or task
 * reached a terminal state twice, and no attempt of a step has two stored results.
 */
export async function assertAppliedOnce(db: Database, taskUuids: readonly string[]): Promise<void> {
  for (const taskUuid of taskUuids) expect(await historyProblems(db, taskUuid), taskUuid).toEqual([]);
  const twiceTerminal = await db.query<{ step: string; to_state: string; n: number }>(
    `SELECT t.workflow_step_uuid AS step, t.to_state, count(*)::int AS n
       FROM tasker.workflow_step_transitions t JOIN tasker.workflow_steps s USING (workflow_step_uuid)
      WHERE s.task_uuid = ANY($1::uuid[]) AND t.to_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
      GROUP BY 1, 2 HAVING count(*) > 1
     UNION ALL
     SELECT t.task_uuid, t.to_state, count(*)::int
       FROM tasker.task_transitions t
      WHERE t.task_uuid = ANY($1::uuid[]) AND t.to_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
      GROUP BY 1, 2 HAVING count(*) > 1`,
    [taskUuids],
  );
  expect(twiceTerminal.rows).toEqual([]);
  const twiceStored = await db.query<{ step: string; attempt: number; n: number }>(
    `SELECT workflow_step_uuid AS step, attempt, count(*)::int AS n
       FROM tasker.workflow_step_result_audit WHERE task_uuid = ANY($1::uuid[])
      GROUP BY 1, 2 HAVING count(*) > 1`,
    [taskUuids],
  );
  expect(twiceStored.rows).toEqual([]);
}
