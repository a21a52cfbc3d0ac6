/**
 * A result is accepted only from the claim that is current: same attempt AND same holder. An operator's
 * reset_for_retry starts attempts again at 0, so a worker that claimed the step before the reset (and
 * outlived its lease) carries an attempt number a new run will reach again; its late result must still be
 * refused, and the new holder's result applied.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { applyStepAction } from '../../../src/db/queries/stepActions.ts';
import { stepsByName, taskRow } from '../../helpers/engine/inspect.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';
import { claim, createTaskOf, finish, inlineTemplate } from './operatorHelpers.ts';

const ns = 'op_fencing';
const template = inlineTemplate(`
name: fenced
namespace_name: ${ns}
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: only
    handler: { callable: Fence.Only }
    retry: { retryable: false, max_attempts: 1 }
`);

const getTestDb = useTestDatabase();

describe('result fencing across an operator reset', () => {
  let db: Database;
  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 4 });
  });
  afterAll(async () => {
    await db.close();
  });

  it('refuses the late result of a pre-reset claim with the same attempt number; accepts the new holder', async () => {
    const taskUuid = await createTaskOf(db, template);
    // Worker A claims attempt 1 and the step fails for good: the task is in error.
    const [first] = await claim(db, ns, 10, 'worker-a');
    expect(first?.attempt).toBe(1);
    expect(await finish(db, first!, { success: false, message: 'boom', retryable: false }, 'worker-a')).toBe(
      'error',
    );
    expect((await taskRow(db, taskUuid))?.current_state).toBe('error');

    // The operator resets the step; worker B claims the new run, which is attempt 1 again.
    await applyStepAction(db, taskUuid, first!.stepUuid, { action: 'reset_for_retry', operator: 'ops' });
    const [second] = await claim(db, ns, 10, 'worker-b');
    expect(second).toMatchObject({ stepUuid: first!.stepUuid, attempt: 1 });

    // A zombie copy of worker A's first run reports late, with the same attempt number: refused.
    expect(await finish(db, first!, { success: true, result: { from: 'a' } }, 'worker-a')).toBe('stale');
    expect((await stepsByName(db, taskUuid)).only).toMatchObject({
      current_state: 'in_progress',
      results: null,
    });

    // The current holder's result is applied and the task completes.
    expect(await finish(db, second!, { success: true, result: { from: 'b' } }, 'worker-b')).toBe('complete');
    expect((await stepsByName(db, taskUuid)).only).toMatchObject({
      current_state: 'complete',
      results: { from: 'b' },
    });
    expect((await taskRow(db, taskUuid))?.current_state).toBe('complete');
  });
});
