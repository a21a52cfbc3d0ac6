import type { Database, Queryable } from './database.ts';
import { DatabaseError } from '../domain/errors.ts';
import { assertUpgradableLegacy, isLegacyLayout, upgradeLegacyLayout } from './legacyLayout.ts';
import { loadSchemaSource, migrationLabel } from './schemaFiles.ts';
import type { FunctionFile, Migration, SchemaSource } from './schemaFiles.ts';

/**
 * Applies the schema: numbered migrations once each, function files whenever they change. One run is one
 * transaction under an advisory lock, in this order:
 *
 *   1. migration 0001 (schemas, composite types, domains), if the database is empty;
 *   2. every function file whose checksum differs from the one recorded, with `check_function_bodies` off (as
 *      pg_dump restores), so files apply in any order and bodies may name tables that step 3 creates;
 *   3. every other pending migration, in order.
 *
 * So every migration after 0001 sees the current functions (column defaults, triggers and data moves may call
 * them), and function signatures may use only built-in types and 0001's. A numbered migration runs after the
 * files, so it cannot make way for a function whose result type changes (CREATE OR REPLACE refuses that): give
 * such a function a new name, or drop its old signature at the top of its file with a comment saying why.
 */

/** Arbitrary but fixed: every Tasker process migrating any database takes this advisory lock. */
const MIGRATION_LOCK_KEY = 7_306_014_711;

export type { Migration, SchemaSource } from './schemaFiles.ts';
export {
  DEFAULT_FUNCTIONS_DIR,
  DEFAULT_MIGRATIONS_DIR,
  loadFunctionFiles,
  loadMigrations,
  loadSchemaSource,
} from './schemaFiles.ts';

export interface SchemaStatus {
  /** Highest applied version; 0 for a database Tasker never touched. */
  current: number;
  /** Highest version this build of Tasker knows. */
  latest: number;
  pending: Migration[];
  /** Function files never applied to this database, or applied with different contents. */
  pendingFunctions: FunctionFile[];
  /** The database still has the old layout (functions inside numbered migrations); `migrate` upgrades it. */
  legacyLayout: boolean;
}

export interface MigrationReport extends SchemaStatus {
  applied: Migration[];
  appliedFunctions: FunctionFile[];
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

interface AppliedFunctionRow {
  file: string;
  checksum: string;
}

/**
 * Undefined when the table (or the whole schema) does not exist yet. Asked first rather than caught: inside the
 * migration's transaction an error would abort it.
 */
async function readRows<Row>(q: Queryable, table: string, sql: string): Promise<Row[] | undefined> {
  const { rows } = await q.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    table,
  ]);
  if (rows[0]?.present !== true) return undefined;
  return (await q.query<Row>(sql)).rows;
}

const readApplied = (q: Queryable): Promise<AppliedRow[] | undefined> =>
  readRows<AppliedRow>(
    q,
    'tasker.schema_migrations',
    'SELECT version, name, checksum FROM tasker.schema_migrations ORDER BY version',
  );

const readAppliedFunctions = (q: Queryable): Promise<AppliedFunctionRow[] | undefined> =>
  readRows<AppliedFunctionRow>(
    q,
    'tasker.schema_function_files',
    'SELECT file, checksum FROM tasker.schema_function_files ORDER BY file',
  );

function checkApplied(
  db: Database,
  applied: AppliedRow[],
  known: Migration[],
): Pick<SchemaStatus, 'current' | 'latest' | 'pending'> {
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
        `migration ${migrationLabel(row)}.sql was changed after it was applied to ${db.displayName}. ` +
          'Applied migrations are never edited: restore the file and add a new numbered migration instead.',
        { details: { version: row.version } },
      );
    }
  }
  const appliedVersions = new Set(applied.map((row) => row.version));
  return { current, latest, pending: known.filter((m) => !appliedVersions.has(m.version)) };
}

function pendingFunctionFiles(applied: AppliedFunctionRow[], known: FunctionFile[]): FunctionFile[] {
  const recorded = new Map(applied.map((row) => [row.file, row.checksum]));
  return known.filter((f) => recorded.get(f.file) !== f.checksum);
}

async function readStatus(db: Database, q: Queryable, source: SchemaSource): Promise<SchemaStatus> {
  const applied = (await readApplied(q)) ?? [];
  if (isLegacyLayout(applied)) {
    assertUpgradableLegacy(db, applied);
    return {
      current: 0,
      latest: source.migrations.length,
      pending: source.migrations,
      pendingFunctions: source.functions,
      legacyLayout: true,
    };
  }
  const versions = checkApplied(db, applied, source.migrations);
  const pendingFunctions = pendingFunctionFiles((await readAppliedFunctions(q)) ?? [], source.functions);
  return { ...versions, pendingFunctions, legacyLayout: false };
}

