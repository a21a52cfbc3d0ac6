/**
 * A worker process dies mid-step (SIGKILL): its lease on the step's message runs out and another worker takes
 * the step over; the lost run counts as a failed attempt (lease_expired). While the first worker lived, its
 * heartbeat kept the lease: nobody took the step early.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { startChildWorker } from '../../helpers/engine/childWorker.ts';
import type { ChildWorker } from '../../helpers/engine/childWorker.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { resultAudit, stepsByName, transitionsOfStep } from '../../helpers/engine/inspect.ts';
import { sleep, waitFor, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const LEASE_SECONDS = 2;
const template = templateNamed('lease_takeover');

const handlers = [
  defineHandler('Lease.Slow', (ctx) => ({ by: 'parent', attempt: ctx.attempt })),
  defineHandler('Lease.After', (ctx) => ({ after: ctx.dependency('slow_step') })),
];

describe('lease takeover after a worker process is killed', () => {
  const getTestDb = useTestDatabase();
  let child: ChildWorker | undefined;
  let cluster: Cluster | undefined;

  afterEach(async () => {
    await child?.kill();
    await cluster?.stop();
  });
  afterAll(async () => {
    await child?.kill();
  });

  it('a second worker takes the step over once the dead worker’s lease expires, and the task completes', async () => {
    const testDb = getTestDb();
    const db = testDb.openPool({ maxConnections: 10 });
    child = await startChildWorker({
      databaseUrl: testDb.url,
      namespace: 'engine_lease',
      leaseSeconds: LEASE_SECONDS,
    });
    const childId = child.workerId;

    const { taskUuid } = await createTask(db, requestFor(template));
    const claimed = await waitFor('the child worker to claim slow_step', async () => {
      const step = (await stepsByName(db, taskUuid)).slow_step;
      return step?.current_state === 'in_progress' && step.claimed_by === childId ? step : undefined;
    });
    expect(claimed.attempts).toBe(1);

    // A live worker keeps its lease by heartbeat: a second worker running for longer than the lease does not
    // take the step.
    cluster = await startCluster({
      db,
      orchestrators: 1,
      workers: 1,
      inline: false,
      handlers,
      templates: [template],
      leaseSeconds: LEASE_SECONDS,
      pollIntervalMs: 100,
    });
    const parentId = cluster.workers[0]?.id;
    await sleep(LEASE_SECONDS * 1000 + 500);
    expect((await stepsByName(db, taskUuid)).slow_step).toMatchObject({
      current_state: 'in_progress',
      claimed_by: childId,
      attempts: 1,
    });

    const killedAt = Date.now();
    await child.kill();
    await waitForTask(db, taskUuid, ['complete', 'error'], LEASE_SECONDS * 1000 + 5_000);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.slow_step).toMatchObject({
      current_state: 'complete',
      attempts: 2,
      claimed_by: parentId,
      results: { by: 'parent', attempt: 2 },
    });
    // The lost run stays on record as the last error, written before the success.
    expect(steps.slow_step?.last_error).toMatchObject({
      error_type: 'lease_expired',
      retryable: true,
      attempt: 1,
      worker: childId,
    });
    expect(steps.after_slow).toMatchObject({
      current_state: 'complete',
      results: { after: { by: 'parent', attempt: 2 } },
    });

    const history = await transitionsOfStep(db, taskUuid, 'slow_step');
    expect(history.map((t) => [t.to_state, t.metadata.event])).toEqual([
      ['pending', 'created'],
      ['enqueued', 'enqueue'],
      ['in_progress', 'start'],
      ['waiting_for_retry', 'lease_expired'],
      ['pending', 'retry'],
      ['enqueued', 'enqueue'],
      ['in_progress', 'start'],
      ['enqueued_for_orchestration', 'enqueue_for_orchestration'],
      ['complete', 'complete'],
    ]);
    const starts = history.filter((t) => t.to_state === 'in_progress');
    expect(starts.map((t) => t.metadata.worker)).toEqual([childId, parentId]);
    const expired = history.find((t) => t.metadata.event === 'lease_expired');
    const stored = history.find((t) => t.to_state === 'enqueued_for_orchestration');
    if (expired === undefined || stored === undefined) throw new Error('transitions missing');
    expect(expired.at_ms).toBeLessThan(stored.at_ms);
    // Taken over after the lease ran out, and soon after.
    const takenOverAfterMs = (starts[1]?.at_ms ?? 0) - killedAt;
    expect(takenOverAfterMs).toBeGreaterThan(LEASE_SECONDS * 1000 - 1_000);
    expect(takenOverAfterMs).toBeLessThan(LEASE_SECONDS * 1000 + 3_000);

    // Only the second worker produced a result; the handler ran once in this process.
    expect((await resultAudit(db, taskUuid)).filter((a) => a.step_name === 'slow_step')).toEqual([
      expect.objectContaining({ worker_uuid: parentId, success: true, attempt: 2 }),
    ]);
    expect(cluster.recorder.forTask(taskUuid).map((e) => [e.stepName, e.attempt, e.workerId])).toEqual([
      ['slow_step', 2, parentId],
      ['after_slow', 1, parentId],
    ]);
  });
});
