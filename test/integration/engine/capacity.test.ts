/**
 * Worker capacity (test/fixtures/engine/capacity.yaml: six ready steps): a worker with
 * maxConcurrentHandlers 2 never runs more than 2 handlers at once; the rest wait in the queue, visible and
 * unclaimed, and all six complete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import { queueCounts, stepStates, stepsByName } from '../../helpers/engine/inspect.ts';
import { awaitGate, deferred } from '../../helpers/engine/recorder.ts';
import { sleep, waitFor, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const template = templateNamed('wide_fan');
const QUEUE = 'worker_engine_capacity_queue';
let open = deferred();

const handlers = [
  defineHandler('Capacity.Gated', async (ctx) => {
    await awaitGate(open.promise, ctx.signal);
    // Long enough for every run to overlap the next claim.
    await sleep(50);
    return { step: ctx.stepName };
  }),
];

describe('worker capacity', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    cluster = await startCluster({
      db,
      orchestrators: 1,
      workers: 1,
      inline: false,
      handlers,
      templates: [template],
      maxConcurrentHandlers: 2,
      pollIntervalMs: 100,
    });
  });
  afterAll(async () => {
    open.resolve();
    await cluster.stop();
  });

  it('runs at most 2 handlers at once, leaves the other 4 steps in the queue, then completes all 6', async () => {
    open = deferred();
    const { taskUuid } = await createTask(db, requestFor(template));
    // The worker may already have claimed it: creation signals at once.
    expect(['enqueued', 'in_progress']).toContain((await stepsByName(db, taskUuid)).wide_1?.current_state);
    const worker = cluster.workers[0];
    await waitFor('two handlers to be running', () => cluster.recorder.concurrent === 2);
    // Several poll intervals and notifications later, still only two.
    await sleep(400);
    expect(cluster.recorder.concurrent).toBe(2);
    expect(worker?.activeExecutions).toBe(2);
    const states = Object.values(await stepStates(db, taskUuid));
    expect(states.filter((s) => s === 'in_progress')).toHaveLength(2);
    expect(states.filter((s) => s === 'enqueued')).toHaveLength(4);
    // Two messages leased (hidden), four untouched and visible: nothing was taken and dropped.
    expect(await queueCounts(db, QUEUE)).toEqual({ total: 6, visible: 4 });

    open.resolve();
    await waitForTask(db, taskUuid, ['complete', 'error']);
    expect(Object.values(await stepStates(db, taskUuid))).toEqual(Array(6).fill('complete'));
    expect(cluster.recorder.maxConcurrent).toBe(2);
    expect(cluster.recorder.forTask(taskUuid)).toHaveLength(6);
    expect(cluster.recorder.stepsRunMoreThanOnce([taskUuid])).toEqual([]);
    const steps = await stepsByName(db, taskUuid);
    expect(Object.values(steps).map((s) => s.attempts)).toEqual(Array(6).fill(1));
    expect(await queueCounts(db, QUEUE)).toEqual({ total: 0, visible: 0 });

    // Overlap check from the handlers' own clocks: at no instant were three running.
    const runs = cluster.recorder.forTask(taskUuid);
    for (const run of runs) {
      const overlapping = runs.filter(
        (other) => other.startedAt <= run.startedAt && (other.endedAt ?? Infinity) > run.startedAt,
      );
      expect(overlapping.length).toBeLessThanOrEqual(2);
    }
  });
});