/** Reads the schema version without changing anything. */
export async function schemaStatus(
  db: Database,
  source: SchemaSource = loadSchemaSource(),
): Promise<SchemaStatus> {
  return readStatus(db, db, source);
}

/** For services: refuse to run against a database that is behind or ahead of this build. */
export async function assertSchemaCurrent(
  db: Database,
  source: SchemaSource = loadSchemaSource(),
): Promise<void> {
  const status = await schemaStatus(db, source);
  if (status.legacyLayout) {
    throw new DatabaseError(
      'TASKER_SCHEMA_NOT_MIGRATED',
      `database ${db.displayName} has the schema of an older Tasker (SQL functions inside numbered migrations): run \`npx tasker migrate\` first; it upgrades the schema in one transaction`,
      { details: { current: 0, latest: status.latest } },
    );
  }
  if (status.pending.length > 0) {
    throw new DatabaseError(
      'TASKER_SCHEMA_NOT_MIGRATED',
      `database ${db.displayName} is at schema version ${status.current} but this Tasker needs ${status.latest}: run \`npx tasker migrate\` first`,
      { details: { current: status.current, latest: status.latest } },
    );
  }
  if (status.pendingFunctions.length > 0) {
    const files = status.pendingFunctions.map((f) => f.file);
    throw new DatabaseError(
      'TASKER_SCHEMA_NOT_MIGRATED',
      `database ${db.displayName} has SQL functions that differ from this Tasker's (${files.join(', ')}): run \`npx tasker migrate\` with this version first`,
      { details: { current: status.current, latest: status.latest, functionFiles: files } },
    );
  }
}

/** Runs one file's SQL; a failure names the file and says that the whole run was rolled back. */
async function execFile(
  db: Database,
  tx: Queryable,
  sql: string,
  what: string,
  details: Record<string, unknown>,
): Promise<void> {
  try {
    await tx.exec(sql);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseError(
      'TASKER_MIGRATION_FAILED',
      `${what} failed on ${db.displayName}: ${reason}. Nothing was applied.`,
      { details, cause: error },
    );
  }
}

async function runMigration(db: Database, tx: Queryable, migration: Migration): Promise<void> {
  await execFile(db, tx, migration.sql, `migration ${migrationLabel(migration)}.sql`, {
    version: migration.version,
  });
  await tx.query('INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
    migration.version,
    migration.name,
    migration.checksum,
  ]);
}

async function applyFunctionFiles(db: Database, tx: Queryable, files: FunctionFile[]): Promise<void> {
  if (files.length === 0) return;
  await tx.query('SET LOCAL check_function_bodies = off');
  for (const file of files) {
    await execFile(db, tx, file.sql, `function file src/db/sql/${file.file}`, { file: file.file });
    await tx.query(
      `INSERT INTO tasker.schema_function_files (file, checksum) VALUES ($1, $2)
       ON CONFLICT (file) DO UPDATE SET checksum = excluded.checksum, applied_at = now()`,
      [file.file, file.checksum],
    );
  }
  await tx.query('SET LOCAL check_function_bodies = on');
}

/**
 * Applies what is pending, all in one transaction under an advisory lock: several processes may run this at
 * once; one applies, the others wait on the lock and then find nothing to do. A failure rolls everything back,
 * so the schema is never half-migrated.
 */
export async function migrate(
  db: Database,
  source: SchemaSource = loadSchemaSource(),
): Promise<MigrationReport> {
  return db.transaction(async (tx) => {
    // A migration may rewrite big tables, build indexes or wait for another migrator's lock: the pool's
    // statement_timeout is for service work.
    if (db.kind === 'postgres') await tx.query('SET LOCAL statement_timeout = 0');
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    // Refuse a newer or foreign schema before creating anything.
    const before = await readStatus(db, tx, source);
    await tx.exec(`
      CREATE SCHEMA IF NOT EXISTS tasker;
      CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
        version    integer PRIMARY KEY,
        name       text        NOT NULL,
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS tasker.schema_function_files (
        file       text PRIMARY KEY,
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );`);
    if (before.legacyLayout) await upgradeLegacyLayout(tx, source);
    const status = await readStatus(db, tx, source);
    const [first, ...rest] = status.pending;
    const foundationFirst = first?.version === 1;
    if (foundationFirst) await runMigration(db, tx, first);
    await applyFunctionFiles(db, tx, status.pendingFunctions);
    for (const migration of foundationFirst ? rest : status.pending) await runMigration(db, tx, migration);
    return {
      ...before,
      current: status.latest,
      latest: status.latest,
      pending: [],
      pendingFunctions: [],
      applied: status.pending,
      appliedFunctions: status.pendingFunctions,
    };
  });
}
