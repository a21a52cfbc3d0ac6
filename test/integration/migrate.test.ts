/**
 * Migrations on real, initially EMPTY databases: apply, re-run, concurrent runners, a schema newer than this
 * build, an edited migration, a failing migration (all-or-nothing), and malformed migration directories.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import {
  assertSchemaCurrent,
  DEFAULT_MIGRATIONS_DIR,
  loadMigrations,
  loadSchemaSource,
  migrate,
  schemaStatus,
} from '../../src/db/migrate.ts';
import type { Migration, SchemaSource } from '../../src/db/migrate.ts';
import { DatabaseError } from '../../src/domain/errors.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

const SOURCE = loadSchemaSource();
const MIGRATIONS = SOURCE.migrations;
const withMigrations = (migrations: Migration[]): SchemaSource => ({ ...SOURCE, migrations });
const LATEST = MIGRATIONS.length;
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);

/** Each case gets its own empty database, dropped (and checked for leaked connections) after the case. */
let open: TestDatabase[] = [];
async function emptyDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase({ migrated: false });
  open.push(database);
  return database;
}
afterEach(async () => {
  const databases = open;
  open = [];
  await Promise.all(databases.map((database) => database.drop()));
});

/** Temporary migration directories, removed after the file. */
const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tasker-migrations-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function appliedRows(db: Database): Promise<{ version: number; name: string; checksum: string }[]> {
  const { rows } = await db.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM tasker.schema_migrations ORDER BY version',
  );
  return rows;
}

async function exists(db: Database, what: 'schema' | 'table', name: string): Promise<boolean> {
  const sql =
    what === 'schema'
      ? 'SELECT to_regnamespace($1) IS NOT NULL AS ok'
      : 'SELECT to_regclass($1) IS NOT NULL AS ok';
  const { rows } = await db.query<{ ok: boolean }>(sql, [name]);
  return rows[0]?.ok === true;
}

/** Everything the migrations create, to prove a refused migrate changed nothing. */
async function catalogSnapshot(db: Database): Promise<unknown> {
  const objects = await db.query(
    `SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('pgmq', 'tasker') ORDER BY 1, 2`,
  );
  const functions = await db.query(
    `SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args, md5(p.prosrc) AS src
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('pgmq', 'tasker') ORDER BY 1, 2, 3`,
  );
  const applied = await db.query(
    'SELECT version, name, checksum, applied_at FROM tasker.schema_migrations ORDER BY version',
  );
  return { objects: objects.rows, functions: functions.rows, applied: applied.rows };
}

