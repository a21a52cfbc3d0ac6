/**
 * Helpers of the operator tests: templates written inline, a "manual worker" that claims and completes steps
 * from the test itself (deterministic: nothing runs unless the test says so), and time travel for staleness
 * (backdating transitions rather than waiting an hour).
 */
import type { Queryable } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import type { ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import type { CompleteOutcome } from '../../../src/db/queries/completeStep.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { TemplateCache } from '../../../src/orchestration/templateCache.ts';

export function inlineTemplate(yaml: string): TaskTemplate {
  return parseTaskTemplate(yaml, 'inline-test-template.yaml');
}

/** A fresh cache per call site: templates registered by a test are seen at once. */
export function freshTemplates(): TemplateCache {
  return new TemplateCache();
}

/** Registers the template (no worker serves it unless the test runs one) and creates one task of it. */
export async function createTaskOf(
  db: Queryable,
  template: TaskTemplate,
  context: Record<string, unknown> = {},
): Promise<string> {
  await registerTemplate(db, template);
  const { taskUuid } = await createTask(
    db,
    { namespace: template.namespace, name: template.name, version: template.version, context },
    { templates: freshTemplates() },
  );
  return taskUuid;
}

export type ManualOutcome =
  | { success: true; result: unknown }
  | { success: false; message: string; retryable: boolean; retryAfterMs?: number };

/** Claims what is visible in the namespace's queue (at most `limit`) as worker `workerId`. */
export async function claim(
  db: Queryable,
  namespace: string,
  limit = 10,
  workerId = 'manual-worker',
): Promise<ClaimedStep[]> {
  return claimSteps(db, namespace, workerId, 30, limit);
}

/** Stores a claimed step's outcome and applies it in the same commit (inline), like a worker would. */
export async function finish(
  db: Queryable,
  step: ClaimedStep,
  outcome: ManualOutcome,
  workerId = 'manual-worker',
): Promise<CompleteOutcome> {
  return completeOne(db, {
    taskUuid: step.taskUuid,
    stepUuid: step.stepUuid,
    attempt: step.attempt,
    success: outcome.success,
    payload: outcome.success
      ? outcome.result
      : {
          message: outcome.message,
          error_type: outcome.retryable ? 'retryable_error' : 'permanent_error',
          retryable: outcome.retryable,
          ...(outcome.retryAfterMs !== undefined && { retry_after_ms: outcome.retryAfterMs }),
        },
    workerId,
    executionMs: 1,
    inline: true,
  });
}

/**
 * Runs the namespace's visible steps with `run` until a claim finds nothing; returns every step it ran, in
 * order. Bounded: at most `maxRounds` claims.
 */
export async function drain(
  db: Queryable,
  namespace: string,
  run: (step: ClaimedStep) => ManualOutcome,
  maxRounds = 50,
): Promise<ClaimedStep[]> {
  const ran: ClaimedStep[] = [];
  for (let round = 0; round < maxRounds; round++) {
    const steps = await claim(db, namespace);
    if (steps.length === 0) return ran;
    for (const step of steps) {
      ran.push(step);
      await finish(db, step, run(step));
    }
  }
  throw new Error(`drain(${namespace}) still found work after ${maxRounds} rounds`);
}

/**
 * Moves the task's current transition and its steps' current transitions `minutes` into the past: the task
 * then looks as if nothing had happened to it for that long.
 */
export async function backdate(db: Queryable, taskUuid: string, minutes: number): Promise<void> {
  await db.query(
    `UPDATE tasker.task_transitions SET created_at = clock_timestamp() - make_interval(mins => $2)
     WHERE task_uuid = $1 AND most_recent`,
    [taskUuid, minutes],
  );
  await db.query(
    `UPDATE tasker.workflow_step_transitions st SET created_at = clock_timestamp() - make_interval(mins => $2)
     FROM tasker.workflow_steps ws
     WHERE ws.workflow_step_uuid = st.workflow_step_uuid AND ws.task_uuid = $1 AND st.most_recent`,
    [taskUuid, minutes],
  );
}

/** Walks a task along allowed transitions (test set-up of states the engine passes through quickly). */
export async function moveTask(db: Queryable, taskUuid: string, path: readonly string[]): Promise<void> {
  for (const [index, to] of path.entries()) {
    const from = path[index - 1];
    if (from === undefined) continue;
    const { rows } = await db.query<{ ok: boolean }>(
      `SELECT tasker._task_transition($1, $2, $3, '{"event":"test_setup"}') AS ok`,
      [taskUuid, from, to],
    );
    if (rows[0]?.ok !== true) throw new Error(`task ${taskUuid} did not move ${from} -> ${to}`);
  }
}

export async function dlqRows(
  db: Queryable,
  taskUuid: string,
): Promise<
  {
    dlq_entry_uuid: string;
    original_state: string;
    dlq_reason: string;
    resolution_status: string;
    task_snapshot: Record<string, unknown>;
    metadata: Record<string, unknown>;
  }[]
> {
  const { rows } = await db.query<{
    dlq_entry_uuid: string;
    original_state: string;
    dlq_reason: string;
    resolution_status: string;
    task_snapshot: Record<string, unknown>;
    metadata: Record<string, unknown>;
  }>(
    `SELECT dlq_entry_uuid, original_state, dlq_reason, resolution_status, task_snapshot, metadata
     FROM tasker.tasks_dlq WHERE task_uuid = $1 ORDER BY dlq_timestamp`,
    [taskUuid],
  );
  return rows;
}
