/** Reads the engine's tables the way a test asserts on them: tasks, steps, transitions, audit, queues. */
import type { Queryable } from '../../../src/db/database.ts';

export interface TaskRow {
  task_uuid: string;
  current_state: string;
  complete: boolean;
  completed_at: Date | null;
  context: Record<string, unknown>;
  identity_hash: string;
}

export interface StepRow {
  workflow_step_uuid: string;
  name: string;
  current_state: string;
  attempts: number;
  max_attempts: number;
  results: unknown;
  last_error: Record<string, unknown> | null;
  next_retry_at: Date | null;
  claimed_by: string | null;
  processed: boolean;
  in_process: boolean;
}

export interface TransitionRow {
  /** The step's uuid for step transitions, the task's for task transitions. */
  entity_uuid: string;
  /** The step's name (step transitions only). */
  step_name: string | null;
  from_state: string | null;
  to_state: string;
  metadata: Record<string, unknown>;
  sort_key: number;
  most_recent: boolean;
  processor_uuid: string | null;
  /** created_at in epoch milliseconds, with the microseconds kept as a fraction. */
  at_ms: number;
}

export async function taskRow(db: Queryable, taskUuid: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(
    `SELECT task_uuid, current_state, complete, completed_at, context, identity_hash
     FROM tasker.tasks WHERE task_uuid = $1`,
    [taskUuid],
  );
  return rows[0];
}

/** The task's steps by name. */
export async function stepsByName(db: Queryable, taskUuid: string): Promise<Record<string, StepRow>> {
  const { rows } = await db.query<StepRow>(
    `SELECT workflow_step_uuid, name, current_state, attempts, max_attempts, results, last_error, next_retry_at,
            claimed_by, processed, in_process
     FROM tasker.workflow_steps WHERE task_uuid = $1 ORDER BY name`,
    [taskUuid],
  );
  return Object.fromEntries(rows.map((row) => [row.name, row]));
}

/** `{ step: state }` for every step: a compact thing to compare with toEqual. */
export async function stepStates(db: Queryable, taskUuid: string): Promise<Record<string, string>> {
  const steps = await stepsByName(db, taskUuid);
  return Object.fromEntries(Object.values(steps).map((s) => [s.name, s.current_state]));
}

/** `{ step: value }` from each step's `results.value` (the math handlers' output). */
export async function stepValues(db: Queryable, taskUuid: string): Promise<Record<string, unknown>> {
  const steps = await stepsByName(db, taskUuid);
  return Object.fromEntries(
    Object.values(steps).map((s) => [
      s.name,
      typeof s.results === 'object' && s.results !== null ? (s.results as { value?: unknown }).value : null,
    ]),
  );
}

export async function taskTransitions(db: Queryable, taskUuid: string): Promise<TransitionRow[]> {
  const { rows } = await db.query<TransitionRow>(
    `SELECT task_uuid AS entity_uuid, NULL::text AS step_name, from_state, to_state, metadata, sort_key, most_recent,
            processor_uuid, (extract(epoch FROM created_at) * 1000)::float8 AS at_ms
     FROM tasker.task_transitions WHERE task_uuid = $1 ORDER BY sort_key`,
    [taskUuid],
  );
  return rows;
}

/** Every step transition of the task, grouped by step in sort_key order. */
export async function stepTransitions(db: Queryable, taskUuid: string): Promise<TransitionRow[]> {
  const { rows } = await db.query<TransitionRow>(
    `SELECT t.workflow_step_uuid AS entity_uuid, s.name::text AS step_name, t.from_state, t.to_state, t.metadata,
            t.sort_key, t.most_recent, NULL::uuid AS processor_uuid,
            (extract(epoch FROM t.created_at) * 1000)::float8 AS at_ms
     FROM tasker.workflow_step_transitions t JOIN tasker.workflow_steps s USING (workflow_step_uuid)
     WHERE s.task_uuid = $1 ORDER BY s.name, t.sort_key`,
    [taskUuid],
  );
  return rows;
}

/** One step's transitions in sort_key order. */
export async function transitionsOfStep(
  db: Queryable,
  taskUuid: string,
  name: string,
): Promise<TransitionRow[]> {
  return (await stepTransitions(db, taskUuid)).filter((t) => t.step_name === name);
}

