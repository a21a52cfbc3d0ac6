/**
 * The hot path reads steps by primary key however the tables' statistics look (the functions in src/db/sql/,
 * e.g. complete_steps.sql, say how each statement keeps to that). A session
 * makes its generic plans the first time a hot-path function runs, and keeps them. When that happened on
 * small tables (a new database, or one just truncated) the planner used to choose a scan of a whole index
 * with a filter, and kept it as the table grew: every chain edge then read every step, and every completion
 * read every step in progress.
 *
 * So this test runs the hot path once in one session while the tables are almost empty: creating tasks,
 * claiming, completing a chain edge and a batch, storing a result for orchestration and applying it. Then it
 * grows the tables to thousands of steps, hundreds of them in progress, and counts the blocks of the engine's
 * tables and indexes that the same calls read in that same session (pg_stat_get_xact_blocks_fetched, this
 * transaction's own count), against what they read on the small tables. Reading by key costs about the same
 * on both; a whole-index scan costs a block or more per step.
 */
import pg from 'pg';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import type { NewStepRow, NewTaskRow } from '../../../src/db/queries/createTask.ts';
import { createTask, planSteps } from '../../../src/orchestration/taskInitializer.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const NAMESPACE = 'plans';
const WORKER = 'plan-worker';
const OTHER_WORKER = 'busy-worker';
/** Tasks created after the plans were made: 4 steps each. */
const GROWN_TASKS = 4_000;
/** Of their first steps, this many are claimed by another worker and left in progress. */
const IN_PROGRESS = 1_000;
/**
 * What a call may read on the grown tables: three times its figure on the small ones, plus this. Deeper
 * B-trees cost a block per lookup, and dead index entries a few more while other sessions hold back their
 * removal (the full test suite runs beside this). A whole-index scan costs thousands here.
 */
const SLACK_BLOCKS = 100;
/**
 * The leases of this test's claims: longer than the test, so no step claimed on the small tables comes back
 * while the tables grow: on a loaded machine the growth can outlast a 30 s lease, and a lease that ran out
 * would send the later calls down the lease-expired path instead of the one measured on the small tables.
 */
const LEASE_SECONDS = 3_600;

const LINEAR: TaskTemplate = {
  ...templateNamed('mathematical_sequence'),
  namespace: NAMESPACE,
  inputSchema: null,
};

interface Claimed {
  task_uuid: string;
  step_uuid: string;
  attempt: number;
}

