/**
 * Many tasks at once over several orchestrators and workers: every task completes with the right values, no
 * handler runs twice, no step or task enters a state twice, and two orchestrators racing over the same
 * result queue apply each result exactly once without logging errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mathHandlers } from '../../../examples/handlers/index.ts';
import type { Database } from '../../../src/db/database.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { STEP_RESULTS_QUEUE } from '../../../src/orchestration/orchestrator.ts';
import { RESULT_MODES, startCluster } from '../../helpers/engine/cluster.ts';
import type { Cluster } from '../../helpers/engine/cluster.ts';
import { requestFor, templateNamed, templatesInNamespace } from '../../helpers/engine/fixtures.ts';
import {
  archivedMessages,
  duplicateStepTransitions,
  duplicateTaskTransitions,
  historyProblems,
  queueCounts,
  stepValues,
} from '../../helpers/engine/inspect.ts';
import { createMemoryLogger, LOG_LEVEL, unexpectedErrors } from '../../helpers/engine/memoryLogger.ts';
import { waitForTasks } from '../../helpers/engine/wait.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const diamond = templateNamed('diamond_pattern');
const linear = templateNamed('mathematical_sequence');

async function stepCount(db: Database, taskUuids: readonly string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM tasker.workflow_steps WHERE task_uuid = ANY($1::uuid[])',
    [taskUuids],
  );
  return rows[0]?.n ?? 0;
}

const getTestDb = useTestDatabase();

describe.each(RESULT_MODES)(
  '50 diamonds created at once on 2 orchestrators + 3 workers ($mode)',
  ({ inline }) => {
    let db: Database;
    let cluster: Cluster;

    beforeAll(async () => {
      db = getTestDb().openPool({ maxConnections: 12 });
      cluster = await startCluster({
        db,
        orchestrators: 2,
        workers: 3,
        inline,
        handlers: mathHandlers,
        templates: templatesInNamespace('math'),
      });
    });
    afterAll(async () => {
      await cluster.stop();
    });

    it('all complete with their own values; no handler ran twice; no state entered twice', async () => {
      const ns = Array.from({ length: 50 }, (_, i) => i + 1);
      const created = await Promise.all(ns.map((n) => createTask(db, requestFor(diamond, { n }))));
      const tasks = created.map((c) => c.taskUuid);
      expect(new Set(tasks).size).toBe(50);
      await waitForTasks(db, tasks, ['complete', 'error'], 30_000);

      for (const [index, taskUuid] of tasks.entries()) {
        const n = ns[index] ?? 0;
        expect(await stepValues(db, taskUuid), `task for n=${n}`).toEqual({
          diamond_start: n * n,
          diamond_branch_b: 2 * n * n,
          diamond_branch_c: 3 * n * n,
          diamond_end: 5 * n * n,
        });
      }
      expect(cluster.recorder.stepsRunMoreThanOnce(tasks)).toEqual([]);
      expect(cluster.recorder.executions.filter((e) => tasks.includes(e.taskUuid))).toHaveLength(200);
      expect(await duplicateStepTransitions(db, tasks)).toEqual([]);
      expect(await duplicateTaskTransitions(db, tasks)).toEqual([]);
      const problems: string[] = [];
      for (const taskUuid of tasks) problems.push(...(await historyProblems(db, taskUuid)));
      expect(problems).toEqual([]);
      // The work was spread: every worker ran something.
      const byWorker = new Set(cluster.recorder.executions.map((e) => e.workerId));
      expect(byWorker.size).toBe(3);
    });
  },
);

describe('two orchestrators racing over the same step results (1 worker, 30 tasks)', () => {
  const logs = createMemoryLogger('debug');
  let db: Database;
  let cluster: Cluster;

  beforeAll(async () => {
    db = getTestDb().openPool({ maxConnections: 10 });
    cluster = await startCluster({
      db,
      orchestrators: 2,
      workers: 1,
      inline: false,
      handlers: mathHandlers,
      templates: templatesInNamespace('math'),
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('applies every result exactly once, completes every task, and logs no errors', async () => {
    const archivedBefore = (await archivedMessages(db, STEP_RESULTS_QUEUE)).length;
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0
          ? createTask(db, requestFor(diamond, { n: i }))
          : createTask(db, requestFor(linear, { even_number: 2 })),
      ),
    );
    const tasks = created.map((c) => c.taskUuid);
    await waitForTasks(db, tasks, ['complete', 'error'], 30_000);
    for (const [i, taskUuid] of tasks.entries()) {
      const values = await stepValues(db, taskUuid);
      if (i % 2 === 0) expect(values.diamond_end).toBe(5 * i * i);
      else expect(values.linear_step_4).toBe(65536);
    }
    expect(await duplicateStepTransitions(db, tasks)).toEqual([]);
    expect(await duplicateTaskTransitions(db, tasks)).toEqual([]);
    expect(cluster.recorder.stepsRunMoreThanOnce(tasks)).toEqual([]);

    // One result message per step, each read and archived once; nothing left over.
    const steps = await stepCount(db, tasks);
    expect(steps).toBe(15 * 4 + 15 * 4);
    expect((await archivedMessages(db, STEP_RESULTS_QUEUE)).length - archivedBefore).toBe(steps);
    expect(await queueCounts(db, STEP_RESULTS_QUEUE)).toEqual({ total: 0, visible: 0 });

    // Every result was applied by one of the two orchestrators.
    const processors = cluster.orchestrators.map((o) => o.processorUuid);
    const { rows } = await db.query<{ processor_uuid: string | null }>(
      `SELECT DISTINCT processor_uuid FROM tasker.task_transitions WHERE task_uuid = ANY($1::uuid[]) AND to_state = 'complete'`,
      [tasks],
    );
    for (const row of rows) expect(processors).toContain(row.processor_uuid);

    // No errors, not even warnings.
    expect(unexpectedErrors(logs)).toEqual([]);
    expect(logs.atLeast(LOG_LEVEL.warn).filter((e) => e.level < LOG_LEVEL.error)).toEqual([]);
    // The log did capture the run (so an empty error list means something).
    expect(logs.withMessage('step finished').length).toBeGreaterThanOrEqual(steps);
  });
});
