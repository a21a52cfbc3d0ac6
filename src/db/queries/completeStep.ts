import type { Queryable, SqlParam } from '../database.ts';
import { toClaimedStep } from './claimSteps.ts';
import type { ClaimedStep, ClaimRow } from './claimSteps.ts';

export interface StepFailure {
  message: string;
  error_type: string;
  retryable: boolean;
  retry_after_ms?: number;
  code?: string;
}

export type CompleteOutcome = 'stored' | 'stale' | 'complete' | 'retry' | 'error' | 'noop';

export interface StepCompletion {
  taskUuid: string;
  stepUuid: string;
  attempt: number;
  success: boolean;
  payload: unknown;
  workerId: string;
  executionMs: number;
  /** Apply the result in this commit (next steps enqueued, task finalized) instead of signalling orchestration. */
  inline: boolean;
}

function completionParams(input: StepCompletion): SqlParam[] {
  return [
    input.taskUuid,
    input.stepUuid,
    input.attempt,
    input.success,
    JSON.stringify(input.payload ?? null),
    input.workerId,
    Math.round(input.executionMs),
    input.inline,
  ];
}

/**
 * Stores a step's result and releases its lease in one commit (tasker.complete_step). Only the worker still
 * holding the claim (`attempt` matches) can store; anything else is 'stale' and changes nothing. With
 * `inline`, the same commit also applies the result; otherwise it is signalled on orchestration_step_results.
 */
export async function completeStep(db: Queryable, input: StepCompletion): Promise<CompleteOutcome> {
  const { rows } = await db.query<{ outcome: CompleteOutcome }>(
    'SELECT tasker.complete_step($1, $2, $3, $4, $5::jsonb, $6, $7, $8) AS outcome',
    completionParams(input),
    { name: 'tasker_complete_step' },
  );
  return rows[0]?.outcome ?? 'stale';
}

/**
 * completeStep, then in the same round trip and the same (durable) commit, claims up to `claimLimit` more
 * steps of `namespace` for this worker — often the very step this result just made ready. A chain of steps
 * then costs one commit per step and no wake-up in between.
 */
export async function completeAndClaim(
  db: Queryable,
  input: StepCompletion,
  claim: { namespace: string; leaseSeconds: number; limit: number },
): Promise<{ outcome: CompleteOutcome; claimed: ClaimedStep[] }> {
  const { rows } = await db.query<{ outcome: CompleteOutcome } & Partial<ClaimRow>>(
    `WITH done AS MATERIALIZED (
       SELECT tasker.complete_step($1, $2, $3, $4, $5::jsonb, $6, $7, $8) AS outcome
     )
     SELECT done.outcome, c.*
     FROM done LEFT JOIN LATERAL tasker.claim_steps($9, $6, $10, $11, false) c ON done.outcome IS NOT NULL`,
    [...completionParams(input), claim.namespace, claim.leaseSeconds, claim.limit],
    { name: 'tasker_complete_and_claim' },
  );
  const outcome = rows[0]?.outcome ?? 'stale';
  const claimed = rows
    .filter((row): row is { outcome: CompleteOutcome } & ClaimRow => row.step_uuid != null)
    .map(toClaimedStep);
  return { outcome, claimed };
}
