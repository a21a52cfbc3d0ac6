import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database, Queryable } from './database.ts';
import type { SchemaSource } from './schemaFiles.ts';
import { DatabaseError } from '../domain/errors.ts';

/**
 * Databases migrated before SQL functions became source files (Tasker through migration 0019 of the old
 * numbering, where functions were defined and re-patched inside numbered migrations) are upgraded in place, in
 * the migrator's transaction: the functions that no longer exist are dropped, the old migration rows are replaced
 * by rows for the new baseline migrations (which describe exactly the schema 0019 left), and the function files
 * are then applied as on any database. A test migrates a database with the old files and checks that its
 * `pg_dump -s` equals a fresh install's.
 */

/** The old migrations as they landed: version, name and the sha256 the old migrator recorded. */
const LEGACY_MIGRATIONS: readonly (readonly [number, string, string])[] = [
  [1, 'pgmq_queue', '20daf06842914b607a751035691a1213b3bb0085d4b2eef211475eaed13ce2db'],
  [2, 'queue_notifications', '71f98610477cc4c7dffb4dca22b985949db8e073e6563011a1fc3f4890a25306'],
  [3, 'workflow_schema', '9e025b344ff22ed4c2c3559c4d172bf480889096d703ed2f93326adb30623457'],
  [4, 'workflow_functions', 'ea55f2838424c850214da568f2b02ce9173bc76239b99a5221156d78a40622e2'],
  [5, 'operator_actions_and_dlq', '861c836ec6bc7dcebe13459770684802dd554e1ffe371f5f55914c98def70270'],
  [6, 'hot_path', '493d5306fd5e4bede9bda220cd0943b54d7279c9cb5a6331d7d46e31e3d816ea'],
  [7, 'task_finished_notify', '3d28729b7d670846f10a529bf7e3d57c77b8a7c767efbaf191aee1c4623ee184'],
  [8, 'create_tasks_batch', '823db640b688f01cdc5c2bc8e7ef357d7eafb1b6804614cc6e07c6df489e4795'],
  [9, 'set_based_batches', 'fca7bdc7f2078a20657325ca3927ea048fb388eeed0e184297ec913e5f13a115'],
  [
    10,
    'engine_tables_without_foreign_keys',
    'bd58c83cc47102b08933e9bda3dba549600c808aa2e7e94c9e15b318104c7f08',
  ],
  [11, 'plans_independent_of_statistics', '290b8e3fdfa85f5f594dc7f1c257bff6cbd83e28a39dcb9b63f57a757d20474c'],
  [12, 'queue_reads_by_visibility', '01999d2af7db74950e5bec5135224ffd0841aa474fb3fd45c339d3a9eab2e5cb'],
  [13, 'flips_by_key', 'f9586fff19c4e637db261314da0ef9e78488486fb624efe5ec70c9f1cb76d5f1'],
  [14, 'value_checks_as_domains', '8e8e03119f4d0814b85dc5703d44c1c98a81943119b738cf1124a4f38a1572a8'],
  [15, 'lone_edge', '288efecef25d766bfc7a3575e25b1d6931d0c51e28ece2649c18a3c1ca6fdfed'],
  [16, 'uuid_v7_without_strong_random', 'b18c8d7112defbdb028bc1bf48ca8c69ea91f0d911611608db27556e55994791'],
  [17, 'queue_reads_update_by_key', '1e401aabd30d045ac2b54f4cc10c371b3af6e8abafdb4aa6cead711d76063ba5'],
  [
    18,
    'queue_lookups_by_primary_key_only',
    '5d4195f5e72673e6976308df98420409ed17036ff53770c44094ca0b6153edfb',
  ],
  [19, 'retention', '98c6ed2fabbca11f5fd9b865694448bc4b61f7ad29b4ab3804caa9d041a60fc7'],
];

/** The new migrations that together create exactly what the old 0001-0019 left (tables, types, data). */
const BASELINE_VERSIONS = 6;

/** Drops what the old layout had and the function files do not define; see the file's comments. */
const UPGRADE_SQL_FILE = fileURLToPath(
  new URL('../../migrations/legacy/upgrade_from_0019.sql', import.meta.url),
);

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** The old layout is recognised by its first migration's name, which the new numbering never uses. */
export function isLegacyLayout(applied: readonly AppliedRow[]): boolean {
  return applied.some((row) => row.version === 1 && row.name === LEGACY_MIGRATIONS[0]?.[1]);
}

function legacyError(db: Database, message: string, details: Record<string, unknown>): DatabaseError {
  return new DatabaseError('TASKER_SCHEMA_LEGACY', `database ${db.displayName} ${message}`, { details });
}

/** Refuses an old-layout database this build cannot upgrade: anything but exactly the landed 0001-0019. */
export function assertUpgradableLegacy(db: Database, applied: readonly AppliedRow[]): void {
  const current = applied.reduce((max, row) => Math.max(max, row.version), 0);
  const last = LEGACY_MIGRATIONS.length;
  if (current < last) {
    throw legacyError(
      db,
      `was migrated with Tasker's old migration layout only up to version ${current}; this Tasker upgrades it from version ${last} (the last of that layout). ` +
        `Run \`npx tasker migrate\` with a Tasker release from before the SQL-function files first, then this one.`,
      { current, required: last },
    );
  }
  const unknown = applied.filter(
    (row) =>
      !LEGACY_MIGRATIONS.some(([v, n, c]) => v === row.version && n === row.name && c === row.checksum),
  );
  if (unknown.length > 0 || applied.length !== last) {
    throw legacyError(
      db,
      `has old-layout migration rows this Tasker does not recognise (${unknown.map((row) => `${row.version}_${row.name}`).join(', ') || `${applied.length} rows for ${last} migrations`}); ` +
        'it was migrated by a modified Tasker. Restore a backup or migrate it with the build that created it.',
      { unrecognised: unknown.map((row) => row.version) },
    );
  }
}

/**
 * Turns an old-layout database into a new-layout one at the baseline, inside the caller's transaction (which
 * holds the migration lock). The function files are applied by the caller right after.
 */
export async function upgradeLegacyLayout(tx: Queryable, source: SchemaSource): Promise<void> {
  await tx.exec(readFileSync(UPGRADE_SQL_FILE, 'utf8'));
  await tx.query('DELETE FROM tasker.schema_migrations');
  for (const migration of source.migrations.slice(0, BASELINE_VERSIONS)) {
    await tx.query('INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      migration.checksum,
    ]);
  }
}
