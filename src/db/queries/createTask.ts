import type { Queryable } from '../database.ts';

export interface NewTaskRow {
  task_uuid: string;
  named_task_uuid: string;
  namespace_name: string;
  context: unknown;
  identity_hash: string;
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  tags: string[];
  priority: number;
  correlation_id: string;
  parent_correlation_id: string | null;
  requested_at: string | null;
  processor_uuid: string | null;
}

export interface NewStepRow {
  workflow_step_uuid: string;
  name: string;
  handler_callable: string;
  inputs: Record<string, unknown>;
  retryable: boolean;
  max_attempts: number;
  backoff_strategy: string;
  backoff_base_ms: number;
  max_backoff_ms: number;
  timeout_seconds: number | null;
}

export interface CreatedTask {
  taskUuid: string;
  state: string;
  enqueuedSteps: number;
}

/**
 * One round trip, one commit: the task, its steps, edges and transitions, and the root steps enqueued
 * (tasker.create_task). `requestMsgId` archives the orchestration_task_requests message in the same commit.
 * A duplicate identity raises unique_violation on constraint tasks_identity_hash_key.
 */
export async function insertTask(
  db: Queryable,
  task: NewTaskRow,
  steps: NewStepRow[],
  edges: { from: string; to: string }[],
  requestMsgId?: string,
): Promise<CreatedTask> {
  const { rows } = await db.query<{ task_uuid: string; current_state: string; enqueued_steps: number }>(
    'SELECT task_uuid, current_state, enqueued_steps FROM tasker.create_task($1::jsonb, $2::jsonb, $3::jsonb, $4::bigint)',
    [JSON.stringify(task), JSON.stringify(steps), JSON.stringify(edges), requestMsgId ?? null],
    { name: 'tasker_create_task' },
  );
  const row = rows[0];
  if (row === undefined) throw new Error('tasker.create_task returned no row');
  return { taskUuid: row.task_uuid, state: row.current_state, enqueuedSteps: row.enqueued_steps };
}
