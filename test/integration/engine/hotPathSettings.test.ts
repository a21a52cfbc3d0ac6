/**
 * Every PL/pgSQL tasker.* function the services call runs with JIT off (a SET clause on its definition in
 * src/db/sql/). A generic plan's cost estimate grows with the tables, and past jit_above_cost PostgreSQL
 * compiled small hot-path statements at every execution (6 ms for a 0.02 ms lookup). SQL-language functions
 * must carry no setting at all: a SET clause stops them being inlined into the calling query (the task view
 * then took 1.8 s). The list of functions is read from the source, so a function the code starts calling is
 * checked too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const SRC = fileURLToPath(new URL('../../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** `tasker.<name>(` in code, comments left out. */
function functionsCalledFromSource(): string[] {
  const names = new Set<string>();
  for (const file of sourceFiles(SRC)) {
    const code = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line))
      .join('\n');
    for (const match of code.matchAll(/tasker\.([a-z_]+)\(/g)) names.add(match[1] ?? '');
  }
  return [...names].sort();
}

describe('hot-path function settings', () => {
  const getTestDb = useTestDatabase();

  it('runs every PL/pgSQL function the services call with JIT off, and keeps SQL functions inlinable', async () => {
    const called = functionsCalledFromSource();
    expect(called).toContain('complete_many_and_claim');
    const { rows } = await getTestDb().db.query<{ name: string; language: string; config: string[] | null }>(
      `SELECT p.proname AS name, l.lanname AS language, p.proconfig AS config
         FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = 'tasker'::regnamespace AND p.proname = ANY($1::text[])`,
      [called],
    );
    expect(rows.map((r) => r.name).sort()).toEqual(expect.arrayContaining(called));
    const plpgsql = rows.filter((r) => r.language === 'plpgsql');
    const sql = rows.filter((r) => r.language === 'sql');
    expect(plpgsql.map((r) => r.name)).toContain('claim_steps');
    expect(sql.map((r) => r.name)).toContain('get_step_readiness_status');
    expect(plpgsql.filter((r) => !(r.config ?? []).includes('jit=off')).map((r) => r.name)).toEqual([]);
    expect(sql.filter((r) => r.config !== null).map((r) => r.name)).toEqual([]);
  });

  it('keeps the planner settings of every hot-path entry point (a CREATE OR REPLACE drops them)', async () => {
    // Generic plans, and nested loops over index scans whatever the statistics say: the entry points the
    // services call (and the creation functions create_tasks dispatches to), as src/db/sql/create_tasks.sql,
    // claim_steps.sql, complete_steps.sql, step_results.sql, task_finalization.sql and retention.sql define them.
    const entryPoints = [
      'create_tasks',
      '_create_single_task',
      '_create_task_batch',
      'claim_steps',
      'complete_many_and_claim',
      'process_step_results',
      'process_finalization_requests',
      'purge_finished_tasks',
    ];
    const { rows } = await getTestDb().db.query<{ name: string; config: string[] | null }>(
      `SELECT p.proname AS name, p.proconfig AS config FROM pg_proc p
        WHERE p.pronamespace = 'tasker'::regnamespace AND p.proname = ANY($1::text[])`,
      [entryPoints],
    );
    expect(rows.map((r) => r.name).sort()).toEqual([...entryPoints].sort());
    const wanted = [
      'plan_cache_mode=force_generic_plan',
      'enable_seqscan=off',
      'enable_hashjoin=off',
      'enable_mergejoin=off',
      'jit=off',
    ];
    const missing = rows.flatMap((r) =>
      wanted
        .filter((setting) => !(r.config ?? []).includes(setting))
        .map((setting) => `${r.name}: ${setting}`),
    );
    expect(missing).toEqual([]);
  });
});
