import type { Queryable } from '../../../src/db/database.ts';
import { completeManyAndClaim } from '../../../src/db/queries/completeStep.ts';
import type { CompleteOutcome, StepCompletion } from '../../../src/db/queries/completeStep.ts';

/**
 * One step result through the engine's one completion entry point (a batch of one, claiming nothing more):
 * what storing it did, 'stale' when the attempt no longer holds the claim.
 */
export async function completeOne(db: Queryable, input: StepCompletion): Promise<CompleteOutcome> {
  const { outcomes } = await completeManyAndClaim(db, [input], {
    workerId: input.workerId,
    inline: input.inline,
    namespace: '',
    leaseSeconds: 30,
    limit: 0,
    refill: false,
  });
  return outcomes.get(input.stepUuid) ?? 'stale';
}
