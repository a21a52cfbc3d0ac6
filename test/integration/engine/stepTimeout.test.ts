/**
 * A template step timeout (timeout_seconds: 1, test/fixtures/engine/timeout*.yaml) with handlers that ignore
 * their abort signal and sleep 5 s: the run fails with error_type 'timeout' when the timeout passes, the
 * handler's signal is aborted, and the step is retried per its policy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { defineHandler } from '../../../src/worker/handlerApi.ts';
import { startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed, templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import { resultAudit, stepsByName, transitionsOfStep } from '../../helpers/engine/inspect.ts';
import { waitForSettledTask, waitForTask } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

/** Sleeps without looking at any signal (the timer is unref'd so it cannot hold the test process). */
const stubbornSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

const handlers = [
  defineHandler('Timeout.SlowOnce', async (ctx) => {
    if (ctx.attempt === 1) await stubbornSleep(5_000);
    return { finished_on_attempt: ctx.attempt };
  }),
  defineHandler('Timeout.AlwaysSlow', async () => {
    await stubbornSleep(5_000);
    return { finished: true };
  }),
];

describe('step timeout', () => {
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
      templates: templatesInNamespace('engine_timeout'),
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('a run past timeout_seconds fails as a retryable timeout; the retry succeeds; the handler saw its signal abort', async () => {
    // Both tasks at once: the two timeouts overlap.
    const [retried, exhausted] = await Promise.all([
      createTask(db, requestFor(templateNamed('timeout_then_succeed'))),
      createTask(db, requestFor(templateNamed('timeout_exhausted'))),
    ]);

    await waitForTask(db, retried.taskUuid, ['complete', 'error'], 8_000);
    const step = (await stepsByName(db, retried.taskUuid)).sluggish_step;
    expect(step).toMatchObject({
      current_state: 'complete',
      attempts: 2,
      results: { finished_on_attempt: 2 },
    });
    expect(step?.last_error).toEqual({
      message: 'step timed out after 1 s',
      error_type: 'timeout',
      retryable: true,
      attempt: 1,
    });
    expect(
      (await transitionsOfStep(db, retried.taskUuid, 'sluggish_step'))
        .filter((t) => t.to_state === 'waiting_for_retry')
        .map((t) => t.metadata.delay_ms),
    ).toEqual([expect.any(Number)]);
    const audit = (await resultAudit(db, retried.taskUuid)).map((a) => ({
      attempt: a.attempt,
      success: a.success,
      ms: a.execution_time_ms,
    }));
    expect(audit.map((a) => [a.attempt, a.success])).toEqual([
      [1, false],
      [2, true],
    ]);
    // The failure was recorded when the timeout passed, not when the handler finally returned.
    expect(audit[0]?.ms).toBeGreaterThanOrEqual(990);
    expect(audit[0]?.ms).toBeLessThan(2_000);

    const [first, second] = cluster.recorder.forTask(retried.taskUuid);
    expect(first).toMatchObject({ attempt: 1, abortReason: 'step timed out after 1 s' });
    const abortedAfter = (first?.signalAbortedAt ?? 0) - (first?.startedAt ?? 0);
    expect(abortedAfter).toBeGreaterThanOrEqual(990);
    expect(abortedAfter).toBeLessThan(1_500);
    // Still sleeping when its replacement had already run.
    expect(first?.outcome).toBe('running');
    expect(second).toMatchObject({ attempt: 2, outcome: 'success', signalAbortedAt: null });

    // With a single attempt allowed the timeout fails the step, and the task with it.
    await waitForSettledTask(db, exhausted.taskUuid, 5_000);
    const steps = await stepsByName(db, exhausted.taskUuid);
    expect(steps.hopeless_step).toMatchObject({ current_state: 'error', attempts: 1 });
    expect(steps.hopeless_step?.last_error).toMatchObject({ error_type: 'timeout', retryable: true });
    expect(steps.unreachable_step).toMatchObject({ current_state: 'pending', attempts: 0 });
    const [only] = cluster.recorder.forTask(exhausted.taskUuid);
    expect(only?.abortReason).toBe('step timed out after 1 s');
  });
});
