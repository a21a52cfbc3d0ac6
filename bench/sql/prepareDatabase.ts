/**
 * Prepares a database for the per-function SQL benchmarks in this folder (pgbench scripts): creates it if
 * missing, migrates it and registers the engine benchmark's templates (namespace `bench`), so that
 * tasker.create_tasks finds them and the worker queue exists. Usage:
 *
 *   npx tsx bench/sql/prepareDatabase.ts postgres://root@127.0.0.1:5432/tasker_bench_sql
 *
 * How to run the scripts and read the figures: bench/README.md, "SQL benchmarks".
 */
import { ensureDatabaseExists } from '../../src/db/createDatabase.ts';
import { migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { registerTemplate } from '../../src/db/queries/registerTemplate.ts';
import { benchTemplates } from '../engine/benchTemplates.ts';

const url =
  process.argv[2] ?? process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/tasker_bench_sql';
await ensureDatabaseExists(url);
const db = new PostgresDatabase(url, { maxConnections: 1 });
try {
  await migrate(db);
  for (const template of benchTemplates()) await registerTemplate(db, template);
  process.stderr.write(`ready: ${db.displayName}\n`);
} finally {
  await db.close();
}
