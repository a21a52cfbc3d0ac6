/**
 * Batches are written as sets: tasker.create_tasks given several tasks inserts them with one statement per table
 * (tasker._create_task_batch, src/db/sql/create_tasks.sql), and tasker.complete_many_and_claim given several successful
 * results applies them with one statement per table (src/db/sql/complete_steps.sql). A batch of one takes the
 * per-item path instead (tasker._create_single_task; tasker._complete_step, src/db/sql/complete_one_step.sql), and both
 * paths must write exactly the same rows. So every test here builds the same workflows twice, in two namespaces,
 * once item by item (create_tasks with a batch of one, complete_many_and_claim with a batch of one) and once as
 * one batch of several, and compares everything a user or operator can read: task and step states, both
 * transition histories, results, audit rows and queue messages.
 */
import { v7 as uuidv7 } from 'uuid';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../../src/db/database.ts';
import { claimSteps, type ClaimedStep } from '../../../src/db/queries/claimSteps.ts';
import { completeManyAndClaim } from '../../../src/db/queries/completeStep.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { createTask, planSteps } from '../../../src/orchestration/taskInitializer.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import { HAPPY_TASK_PATH } from '../../helpers/engine/exampleExpectations.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const WORKER = 'set-based-worker';

/** The templates of one world, all in its own namespace. */
function world(namespace: string): Record<'linear' | 'diamond' | 'fan' | 'single', TaskTemplate> {
  // No input_schema: no handler runs here, and the contexts only tell the tasks apart.
  const from = (name: string): TaskTemplate => ({ ...templateNamed(name), namespace, inputSchema: null });
  const fan = from('wide_fan');
  return {
    linear: from('mathematical_sequence'),
    diamond: from('diamond_pattern'),
    fan,
    single: { ...fan, name: 'single_step', steps: fan.steps.slice(0, 1) },
  };
}

/** Everything readable about a task, with uuids, times and worker-chosen delays left out. */
async function snapshot(db: Queryable, taskUuid: string): Promise<unknown> {
  const task = await db.query<{ current_state: string; complete: boolean; finished: boolean }>(
    `SELECT current_state, complete, completed_at IS NOT NULL AS finished FROM tasker.tasks WHERE task_uuid = $1`,
    [taskUuid],
  );
  const taskHistory = await db.query(
    `SELECT from_state, to_state, metadata, sort_key, most_recent, processor_uuid
       FROM tasker.task_transitions WHERE task_uuid = $1 ORDER BY sort_key`,
    [taskUuid],
  );
  const steps = await db.query(
    `SELECT name, current_state, attempts, results, last_error - 'attempt' AS last_error, in_process, processed,
            claimed_by, next_retry_at IS NOT NULL AS retry_due, lease_msg_id IS NOT NULL AS leased
       FROM tasker.workflow_steps WHERE task_uuid = $1 ORDER BY name`,
    [taskUuid],
  );
  const stepHistory = await db.query(
    `SELECT s.name, t.from_state, t.to_state, t.metadata - 'delay_ms' - 'due_at' AS metadata, t.sort_key, t.most_recent
       FROM tasker.workflow_step_transitions t JOIN tasker.workflow_steps s USING (workflow_step_uuid)
      WHERE s.task_uuid = $1 ORDER BY s.name, t.sort_key`,
    [taskUuid],
  );
  const audit = await db.query(
    `SELECT s.name, a.success, a.attempt, a.worker_uuid, tr.to_state
       FROM tasker.workflow_step_result_audit a
       JOIN tasker.workflow_steps s USING (workflow_step_uuid)
       JOIN tasker.workflow_step_transitions tr USING (workflow_step_transition_uuid)
      WHERE a.task_uuid = $1 ORDER BY s.name, a.attempt`,
    [taskUuid],
  );
  const edges = await db.query(
    `SELECT f.name AS from_step, t.name AS to_step, e.name
       FROM tasker.workflow_step_edges e
       JOIN tasker.workflow_steps f ON f.workflow_step_uuid = e.from_step_uuid
       JOIN tasker.workflow_steps t ON t.workflow_step_uuid = e.to_step_uuid
      WHERE f.task_uuid = $1 ORDER BY 1, 2`,
    [taskUuid],
  );
  return {
    task: task.rows[0],
    taskHistory: taskHistory.rows,
    steps: steps.rows,
    stepHistory: stepHistory.rows,
    audit: audit.rows,
    edges: edges.rows,
    messages: await messagesOf(db, taskUuid),
  };
}

