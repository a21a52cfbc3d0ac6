import type { Queryable } from '../database.ts';
import { stepViewsJsonSql } from './stepViews.ts';
import type { StepViewRow } from './stepViews.ts';

/** A task with its execution context (reference §3.2) and its steps: what GET /v1/tasks/{uuid} shows. */
export interface TaskViewRow {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  context: Record<string, unknown>;
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  priority: number;
  tags: string[];
  correlation_id: string;
  parent_correlation_id: string | null;
  total_steps: number;
  pending_steps: number;
  in_progress_steps: number;
  completed_steps: number;
  failed_steps: number;
  ready_steps: number;
  execution_status: string;
  recommended_action: string;
  completion_percentage: number;
  health_status: string;
  steps: StepViewRow[];
}

const TASK_VIEW_SQL = `SELECT t.task_uuid, t.namespace_name AS namespace, nt.name, nt.version, t.current_state AS status,
       t.created_at, t.updated_at, t.completed_at, t.context, t.initiator, t.source_system, t.reason, t.priority,
       t.tags, t.correlation_id, t.parent_correlation_id,
       ec.total_steps, ec.pending_steps, ec.in_progress_steps, ec.completed_steps, ec.failed_steps, ec.ready_steps,
       ec.execution_status, ec.recommended_action, ec.completion_percentage::float8 AS completion_percentage,
       ec.health_status,
       ${stepViewsJsonSql('t.task_uuid')} AS steps
FROM tasker.tasks t
JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
CROSS JOIN LATERAL tasker.get_task_execution_context(t.task_uuid) ec
WHERE t.task_uuid = $1`;

/** The task view in one round trip (a named statement, planned once per connection), or undefined. */
export async function getTaskView(db: Queryable, taskUuid: string): Promise<TaskViewRow | undefined> {
  const { rows } = await db.query<TaskViewRow>(TASK_VIEW_SQL, [taskUuid], { name: 'tasker_api_task_view' });
  return rows[0];
}

/** A step row without readiness and dependency names (see TaskSnapshotRow). */
type StepSnapshotRow = Omit<
  StepViewRow,
  'dependencies' | 'ready' | 'dependencies_satisfied' | 'retry_eligible'
>;

/** The task's own fields and its step rows, without the execution context: see getTaskSnapshot. */
export type TaskSnapshotRow = Omit<
  TaskViewRow,
  | 'steps'
  | 'total_steps'
  | 'pending_steps'
  | 'in_progress_steps'
  | 'completed_steps'
  | 'failed_steps'
  | 'ready_steps'
  | 'execution_status'
  | 'recommended_action'
  | 'completion_percentage'
  | 'health_status'
> & { steps: StepSnapshotRow[] };

// Primary-key lookups only: no readiness function, no edge walk (those cost 3x as much, measured).
const TASK_SNAPSHOT_SQL = `SELECT t.task_uuid, t.namespace_name AS namespace, nt.name, nt.version, t.current_state AS status,
       t.created_at, t.updated_at, t.completed_at, t.context, t.initiator, t.source_system, t.reason, t.priority,
       t.tags, t.correlation_id, t.parent_correlation_id,
       (SELECT coalesce(json_agg(json_build_object(
           'step_uuid', s.workflow_step_uuid, 'task_uuid', s.task_uuid, 'name', s.name, 'status', s.current_state,
           'handler', s.handler_callable, 'attempts', s.attempts, 'max_attempts', s.max_attempts,
           'retryable', s.retryable, 'timeout_seconds', s.timeout_seconds, 'next_retry_at', s.next_retry_at,
           'created_at', s.created_at, 'updated_at', s.updated_at, 'last_attempted_at', s.last_attempted_at,
           'completed_at', s.processed_at, 'result', s.results, 'error', s.last_error)
         ORDER BY s.workflow_step_uuid), '[]'::json)
        FROM tasker.workflow_steps s WHERE s.task_uuid = t.task_uuid) AS steps
FROM tasker.tasks t
JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
WHERE t.task_uuid = $1`;

