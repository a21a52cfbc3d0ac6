/**
 * The engine's own tables (tasks, steps, edges, both transition tables, result audit) have no foreign keys
 * (docs/decisions/0009-engine-tables-without-foreign-keys.md) and keep what keys would do with statement
 * triggers (migrations/0003_templates_and_tasks.sql, 0004_workflow_steps.sql; their functions in
 * src/db/sql/delete_cascades.sql): deleting a task or a step deletes
 * everything that hung from it, TRUNCATE tasker.tasks CASCADE empties every engine table, and a template
 * that tasks still use cannot be deleted. Each is checked here on tasks with a full history (steps run,
 * results audited, a DLQ entry), next to a task that must be left untouched.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../../src/db/database.ts';
import { claimSteps } from '../../../src/db/queries/claimSteps.ts';
import { completeOne } from '../../helpers/engine/completeOne.ts';
import { registerTemplate } from '../../../src/db/queries/registerTemplate.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { createTask } from '../../../src/orchestration/taskInitializer.ts';
import { templateNamed } from '../../helpers/engine/fixtures.ts';
import { orphanRows } from '../../helpers/engine/inspect.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const WORKER = 'integrity-worker';
const getTestDb = useTestDatabase();

/** The diamond fixture in a namespace of its own, without input_schema (no handler runs here). */
function diamondIn(namespace: string): TaskTemplate {
  return { ...templateNamed('diamond_pattern'), namespace, inputSchema: null };
}

