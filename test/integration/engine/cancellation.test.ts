/**
 * Cancelling a running task (test/fixtures/engine/cancel_flow.yaml): the task and every unfinished step end
 * cancelled, dependents never run, the late result of the step that was running is refused ('stale'), and
 * cancelling again or cancelling a finished task says what it already was — in both result modes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import { cancelTask } from '../../../src/db/queries/orchestrationQueues.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler, RetryableError } from '../../../src/worker/handlerApi.ts';
import { RESULT_MODES, startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed } from '../../helpers/engine/fixtures.ts';
import {
  queueCounts,
  resultAudit,
  stepStates,
  stepsByName,
  taskRow,
  taskTransitions,
  transitionsOfStep,
} from '../../helpers/engine/inspect.ts';
import { createMemoryLogger } from '../../helpers/engine/memoryLogger.ts';
import { awaitGate, deferred } from '../../helpers/engine/recorder.ts';
import type { Deferred } from '../../helpers/engine/recorder.ts';
import { sleep, waitFor, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const template = templateNamed('cancellable');
const gates = new Map<string, Deferred<void>>();
const gateFor = (taskUuid: string): Deferred<void> => {
  let gate = gates.get(taskUuid);
  if (gate === undefined) {
    gate = deferred();
    gates.set(taskUuid, gate);
  }
  return gate;
};

const handlers = [
  defineHandler('Cancel.Block', async (ctx) => {
    await awaitGate(gateFor(ctx.taskUuid).promise, ctx.signal);
    return { released: true };
  }),
  defineHandler('Cancel.After', () => ({ after: true })),
  defineHandler('Cancel.Quick', (ctx) => {
    if (ctx.input.sibling_fails === true) throw new RetryableError('not yet', { retryAfterMs: 400 });
    return { quick: true };
  }),
];

const getTestDb = useTestDatabase();

describe.each(RESULT_MODES)('cancellation ($mode)', ({ inline }) => {
  const logs = createMemoryLogger('debug');
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    cluster = await startCluster({
      db,
      orchestrators: 1,
      workers: 2,
      inline,
      handlers,
      templates: [template],
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    for (const gate of gates.values()) gate.resolve();
    await cluster.stop();
  });

  it('cancels the running task: unfinished steps cancelled, the late result refused, dependents never run', async () => {
    const { taskUuid } = await createTask(db, requestFor(template));
    const running = await waitFor('blocker to run while sibling is done', async () => {
      const steps = await stepsByName(db, taskUuid);
      return steps.blocker?.current_state === 'in_progress' && steps.sibling?.current_state === 'complete'
        ? steps.blocker
        : undefined;
    });
    expect(running.attempts).toBe(1);

    expect(await cancelTask(db, taskUuid, null)).toBe('cancelled');
    const task = await taskRow(db, taskUuid);
    expect(task).toMatchObject({ current_state: 'cancelled', complete: false });
    expect(task?.completed_at).toBeInstanceOf(Date);
    expect(await stepStates(db, taskUuid)).toEqual({
      blocker: 'cancelled',
      after_blocker: 'cancelled',
      sibling: 'complete',
    });
    expect(
      (await transitionsOfStep(db, taskUuid, 'blocker')).slice(-2).map((t) => [t.to_state, t.metadata.event]),
    ).toEqual([
      ['in_progress', 'start'],
      ['cancelled', 'cancel'],
    ]);
    expect((await transitionsOfStep(db, taskUuid, 'after_blocker')).map((t) => t.to_state)).toEqual([
      'pending',
      'cancelled',
    ]);

    // The handler finishes after all: its result is refused and nothing moves.
    gateFor(taskUuid).resolve();
    const blockerUuid = running.workflow_step_uuid;
    await waitFor('the worker to try to store the late result', () =>
      logs.withMessage('step finished').find((e) => e.step_uuid === blockerUuid),
    );
    expect(logs.withMessage('step finished').find((e) => e.step_uuid === blockerUuid)).toMatchObject({
      success: true,
      outcome: 'stale',
    });
    // Completing it directly (complete_many_and_claim, a batch of one) says the same to anyone else trying.
    expect(
      await completeOne(db, {
        taskUuid,
        stepUuid: blockerUuid,
        attempt: 1,
        success: true,
        payload: { late: true },
        workerId: 'latecomer',
        executionMs: 1,
        inline,
      }),
    ).toBe('stale');
    const steps = await stepsByName(db, taskUuid);
    expect(steps.blocker).toMatchObject({ current_state: 'cancelled', results: null, attempts: 1 });
    expect(steps.after_blocker).toMatchObject({ current_state: 'cancelled', attempts: 0 });
    expect((await resultAudit(db, taskUuid)).map((a) => a.step_name)).toEqual(['sibling']);
    expect(
      cluster.recorder
        .forTask(taskUuid)
        .map((e) => e.stepName)
        .sort(),
    ).toEqual(['blocker', 'sibling']);

    // The lease message of the cancelled run is cleaned up once it expires; nothing runs again.
    await waitFor(
      'the worker queue to empty',
      async () => (await queueCounts(db, 'worker_engine_cancel_queue')).total === 0,
      6_000,
    );
    expect(await stepStates(db, taskUuid)).toEqual({
      blocker: 'cancelled',
      after_blocker: 'cancelled',
      sibling: 'complete',
    });
    expect(cluster.recorder.forTask(taskUuid)).toHaveLength(2);

    expect(await cancelTask(db, taskUuid, null)).toBe('already_cancelled');
    expect((await taskTransitions(db, taskUuid)).filter((t) => t.to_state === 'cancelled')).toHaveLength(1);
  });

  it('a step waiting for its retry is cancelled and never retried', async () => {
    const { taskUuid } = await createTask(db, requestFor(template, { sibling_fails: true }));
    await waitFor('sibling to wait for its retry', async () =>
      (await stepsByName(db, taskUuid)).sibling?.current_state === 'waiting_for_retry' ? true : undefined,
    );
    expect(await cancelTask(db, taskUuid, null)).toBe('cancelled');
    expect(await stepStates(db, taskUuid)).toEqual({
      blocker: 'cancelled',
      after_blocker: 'cancelled',
      sibling: 'cancelled',
    });
    gateFor(taskUuid).resolve();
    // Past the 400 ms retry: the delayed message is dropped, the step does not run again.
    await sleep(700);
    const steps = await stepsByName(db, taskUuid);
    expect(steps.sibling).toMatchObject({ current_state: 'cancelled', attempts: 1 });
    expect(cluster.recorder.forTask(taskUuid).filter((e) => e.stepName === 'sibling')).toHaveLength(1);
  });

  it('cancelling a complete task says already_complete and changes nothing; an unknown task is not_found', async () => {
    const { taskUuid } = await createTask(db, requestFor(template));
    gateFor(taskUuid).resolve();
    await waitForTask(db, taskUuid, 'complete');
    const before = await taskTransitions(db, taskUuid);
    expect(await cancelTask(db, taskUuid, null)).toBe('already_complete');
    expect(await taskTransitions(db, taskUuid)).toEqual(before);
    expect(await stepStates(db, taskUuid)).toEqual({
      blocker: 'complete',
      after_blocker: 'complete',
      sibling: 'complete',
    });
    expect(await cancelTask(db, '01900000-0000-7000-8000-000000000000', null)).toBe('not_found');
  });
});
