import { describe, expect, it } from 'vitest';
import { BACKOFF_STRATEGIES } from '../../src/domain/retry/backoff.ts';
import { STEP_STATES } from '../../src/domain/state/stepStates.ts';
import { TASK_STATES } from '../../src/domain/state/taskStates.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

/**
 * The value checks of tasks and workflow_steps are domains (migrations/0001_schemas_and_types.sql), not table
 * CHECK constraints (a table's CHECKs are parsed again by every statement that writes it). The rules must stay
 * what they were:
 * each column is of its domain, each domain allows exactly the values the TypeScript domain code knows, and a
 * bad value written to the table is refused with check_violation.
 */
describe('value checks of tasks and workflow_steps are domains', () => {
  const getDb = useTestDatabase();

  it('each checked column is of its domain, and the tables keep no CHECK of their own on them', async () => {
    const { rows } = await getDb().db.query<{ column: string; domain: string | null }>(
      `SELECT table_name || '.' || column_name AS column, domain_name AS domain
       FROM information_schema.columns
       WHERE table_schema = 'tasker' AND (table_name, column_name) IN
         (('tasks', 'current_state'), ('tasks', 'priority'), ('workflow_steps', 'current_state'),
          ('workflow_steps', 'max_attempts'), ('workflow_steps', 'backoff_strategy'))
       ORDER BY 1`,
    );
    expect(rows).toEqual([
      { column: 'tasks.current_state', domain: 'task_state' },
      { column: 'tasks.priority', domain: 'task_priority' },
      { column: 'workflow_steps.backoff_strategy', domain: 'backoff_strategy' },
      { column: 'workflow_steps.current_state', domain: 'step_state' },
      { column: 'workflow_steps.max_attempts', domain: 'step_max_attempts' },
    ]);
    const checks = await getDb().db.query<{ name: string }>(
      `SELECT conname AS name FROM pg_constraint
       WHERE contype = 'c' AND conrelid IN ('tasker.tasks'::regclass, 'tasker.workflow_steps'::regclass)`,
    );
    expect(checks.rows).toEqual([]);
  });

  it.each([
    ['task_state', [...TASK_STATES]],
    ['step_state', [...STEP_STATES]],
    ['backoff_strategy', [...BACKOFF_STRATEGIES]],
  ] as const)('tasker.%s allows exactly the values the domain code knows', async (domain, values) => {
    const { db } = getDb();
    const accepted = await db.query<{ ok: boolean }>(
      `SELECT bool_and(v::tasker.${domain} IS NOT NULL) AS ok FROM unnest($1::text[]) AS v`,
      [values],
    );
    expect(accepted.rows[0]?.ok).toBe(true);
    await expect(db.query(`SELECT 'not_a_value'::tasker.${domain}`)).rejects.toMatchObject({ code: '23514' });
  });

  it('refuses out-of-range numbers and unknown states written to the tables, and accepts the bounds', async () => {
    const { db } = getDb();
    const cases: Array<[string, string | number, boolean]> = [
      ['tasks.priority', -100, true],
      ['tasks.priority', 100, true],
      ['tasks.priority', 101, false],
      ['tasks.current_state', 'steps_in_process', true],
      ['tasks.current_state', 'running', false],
      ['workflow_steps.max_attempts', 1, true],
      ['workflow_steps.max_attempts', 100, true],
      ['workflow_steps.max_attempts', 0, false],
      ['workflow_steps.current_state', 'in_progress', true],
      ['workflow_steps.current_state', 'done', false],
      ['workflow_steps.backoff_strategy', 'random', false],
    ];
    for (const [column, value, allowed] of cases) {
      const [table, name] = column.split('.') as [string, string];
      // A one-column table of the column's own type (CREATE TABLE AS keeps the domain), written and rolled back.
      const attempt = db.transaction(async (tx) => {
        await tx.query(
          `CREATE TEMP TABLE probe ON COMMIT DROP AS SELECT (NULL::tasker.${table}).${name} AS v WITH NO DATA`,
        );
        await tx.query('INSERT INTO probe (v) VALUES ($1)', [value]);
        throw new Error('rollback');
      });
      if (allowed) {
        await expect(attempt, `${column} = ${String(value)}`).rejects.toThrow('rollback');
      } else {
        await expect(attempt, `${column} = ${String(value)}`).rejects.toMatchObject({ code: '23514' });
      }
    }
  });
});
