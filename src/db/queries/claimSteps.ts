import type { Queryable } from '../database.ts';

export interface ClaimedStep {
  msgId: string;
  taskUuid: string;
  stepUuid: string;
  stepName: string;
  handlerCallable: string;
  /**
   * The template's `handler.initialization` for this step, stored in the column workflow_steps.inputs: the
   * handler's `config`.
   */
  handlerInitialization: Record<string, unknown>;
  /** The task's context as submitted (column tasks.context): the handler's `input`. */
  taskContext: Record<string, unknown>;
  /** 1-based: this run's attempt number, also the fencing token for completeManyAndClaim. */
  attempt: number;
  maxAttempts: number;
  timeoutSeconds: number | null;
  correlationId: string;
  dependencyResults: Record<string, unknown>;
}

export interface ClaimRow {
  msg_id: string | number;
  task_uuid: string;
  step_uuid: string;
  step_name: string;
  handler_callable: string;
  inputs: Record<string, unknown>;
  context: Record<string, unknown>;
  attempt: number;
  max_attempts: number;
  timeout_seconds: number | null;
  correlation_id: string;
  dependency_results: Record<string, unknown>;
}

/**
 * Claims up to `limit` steps of a namespace for one worker (tasker.claim_steps): the queue read is the lease
 * (visibility timeout), the CAS enqueued -> in_progress with attempts + 1 is the claim, and the handler's
 * whole context comes back in the same round trip. Messages for steps that are no longer claimable are
 * archived inside, so the result may hold fewer steps than messages read.
 */
export async function claimSteps(
  db: Queryable,
  namespace: string,
  workerId: string,
  leaseSeconds: number,
  limit: number,
): Promise<ClaimedStep[]> {
  const { rows } = await db.query<ClaimRow>(
    'SELECT * FROM tasker.claim_steps($1, $2, $3, $4)',
    [namespace, workerId, leaseSeconds, limit],
    { name: 'tasker_claim_steps' },
  );
  return rows.map(toClaimedStep);
}

export function toClaimedStep(row: ClaimRow): ClaimedStep {
  return {
    msgId: String(row.msg_id),
    taskUuid: row.task_uuid,
    stepUuid: row.step_uuid,
    stepName: row.step_name,
    handlerCallable: row.handler_callable,
    handlerInitialization: row.inputs,
    taskContext: row.context,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    timeoutSeconds: row.timeout_seconds,
    correlationId: row.correlation_id,
    dependencyResults: row.dependency_results,
  };
}
