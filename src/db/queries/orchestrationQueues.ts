import type { Queryable } from '../database.ts';

/**
 * Applies up to `limit` step results from orchestration_step_results, each exactly once, archiving the
 * messages in the same commit (tasker.process_step_results). Returns how many messages it handled.
 */
export async function processStepResults(
  db: Queryable,
  limit: number,
  visibilitySeconds: number,
  processorUuid: string,
): Promise<number> {
  const { rows } = await db.query<{ handled: number }>(
    'SELECT tasker.process_step_results($1, $2, $3) AS handled',
    [limit, visibilitySeconds, processorUuid],
    { name: 'tasker_process_step_results' },
  );
  return rows[0]?.handled ?? 0;
}

/** Re-evaluates the tasks named in orchestration_task_finalizations messages; returns messages handled. */
export async function processFinalizationRequests(
  db: Queryable,
  limit: number,
  visibilitySeconds: number,
  processorUuid: string,
): Promise<number> {
  const { rows } = await db.query<{ handled: number }>(
    'SELECT tasker.process_finalization_requests($1, $2, $3) AS handled',
    [limit, visibilitySeconds, processorUuid],
    { name: 'tasker_process_finalizations' },
  );
  return rows[0]?.handled ?? 0;
}

export type CancelOutcome =
  | 'cancelled'
  | 'not_found'
  | 'already_complete'
  | 'already_error'
  | 'already_cancelled'
  | 'already_resolved_manually';

/** Cancels a task and its unfinished steps; otherwise says which terminal state it was already in. */
export async function cancelTask(
  db: Queryable,
  taskUuid: string,
  processorUuid: string | null,
): Promise<CancelOutcome> {
  const { rows } = await db.query<{ outcome: CancelOutcome }>(
    'SELECT tasker.cancel_task($1, $2) AS outcome',
    [taskUuid, processorUuid],
  );
  return rows[0]?.outcome ?? 'not_found';
}