/** Rows per engine table that belong to the task (steps, edges, transitions, audit, DLQ entries). */
async function rowsOf(db: Queryable, taskUuid: string): Promise<Record<string, number>> {
  const { rows } = await db.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM tasker.tasks WHERE task_uuid = $1) AS tasks,
            (SELECT count(*) FROM tasker.workflow_steps WHERE task_uuid = $1) AS steps,
            (SELECT count(*) FROM tasker.workflow_step_edges e
               WHERE e.from_step_uuid IN (SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1)
                  OR e.to_step_uuid IN (SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1)) AS edges,
            (SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1) AS task_transitions,
            (SELECT count(*) FROM tasker.workflow_step_transitions st
               WHERE st.workflow_step_uuid IN (SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1)) AS step_transitions,
            (SELECT count(*) FROM tasker.workflow_step_result_audit WHERE task_uuid = $1) AS audit,
            (SELECT count(*) FROM tasker.tasks_dlq WHERE task_uuid = $1) AS dlq`,
    [taskUuid],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}

describe('engine tables without foreign keys', () => {
  let db: Database;

  beforeAll(() => {
    db = getTestDb().db;
  });

  /** A diamond task with its root step run and audited, its edge rows, and a DLQ entry. */
  async function taskWithHistory(template: TaskTemplate, n: number): Promise<string> {
    const { taskUuid } = await createTask(db, {
      namespace: template.namespace,
      name: template.name,
      version: template.version,
      context: { n },
    });
    const claimed = (await claimSteps(db, template.namespace, WORKER, 60, 10)).filter(
      (s) => s.taskUuid === taskUuid,
    );
    expect(claimed.length).toBe(1);
    for (const step of claimed) {
      const outcome = await completeOne(db, {
        taskUuid,
        stepUuid: step.stepUuid,
        attempt: step.attempt,
        success: true,
        payload: { done: step.stepName },
        workerId: WORKER,
        executionMs: 1,
        inline: true,
      });
      expect(outcome).toBe('complete');
    }
    await db.query(
      `INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason) VALUES ($1, 'steps_in_process', 'manual_dlq')`,
      [taskUuid],
    );
    return taskUuid;
  }

  const FULL = { tasks: 1, steps: 4, edges: 4, task_transitions: 4, dlq: 1 };

  it('deleting a task deletes its steps, edges, transitions, audit rows and DLQ entries; others stay', async () => {
    const template = diamondIn('integrity_delete');
    await registerTemplate(db, template);
    const doomed = await taskWithHistory(template, 1);
    const kept = await taskWithHistory(template, 2);
    const before = await rowsOf(db, doomed);
    expect(before).toMatchObject(FULL);
    expect(before.step_transitions).toBeGreaterThan(4);
    expect(before.audit).toBe(1);
    const keptBefore = await rowsOf(db, kept);

    await db.query('DELETE FROM tasker.tasks WHERE task_uuid = $1', [doomed]);

    expect(await rowsOf(db, doomed)).toEqual({
      tasks: 0,
      steps: 0,
      edges: 0,
      task_transitions: 0,
      step_transitions: 0,
      audit: 0,
      dlq: 0,
    });
    expect(await rowsOf(db, kept)).toEqual(keptBefore);
    expect(Object.values(await orphanRows(db)).every((n) => n === 0)).toBe(true);
  });

  it('deleting a step deletes its edges at both ends, its transitions and its audit rows', async () => {
    const template = diamondIn('integrity_step');
    await registerTemplate(db, template);
    const taskUuid = await taskWithHistory(template, 1);
    const stepUuid = async (name: string): Promise<string> => {
      const { rows } = await db.query<{ workflow_step_uuid: string }>(
        'SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1 AND name = $2',
        [taskUuid, name],
      );
      return rows[0]?.workflow_step_uuid ?? '';
    };
    const transitionsOf = async (step: string): Promise<number> => {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1',
        [step],
      );
      return Number(rows[0]?.n);
    };

    // diamond_branch_b sits between the start and the end: one edge in, one edge out.
    const branch = await stepUuid('diamond_branch_b');
    expect(await transitionsOf(branch)).toBeGreaterThan(0);
    await db.query('DELETE FROM tasker.workflow_steps WHERE workflow_step_uuid = $1', [branch]);
    expect(await rowsOf(db, taskUuid)).toMatchObject({ tasks: 1, steps: 3, edges: 2, audit: 1, dlq: 1 });
    expect(await transitionsOf(branch)).toBe(0);

    // diamond_start ran: its audit row and transitions go with it, and so does its edge to branch c.
    const start = await stepUuid('diamond_start');
    await db.query('DELETE FROM tasker.workflow_steps WHERE workflow_step_uuid = $1', [start]);
    expect(await rowsOf(db, taskUuid)).toMatchObject({ tasks: 1, steps: 2, edges: 1, audit: 0, dlq: 1 });
    expect(await transitionsOf(start)).toBe(0);
    expect(Object.values(await orphanRows(db)).every((n) => n === 0)).toBe(true);
  });

  it('TRUNCATE tasker.tasks CASCADE empties every engine table', async () => {
    const template = diamondIn('integrity_truncate');
    await registerTemplate(db, template);
    await taskWithHistory(template, 1);

    await db.query('TRUNCATE tasker.tasks CASCADE');

    const { rows } = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM tasker.tasks) + (SELECT count(*) FROM tasker.workflow_steps)
            + (SELECT count(*) FROM tasker.workflow_step_edges) + (SELECT count(*) FROM tasker.task_transitions)
            + (SELECT count(*) FROM tasker.workflow_step_transitions)
            + (SELECT count(*) FROM tasker.workflow_step_result_audit) + (SELECT count(*) FROM tasker.tasks_dlq) AS n`,
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });

  it('a template that tasks still use cannot be deleted (foreign_key_violation); an unused one can', async () => {
    const used = diamondIn('integrity_template_used');
    const usedUuid = await registerTemplate(db, used);
    await createTask(db, { namespace: used.namespace, name: used.name, version: used.version, context: {} });
    const unusedUuid = await registerTemplate(db, diamondIn('integrity_template_unused'));

    const refused = db.query('DELETE FROM tasker.named_tasks WHERE named_task_uuid = $1', [usedUuid]);
    await expect(refused).rejects.toMatchObject({ code: '23503' });
    await expect(refused).rejects.toThrow(/template diamond_pattern version .* still has tasks/);

    await db.query('DELETE FROM tasker.named_tasks WHERE named_task_uuid = $1', [unusedUuid]);
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM tasker.named_tasks WHERE named_task_uuid = ANY($1::uuid[])',
      [[usedUuid, unusedUuid]],
    );
    expect(Number(rows[0]?.n)).toBe(1);
  });
});