/**
 * What is wrong with one entity's transition history (empty when nothing is): sort keys 1..n in order, each
 * from_state equal to the previous to_state, exactly one most_recent and it is the last one, and the last
 * to_state equal to the entity's current state. created_at is deliberately not compared: it is the writing
 * transaction's start (now()), and a statement that began before the previous transition's commit (its
 * backend descheduled before reading the queue) stamps an earlier time on a later transition.
 */
function transitionChainProblems(
  label: string,
  rows: readonly TransitionRow[],
  currentState: string,
): string[] {
  const problems: string[] = [];
  if (rows.length === 0) return [`${label}: no transitions`];
  rows.forEach((row, index) => {
    if (row.sort_key !== index + 1)
      problems.push(`${label}: sort_key ${row.sort_key} at position ${index + 1}`);
    const previous = index === 0 ? undefined : rows[index - 1];
    if (previous === undefined) {
      if (row.from_state !== null) problems.push(`${label}: first transition starts from ${row.from_state}`);
    } else {
      if (row.from_state !== previous.to_state)
        problems.push(
          `${label}: transition ${row.sort_key} goes ${row.from_state} -> ${row.to_state} after ${previous.to_state}`,
        );
    }
  });
  const mostRecent = rows.filter((row) => row.most_recent);
  if (mostRecent.length !== 1) problems.push(`${label}: ${mostRecent.length} most_recent transitions`);
  const last = rows[rows.length - 1];
  if (last !== undefined && !last.most_recent)
    problems.push(`${label}: the last transition is not most_recent`);
  if (last !== undefined && last.to_state !== currentState)
    problems.push(`${label}: last transition to ${last.to_state} but current_state is ${currentState}`);
  return problems;
}

/** Transition-history problems of the task and of every one of its steps (empty when consistent). */
export async function historyProblems(db: Queryable, taskUuid: string): Promise<string[]> {
  const task = await taskRow(db, taskUuid);
  if (task === undefined) return [`task ${taskUuid} does not exist`];
  const problems = transitionChainProblems(
    `task ${taskUuid}`,
    await taskTransitions(db, taskUuid),
    task.current_state,
  );
  const steps = await stepsByName(db, taskUuid);
  const transitions = await stepTransitions(db, taskUuid);
  for (const step of Object.values(steps)) {
    problems.push(
      ...transitionChainProblems(
        `step ${step.name} of ${taskUuid}`,
        transitions.filter((t) => t.entity_uuid === step.workflow_step_uuid),
        step.current_state,
      ),
    );
  }
  return problems;
}

/**
 * Steps that entered the same state more than once, as "task/step -> state xN" (empty when none did): on a
 * happy path every step enters pending, enqueued, in_progress, enqueued_*_for_orchestration and complete
 * exactly once.
 */
export async function duplicateStepTransitions(
  db: Queryable,
  taskUuids: readonly string[],
): Promise<string[]> {
  const { rows } = await db.query<{ task_uuid: string; name: string; to_state: string; n: number }>(
    `SELECT s.task_uuid, s.name::text AS name, t.to_state, count(*)::int AS n
     FROM tasker.workflow_step_transitions t JOIN tasker.workflow_steps s USING (workflow_step_uuid)
     WHERE s.task_uuid = ANY($1::uuid[])
     GROUP BY s.task_uuid, s.name, t.workflow_step_uuid, t.to_state HAVING count(*) > 1
     ORDER BY 1, 2, 3`,
    [taskUuids],
  );
  return rows.map((row) => `${row.task_uuid}/${row.name} -> ${row.to_state} x${row.n}`);
}

/** Tasks that entered the same state more than once, as "task -> state xN". */
export async function duplicateTaskTransitions(
  db: Queryable,
  taskUuids: readonly string[],
): Promise<string[]> {
  const { rows } = await db.query<{ task_uuid: string; to_state: string; n: number }>(
    `SELECT task_uuid, to_state, count(*)::int AS n FROM tasker.task_transitions
     WHERE task_uuid = ANY($1::uuid[]) GROUP BY task_uuid, to_state HAVING count(*) > 1 ORDER BY 1, 2`,
    [taskUuids],
  );
  return rows.map((row) => `${row.task_uuid} -> ${row.to_state} x${row.n}`);
}

