import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database, Queryable } from './database.ts';
import { DatabaseError } from '../domain/errors.ts';
import { sqlStateOf, SqlState } from './sqlState.ts';

/** `migrations/` at the package root, found from this file in both src/ (tsx) and dist/ (built). */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Arbitrary but fixed: every Tasker process migrating any database takes this advisory lock. */
const MIGRATION_LOCK_KEY = 7_306_014_711;

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface SchemaStatus {
  /** Highest applied version; 0 for a database Tasker never touched. */
  current: number;
  /** Highest version this build of Tasker knows. */
  latest: number;
  pending: Migration[];
}

export interface MigrationReport extends SchemaStatus {
  applied: Migration[];
}

export function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => /\.sql$/i.test(file))
    .map((file): Migration => {
      const match = MIGRATION_FILE.exec(file);
      if (match === null) {
        throw new DatabaseError(
          'TASKER_MIGRATION_FAILED',
          `migration file ${file} is misnamed: name it NNNN_lowercase_words.sql (for example 0003_add_tasks.sql)`,
        );
      }
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      return {
        version: Number(match[1]),
        name: match[2] ?? file,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new DatabaseError(
        'TASKER_MIGRATION_FAILED',
        `migrations must be numbered 0001, 0002, ... without gaps or repeats; found ${String(migration.version).padStart(4, '0')}_${migration.name}.sql at position ${index + 1}`,
      );
    }
  });
  return migrations;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

async function readApplied(q: Queryable): Promise<AppliedRow[] | undefined> {
  try {
    const { rows } = await q.query<AppliedRow>(
      'SELECT version, name, checksum FROM tasker.schema_migrations ORDER BY version',
    );
    return rows;
  } catch (error) {
    const state = sqlStateOf(error);
    if (state === SqlState.undefinedTable || state === '3F000') return undefined;
    throw error;
  }
}

function checkApplied(db: Database, applied: AppliedRow[], known: Migration[]): SchemaStatus {
  const latest = known.length;
  const current = applied.reduce((max, row) => Math.max(max, row.version), 0);
  if (current > latest) {
    throw new DatabaseError(
      'TASKER_SCHEMA_TOO_NEW',
      `database ${db.displayName} is at schema version ${current}, newer than this Tasker (which knows up to ${latest}). ` +
        'Upgrade Tasker to the version that migrated it; this version will not touch a newer schema.',
      { details: { current, latest } },
    );
  }
  for (const row of applied) {
    const migration = known[row.version - 1];
    if (migration !== undefined && migration.checksum !== row.checksum) {
      throw new DatabaseError(
        'TASKER_MIGRATION_CHANGED',
        `migration ${String(row.version).padStart(4, '0')}_${row.name}.sql was changed after it was applied to ${db.displayName}. ` +
          'Applied migrations are never edited: restore the file and add a new numbered migration instead.',
        { details: { version: row.version } },
      );
    }
  }
  const appliedVersions = new Set(applied.map((row) => row.version));
  return { current, latest, pending: known.filter((m) => !appliedVersions.has(m.version)) };
}

/** Reads the schema version without changing anything. */
export async function schemaStatus(
  db: Database,
  migrations: Migration[] = loadMigrations(),
): Promise<SchemaStatus> {
  return checkApplied(db, (await readApplied(db)) ?? [], migrations);
}

/** For services: refuse to run against a database that is behind or ahead of this build. */
export async function assertSchemaCurrent(
  db: Database,
  migrations: Migration[] = loadMigrations(),
): Promise<void> {
  const status = await schemaStatus(db, migrations);
  if (status.pending.length > 0) {
    throw new DatabaseError(
      'TASKER_SCHEMA_NOT_MIGRATED',
      `database ${db.displayName} is at schema version ${status.current} but this Tasker needs ${status.latest}: run \`npx tasker migrate\` first`,
      { details: { current: status.current, latest: status.latest } },
    );
  }
}

/**
 * Applies pending migrations, all in one transaction under an advisory lock: several processes may run
 * this at once; one applies, the others wait on the lock and then find nothing to do. A failing migration
 * rolls everything back, so the schema is never half-migrated.
 */
export async function migrate(
  db: Database,
  migrations: Migration[] = loadMigrations(),
): Promise<MigrationReport> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.exec(`
      CREATE SCHEMA IF NOT EXISTS tasker;
      CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
        version    integer PRIMARY KEY,
        name       text        NOT NULL,
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );`);
    const status = checkApplied(db, (await readApplied(tx)) ?? [], migrations);
    for (const migration of status.pending) {
      try {
        await tx.exec(migration.sql);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new DatabaseError(
          'TASKER_MIGRATION_FAILED',
          `migration ${String(migration.version).padStart(4, '0')}_${migration.name}.sql failed on ${db.displayName}: ${reason}. Nothing was applied.`,
          { details: { version: migration.version }, cause: error },
        );
      }
      await tx.query('INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
    }
    return { ...status, current: status.latest, applied: status.pending, pending: [] };
  });
}
