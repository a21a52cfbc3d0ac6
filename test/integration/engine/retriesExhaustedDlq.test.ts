/**
 * A task whose step used every attempt goes to the dead-letter queue the moment it fails (reason
 * max_retries_exceeded), in both result modes, once: a revived task that fails again keeps its one pending
 * entry. A step failed for good before its last attempt (a PermanentError) is not "retries exhausted".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resilienceHandlers } from '../../../examples/handlers/index.ts';
import type { Database } from '../../../src/db/database.ts';
import { getDlqEntriesForTask } from '../../../src/db/queries/dlq.ts';
import { applyStepAction } from '../../../src/db/queries/stepActions.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { RESULT_MODES, startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed, templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const getTestDb = useTestDatabase();

describe.each(RESULT_MODES)('retries exhausted -> DLQ ($mode)', ({ inline }) => {
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 8 });
    cluster = await startCluster({
      db,
      inline,
      handlers: resilienceHandlers,
      templates: templatesInNamespace('resilience'),
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('always_fails: one pending max_retries_exceeded entry when the task fails, kept single after a revival', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('always_fails')));
    await waitForTask(db, taskUuid, 'error');
    // In the same commit as the task's move to error: no staleness sweep runs in this cluster's time.
    const entries = await getDlqEntriesForTask(db, taskUuid);
    expect(entries.map((e) => [e.dlq_reason, e.resolution_status, e.original_state])).toEqual([
      ['max_retries_exceeded', 'pending', 'blocked_by_failures'],
    ]);
    expect(entries[0]?.metadata.exhausted_steps).toEqual([
      { step: 'doomed_step', attempts: 3, max_attempts: 3, error_type: 'retryable_error' },
    ]);
    const snapshotSteps = (entries[0]?.task_snapshot as { steps: { name: string; current_state: string }[] })
      .steps;
    expect(snapshotSteps.map((s) => [s.name, s.current_state])).toEqual([
      ['doomed_step', 'error'],
      ['never_runs', 'pending'],
    ]);

    // Revived by an operator, it fails again: still the one pending entry.
    const doomed = (await stepsByName(db, taskUuid)).doomed_step;
    await applyStepAction(db, taskUuid, doomed?.workflow_step_uuid ?? '', { action: 'reset_for_retry' });
    const revived = await db.query<{ current_state: string }>(
      'SELECT current_state FROM tasker.tasks WHERE task_uuid = $1',
      [taskUuid],
    );
    expect(revived.rows[0]?.current_state).not.toBe('error');
    await waitForTask(db, taskUuid, 'error');
    expect((await stepsByName(db, taskUuid)).doomed_step?.attempts).toBe(3);
    const after = await getDlqEntriesForTask(db, taskUuid);
    expect(after.map((e) => e.dlq_entry_uuid)).toEqual(entries.map((e) => e.dlq_entry_uuid));
  });

  it('permanent_error on its first attempt: the task is in error without a max_retries_exceeded entry', async () => {
    const { taskUuid } = await createTask(db, requestFor(templateNamed('permanent_error')));
    await waitForTask(db, taskUuid, 'error');
    expect(await getDlqEntriesForTask(db, taskUuid)).toEqual([]);
  });
});
