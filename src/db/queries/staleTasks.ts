import type { Queryable } from '../database.ts';

/** One consistent set of thresholds for every orchestrator; templates override them with `lifecycle`. */
export interface StalenessThresholds {
  /** pending and waiting_for_dependencies. */
  waitingForDependenciesMinutes: number;
  waitingForRetryMinutes: number;
  /** steps_in_process and the other active states (initializing, enqueuing_steps, evaluating_results, ...). */
  stepsInProcessMinutes: number;
  /** Any unfinished task older than this is stale, whatever its state. */
  taskMaxLifetimeMinutes: number;
}

export interface StaleTaskRow {
  task_uuid: string;
  namespace: string;
  name: string;
  state: string;
  minutes_in_state: number;
  threshold_minutes: number;
  reason: 'staleness_timeout';
  action: 'moved_to_error' | 'would_move' | 'lost_race';
}

/**
 * One sweep of tasker.detect_stale_tasks: up to `batchSize` stale tasks get a pending DLQ entry and move to
 * error (or, dry run, are only reported). Locks each task FOR UPDATE SKIP LOCKED, so detectors of several
 * orchestrators never move a task twice; a task another detector holds is reported as 'lost_race'.
 * The whole sweep is one commit.
 */
export async function detectStaleTasks(
  db: Queryable,
  options: {
    thresholds: StalenessThresholds;
    batchSize: number;
    dryRun: boolean;
    processorUuid: string | null;
  },
): Promise<StaleTaskRow[]> {
  const { thresholds } = options;
  const { rows } = await db.query<StaleTaskRow>(
    `SELECT task_uuid, namespace, name, state, minutes_in_state, threshold_minutes, reason, action
     FROM tasker.detect_stale_tasks($1, $2, $3, $4, $5, $6, $7)`,
    [
      options.dryRun,
      options.batchSize,
      thresholds.waitingForDependenciesMinutes,
      thresholds.waitingForRetryMinutes,
      thresholds.stepsInProcessMinutes,
      thresholds.taskMaxLifetimeMinutes,
      options.processorUuid,
    ],
    { name: 'tasker_detect_stale_tasks' },
  );
  return rows;
}
