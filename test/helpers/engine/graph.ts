/** The step graph of a task as stored, for checking that execution respected it. */
import type { Queryable } from '../../../src/db/database.ts';
import type { Execution } from './recorder.ts';

export interface Edge {
  from: string;
  to: string;
}

/** The task's edges by step name. */
export async function edgesOf(db: Queryable, taskUuid: string): Promise<Edge[]> {
  const { rows } = await db.query<Edge>(
    `SELECT p.name::text AS "from", c.name::text AS "to"
     FROM tasker.workflow_step_edges e
     JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
     JOIN tasker.workflow_steps c ON c.workflow_step_uuid = e.to_step_uuid
     WHERE c.task_uuid = $1 ORDER BY 1, 2`,
    [taskUuid],
  );
  return rows;
}

/**
 * Edges whose child handler started before its parent's successful handler run had returned, as
 * "parent -> child" lines (empty when every child waited for its parents). Uses the recorded handler
 * times, which are causal; transition created_at is the transaction's start time and is not (a claim
 * whose statement began before the parent's commit carries the earlier time).
 */
export function dependencyOrderViolations(
  edges: readonly Edge[],
  executions: readonly Execution[],
): string[] {
  const violations: string[] = [];
  for (const edge of edges) {
    const parentDone = executions.find((e) => e.stepName === edge.from && e.outcome === 'success')?.endedAt;
    const childStarts = executions.filter((e) => e.stepName === edge.to).map((e) => e.startedAt);
    const firstChildStart = childStarts.length === 0 ? undefined : Math.min(...childStarts);
    if (
      parentDone === undefined ||
      parentDone === null ||
      firstChildStart === undefined ||
      firstChildStart < parentDone
    )
      violations.push(
        `${edge.from} (done at ${parentDone ?? 'never'}) -> ${edge.to} (started at ${firstChildStart ?? 'never'})`,
      );
  }
  return violations;
}