describe('hot-path plans made on small tables', () => {
  const getTestDb = useTestDatabase();
  let db: Database;
  /** The one session whose plans are made early and measured late. */
  let session: pg.Client;
  let namedTaskUuid: string;
  let seq = 0;

  beforeAll(async () => {
    db = getTestDb().db;
    namedTaskUuid = await registerTemplate(db, LINEAR);
    session = new pg.Client({ connectionString: getTestDb().url, application_name: 'tasker-test' });
    await session.connect();
  });

  afterAll(async () => {
    await session.end();
  });

  async function createTasks(count: number): Promise<void> {
    for (let done = 0; done < count; done += 50) {
      const batch = Array.from({ length: Math.min(50, count - done) }, () =>
        createTask(db, {
          namespace: NAMESPACE,
          name: LINEAR.name,
          version: LINEAR.version,
          context: { seq: seq++ },
        }),
      );
      await Promise.all(batch);
    }
  }

  async function claim(limit: number): Promise<Claimed[]> {
    const { rows } = await session.query<Claimed>(
      'SELECT task_uuid, step_uuid, attempt FROM tasker.claim_steps($1, $2, $3, $4)',
      [NAMESPACE, WORKER, LEASE_SECONDS, limit],
    );
    return rows;
  }

  /**
   * tasker.complete_many_and_claim for these steps, all succeeding or all failing (retryably): the steps it
   * started, and what storing did (its last row).
   */
  async function completeMany(
    steps: Claimed[],
    options: { success: boolean; inline: boolean; limit: number },
  ): Promise<{ started: Claimed[]; outcomes: Record<string, string> }> {
    const payload = options.success ? { ok: true } : { message: 'boom', retryable: true };
    const results = steps.map((s) => ({ ...s, success: options.success, payload, execution_ms: 1 }));
    const { rows } = await session.query<Partial<Claimed> & { outcomes: Record<string, string> | null }>(
      'SELECT task_uuid, step_uuid, attempt, outcomes FROM tasker.complete_many_and_claim($1::jsonb, $2, $3, $4, $5, $6)',
      [JSON.stringify(results), WORKER, options.inline, NAMESPACE, LEASE_SECONDS, options.limit],
    );
    return {
      started: rows.flatMap((r) =>
        r.step_uuid == null
          ? []
          : [{ task_uuid: r.task_uuid ?? '', step_uuid: r.step_uuid, attempt: r.attempt ?? 0 }],
      ),
      outcomes: rows.at(-1)?.outcomes ?? {},
    };
  }

  /** Completed in the worker's commit, each starting its next step. */
  async function complete(steps: Claimed[]): Promise<Claimed[]> {
    return (await completeMany(steps, { success: true, inline: true, limit: steps.length })).started;
  }

  /** A task's creation as createTask builds it for tasker.create_tasks. */
  function newTask(): { task: NewTaskRow; steps: NewStepRow[]; edges: { from: string; to: string }[] } {
    const n = seq++;
    return {
      task: {
        task_uuid: uuidv7(),
        named_task_uuid: namedTaskUuid,
        namespace_name: NAMESPACE,
        context: { seq: n },
        identity_hash: `plan-stability-${n}`,
        initiator: null,
        source_system: null,
        reason: null,
        tags: [],
        priority: 0,
        correlation_id: uuidv4(),
        parent_correlation_id: null,
        requested_at: null,
        processor_uuid: null,
      },
      ...planSteps(LINEAR),
    };
  }

  /** A batch of one, its signal in the commit (tasker._create_single_task). */
  async function createOne(): Promise<void> {
    const { rows } = await session.query<{ enqueued_steps: number }>(
      'SELECT enqueued_steps FROM tasker.create_tasks($1::jsonb, true)',
      [JSON.stringify([{ ...newTask(), request_msg_id: null }])],
    );
    expect(rows.map((r) => r.enqueued_steps)).toEqual([1]);
  }

  /** A batch of several, signalled after the commit (tasker._create_task_batch). */
  async function createBatch(count: number): Promise<void> {
    const items = Array.from({ length: count }, () => ({ ...newTask(), request_msg_id: null }));
    const { rows } = await session.query('SELECT task_uuid FROM tasker.create_tasks($1::jsonb, false)', [
      JSON.stringify(items),
    ]);
    expect(rows).toHaveLength(count);
  }

  /** Results stored for orchestration (p_inline false), not applied. */
  async function store(steps: Claimed[]): Promise<void> {
    const { outcomes } = await completeMany(steps, { success: true, inline: false, limit: 0 });
    expect(Object.values(outcomes)).toEqual(steps.map(() => 'stored'));
  }

  /** A retryable failure applied in the worker's commit: the step waits for its retry. */
  async function fail(step: Claimed): Promise<void> {
    const { outcomes } = await completeMany([step], { success: false, inline: true, limit: 1 });
    expect(outcomes[step.step_uuid]).toBe('retry');
  }

  async function cancel(taskUuid: string): Promise<void> {
    const { rows } = await session.query<{ outcome: string }>('SELECT tasker.cancel_task($1) AS outcome', [
      taskUuid,
    ]);
    expect(rows[0]?.outcome).toBe('cancelled');
  }

  /** The orchestrator's look at its queues: applies the stored results, then the finalization requests. */
  async function orchestrate(): Promise<number> {
    const { rows } = await session.query<{ handled: number }>(
      'SELECT tasker.process_step_results(10, 30, NULL) AS handled',
    );
    await session.query('SELECT tasker.process_finalization_requests(10, 30, NULL)');
    return rows[0]?.handled ?? 0;
  }

  /** Blocks of the engine's tables and their indexes read by `work` in this session, in one transaction. */
  async function blocksRead<T>(work: () => Promise<T>): Promise<{ blocks: number; value: T }> {
    const read = async (): Promise<number> => {
      const { rows } = await session.query<{ blocks: string }>(
        `SELECT sum(pg_stat_get_xact_blocks_fetched(c.oid)) AS blocks FROM pg_class c
          WHERE c.relnamespace = 'tasker'::regnamespace AND c.relkind IN ('r', 'i')`,
      );
      return Number(rows[0]?.blocks ?? 0);
    };
    await session.query('BEGIN');
    try {
      const before = await read();
      const value = await work();
      const blocks = (await read()) - before;
      await session.query('COMMIT');
      return { blocks, value };
    } catch (error) {
      await session.query('ROLLBACK');
      throw error;
    }
  }

  /**
   * A task created alone and two together; a claim of one step and the chain edge that completes it; a claim
   * of two and the batch completing them; a result stored for orchestration and applied by it; a retryable
   * failure; and a cancellation.
   */
  async function hotPath(): Promise<Record<string, number>> {
    const created = await blocksRead(() => createOne());
    const createdTwo = await blocksRead(() => createBatch(2));
    const one = await blocksRead(() => claim(1));
    expect(one.value).toHaveLength(1);
    const edge = await blocksRead(() => complete(one.value));
    // The chain edge started the next step in the same call; so did each result of the batch.
    expect(edge.value).toHaveLength(1);
    const two = await blocksRead(() => claim(2));
    expect(two.value).toHaveLength(2);
    const batch = await blocksRead(() => complete(two.value));
    expect(batch.value).toHaveLength(2);
    const three = await claim(1);
    const stored = await blocksRead(() => store(three));
    const applied = await blocksRead(() => orchestrate());
    expect(applied.value).toBe(1);
    const [four] = await claim(1);
    if (four === undefined) throw new Error('no step to claim');
    const failed = await blocksRead(() => fail(four));
    const cancelled = await blocksRead(() => cancel(four.task_uuid));
    // The failed step's retry waits in the queue as a delayed message. Cancelling leaves it there, to be
    // archived by whichever claim reads it once its delay has passed: that could be one measured next.
    await db.query(`DELETE FROM pgmq.q_worker_${NAMESPACE}_queue WHERE message ->> 'task_uuid' = $1`, [
      four.task_uuid,
    ]);
    return {
      create: created.blocks,
      createTwo: createdTwo.blocks,
      claim: one.blocks,
      chainEdge: edge.blocks,
      claimTwo: two.blocks,
      batch: batch.blocks,
      storeForOrchestration: stored.blocks,
      orchestratorApplies: applied.blocks,
      retryableFailure: failed.blocks,
      cancel: cancelled.blocks,
    };
  }

  it('reads as few blocks per claim and completion on grown tables as on small ones', async () => {
    // The session plans the hot path on nearly empty tables whose statistics say so (as autovacuum leaves
    // them on a new database, or VACUUM after a TRUNCATE), and this is what each call costs there.
    await createTasks(3);
    for (const table of ['tasks', 'workflow_steps', 'workflow_step_edges', 'workflow_step_transitions']) {
      await db.query(`VACUUM ANALYZE tasker.${table}`);
    }
    const small = await hotPath();

    // Growth: thousands of steps, hundreds of them in progress (claimed by another worker, never finished).
    await createTasks(GROWN_TASKS);
    let busy = 0;
    while (busy < IN_PROGRESS)
      busy += (await claimSteps(db, NAMESPACE, OTHER_WORKER, LEASE_SECONDS, 50)).length;
    const { rows } = await db.query<{ steps: string; running: string }>(
      `SELECT count(*) AS steps, count(*) FILTER (WHERE current_state = 'in_progress') AS running
         FROM tasker.workflow_steps`,
    );
    expect(Number(rows[0]?.steps)).toBeGreaterThan(GROWN_TASKS * 4);
    expect(Number(rows[0]?.running)).toBeGreaterThanOrEqual(IN_PROGRESS);

    // Same plans, 1,000 times the rows: a read by key costs a level more of each B-tree; a scan of a whole
    // index costs a block or more per step (measured before the plans kept to keys: 373 to 15,009 blocks per
    // call here).
    const grown = await hotPath();
    for (const [call, blocks] of Object.entries(grown)) {
      const before = small[call] ?? 0;
      expect(
        blocks,
        `${call}: ${blocks} blocks on grown tables, ${before} on small ones`,
      ).toBeLessThanOrEqual(3 * before + SLACK_BLOCKS);
    }
  }, 120_000);
});