/** The task's worker-queue messages by step name: live (and whether visible) and archived. */
async function messagesOf(db: Queryable, taskUuid: string): Promise<unknown> {
  const { rows: queues } = await db.query<{ namespace_name: string }>(
    'SELECT namespace_name FROM tasker.tasks WHERE task_uuid = $1',
    [taskUuid],
  );
  const queue = `worker_${queues[0]?.namespace_name ?? ''}_queue`;
  const read = async (table: string, visible: boolean): Promise<unknown[]> =>
    (
      await db.query(
        `SELECT s.name, m.message ->> 'correlation_id' = t.correlation_id::text AS same_correlation${
          visible ? ', m.vt <= clock_timestamp() AS visible, m.read_ct' : ''
        }
           FROM pgmq."${table}" m
           JOIN tasker.workflow_steps s ON s.workflow_step_uuid = (m.message ->> 'step_uuid')::uuid
           JOIN tasker.tasks t ON t.task_uuid = s.task_uuid
          WHERE (m.message ->> 'task_uuid')::uuid = $1 ORDER BY s.name, m.msg_id`,
        [taskUuid],
      )
    ).rows;
  return { live: await read(`q_${queue}`, true), archived: await read(`a_${queue}`, false) };
}

describe('set-based batches (create_tasks, complete_many_and_claim)', () => {
  const getTestDb = useTestDatabase();
  let db: Database;

  beforeAll(() => {
    db = getTestDb().db;
  });

  async function register(templates: Record<string, TaskTemplate>): Promise<Map<TaskTemplate, string>> {
    const named = new Map<TaskTemplate, string>();
    for (const template of Object.values(templates))
      named.set(template, await registerTemplate(db, template));
    return named;
  }

  it('create_tasks with a batch of several writes what it writes for a batch of one, task by task, and archives the requests', async () => {
    const single = world('create_single');
    const batched = world('create_batch');
    const namedTasks = await register(batched);
    await register(single);
    const order = ['diamond', 'linear', 'fan', 'single', 'diamond'] as const;

    // One at a time: createTask alone on the pool is tasker.create_tasks with a batch of one (tasker._create_single_task).
    const singles: string[] = [];
    for (const [i, key] of order.entries()) {
      const created = await createTask(db, {
        namespace: single[key].namespace,
        name: single[key].name,
        version: single[key].version,
        context: { n: i },
      });
      singles.push(created.taskUuid);
    }

    // The same tasks in one create_tasks call (tasker._create_task_batch); the third arrived as a task request message.
    await db.query(`SELECT pgmq.send('orchestration_task_requests', '{"request": "third"}'::jsonb)`);
    const { rows: requests } = await db.query<{ msg_id: string }>(
      'SELECT msg_id FROM pgmq.q_orchestration_task_requests ORDER BY msg_id DESC LIMIT 1',
    );
    const requestMsgId = requests[0]?.msg_id ?? null;
    const items = order.map((key, i) => {
      const template = batched[key];
      const { steps, edges } = planSteps(template);
      return {
        task: {
          task_uuid: uuidv7(),
          named_task_uuid: namedTasks.get(template),
          namespace_name: template.namespace,
          context: { n: i },
          identity_hash: `set-based-${i}-${uuidv7()}`,
          initiator: null,
          source_system: null,
          reason: null,
          tags: [],
          priority: 0,
          correlation_id: uuidv7(),
          parent_correlation_id: null,
          requested_at: null,
          processor_uuid: null,
        },
        steps,
        edges,
        request_msg_id: i === 2 ? requestMsgId : null,
      };
    });
    const { rows } = await db.query<{
      task_uuid: string;
      current_state: string;
      enqueued_steps: number;
      queue: string;
      msg_ids: string[];
    }>('SELECT * FROM tasker.create_tasks($1::jsonb, false)', [JSON.stringify(items)]);

    // One row per task, in input order, each naming its own task.
    expect(rows.map((r) => r.task_uuid)).toEqual(items.map((item) => item.task.task_uuid));
    expect(rows.map((r) => r.enqueued_steps)).toEqual([1, 1, 6, 1, 1]);
    for (const row of rows) {
      expect(row.current_state).toBe('steps_in_process');
      expect(row.queue).toBe('worker_create_batch_queue');
      const { rows: sent } = await db.query<{ msg_id: string }>(
        `SELECT msg_id FROM pgmq.q_worker_create_batch_queue WHERE (message ->> 'task_uuid')::uuid = $1 ORDER BY msg_id`,
        [row.task_uuid],
      );
      expect(row.msg_ids.map(String)).toEqual(sent.map((m) => String(m.msg_id)));
    }
    for (const [i, row] of rows.entries()) {
      expect(await snapshot(db, row.task_uuid)).toEqual(await snapshot(db, singles[i] ?? ''));
    }
    const { rows: archived } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pgmq.a_orchestration_task_requests WHERE msg_id = $1',
      [requestMsgId],
    );
    expect(archived[0]?.n).toBe(1);
  });

  it('create_tasks writes nothing when one task of the batch fails', async () => {
    const templates = world('create_atomic');
    const namedTasks = await register(templates);
    const item = (identity: string): unknown => ({
      task: {
        task_uuid: uuidv7(),
        named_task_uuid: namedTasks.get(templates.single),
        namespace_name: 'create_atomic',
        context: {},
        identity_hash: identity,
        tags: [],
        priority: 0,
        correlation_id: uuidv7(),
      },
      steps: planSteps(templates.single).steps,
      edges: [],
      request_msg_id: null,
    });
    await expect(
      db.query('SELECT * FROM tasker.create_tasks($1::jsonb, false)', [
        JSON.stringify([item('a'), item('b'), item('a')]),
      ]),
    ).rejects.toMatchObject({ constraint: 'tasks_identity_hash_key' });
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasker.tasks WHERE namespace_name = 'create_atomic'`,
    );
    expect(rows[0]?.n).toBe(0);
  });

  /**
   * One world's tasks, with every root claimed by WORKER, and the batch of results the test stores: the single
   * step succeeds (finishing its task), linear's first step and diamond's root succeed (making children ready),
   * and of the fan's six roots four succeed, one comes back with a stale attempt and one fails for good.
   */
  async function preparedWorld(namespace: string): Promise<{
    tasks: Record<'linear' | 'diamond' | 'fan' | 'single', string>;
    results: { claimed: ClaimedStep; success: boolean; attempt: number; payload: unknown }[];
  }> {
    const templates = world(namespace);
    await register(templates);
    const tasks = {} as Record<'linear' | 'diamond' | 'fan' | 'single', string>;
    for (const key of ['linear', 'diamond', 'fan', 'single'] as const) {
      const template = templates[key];
      tasks[key] = (
        await createTask(db, {
          namespace,
          name: template.name,
          version: template.version,
          context: { even_number: 4 },
        })
      ).taskUuid;
    }
    const claimed = await claimSteps(db, namespace, WORKER, 60, 50);
    expect(claimed).toHaveLength(9);
    const results = claimed.map((step) => {
      const fanIndex = step.taskUuid === tasks.fan ? Number(step.stepName.replace('wide_', '')) : 0;
      if (fanIndex === 5)
        return { claimed: step, success: true, attempt: step.attempt + 1, payload: { late: true } };
      if (fanIndex === 6) {
        return {
          claimed: step,
          success: false,
          attempt: step.attempt,
          payload: { message: 'bad input', error_type: 'permanent_error', retryable: false },
        };
      }
      return { claimed: step, success: true, attempt: step.attempt, payload: { value: step.stepName } };
    });
    return { tasks, results };
  }

  it('complete_many_and_claim applies a batch exactly as it applies each result in a batch of one', async () => {
    const one = await preparedWorld('complete_single');
    const many = await preparedWorld('complete_batch');

    const singleOutcomes: Record<string, string> = {};
    const byTaskThenStep = (a: { claimed: ClaimedStep }, b: { claimed: ClaimedStep }): number =>
      a.claimed.taskUuid.localeCompare(b.claimed.taskUuid) ||
      a.claimed.stepUuid.localeCompare(b.claimed.stepUuid);
    for (const result of [...one.results].sort(byTaskThenStep)) {
      singleOutcomes[result.claimed.stepName + '@' + taskKey(one.tasks, result.claimed.taskUuid)] =
        await completeOne(db, {
          taskUuid: result.claimed.taskUuid,
          stepUuid: result.claimed.stepUuid,
          attempt: result.attempt,
          success: result.success,
          payload: result.payload,
          workerId: WORKER,
          executionMs: 3,
          inline: true,
        });
    }

    // limit 0: the batch starts no child for the worker, as completeOne (limit 0) does not; children are enqueued.
    const batch = await completeManyAndClaim(
      db,
      many.results.map((result) => ({
        taskUuid: result.claimed.taskUuid,
        stepUuid: result.claimed.stepUuid,
        attempt: result.attempt,
        success: result.success,
        payload: result.payload,
        executionMs: 3,
      })),
      {
        workerId: WORKER,
        inline: true,
        namespace: 'complete_batch',
        leaseSeconds: 60,
        limit: 0,
        deferSignal: true,
      },
    );
    expect(batch.claimed).toEqual([]);
    const batchOutcomes = Object.fromEntries(
      many.results.map((r) => [
        r.claimed.stepName + '@' + taskKey(many.tasks, r.claimed.taskUuid),
        batch.outcomes.get(r.claimed.stepUuid),
      ]),
    );
    expect(batchOutcomes).toEqual(singleOutcomes);
    expect(batchOutcomes).toMatchObject({
      'wide_1@single': 'complete',
      'wide_5@fan': 'stale',
      'wide_6@fan': 'error',
    });
    // The children that became ready are signalled: linear's second step, diamond's two branches.
    expect(batch.signals.map((s) => [s.queue, s.msgIds.length])).toEqual([
      ['worker_complete_batch_queue', 3],
    ]);

    for (const key of ['linear', 'diamond', 'fan', 'single'] as const) {
      expect(await snapshot(db, many.tasks[key]), key).toEqual(await snapshot(db, one.tasks[key]));
    }
    const states = await db.query<{ current_state: string }>(
      'SELECT current_state FROM tasker.tasks WHERE task_uuid = ANY($1::uuid[]) ORDER BY current_state',
      [[many.tasks.single, many.tasks.fan]],
    );
    expect(states.rows.map((r) => r.current_state)).toEqual(['complete', 'error']);
  });

  it('complete_many_and_claim starts the ready children for the worker in the same commit', async () => {
    const many = await preparedWorld('complete_claim');
    const successes = many.results.filter((r) => r.success && r.attempt === r.claimed.attempt);
    const batch = await completeManyAndClaim(
      db,
      successes.map((result) => ({
        taskUuid: result.claimed.taskUuid,
        stepUuid: result.claimed.stepUuid,
        attempt: result.attempt,
        success: true,
        payload: result.payload,
        executionMs: 1,
      })),
      {
        workerId: WORKER,
        inline: true,
        namespace: 'complete_claim',
        leaseSeconds: 60,
        limit: 2,
        deferSignal: true,
      },
    );
    // Room for two: handed out in task order, the rest enqueued and signalled.
    expect(batch.claimed).toHaveLength(2);
    const signalled = batch.signals.flatMap((s) => s.msgIds);
    expect(signalled).toHaveLength(1);
    for (const step of batch.claimed) {
      const { rows } = await db.query<{ current_state: string; claimed_by: string; path: string[] }>(
        `SELECT s.current_state, s.claimed_by,
                array_agg(t.to_state ORDER BY t.sort_key) AS path
           FROM tasker.workflow_steps s JOIN tasker.workflow_step_transitions t USING (workflow_step_uuid)
          WHERE s.workflow_step_uuid = $1 GROUP BY 1, 2`,
        [step.stepUuid],
      );
      expect(rows[0]).toEqual({
        current_state: 'in_progress',
        claimed_by: WORKER,
        path: ['pending', 'enqueued', 'in_progress'],
      });
      // Its dependency results came with the claim.
      expect(Object.keys(step.dependencyResults)).toHaveLength(1);
    }
    const { rows: single } = await db.query<{ current_state: string; path: string[] }>(
      `SELECT t.current_state, array_agg(tt.to_state ORDER BY tt.sort_key) AS path
         FROM tasker.tasks t JOIN tasker.task_transitions tt USING (task_uuid) WHERE t.task_uuid = $1 GROUP BY 1`,
      [many.tasks.single],
    );
    expect(single[0]).toEqual({
      current_state: 'complete',
      path: HAPPY_TASK_PATH,
    });
  });
});

function taskKey(tasks: Record<string, string>, taskUuid: string): string {
  return Object.entries(tasks).find(([, uuid]) => uuid === taskUuid)?.[0] ?? taskUuid;
}
