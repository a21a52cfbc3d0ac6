/**
 * A completing round trip reads the queue for the slots it frees (refill) only when the worker may have left
 * work there: a read filled all its room, or a signal came while every slot was busy. Otherwise the read is
 * skipped (it would find nothing: other work comes with its own signal). These tests check both halves: the
 * SQL switch itself, and a full worker that must still take every queued step with no poll to fall back on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import type { ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { completeManyAndClaim } from '../../../src/db/queries/completeStep.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { queueCounts, stepStates } from '../../helpers/engine/inspect.ts';
import { sleep, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** Six independent root steps in namespace engine_capacity. */
const template = templateNamed('wide_fan');
const QUEUE = 'worker_engine_capacity_queue';

describe('reading the queue for freed slots', () => {
  const getTestDb = useTestDatabase();
  let db: Database;

  beforeAll(() => {
    db = getTestDb().db;
  });

  it('complete_many_and_claim reads the queue for the room left only when asked to', async () => {
    await registerTemplate(db, template);
    const { taskUuid } = await createTask(db, requestFor(template));
    const complete = async (step: ClaimedStep, refill: boolean): Promise<ClaimedStep[]> => {
      const { outcomes, claimed } = await completeManyAndClaim(
        db,
        [{ ...step, success: true, payload: { ok: true }, executionMs: 1 }],
        {
          workerId: 'refill-worker',
          inline: true,
          namespace: template.namespace,
          leaseSeconds: 30,
          limit: 5,
          refill,
        },
      );
      expect(outcomes.get(step.stepUuid)).toBe('complete');
      return claimed;
    };

    const [first] = await claimSteps(db, template.namespace, 'refill-worker', 30, 1);
    if (first === undefined) throw new Error('no step to claim');
    // Room for five and five visible steps in the queue, but no refill: nothing else is taken.
    expect(await complete(first, false)).toEqual([]);
    expect(await queueCounts(db, QUEUE)).toEqual({ total: 5, visible: 5 });

    const [second] = await claimSteps(db, template.namespace, 'refill-worker', 30, 1);
    if (second === undefined) throw new Error('no step to claim');
    // With the refill, the same round trip takes the other four.
    const taken = await complete(second, true);
    expect(taken).toHaveLength(4);
    expect(new Set(taken.map((s) => s.taskUuid))).toEqual(new Set([taskUuid]));
    expect(await queueCounts(db, QUEUE)).toEqual({ total: 4, visible: 0 });
  });

  describe('a worker with one slot and no polling', () => {
    let cluster: Awaited<ReturnType<typeof startCluster>>;

    beforeAll(async () => {
      await db.query('TRUNCATE tasker.tasks CASCADE');
      await db.query(`SELECT pgmq.purge_queue('${QUEUE}')`);
      cluster = await startCluster({
        db,
        inline: true,
        handlers: [
          defineHandler('Capacity.Gated', async (ctx) => {
            await sleep(5);
            return { step: ctx.stepName };
          }),
        ],
        templates: [template],
        maxConcurrentHandlers: 1,
        // Far beyond the test: only signals and refills can move the work.
        pollIntervalMs: 600_000,
      });
    });

    afterAll(async () => {
      await cluster.stop();
    });

    it('takes every queued step as its slot frees, though their signals came while it was full', async () => {
      const { taskUuid } = await createTask(db, requestFor(template));
      expect((await waitForTask(db, taskUuid, ['complete', 'error'], 10_000)).current_state).toBe('complete');
      expect(Object.values(await stepStates(db, taskUuid))).toEqual(Array(6).fill('complete'));
      expect(cluster.recorder.maxConcurrent).toBe(1);
      expect(cluster.recorder.forTask(taskUuid)).toHaveLength(6);
      expect(await queueCounts(db, QUEUE)).toEqual({ total: 0, visible: 0 });
    });
  });
});