async function rejection(promise: Promise<unknown>): Promise<DatabaseError> {
  const error = await promise.then(
    () => new Error('expected a rejection, but the promise resolved'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatabaseError);
  return error as DatabaseError;
}

async function queueWorks(db: Database, queue: string): Promise<void> {
  await db.query('SELECT pgmq.create($1)', [queue]);
  const sent = await db.query<{ id: string }>('SELECT pgmq.send($1, $2::jsonb) AS id', [
    queue,
    '{"ok":true}',
  ]);
  const read = await db.query<{ msg_id: string; message: unknown }>(
    'SELECT msg_id, message FROM pgmq.read($1, 30, 5)',
    [queue],
  );
  expect(read.rows.map((r) => [String(r.msg_id), r.message])).toEqual([
    [String(sent.rows[0]?.id), { ok: true }],
  ]);
}

describe('migrate on an empty database', () => {
  it('the real migrations directory holds at least the queue and notification migrations', () => {
    expect(ALL_VERSIONS).toEqual(ALL_VERSIONS.map((_, i) => i + 1));
    expect(MIGRATIONS[0]?.name).toBe('schemas_and_types');
    for (const m of MIGRATIONS) expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a never-migrated database reports version 0 with everything pending, and services refuse it', async () => {
    const { db } = await emptyDatabase();
    const status = await schemaStatus(db);
    expect(status.current).toBe(0);
    expect(status.latest).toBe(LATEST);
    expect(status.pending.map((m) => m.version)).toEqual(ALL_VERSIONS);

    const error = await rejection(assertSchemaCurrent(db));
    expect(error.code).toBe('TASKER_SCHEMA_NOT_MIGRATED');
    expect(error.message).toContain('npx tasker migrate');
    expect(error.message).toContain(`schema version 0 but this Tasker needs ${LATEST}`);
    expect(error.details).toEqual({ current: 0, latest: LATEST });

    // reading the status creates nothing
    expect(await exists(db, 'schema', 'tasker')).toBe(false);
    expect(await exists(db, 'schema', 'pgmq')).toBe(false);
  });

  it('applies every migration once; a second run applies nothing; status is then current', async () => {
    const { db } = await emptyDatabase();
    const first = await migrate(db);
    expect(first.applied.map((m) => m.version)).toEqual(ALL_VERSIONS);
    expect(first).toMatchObject({ current: LATEST, latest: LATEST, pending: [] });
    expect(await appliedRows(db)).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
    );

    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    expect(second).toMatchObject({ current: LATEST, latest: LATEST, pending: [] });
    expect(await appliedRows(db)).toHaveLength(LATEST);

    const status = await schemaStatus(db);
    expect(status).toEqual({
      current: LATEST,
      latest: LATEST,
      pending: [],
      pendingFunctions: [],
      legacyLayout: false,
    });
    await expect(assertSchemaCurrent(db)).resolves.toBeUndefined();
    await queueWorks(db, 'after_migrate');
  });

  it('a database one migration behind: migrate applies just the missing one', async () => {
    const { db } = await emptyDatabase();
    const older = MIGRATIONS.slice(0, -1);
    const first = await migrate(db, withMigrations(older));
    expect(first.applied.map((m) => m.version)).toEqual(older.map((m) => m.version));

    const status = await schemaStatus(db);
    expect(status.current).toBe(LATEST - 1);
    expect(status.pending.map((m) => m.version)).toEqual([LATEST]);
    expect((await rejection(assertSchemaCurrent(db))).code).toBe('TASKER_SCHEMA_NOT_MIGRATED');

    const second = await migrate(db);
    expect(second.applied.map((m) => m.version)).toEqual([LATEST]);
    expect((await appliedRows(db)).map((r) => r.version)).toEqual(ALL_VERSIONS);
  });

  it('6 pools migrating at once: all succeed, exactly one applies, each version is recorded once', async () => {
    const database = await emptyDatabase();
    const pools = Array.from({ length: 6 }, () => database.openPool({ maxConnections: 1 }));
    const reports = await Promise.all(pools.map((pool) => migrate(pool)));

    const appliers = reports.filter((report) => report.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(appliers[0]?.applied.map((m) => m.version)).toEqual(ALL_VERSIONS);
    expect(reports.filter((report) => report.applied.length === 0)).toHaveLength(5);
    for (const report of reports)
      expect(report).toMatchObject({ current: LATEST, latest: LATEST, pending: [] });

    const { rows } = await database.db.query<{ version: number; n: number }>(
      'SELECT version, count(*)::int AS n FROM tasker.schema_migrations GROUP BY version ORDER BY version',
    );
    expect(rows).toEqual(ALL_VERSIONS.map((version) => ({ version, n: 1 })));
    await queueWorks(database.db, 'after_race');
    await queueWorks(pools[3] ?? database.db, 'after_race_other_pool');
  });

  it('a schema newer than this build (version 999 recorded): migrate and assertSchemaCurrent refuse and change nothing', async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    await db.query(
      "INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES (999, 'from_the_future', 'x')",
    );
    const before = await catalogSnapshot(db);

    for (const attempt of [() => migrate(db), () => assertSchemaCurrent(db), () => schemaStatus(db)]) {
      const error = await rejection(attempt());
      expect(error.code).toBe('TASKER_SCHEMA_TOO_NEW');
      expect(error.message).toContain(`schema version 999`);
      expect(error.message).toContain(`knows up to ${LATEST}`);
      expect(error.details).toEqual({ current: 999, latest: LATEST });
    }
    expect(await catalogSnapshot(db)).toEqual(before);
  });

  it('a newer schema on an otherwise empty database: migrate refuses before creating any queue objects', async () => {
    const { db } = await emptyDatabase();
    await db.exec(`
      CREATE SCHEMA tasker;
      CREATE TABLE tasker.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO tasker.schema_migrations (version, name, checksum) VALUES (999, 'from_the_future', 'x');`);
    const error = await rejection(migrate(db));
    expect(error.code).toBe('TASKER_SCHEMA_TOO_NEW');
    expect(error.message).toContain('999');
    expect(await exists(db, 'schema', 'pgmq')).toBe(false);
    expect((await appliedRows(db)).map((r) => r.version)).toEqual([999]);
  });

  it('an applied migration whose file was edited: migrate and schemaStatus refuse with TASKER_MIGRATION_CHANGED', async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    const recorded = await appliedRows(db);

    const editedSql = `${MIGRATIONS[0]?.sql ?? ''}\n-- an innocent-looking edit\n`;
    const edited: Migration[] = MIGRATIONS.map((m, i) =>
      i === 0
        ? { ...m, sql: editedSql, checksum: createHash('sha256').update(editedSql).digest('hex') }
        : { ...m },
    );
    expect(edited[0]?.checksum).not.toBe(MIGRATIONS[0]?.checksum);

    for (const attempt of [
      () => migrate(db, withMigrations(edited)),
      () => schemaStatus(db, withMigrations(edited)),
      () => assertSchemaCurrent(db, withMigrations(edited)),
    ]) {
      const error = await rejection(attempt());
      expect(error.code).toBe('TASKER_MIGRATION_CHANGED');
      expect(error.message).toContain('0001_schemas_and_types.sql');
      expect(error.message).toContain('was changed after it was applied');
      expect(error.details).toEqual({ version: 1 });
    }
    expect(await appliedRows(db)).toEqual(recorded);
    // the unmodified set is still accepted
    await expect(assertSchemaCurrent(db)).resolves.toBeUndefined();
  });

  it('function files: a new or edited file is applied on the next migrate (alone); until then services refuse, naming it', async () => {
    const { db } = await emptyDatabase();
    await migrate(db);
    const probe = (value: number): SchemaSource => {
      const sql = `CREATE OR REPLACE FUNCTION tasker.zz_probe() RETURNS integer LANGUAGE sql AS $$ SELECT ${value} $$;`;
      const file = { file: 'zz_probe.sql', sql, checksum: createHash('sha256').update(sql).digest('hex') };
      return { ...SOURCE, functions: [...SOURCE.functions, file] };
    };
    for (const value of [1, 2]) {
      const source = probe(value);
      const status = await schemaStatus(db, source);
      expect(status.pending).toEqual([]);
      expect(status.pendingFunctions.map((f) => f.file)).toEqual(['zz_probe.sql']);
      const error = await rejection(assertSchemaCurrent(db, source));
      expect(error.code).toBe('TASKER_SCHEMA_NOT_MIGRATED');
      expect(error.message).toContain('zz_probe.sql');

      const report = await migrate(db, source);
      expect(report.applied).toEqual([]);
      expect(report.appliedFunctions.map((f) => f.file)).toEqual(['zz_probe.sql']);
      const { rows } = await db.query<{ v: number }>('SELECT tasker.zz_probe() AS v');
      expect(rows[0]?.v).toBe(value);
      await expect(assertSchemaCurrent(db, source)).resolves.toBeUndefined();
      expect((await migrate(db, source)).appliedFunctions).toEqual([]);
    }
    const { rows } = await db.query<{ checksum: string }>(
      "SELECT checksum FROM tasker.schema_function_files WHERE file = 'zz_probe.sql'",
    );
    expect(rows[0]?.checksum).toBe(probe(2).functions.at(-1)?.checksum);
  });

  it('a failing function file rolls back the whole run, naming the file', async () => {
    const { db } = await emptyDatabase();
    const sql =
      'CREATE OR REPLACE FUNCTION tasker.zz_broken() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;\nSELECT no_such_function();\n';
    const broken: SchemaSource = {
      ...SOURCE,
      functions: [...SOURCE.functions, { file: 'zz_broken.sql', sql, checksum: 'x' }],
    };
    const error = await rejection(migrate(db, broken));
    expect(error.code).toBe('TASKER_MIGRATION_FAILED');
    expect(error.message).toContain('src/db/sql/zz_broken.sql');
    expect(error.message).toContain('Nothing was applied');
    expect(await exists(db, 'schema', 'tasker')).toBe(false);
    expect(await exists(db, 'schema', 'pgmq')).toBe(false);
  });

  it('a failing migration rolls back all of them: nothing is applied, and a fixed set then migrates', async () => {
    const { db } = await emptyDatabase();
    const dir = tempDir();
    for (const file of readdirSync(DEFAULT_MIGRATIONS_DIR)) {
      if (file.endsWith('.sql')) copyFileSync(join(DEFAULT_MIGRATIONS_DIR, file), join(dir, file));
    }
    const brokenVersion = LATEST + 1;
    const brokenFile = `${String(brokenVersion).padStart(4, '0')}_broken.sql`;
    writeFileSync(
      join(dir, brokenFile),
      'CREATE TABLE tasker.half_done (id integer);\nSELECT no_such_column FROM no_such_table;\n',
    );
    const withBroken = loadMigrations(dir);
    expect(withBroken.map((m) => m.version)).toEqual([...ALL_VERSIONS, brokenVersion]);

    const error = await rejection(migrate(db, withMigrations(withBroken)));
    expect(error.code).toBe('TASKER_MIGRATION_FAILED');
    expect(error.message).toContain(brokenFile);
    expect(error.message).toContain('no_such_table');
    expect(error.message).toContain('Nothing was applied');
    expect(error.details).toEqual({ version: brokenVersion });
    expect((error.cause as { code?: string }).code).toBe('42P01');

    expect(await exists(db, 'schema', 'pgmq')).toBe(false);
    expect(await exists(db, 'table', 'tasker.schema_migrations')).toBe(false);
    expect(await exists(db, 'table', 'tasker.half_done')).toBe(false);
    expect(await schemaStatus(db)).toMatchObject({ current: 0 });

    const fixed = await migrate(db);
    expect(fixed.applied.map((m) => m.version)).toEqual(ALL_VERSIONS);
    await queueWorks(db, 'after_fix');
  });
});

