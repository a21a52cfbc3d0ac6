import { describe, expect, it } from 'vitest';
import { stepTransitionEdges } from '../../src/domain/state/stepStates.ts';
import { taskTransitionEdges } from '../../src/domain/state/taskStates.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

/** The SQL functions refuse transitions missing from these tables; they must be exactly the domain's. */
describe('allowed transitions: SQL tables equal the domain state machines', () => {
  const getDb = useTestDatabase();

  it.each([
    ['task', 'task_state_transitions', taskTransitionEdges()],
    ['step', 'step_state_transitions', stepTransitionEdges()],
  ] as const)('%s machine', async (_label, table, edges) => {
    const { rows } = await getDb().db.query<{ from_state: string; to_state: string }>(
      `SELECT from_state, to_state FROM tasker.${table} ORDER BY 1, 2`,
    );
    const inSql = rows.map((row) => `${row.from_state} -> ${row.to_state}`).sort();
    const inDomain = [...new Set(edges.map((edge) => `${edge.from} -> ${edge.to}`))].sort();
    expect(inSql).toEqual(inDomain);
  });

  it('refuses a transition that is not in the table', async () => {
    const { db } = getDb();
    await expect(
      db.query("SELECT tasker._record_step_transition(gen_random_uuid(), 'complete', 'pending', '{}')"),
    ).rejects.toMatchObject({
      code: '23514',
    });
  });
});
