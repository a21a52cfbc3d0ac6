/**
 * Two orchestrators applying step results at the same time, driven by hand so the interleaving is exact:
 * tasker.process_step_results locks each message's task in message order and keeps every lock until its
 * commit, so two batches that hold results of the same two tasks in opposite orders can deadlock.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import type { ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import { processStepResults } from '../../../src/db/queries/orchestrationQueues.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { stepsByName } from '../../helpers/engine/inspect.ts';
import { deferred } from '../../helpers/engine/recorder.ts';
import { waitFor } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const ORCHESTRATOR_A = '01900000-0000-7000-8000-00000000000a';
const ORCHESTRATOR_B = '01900000-0000-7000-8000-00000000000b';

describe('two orchestrators applying result batches that share tasks', () => {
  const getTestDb = useTestDatabase();
  let db: Database;

  beforeAll(() => {
    db = getTestDb().openPool({ maxConnections: 6 });
  });

  async function sessionsWaitingOnLocks(): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows[0]?.n ?? 0;
  }

  // Two batches holding results of the same tasks in opposite orders: process_step_results locks a batch's
  // tasks in task_uuid order, so neither waits for the other in a cycle.
  it('both batches are applied, none aborted by a deadlock', async () => {
    const template = { ...templateNamed('wide_fan'), namespace: 'batch_locking' };
    await registerTemplate(db, template);
    const t1 = (await createTask(db, requestFor(template))).taskUuid;
    const t2 = (await createTask(db, requestFor(template))).taskUuid;
    const claimed = await claimSteps(db, 'batch_locking', 'manual-worker', 60, 20);
    expect(claimed).toHaveLength(12);
    const of = (task: string, name: string): ClaimedStep => {
      const step = claimed.find((c) => c.taskUuid === task && c.stepName === name);
      if (step === undefined) throw new Error(`${name} of ${task} was not claimed`);
      return step;
    };
    // Results in the queue, in msg_id order: T1, T2 | T2, T1.
    for (const step of [of(t1, 'wide_1'), of(t2, 'wide_1'), of(t2, 'wide_2'), of(t1, 'wide_2')]) {
      const outcome = await completeOne(db, {
        taskUuid: step.taskUuid,
        stepUuid: step.stepUuid,
        attempt: step.attempt,
        success: true,
        payload: { step: step.stepName },
        workerId: 'manual-worker',
        executionMs: 1,
        inline: false,
      });
      expect(outcome).toBe('stored');
    }

    // Someone (a third orchestrator, an operator's cancel) holds T1 for a moment.
    const locked = deferred();
    const release = deferred();
    const holder = db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE', [t1]);
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    // A reads [T1, T2] and waits for T1; B reads the other two, applies T2's, then waits for T1 as well.
    const a = processStepResults(db, 2, 30, ORCHESTRATOR_A);
    await waitFor('A to wait for T1', async () => (await sessionsWaitingOnLocks()) === 1);
    const b = processStepResults(db, 2, 30, ORCHESTRATOR_B);
    await waitFor('B to wait for T1', async () => (await sessionsWaitingOnLocks()) === 2);
    release.resolve();
    await holder;

    const outcomes = await Promise.allSettled([a, b]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason)))).toEqual([2, 2]);
    for (const task of [t1, t2]) {
      const steps = await stepsByName(db, task);
      expect([steps.wide_1?.current_state, steps.wide_2?.current_state]).toEqual(['complete', 'complete']);
    }
  });
});
