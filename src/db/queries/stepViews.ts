import type { Queryable } from '../database.ts';

/**
 * A step as operators and the REST API see it: its row, the names of its parents, and its readiness
 * (tasker.get_step_readiness_status). Timestamps are JSON text (built inside PostgreSQL), ISO-8601.
 */
export interface StepViewRow {
  step_uuid: string;
  task_uuid: string;
  name: string;
  status: string;
  handler: string;
  dependencies: string[];
  attempts: number;
  max_attempts: number;
  retryable: boolean;
  ready: boolean;
  dependencies_satisfied: boolean;
  retry_eligible: boolean;
  timeout_seconds: number | null;
  next_retry_at: string | null;
  created_at: string;
  updated_at: string;
  last_attempted_at: string | null;
  completed_at: string | null;
  result: unknown;
  error: unknown;
}

/**
 * JSON array of the step views of the task `taskExpression` (an SQL expression), optionally narrowed by
 * `stepFilter` (an SQL condition on `s`). Shared by the task view so both answer with the same shape.
 */
export function stepViewsJsonSql(taskExpression: string, stepFilter = 'true'): string {
  return `(SELECT coalesce(json_agg(json_build_object(
      'step_uuid', s.workflow_step_uuid, 'task_uuid', s.task_uuid, 'name', s.name, 'status', s.current_state,
      'handler', s.handler_callable, 'dependencies', coalesce(d.names, '[]'::json),
      'attempts', s.attempts, 'max_attempts', s.max_attempts, 'retryable', s.retryable,
      'ready', r.ready_for_execution, 'dependencies_satisfied', r.dependencies_satisfied,
      'retry_eligible', r.retry_eligible, 'timeout_seconds', s.timeout_seconds,
      'next_retry_at', s.next_retry_at, 'created_at', s.created_at, 'updated_at', s.updated_at,
      'last_attempted_at', s.last_attempted_at, 'completed_at', s.processed_at,
      'result', s.results, 'error', s.last_error) ORDER BY s.workflow_step_uuid), '[]'::json)
    FROM tasker.get_step_readiness_status(${taskExpression}) r
    JOIN tasker.workflow_steps s ON s.workflow_step_uuid = r.workflow_step_uuid
    LEFT JOIN LATERAL (
      SELECT json_agg(p.name ORDER BY p.name) AS names
      FROM tasker.workflow_step_edges e JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
      WHERE e.to_step_uuid = s.workflow_step_uuid
    ) d ON true
    WHERE ${stepFilter})`;
}

const STEP_VIEWS_SQL = `SELECT EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = $1) AS task_exists,
  ${stepViewsJsonSql('$1')} AS steps`;

const STEP_VIEW_SQL = `SELECT EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = $1) AS task_exists,
  ${stepViewsJsonSql('$1', 's.workflow_step_uuid = $2')} AS steps`;

const STEP_VIEW_BY_NAME_SQL = `SELECT EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = $1) AS task_exists,
  ${stepViewsJsonSql('$1', 's.name = $2')} AS steps`;

/** Every step of a task in creation order, or undefined when there is no such task. One round trip. */
export async function listStepViews(db: Queryable, taskUuid: string): Promise<StepViewRow[] | undefined> {
  const { rows } = await db.query<{ task_exists: boolean; steps: StepViewRow[] }>(
    STEP_VIEWS_SQL,
    [taskUuid],
    {
      name: 'tasker_api_step_views',
    },
  );
  const row = rows[0];
  return row?.task_exists === true ? row.steps : undefined;
}

/**
 * One step of a task, by its UUID or (`by: 'name'`) by its name, which is unique within a task; says whether
 * the task exists when the step is not found in it. One round trip.
 */
export async function getStepView(
  db: Queryable,
  taskUuid: string,
  step: string,
  by: 'uuid' | 'name' = 'uuid',
): Promise<{ taskExists: boolean; step: StepViewRow | undefined }> {
  const { rows } = await db.query<{ task_exists: boolean; steps: StepViewRow[] }>(
    by === 'uuid' ? STEP_VIEW_SQL : STEP_VIEW_BY_NAME_SQL,
    [taskUuid, step],
    { name: by === 'uuid' ? 'tasker_api_step_view' : 'tasker_api_step_view_by_name' },
  );
  const row = rows[0];
  return { taskExists: row?.task_exists === true, step: row?.steps[0] };
}
