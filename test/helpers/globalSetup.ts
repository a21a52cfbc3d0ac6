import { createHash } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { loadSchemaSource, migrate } from '../../src/db/migrate.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { ADMIN_URL, databaseUrl } from './testEnv.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Migrates one template database per schema (migrations and function files); every test file clones it (CREATE DATABASE ... TEMPLATE),
 * which takes milliseconds instead of re-running migrations.
 */
export default async function setup(project: TestProject): Promise<void> {
  const source = loadSchemaSource();
  const fingerprint = createHash('sha256')
    .update([...source.migrations, ...source.functions].map((m) => m.checksum).join())
    .digest('hex')
    .slice(0, 12);
  const template = `tasker_test_template_${fingerprint}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `tests need PostgreSQL at ${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')} (set TEST_DATABASE_URL): ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (exists.rowCount === 0) {
      const building = `${template}_building_${process.pid}`;
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(building)}`);
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(building)}`);
      const db = new PostgresDatabase(databaseUrl(building), { maxConnections: 2 });
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
      await admin.query(
        `ALTER DATABASE ${admin.escapeIdentifier(building)} RENAME TO ${admin.escapeIdentifier(template)}`,
      );
    }
    // Leftovers of interrupted runs: per-file databases (named tasker_t_<epoch seconds>_...) older than an hour,
    // so a run going on in parallel keeps its own. Templates of other migration sets are dropped only in CI: on a
    // developer machine another run (another branch) may still be cloning its template.
    const stale = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database
       WHERE (datname LIKE 'tasker_test_template_%' AND datname NOT LIKE $1 || '%' AND $2)
          OR (datname ~ '^tasker_t_[0-9]+_' AND split_part(datname, '_', 3)::bigint < extract(epoch FROM now()) - 3600)`,
      [template, process.env.CI === 'true'],
    );
    for (const { datname } of stale.rows) {
      await admin
        .query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`)
        .catch(() => undefined);
    }
  } finally {
    await admin.end();
  }
  project.provide('templateDatabase', template);
}