/**
 * The task and its step rows in one cheap round trip, for the answer to task creation (a hot path): the
 * caller adds dependency names from the template it just used and derives readiness and counters in
 * memory, instead of running the readiness SQL of getTaskView.
 */
export async function getTaskSnapshot(db: Queryable, taskUuid: string): Promise<TaskSnapshotRow | undefined> {
  const { rows } = await db.query<TaskSnapshotRow>(TASK_SNAPSHOT_SQL, [taskUuid], {
    name: 'tasker_api_task_snapshot',
  });
  return rows[0];
}

export interface TaskListFilter {
  namespace?: string;
  name?: string;
  statuses?: readonly string[];
  createdAfter?: Date;
  createdBefore?: Date;
  /** 1-based. */
  page: number;
  perPage: number;
}

/** A row of GET /v1/tasks: the task without context and steps, with step counts. */
export interface TaskSummaryRow {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  status: string;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  priority: number;
  tags: string[];
  correlation_id: string;
  total_steps: number;
  completed_steps: number;
  failed_steps: number;
  /** completed_steps of total_steps, 0..100 with 2 decimals: the task view's formula (readiness.sql). */
  completion_percentage: number;
}

// One round trip: the count of all matches and one page of them. The count row is LEFT JOINed to the page
// so a page past the end still says how many tasks match.
const TASK_LIST_SQL = `WITH filtered AS (
  SELECT t.task_uuid, t.namespace_name AS namespace, nt.name, nt.version, t.current_state AS status, t.created_at,
         t.updated_at, t.completed_at, t.initiator, t.source_system, t.reason, t.priority, t.tags, t.correlation_id
  FROM tasker.tasks t JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
  WHERE ($1::text IS NULL OR t.namespace_name = $1)
    AND ($2::text IS NULL OR nt.name = $2)
    AND ($3::text[] IS NULL OR t.current_state = ANY ($3))
    AND ($4::timestamptz IS NULL OR t.created_at >= $4)
    AND ($5::timestamptz IS NULL OR t.created_at < $5)
), page AS (
  SELECT * FROM filtered ORDER BY created_at DESC, task_uuid DESC LIMIT $6 OFFSET $7
)
SELECT c.total_count, p.*, sc.total_steps, sc.completed_steps, sc.failed_steps,
       CASE WHEN sc.total_steps = 0 THEN 0
            ELSE round(sc.completed_steps * 100.0 / sc.total_steps, 2) END::float8 AS completion_percentage
FROM (SELECT count(*)::int AS total_count FROM filtered) c
LEFT JOIN page p ON true
LEFT JOIN LATERAL (
  SELECT count(*)::int AS total_steps,
         count(*) FILTER (WHERE s.current_state IN ('complete', 'resolved_manually'))::int AS completed_steps,
         count(*) FILTER (WHERE s.current_state = 'error')::int AS failed_steps
  FROM tasker.workflow_steps s WHERE s.task_uuid = p.task_uuid
) sc ON p.task_uuid IS NOT NULL
ORDER BY p.created_at DESC, p.task_uuid DESC`;

/** One page of tasks, newest first, and how many tasks match the filter in all. */
export async function listTaskSummaries(
  db: Queryable,
  filter: TaskListFilter,
): Promise<{ total: number; tasks: TaskSummaryRow[] }> {
  const { rows } = await db.query<TaskSummaryRow & { total_count: number }>(
    TASK_LIST_SQL,
    [
      filter.namespace ?? null,
      filter.name ?? null,
      filter.statuses !== undefined && filter.statuses.length > 0 ? [...filter.statuses] : null,
      filter.createdAfter ?? null,
      filter.createdBefore ?? null,
      filter.perPage,
      (filter.page - 1) * filter.perPage,
    ],
    { name: 'tasker_api_task_list' },
  );
  const total = rows[0]?.total_count ?? 0;
  const tasks = rows.filter((row) => row.task_uuid !== null).map(({ total_count: _total, ...task }) => task);
  return { total, tasks };
}