export interface AuditRow {
  step_name: string;
  worker_uuid: string | null;
  success: boolean;
  attempt: number;
  execution_time_ms: number | null;
  /** recorded_at in epoch milliseconds. */
  at_ms: number;
}

/** workflow_step_result_audit rows of the task, oldest first. */
export async function resultAudit(db: Queryable, taskUuid: string): Promise<AuditRow[]> {
  const { rows } = await db.query<AuditRow>(
    `SELECT s.name::text AS step_name, a.worker_uuid, a.success, a.attempt, a.execution_time_ms,
            (extract(epoch FROM a.recorded_at) * 1000)::float8 AS at_ms
     FROM tasker.workflow_step_result_audit a JOIN tasker.workflow_steps s USING (workflow_step_uuid)
     WHERE a.task_uuid = $1 ORDER BY a.recorded_at, s.name`,
    [taskUuid],
  );
  return rows;
}

const QUEUE = /^[a-z_][a-z0-9_]*$/;

/** Messages in a queue (`total`) and those a read could take now (`visible`), straight from its table. */
export async function queueCounts(db: Queryable, queue: string): Promise<{ total: number; visible: number }> {
  if (!QUEUE.test(queue)) throw new Error(`not a queue name: ${queue}`);
  const { rows } = await db.query<{ total: number; visible: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE vt <= clock_timestamp())::int AS visible FROM pgmq.q_${queue}`,
  );
  return rows[0] ?? { total: 0, visible: 0 };
}

/** Messages archived from a queue (its a_ table). */
export async function archivedMessages<T = unknown>(
  db: Queryable,
  queue: string,
): Promise<{ msg_id: string; message: T }[]> {
  if (!QUEUE.test(queue)) throw new Error(`not a queue name: ${queue}`);
  const { rows } = await db.query<{ msg_id: string; message: T }>(
    `SELECT msg_id::text AS msg_id, message FROM pgmq.a_${queue} ORDER BY msg_id`,
  );
  return rows;
}

export async function countTasks(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasker.tasks');
  return rows[0]?.n ?? 0;
}

/**
 * Rows that point at a task, step or transition that does not exist, per kind (the engine's tables have no
 * foreign keys, docs/decisions/0009-engine-tables-without-foreign-keys.md; tasker's functions are what keeps
 * these at zero).
 */
export async function orphanRows(db: Queryable): Promise<Record<string, number>> {
  const { rows } = await db.query<{ kind: string; n: string }>(
    `SELECT 'tasks without template' AS kind, count(*) AS n FROM tasker.tasks t
       WHERE NOT EXISTS (SELECT 1 FROM tasker.named_tasks nt WHERE nt.named_task_uuid = t.named_task_uuid)
     UNION ALL SELECT 'steps without task', count(*) FROM tasker.workflow_steps s
       WHERE NOT EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = s.task_uuid)
     UNION ALL SELECT 'edges without step', count(*) FROM tasker.workflow_step_edges e
       WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = e.from_step_uuid)
          OR NOT EXISTS (SELECT 1 FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = e.to_step_uuid)
     UNION ALL SELECT 'task transitions without task', count(*) FROM tasker.task_transitions tt
       WHERE NOT EXISTS (SELECT 1 FROM tasker.tasks t WHERE t.task_uuid = tt.task_uuid)
     UNION ALL SELECT 'step transitions without step', count(*) FROM tasker.workflow_step_transitions st
       WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_steps s WHERE s.workflow_step_uuid = st.workflow_step_uuid)
     UNION ALL SELECT 'audit rows without step, transition or task', count(*) FROM tasker.workflow_step_result_audit a
       WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_steps s
                         WHERE s.workflow_step_uuid = a.workflow_step_uuid AND s.task_uuid = a.task_uuid)
          OR NOT EXISTS (SELECT 1 FROM tasker.workflow_step_transitions st
                         WHERE st.workflow_step_transition_uuid = a.workflow_step_transition_uuid
                           AND st.workflow_step_uuid = a.workflow_step_uuid)`,
  );
  return Object.fromEntries(rows.map((row) => [row.kind, Number(row.n)]));
}