describe('loadMigrations on a malformed directory', () => {
  function dirWith(files: Record<string, string>): string {
    const dir = tempDir();
    for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
    return dir;
  }

  it('loads NNNN_name.sql files in numeric order with sha256 checksums and ignores non-.sql files', () => {
    const dir = dirWith({
      '0002_second.sql': 'SELECT 2;',
      '0001_first.sql': 'SELECT 1;',
      'README.md': 'not a migration',
    });
    expect(loadMigrations(dir)).toEqual([
      {
        version: 1,
        name: 'first',
        sql: 'SELECT 1;',
        checksum: createHash('sha256').update('SELECT 1;').digest('hex'),
      },
      {
        version: 2,
        name: 'second',
        sql: 'SELECT 2;',
        checksum: createHash('sha256').update('SELECT 2;').digest('hex'),
      },
    ]);
  });

  it.each([
    '1_short.sql',
    '0002_Has_Upper.sql',
    '0002-dashes.sql',
    '0002_with space.sql',
    '00002_five_digits.sql',
  ])('a misnamed file (%s) is refused with a message that names it and the expected form', (misnamed) => {
    const dir = dirWith({ '0001_first.sql': 'SELECT 1;', [misnamed]: 'SELECT 2;' });
    const error = (() => {
      try {
        loadMigrations(dir);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'TASKER_MIGRATION_FAILED' });
    expect((error as Error).message).toContain(`migration file ${misnamed} is misnamed`);
    expect((error as Error).message).toContain('NNNN_lowercase_words.sql');
  });

  it('a gap in the numbering is refused, naming the file out of place', () => {
    const dir = dirWith({ '0001_first.sql': 'SELECT 1;', '0003_third.sql': 'SELECT 3;' });
    expect(() => loadMigrations(dir)).toThrow(/without gaps or repeats; found 0003_third\.sql at position 2/);
  });

  it('a repeated number is refused too', () => {
    const dir = dirWith({ '0001_first.sql': 'SELECT 1;', '0001_again.sql': 'SELECT 1;' });
    expect(() => loadMigrations(dir)).toThrow(/without gaps or repeats; found 0001_\w+\.sql at position 2/);
  });

  it('numbering that does not start at 0001 is refused', () => {
    const dir = dirWith({ '0002_second.sql': 'SELECT 2;' });
    expect(() => loadMigrations(dir)).toThrow(/found 0002_second\.sql at position 1/);
  });
});
